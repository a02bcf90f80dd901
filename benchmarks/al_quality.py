r"""The paper's comparison on the offline tasks: every strategy, several seeds, one report.

    python benchmarks/al_quality.py --tasks mnist1d,digits,synthetic_pose,synthetic_crowd --seeds 5

Each task runs its own config (``configs/<task>.py``: every strategy it lists, the paper's
protocol of shared initial sets and subset draws per seed) for seeds ``0 .. seeds-1`` through the
driver, in ``WORKDIR/<task>`` (default ``runs/quality``). Interrupted, the same command resumes at
the first unfinished (strategy, seed, cycle); a finished task is only read back. Writes
``OUT/quality.md`` (default ``benchmarks/results``), with per task:

* the metric at every cycle (mean ± std over seeds);
* the area under the learning curve (AUC): the trapezoid over the number of labels divided by its
  range, i.e. the curve's mean height, per seed, then mean ± std;
* the last-cycle Spearman rho of predicted and true test losses, for LL4AL and L2R-AL;
* the scientific bar, claim by claim, with the margin in units of the seed spread;
* the diagnostic ``oracle_loss`` where the workdir has it (run it with ``python -m l2r_jax.main
  --config=configs/<task>.py --workdir=WORKDIR/<task> --config.strategies="('oracle_loss',)"``);

and the curves as ``OUT/quality_<task>.png``. ``--smoke`` runs each task's ``:smoke`` variant (a
seconds-long check of the whole path). ``--update`` rewrites only the listed tasks' sections of an
existing ``quality.md`` and keeps the others, each under the command that produced it.
"""
import argparse
import collections
import importlib.util
import os
import platform
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import jax
import numpy as np

from l2r_jax import experiment
from l2r_jax import report
from l2r_jax import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ('mnist1d', 'digits', 'synthetic_pose', 'synthetic_crowd')
REGRESSION = ('pose', 'crowd')


def load_config(task: str, smoke: bool):
  path = os.path.join(ROOT, 'configs', f'{task}.py')
  if not os.path.exists(path):
    raise SystemExit(f'--tasks: no config {path}; choose from {", ".join(TASKS)}.')
  spec = importlib.util.spec_from_file_location(f'configs_{task}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config('smoke') if smoke else module.get_config()


def auc(sizes: Sequence[float], values: Sequence[float]) -> float:
  """Area under a learning curve over its range of label counts, divided by that range: the mean
  height of the piecewise-linear curve (its only value for a single point)."""
  sizes, values = np.asarray(sizes, float), np.asarray(values, float)
  if len(sizes) == 1:
    return float(values[0])
  return float(np.trapezoid(values, sizes) / (sizes[-1] - sizes[0]))


def task_summary(records: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
  """Per strategy: AUC per seed (complete runs only), and last-cycle rho per seed."""
  by_run = collections.defaultdict(dict)
  for r in records:
    by_run[(r['strategy'], r['seed'])][r['num_labeled']] = r
  cycles = max(len(v) for v in by_run.values())
  out = collections.defaultdict(lambda: {'auc': {}, 'rho': {}})
  for (strategy, seed), run in by_run.items():
    if len(run) < cycles:
      continue  # an unfinished run has no area yet
    sizes = sorted(run)
    out[strategy]['auc'][seed] = auc(sizes, [run[n]['value'] for n in sizes])
    if run[sizes[-1]].get('spearman') is not None:
      out[strategy]['rho'][seed] = run[sizes[-1]]['spearman']
  return dict(out)


def _ms(values) -> str:
  v = np.asarray(list(values), float)
  return f'{v.mean():.4f} ± {v.std():.4f}' if len(v) else ''


def bar(summary: Dict[str, Dict[str, Any]], task: str, higher_is_better: bool) -> List[str]:
  """The issue's bar, claim by claim: L2R-AL's margin over each rival, in metric units and in
  units of the larger seed std (positive: L2R-AL is better)."""
  lines = []
  if 'l2r' not in summary:
    return lines

  def compare(name, key, rival, sign):
    a = np.asarray(list(summary['l2r'][key].values()), float)
    b = np.asarray(list(summary.get(rival, {}).get(key, {}).values()), float)
    if not len(a) or not len(b):
      return
    margin = sign * (a.mean() - b.mean())
    spread = max(a.std(), b.std(), 1e-12)
    verdict = 'met' if margin > spread else ('better, within the spread' if margin > 0
                                            else 'not met')
    lines.append(f'| {name} | {margin:+.4f} | {margin / spread:+.1f} | {verdict} |')

  sign = 1.0 if higher_is_better else -1.0
  compare('rho: L2R-AL > LL4AL', 'rho', 'll4al', 1.0)
  for rival in ('random', 'll4al', 'coreset') + (('entropy',) if task in REGRESSION else ()):
    compare(f'AUC: L2R-AL beats {rival}', 'auc', rival, sign)
  if not lines:
    return lines
  return ['| claim | margin | margin / seed std | verdict |', '|---|---|---|---|'] + lines


def task_markdown(name: str, records: List[Dict[str, Any]], task: str, wall_s: float,
                  command: Optional[str] = None) -> str:
  metric = records[0]['metric']
  higher = dict(tasks.METRICS.values()).get(metric, True)
  summary = task_summary(records)
  lines = [f'## {name}', ''] + ([f'Command: {command}.', ''] if command else []) + [
      report.summary_markdown(records),
           f'Area under the {metric} curve ({"higher" if higher else "lower"} is better; '
           'mean ± std over seeds) and last-cycle rho:', '',
           '| strategy | AUC | last-cycle rho | seeds |', '|---|---|---|---|']
  best = (max if higher else min)(
      (np.mean(list(s['auc'].values())), k) for k, s in summary.items()
      if s['auc'] and k != 'oracle_loss')[1]
  for strategy, s in summary.items():
    cell = _ms(s['auc'].values())
    lines.append(f'| {strategy} | {f"**{cell}**" if strategy == best else cell} | '
                 f'{_ms(s["rho"].values())} | {len(s["auc"])} |')
  if 'oracle_loss' in summary:
    lines += ['', '`oracle_loss` is a diagnostic that reads the labels: it queries the highest '
              'true losses, what a perfect loss predictor would pick. It tells whether the '
              'criterion itself pays on the task; it is not a rival.']
  claims = bar(summary, task, higher)
  if claims:
    lines += ['', 'The bar (margin: L2R-AL minus the rival, signed so that positive is better; '
              '"met" when it exceeds the larger seed std):', ''] + claims
  lines += ['', f'![{name}](quality_{name}.png)', '',
            f'Wall time of the cycles in this report: {wall_s / 60:.1f} min.', '']
  return '\n'.join(lines)


def _command(names: Sequence[str], seeds: int, smoke: bool) -> str:
  return (f'`python benchmarks/al_quality.py --tasks {",".join(names)} --seeds {seeds}'
          f'{" --smoke" if smoke else ""}`')


def merge_sections(old_text: str, new_sections: Dict[str, str]) -> List[str]:
  """The task sections of ``old_text`` (a previous ``quality.md``) with those in
  ``new_sections`` replaced or added, in :data:`TASKS` order (others after). A kept section that
  does not name its command gets the one from the old file's header."""
  header, *chunks = old_text.split('\n## ')
  old_command = next((line.split(';')[0] for line in header.splitlines()
                      if line.startswith('`python benchmarks/al_quality.py')), None)
  sections = {}
  for chunk in chunks:
    name, _, body = chunk.partition('\n')
    text = f'## {name}\n{body}'.rstrip('\n') + '\n'
    if old_command and 'Command: `' not in text:
      text = text.replace('\n', f'\n\nCommand: {old_command}.\n', 1)
    sections[name] = text
  sections.update(new_sections)
  order = [t for t in TASKS if t in sections] + [t for t in sections if t not in TASKS]
  return [sections[t] for t in order]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--tasks', default=','.join(TASKS))
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--workdir', default=os.path.join(ROOT, 'runs', 'quality'))
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results'))
  parser.add_argument('--smoke', action='store_true', help="each task's :smoke variant")
  parser.add_argument('--update', action='store_true',
                      help="keep the other tasks' sections of an existing OUT/quality.md")
  args = parser.parse_args(argv)
  names = [t for t in args.tasks.split(',') if t]
  configs = {t: load_config(t, args.smoke) for t in names}  # every config checked before any run
  if args.seeds < 1:
    raise SystemExit('--seeds must be at least 1.')
  os.makedirs(args.out, exist_ok=True)
  sections = {}
  for name, config in configs.items():
    config.seeds = tuple(range(args.seeds))
    config.quiet = True
    t0 = time.time()
    records = experiment.run(config, os.path.join(args.workdir, name))
    print(f'{name}: {len(records)} results ({time.time() - t0:.0f} s this run)', flush=True)
    shutil.copyfile(os.path.join(args.workdir, name, 'curves.png'),
                    os.path.join(args.out, f'quality_{name}.png'))
    # The diagnostic last, whenever it ran.
    records = sorted(records, key=lambda r: r['strategy'] == 'oracle_loss')
    sections[name] = task_markdown(name, records, _task_of(records),
                                   sum(r['wall_s'] for r in records),
                                   _command([name], args.seeds, args.smoke))
  out_path = os.path.join(args.out, 'quality.md')
  scope = f'{_command(names, args.seeds, args.smoke)}; '
  body = list(sections.values())
  if args.update and os.path.exists(out_path):
    with open(out_path) as f:
      body = merge_sections(f.read(), sections)
    scope = 'Each section names its command; '
  header = ['# Active-learning quality on the offline tasks', '',
            f'{scope}{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, '
            f'jax {jax.__version__} on {jax.default_backend()}.', '']
  text = '\n'.join(header + body)
  with open(out_path, 'w') as f:
    f.write(text)
  print(text)
  return text


def _task_of(records) -> str:
  metric = records[0]['metric']
  return {m: t for t, (m, _) in tasks.METRICS.items()}[metric]


if __name__ == '__main__':
  sys.exit(0 if main() else 1)
