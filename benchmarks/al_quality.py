r"""The paper's comparison on the offline tasks: every strategy, several seeds, one report.

    python benchmarks/al_quality.py --seeds 5     # every task below; hours on 2 CPU cores; resumes

Each task runs its own config (``configs/<task>.py``, or a variant ``<task>:<variant>`` such as
``synthetic_pose:pretrained``: every strategy it lists, the paper's protocol of shared initial sets
and subset draws per seed), plus ``EXTRA_STRATEGIES`` (the paper's Fig. 5 ablation and the
``oracle_loss`` diagnostic) and every one of ``BASELINES`` that applies to the task and its config
(the Monte-Carlo ones where a ``mc_dropout`` variant gives the model dropout), for seeds
``0 .. seeds-1`` through the driver, in ``WORKDIR/<task>`` (default ``runs/quality``).
Interrupted, the same command resumes at the first unfinished (strategy, seed, cycle); a finished
task is only read back. The machine a task's runs are made on is recorded beside its workdir
(``WORKDIR/<task>.machine``): resuming an unfinished task on another CPU model is refused, since
XLA's numerics differ by instruction set and one comparison's runs come from one machine.
The result records of every finished (strategy, seed) run are kept beside the report, in
``OUT/records/<task>/`` with the experiment's identity (``<task>.machine`` beside it): they are
each section's source, and a fresh clone resumes from them, running only the runs not kept (each
kept as soon as its last cycle is done). ``--report-only`` runs nothing: it keeps the workdir's
finished runs and reports those kept, on any machine (with the config and version they were made
with), naming the runs not done.
Writes ``OUT/quality.md`` (default ``benchmarks/results``), with per task:

* the metric at every cycle (mean ± std over seeds);
* the area under the learning curve (AUC): the trapezoid over the number of labels divided by its
  range, i.e. the curve's mean height, per seed, then mean ± std (DeepAL+'s normalised area under
  the budget curve);
* the pairwise penalty matrix of Ash et al. (2020): per cycle, a two-sided paired t-test over the
  seeds, row beats column adding ``1 / cycles``; with each strategy's wins and losses, and a
  heat map ``OUT/penalty_<task>.png``;
* Spearman's rho of predicted and true test losses at every cycle, for LL4AL, L2R-AL and the
  rank-all-features ablation (the paper's Fig. 5);
* the scientific bar, claim by claim, with the margin in units of the seed spread;
* ``oracle_loss``, a diagnostic that reads the labels: the ceiling of querying by predicted loss;

where a task ran in two regimes (``X`` and ``X:pretrained``), the two side by side; and the curves
as ``OUT/quality_<task>.png``. ``--smoke`` runs each task's ``:smoke`` variant (``:<variant>_smoke``
for a variant; a seconds-long check of the whole path). ``--update`` rewrites only the listed
tasks' sections of an existing ``quality.md`` and keeps the others, each under its command and
the machine it ran on (results compare only within one machine).
"""
import argparse
import collections
import contextlib
import fcntl
import importlib.util
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np
from scipy import stats

from l2r_jax import data as data_lib
from l2r_jax import experiment
from l2r_jax import report
from l2r_jax import strategies
from l2r_jax import tasks
from l2r_jax import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: benchmarks/ importable
from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
TASKS = ('mnist1d', 'mnist1d:mc_dropout', 'digits', 'synthetic_pose', 'synthetic_pose:pretrained',
         'synthetic_pose:pretrained_mc_dropout', 'synthetic_pose:paper_regime',
         'synthetic_pose:paper_regime_mc_dropout', 'synthetic_crowd', 'synthetic_crowd:pretrained',
         'synthetic_crowd:pretrained_mc_dropout', 'synthetic_crowd:paper_regime',
         'synthetic_crowd:paper_regime_mc_dropout')
REGRESSION = ('pose', 'crowd')
# Run on every task beside its config's strategies: the paper's Fig. 5 ablation (LL4AL's module
# trained with L2R-AL's listwise loss) and the diagnostic that queries the true highest losses.
EXTRA_STRATEGIES = ('l2r_all_features', 'oracle_loss')
# And the baselines of the maintained libraries and recent benchmarks, on every task they apply
# to and whose config they accept (BALD, BatchBALD and mc_variance: a model with dropout).
BASELINES = ('margin', 'least_confidence', 'bald', 'batchbald', 'badge', 'typiclust', 'probcover',
             'mc_variance')
# The loss-prediction strategies whose test-loss ranking the report follows cycle by cycle.
RANKERS = ('l2r', 'll4al', 'l2r_all_features')


def load_config(task: str, smoke: bool):
  """``configs/<name>.py``'s config for a task ``name`` or ``name:variant``."""
  name, _, variant = task.partition(':')
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  if not os.path.exists(path):
    raise SystemExit(f'--tasks: no config {path}; choose from {", ".join(TASKS)}.')
  spec = importlib.util.spec_from_file_location(f'configs_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  try:
    if smoke:
      return module.get_config(f'{variant}_smoke' if variant else 'smoke')
    return module.get_config(variant) if variant else module.get_config()
  except ValueError as e:  # an unknown variant: the config says which it has
    raise SystemExit(f'--tasks={task}: {e}') from None


def applicable_baselines(config) -> tuple:
  """The :data:`BASELINES` that apply to ``config``'s task and accept its config."""
  task = data_lib.load(config.data).task
  out = []
  for name in BASELINES:
    strategy = strategies.get(name)
    try:
      strategies.check_task(name, task)
      if strategy.check is not None:
        strategy.check(config)
    except ValueError:
      continue
    out.append(name)
  return tuple(out)


def _slug(task: str) -> str:
  """A task name as a file or folder name."""
  return task.replace(':', '-')


def auc(sizes: Sequence[float], values: Sequence[float]) -> float:
  """Area under a learning curve over its range of label counts, divided by that range: the mean
  height of the piecewise-linear curve (its only value for a single point)."""
  sizes, values = np.asarray(sizes, float), np.asarray(values, float)
  if len(sizes) == 1:
    return float(values[0])
  return float(np.trapezoid(values, sizes) / (sizes[-1] - sizes[0]))


def task_summary(records: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
  """Per strategy: AUC per seed (complete runs only), last-cycle rho per seed, and each run's
  wall time (seconds, its cycles' sum)."""
  by_run = collections.defaultdict(dict)
  for r in records:
    by_run[(r['strategy'], r['seed'])][r['num_labeled']] = r
  cycles = max(len(v) for v in by_run.values())
  out = collections.defaultdict(lambda: {'auc': {}, 'rho': {}, 'wall_s': {}})
  for (strategy, seed), run in by_run.items():
    if len(run) < cycles:
      continue  # an unfinished run has no area yet
    sizes = sorted(run)
    out[strategy]['auc'][seed] = auc(sizes, [run[n]['value'] for n in sizes])
    out[strategy]['wall_s'][seed] = sum(r['wall_s'] for r in run.values())
    if run[sizes[-1]].get('spearman') is not None:
      out[strategy]['rho'][seed] = run[sizes[-1]]['spearman']
  return dict(out)


def penalty_matrix(records: List[Dict[str, Any]], higher_is_better: bool, alpha: float = 0.05
                   ) -> Tuple[List[str], np.ndarray]:
  """Ash et al.'s (2020) pairwise penalty matrix of one task: entry ``[i, j]`` sums, over the
  cycles, ``1 / cycles`` for each cycle at which strategy ``i`` beats ``j`` by a two-sided paired
  t-test over the seeds they share (``p < alpha``, the mean difference in ``i``'s favour), so a
  task adds at most 1. Cycles where the two are equal on every seed (the shared initial set) are
  no win; the same nonzero difference on every seed is one. Returns the strategies (in record
  order) and the matrix."""
  values = collections.defaultdict(dict)             # (strategy, cycle) -> {seed: value}
  for r in records:
    values[(r['strategy'], r['cycle'])][r['seed']] = r['value']
  names = list(dict.fromkeys(r['strategy'] for r in records))
  cycles = sorted({r['cycle'] for r in records})
  sign = 1.0 if higher_is_better else -1.0
  matrix = np.zeros((len(names), len(names)))
  for i, a in enumerate(names):
    for j, b in enumerate(names):
      if i == j:
        continue
      for cycle in cycles:
        va, vb = values.get((a, cycle), {}), values.get((b, cycle), {})
        seeds = sorted(set(va) & set(vb))
        if len(seeds) < 2:
          continue
        x, y = np.array([va[s] for s in seeds]), np.array([vb[s] for s in seeds])
        d = x - y
        if np.all(d == 0):
          continue
        # The same difference on every seed: no spread, a win for the sign (the t-test's limit).
        same = np.ptp(d) <= 1e-9 * np.abs(d).max()
        p = 0.0 if same else stats.ttest_rel(x, y).pvalue
        if p < alpha and sign * np.mean(d) > 0:
          matrix[i, j] += 1.0 / len(cycles)
  return names, matrix


def penalty_markdown(names: Sequence[str], matrix: np.ndarray) -> List[str]:
  """The matrix as a table, with each strategy's wins (row sums) and losses (column sums), and
  the strategies ranked by fewest losses."""
  lines = ['| beats → | ' + ' | '.join(names) + ' | wins |',
           '|---|' + '---|' * (len(names) + 1)]
  for i, name in enumerate(names):
    cells = ['' if i == j else f'{matrix[i, j]:.2f}' for j in range(len(names))]
    lines.append(f'| {name} | ' + ' | '.join(cells) + f' | {matrix[i].sum():.2f} |')
  lines.append('| **losses** | ' + ' | '.join(f'{v:.2f}' for v in matrix.sum(0)) + ' | |')
  order = sorted(range(len(names)), key=lambda k: (matrix[:, k].sum(), -matrix[k].sum()))
  lines += ['', 'Ranked by losses (fewest first; ties by wins): ' +
            ', '.join(f'{names[k]} ({matrix[:, k].sum():.2f})' for k in order) + '.']
  return lines


def plot_penalty(names: Sequence[str], matrix: np.ndarray, path: str) -> None:
  """The penalty matrix as a heat map (Agg, no pyplot)."""
  from matplotlib import figure  # pylint: disable=g-import-not-at-top
  fig = figure.Figure(figsize=(1.0 + 0.55 * len(names), 0.8 + 0.5 * len(names)))
  ax = fig.subplots()
  image = ax.imshow(matrix, cmap='viridis', vmin=0.0, vmax=1.0)
  ax.set_xticks(range(len(names)), names, rotation=60, ha='right')
  ax.set_yticks(range(len(names)), names)
  ax.set(xlabel='beaten', ylabel='winner')
  for i in range(len(names)):
    for j in range(len(names)):
      if i != j:
        ax.text(j, i, f'{matrix[i, j]:.1f}', ha='center', va='center', fontsize=7,
                color='white' if matrix[i, j] < 0.5 else 'black')
  fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def _ms(values) -> str:
  v = np.asarray(list(values), float)
  return f'{v.mean():.4f} ± {v.std():.4f}' if len(v) else ''


def bar(summary: Dict[str, Dict[str, Any]], task: str, higher_is_better: bool) -> List[str]:
  """The issue's bar, claim by claim: L2R-AL's margin over each rival, in metric units and in
  units of the larger seed std (positive: L2R-AL is better), and on how many of the seeds both ran
  L2R-AL is ahead (paired: a seed's strategies share its initial set and subset draws)."""
  lines = []
  if 'l2r' not in summary:
    return lines

  def compare(name, key, rival, sign):
    ours, theirs = summary['l2r'][key], summary.get(rival, {}).get(key, {})
    a = np.asarray(list(ours.values()), float)
    b = np.asarray(list(theirs.values()), float)
    if not len(a) or not len(b):
      return
    margin = sign * (a.mean() - b.mean())
    spread = max(a.std(), b.std(), 1e-12)
    verdict = 'met' if margin > spread else ('better, within the spread' if margin > 0
                                            else 'not met')
    paired = sorted(set(ours) & set(theirs))
    ahead = sum(sign * (ours[seed] - theirs[seed]) > 0 for seed in paired)
    lines.append(f'| {name} | {margin:+.4f} | {margin / spread:+.1f} | {ahead} of {len(paired)} '
                 f'| {verdict} |')

  sign = 1.0 if higher_is_better else -1.0
  compare('rho: L2R-AL > LL4AL', 'rho', 'll4al', 1.0)
  compare('rho: L2R-AL > rank-all-features', 'rho', 'l2r_all_features', 1.0)
  for rival in ('random', 'll4al', 'coreset') + (('entropy',) if task in REGRESSION else ()):
    compare(f'AUC: L2R-AL beats {rival}', 'auc', rival, sign)
  if not lines:
    return lines
  return ['| claim | margin | margin / seed std | seeds ahead | verdict |',
          '|---|---|---|---|---|'] + lines


def _provenance(command: Optional[str], measured_on: Optional[str]) -> List[str]:
  """A section's ``Command:`` and ``Machine:`` lines: results compare only within one machine, so
  each section names its own (a report updated on another machine keeps the others')."""
  return (([f'Command: {command}.', ''] if command else []) +
          ([f'Machine: {measured_on}.', ''] if measured_on else []))


def oracle_verdict(summary: Dict[str, Dict[str, Any]], higher_is_better: bool,
                   regime: str = '') -> List[str]:
  """Whether querying the true highest losses pays: ``oracle_loss``'s AUC against random's, in
  metric units and in units of the larger seed std (a line; none without both)."""
  if 'oracle_loss' not in summary or 'random' not in summary:
    return []
  a = np.asarray(list(summary['oracle_loss']['auc'].values()))
  b = np.asarray(list(summary['random']['auc'].values()))
  if len(a) < 2 or len(b) < 2:
    return [f'{regime}`oracle_loss` against random: one seed, no spread to measure the margin in.'
            ] if len(a) and len(b) else []
  margin = (1.0 if higher_is_better else -1.0) * (a.mean() - b.mean())
  spread = max(a.std(), b.std(), 1e-12)
  return [f'{regime}`oracle_loss` {"beats" if margin > 0 else "trails"} random by '
          f'{abs(margin):.4f} AUC ({margin / spread:+.1f} seed stds): querying the true '
          f'highest losses {"pays" if margin > spread else "does not pay"} here.']


def task_markdown(name: str, records: List[Dict[str, Any]], task: str, wall_s: float,
                  command: Optional[str] = None, out_dir: Optional[str] = None,
                  measured_on: Optional[str] = None, unfinished: Sequence[str] = ()) -> str:
  """Task ``name``'s section; ``unfinished``: the runs of its command not yet done, named at its
  top (a partial report)."""
  metric = records[0]['metric']
  higher = dict(tasks.METRICS.values()).get(metric, True)
  summary = task_summary(records)
  partial = [f'A partial report; not done yet: {"; ".join(unfinished)}.', ''] if unfinished else []
  lines = [f'## {name}', ''] + _provenance(command, measured_on) + partial + [
      report.summary_markdown(records),
           f'Area under the {metric} curve ({"higher" if higher else "lower"} is better; '
           'mean ± std over seeds) and last-cycle rho:', '',
           '| strategy | AUC | last-cycle rho | seeds | minutes a run |', '|---|---|---|---|---|']
  # The best area among the strategies with the most seeds (a partial report has fewer for some).
  most = max(len(s['auc']) for k, s in summary.items() if k != 'oracle_loss')
  best = (max if higher else min)(
      (np.mean(list(s['auc'].values())), k) for k, s in summary.items()
      if s['auc'] and len(s['auc']) == most and k != 'oracle_loss')[1]
  for strategy, s in summary.items():
    cell = _ms(s['auc'].values())
    lines.append(f'| {strategy} | {f"**{cell}**" if strategy == best else cell} | '
                 f'{_ms(s["rho"].values())} | {len(s["auc"])} | '
                 f'{np.mean(list(s["wall_s"].values())) / 60:.1f} |')
  if 'oracle_loss' in summary:
    lines += ['', '`oracle_loss` is a diagnostic that reads the labels: it queries the highest '
              'true losses, what a perfect loss module would pick. It tells whether the '
              'criterion itself pays on the task; it is not a rival.']
    verdict = oracle_verdict(summary, higher)
    if verdict:
      lines += [''] + verdict
  lines += rho_per_cycle(records)
  claims = bar(summary, task, higher)
  if claims:
    lines += ['', 'The bar (margin: L2R-AL minus the rival, signed so that positive is better; '
              '"met" when it exceeds the larger seed std):', ''] + claims
  names, matrix = penalty_matrix([r for r in records if r['strategy'] != 'oracle_loss'], higher)
  if len(names) > 1 and len({r['seed'] for r in records}) > 1:
    lines += ['', 'Pairwise penalty matrix (Ash et al. 2020): at each cycle, a two-sided paired '
              't-test over the seeds (p < 0.05); row beats column adds 1 / cycles, so an entry '
              'is the fraction of cycles won:', ''] + penalty_markdown(names, matrix)
    if out_dir:
      plot_penalty(names, matrix, os.path.join(out_dir, f'penalty_{_slug(name)}.png'))
      lines += ['', f'![penalty matrix, {name}](penalty_{_slug(name)}.png)']
  lines += ['', f'![{name}](quality_{_slug(name)}.png)', '',
            f'Wall time of the cycles in this report: {wall_s / 60:.1f} min.', '']
  return '\n'.join(lines)


def rho_per_cycle(records: List[Dict[str, Any]]) -> List[str]:
  """The paper's Fig. 5 as a table: Spearman's rho of predicted and true test losses at every
  cycle (mean ± std over seeds) for the loss-prediction strategies."""
  rho = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in records:
    if r['strategy'] in RANKERS and r.get('spearman') is not None:
      rho[r['strategy']][r['num_labeled']].append(r['spearman'])
  if not rho:
    return []
  sizes = sorted({n for per in rho.values() for n in per})
  lines = ['', "Spearman's rho of predicted and true test losses per cycle (the paper's Fig. 5; "
           '`l2r_all_features`: LL4AL\'s module on every stage, trained by L2R-AL\'s listwise '
           'loss and isolated as L2R-AL\'s):', '',
           '| strategy | ' + ' | '.join(str(n) for n in sizes) + ' |',
           '|---|' + '---|' * len(sizes)]
  for strategy in RANKERS:
    if strategy in rho:
      lines.append(f'| {strategy} | ' + ' | '.join(
          f'{np.mean(rho[strategy][n]):.3f} ± {np.std(rho[strategy][n]):.3f}'
          if rho[strategy][n] else '' for n in sizes) + ' |')
  return lines


def regimes_markdown(name: str, random_init: List[Dict[str, Any]],
                     pretrained: List[Dict[str, Any]], command: Optional[str] = None,
                     measured_on: Optional[str] = None) -> str:
  """A task's random-init and pretrained regimes side by side: AUC and last-cycle metric per
  strategy, and whether querying the true highest losses (``oracle_loss``) beats random."""
  metric = random_init[0]['metric']
  higher = dict(tasks.METRICS.values()).get(metric, True)
  sums = [task_summary(r) for r in (random_init, pretrained)]
  last = []
  for records in (random_init, pretrained):
    final = max(r['num_labeled'] for r in records)
    per = collections.defaultdict(list)
    for r in records:
      if r['num_labeled'] == final:
        per[r['strategy']].append(r['value'])
    last.append(per)
  lines = [f'## {name}: the two regimes side by side', ''] + _provenance(
      command, measured_on) + [
           f'The same task, protocol and seeds, the backbone starting from random weights '
           f'(`{name}`) or pretrained on generated shapes (`{name}:pretrained`, '
           f'`configs/pretrain_shapes.py`). AUC of {metric} ({"higher" if higher else "lower"} '
           'is better) and the metric at the last cycle, mean ± std over seeds:', '',
           '| strategy | AUC, random init | AUC, pretrained | last cycle, random init | '
           'last cycle, pretrained |', '|---|---|---|---|---|']
  strategies = [s for s in sums[1] if s in sums[0]]
  for s in strategies:
    lines.append(f'| {s} | {_ms(sums[0][s]["auc"].values())} | {_ms(sums[1][s]["auc"].values())}'
                 f' | {_ms(last[0][s])} | {_ms(last[1][s])} |')
  for regime, summary in zip(('random init', 'pretrained'), sums):
    verdict = oracle_verdict(summary, higher, f'{regime}: ')
    if verdict:
      lines += [''] + verdict
  return '\n'.join(lines) + '\n'


def machine_path(workdir: str, name: str) -> str:
  """Where the machine of task ``name``'s runs is recorded: ``<slug>.machine``, beside its
  workdir."""
  return os.path.join(workdir, f'{_slug(name)}.machine')


def kept_root(out: str) -> str:
  """Where the finished runs of every task are kept beside the report: ``OUT/records``."""
  return os.path.join(out, 'records')


def kept_dir(out: str, name: str) -> str:
  """Where the finished runs of task ``name`` are kept: ``OUT/records/<slug>``."""
  return os.path.join(kept_root(out), _slug(name))


def finished_runs(config, records: Sequence[Dict[str, Any]]) -> set:
  """The (strategy, seed) runs of ``config`` with a result in ``records`` for every cycle."""
  have = {(r['strategy'], r['seed'], r.get('cycle')) for r in records}
  return {(s, seed) for s in config.strategies for seed in config.seeds
          if all((s, seed, cycle) in have for cycle in range(config.al.cycles))}


def _records(folder: str) -> List[Dict[str, Any]]:
  if not os.path.isfile(os.path.join(folder, 'results.jsonl')):
    return []
  return report.read_records(folder)


def finished(config, task_workdir: str) -> bool:
  """Whether ``task_workdir`` holds a result for every strategy, seed and cycle of ``config``."""
  return len(finished_runs(config, _records(task_workdir))) == (
      len(config.strategies) * len(config.seeds))


def kept_records(config, kept: str) -> List[Dict[str, Any]]:
  """The records kept in ``kept`` of ``config``'s finished runs, in the order they were kept."""
  records = _records(kept)
  done = finished_runs(config, records)
  return [r for r in records if (r['strategy'], r['seed']) in done
          and r['cycle'] < config.al.cycles]


def _other_experiment(folder: str, ident: Dict[str, Any]) -> Tuple[str, ...]:
  """How the experiment ``folder`` records (its ``experiment.json``) differs from ``ident``; none
  where it records none."""
  path = os.path.join(folder, workdir_lib.IDENTITY_FILE)
  if not os.path.isfile(path):
    return ()
  try:
    return workdir_lib.differences(json.loads(workdir_lib.read_text(path)), ident)
  except ValueError as e:
    return (f'{path} cannot be read ({e})',)


@contextlib.contextmanager
def _locked(folder: str):
  """``folder`` (created if need be) locked against the other reports and runs writing in it."""
  os.makedirs(folder, exist_ok=True)
  fd = os.open(folder, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


def keep_finished(name: str, config, task_workdir: str, kept: str, this_machine: str) -> None:
  """Adds to ``kept`` the runs of ``task_workdir`` that have finished every cycle and that it
  does not hold finished: their result records, the experiment's identity and the machine they
  ran on (``this_machine`` for a workdir that records none), no checkpoints (a few hundred bytes a
  cycle). Kept beside the report, they are the report's source, and a fresh checkout resumes from
  them: a run kept is not run again. Runs of another experiment (config or version) and of
  another machine are refused, naming the differences; every file is replaced atomically, one
  writer at a time."""
  ident = workdir_lib.identity(config)
  for folder in (kept, task_workdir):
    diffs = _other_experiment(folder, ident)
    if diffs:
      raise SystemExit(f'{name}: {folder} holds the runs of another experiment '
                       f'({"; ".join(diffs)}); move it and {folder}.machine aside to run {name} '
                       'again.')
  with _locked(os.path.dirname(kept)):
    records = _records(kept)
    have = finished_runs(config, records)
    new = [r for r in kept_records(config, task_workdir)
           if (r['strategy'], r['seed']) not in have] if os.path.isdir(task_workdir) else []
    if not new:
      return
    made_on = (workdir_lib.read_text(f'{task_workdir}.machine').strip()
               if os.path.isfile(f'{task_workdir}.machine') else this_machine)
    if os.path.isfile(f'{kept}.machine'):
      kept_on = workdir_lib.read_text(f'{kept}.machine').strip()
      if kept_on != made_on:
        raise SystemExit(f'{name}: the runs kept in {kept} were made on {kept_on}, those of '
                         f'{task_workdir} on {made_on}; results compare only within one '
                         'machine: move one of the two aside (with its .machine file).')
    os.makedirs(kept, exist_ok=True)
    workdir_lib.write_identity(kept, ident)
    if not os.path.isfile(f'{kept}.machine'):
      workdir_lib.write_atomic(f'{kept}.machine', made_on + '\n')
    # A run kept with fewer cycles (more asked since) is replaced by its longer self.
    renewed = {(r['strategy'], r['seed']) for r in new}
    workdir_lib.write_atomic(os.path.join(kept, 'results.jsonl'), ''.join(
        json.dumps(r, sort_keys=True) + '\n'
        for r in [r for r in records if (r['strategy'], r['seed']) not in renewed] + new))


def machines(workdir: str, configs: Dict[str, Any], this_machine: str,
             kept: Optional[str] = None, running: bool = True) -> Dict[str, str]:
  """The machine each task's runs were made on, recorded in ``machine_path`` when its first run
  starts (in ``workdir``, and in ``kept`` when its first finished run is kept there): a task begun
  on another machine is refused (before anything runs) unless it is finished and only read back,
  or ``running`` is False (a report of what is there). XLA's numerics differ by instruction set,
  so the runs of one comparison, and the rows of one section, come from one machine; a workdir
  resumed elsewhere would mix two without a word, as would a workdir and the runs kept of two
  machines (refused whatever ``running``). A task with runs but no record (an older workdir) is
  recorded as this one."""
  found, refusals = {}, []
  for name, config in configs.items():
    roots = [(workdir, os.path.join(workdir, _slug(name)))] + (
        [(kept, os.path.join(kept, _slug(name)))] if kept else [])
    recorded = {root: workdir_lib.read_text(machine_path(root, name)).strip()
                for root, _ in roots if os.path.isfile(machine_path(root, name))}
    holding = {recorded.get(root, this_machine): folder for root, folder in roots
               if _records(folder)}
    done = [recorded.get(root, this_machine) for root, folder in roots
            if finished(config, folder)]
    if len(holding) > 1:  # the workdir's runs and those kept: two machines
      where = ' and those in '.join(f'{f} were made on {m}' for m, f in holding.items())
      refusals.append(f'{name}: the runs in {where}; results compare only within one machine: '
                      'move one of the two aside (with its .machine file).')
    elif done:  # read back: the machine its finished runs were made on
      found[name] = done[-1]
    elif set(recorded.values()) <= {this_machine}:
      found[name] = this_machine
    elif not running:
      found[name] = recorded.get(kept, recorded.get(workdir))
    else:
      others = [(folder, machine_path(root, name)) for root, folder in roots
                if recorded.get(root, this_machine) != this_machine]
      refusals.append(
          f'{name}: its runs in {" and ".join(f for f, _ in others)} were made on '
          f'{" and ".join(sorted(set(recorded.values()) - {this_machine}))}, and this is '
          f'{this_machine}; results compare only within one machine: finish them there, or '
          f'move {" and ".join(f"{f} and {m}" for f, m in others)} aside to run {name} again '
          'here.')
  if refusals:
    raise SystemExit('\n'.join(refusals))
  for name in configs:
    path = machine_path(workdir, name)
    if running and found[name] == this_machine and not os.path.isfile(path):
      os.makedirs(workdir, exist_ok=True)
      workdir_lib.write_atomic(path, this_machine + '\n')
  return found


def _command(names: Sequence[str], seeds: int, smoke: bool) -> str:
  return (f'`python benchmarks/al_quality.py --tasks {",".join(names)} --seeds {seeds}'
          f'{" --smoke" if smoke else ""}`')


def merge_sections(old_text: str, new_sections: Dict[str, str]) -> List[str]:
  """The task sections of ``old_text`` (a previous ``quality.md``) with those in
  ``new_sections`` replaced or added, in :data:`TASKS` order (others after). A kept section that
  does not name its command or its machine gets them from the old file's header."""
  header, *chunks = old_text.split('\n## ')
  # A report that one command wrote names it and its machine: '`python ...`; MACHINE on cpu.' (a
  # merged report's header names neither: each of its sections names its own).
  scope = next((line for line in header.splitlines()
                if line.startswith('`python benchmarks/al_quality.py')), None)
  old_command, _, old_machine = scope.partition('; ') if scope else (None, '', '')
  old_machine = old_machine.rstrip('.')
  sections = {}
  for chunk in chunks:
    name, _, body = chunk.partition('\n')
    text = f'## {name}\n{body}'.rstrip('\n') + '\n'
    if old_command and 'Command: `' not in text:
      text = text.replace('\n', f'\n\nCommand: {old_command}.\n', 1)
    if old_machine and '\nMachine: ' not in text:
      at = text.index('\nCommand: ') + 1 if '\nCommand: ' in text else 0
      end = text.index('\n', at) + 1 if at else text.index('\n') + 1
      text = text[:end] + f'\nMachine: {old_machine}.\n' + text[end:]
    sections[name] = text
  sections.update(new_sections)
  return [sections[t] for t in sorted(sections, key=_section_order)]


def _section_order(name: str):
  """Tasks in :data:`TASKS` order, others after; a side-by-side section after its two regimes."""
  base, side_by_side, _ = name.partition(': ')
  key = f'{base}:pretrained' if side_by_side else base
  return (TASKS.index(key) if key in TASKS else len(TASKS), bool(side_by_side), name)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--tasks', default=','.join(TASKS))
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--workdir', default=os.path.join(ROOT, 'runs', 'quality'))
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results'))
  parser.add_argument('--smoke', action='store_true', help="each task's :smoke variant")
  parser.add_argument('--update', action='store_true',
                      help="keep the other tasks' sections of an existing OUT/quality.md")
  parser.add_argument('--report-only', action='store_true',
                      help='run nothing: keep the finished runs of the workdir and report those '
                      'kept, on any machine (a partial report while the runs go on)')
  parser.add_argument('--strategies', default='',
                      help='run only these, comma-separated (default: every one of each task); '
                      'the report covers every run kept and names those not done')
  args = parser.parse_args(argv)
  names = [t for t in args.tasks.split(',') if t]
  if not names:
    raise SystemExit(f'--tasks names no task: give one or more of {", ".join(TASKS)}, '
                     'separated by commas.')
  configs = {t: load_config(t, args.smoke) for t in names}  # every config checked before any run
  if args.seeds < 1:
    raise SystemExit('--seeds must be at least 1.')
  for config in configs.values():
    config.seeds = tuple(range(args.seeds))
    config.quiet = True
    config.strategies = tuple(config.strategies) + tuple(
        s for s in EXTRA_STRATEGIES + applicable_baselines(config) if s not in config.strategies)
  only = [s for s in args.strategies.split(',') if s]
  for name, config in configs.items():
    unknown = [s for s in only if s not in config.strategies]
    if unknown:
      raise SystemExit(f'--strategies: {", ".join(unknown)} not among the strategies of {name}: '
                       f'{", ".join(config.strategies)}.')
  this_machine = f'{machine.describe()} on {jax.default_backend()}'
  measured_on = machines(args.workdir, configs, this_machine, kept_root(args.out),
                         running=not args.report_only)
  for name, config in configs.items():
    t0 = time.time()
    task_workdir = os.path.join(args.workdir, _slug(name))
    kept = kept_dir(args.out, name)
    keep_finished(name, config, task_workdir, kept, this_machine)
    kept_runs = finished_runs(config, _records(kept))
    for strategy in [s for s in config.strategies if s in (only or config.strategies)
                     and not args.report_only]:
      seeds = tuple(seed for seed in config.seeds if (strategy, seed) not in kept_runs)
      if seeds:  # each run kept as soon as it is done
        run_config = config.copy_and_resolve_references()
        run_config.strategies, run_config.seeds = (strategy,), seeds
        experiment.run(run_config, task_workdir, after_run=lambda *_: keep_finished(
            name, config, task_workdir, kept, this_machine))  # pylint: disable=cell-var-from-loop
    print(f'{name}: {time.time() - t0:.0f} s this run', flush=True)
  # Reports writing in one folder take turns (a lock on it), each reading the runs kept as it
  # writes: neither's sections are lost, nor replaced by an older reading.
  out_path = os.path.join(args.out, 'quality.md')
  with _locked(args.out):
    sections, all_records = {}, {}
    for name, config in configs.items():
      kept = kept_dir(args.out, name)
      # The diagnostic last, whenever it ran.
      records = sorted(kept_records(config, kept), key=lambda r: r['strategy'] == 'oracle_loss')
      print(f'{name}: {len(records)} results kept', flush=True)
      if not records:
        continue
      workdir_lib.write_atomic(os.path.join(args.out, f'quality_{_slug(name)}.png'),
                               report.curves_png(records))
      all_records[name] = records
      done = finished_runs(config, records)
      unfinished = [f'{s} {"seed" if len(left) == 1 else "seeds"} {", ".join(map(str, left))}'
                    for s in config.strategies
                    for left in [[seed for seed in config.seeds if (s, seed) not in done]] if left]
      sections[name] = task_markdown(name, records, _task_of(records),
                                     sum(r['wall_s'] for r in records),
                                     _command([name], args.seeds, args.smoke), args.out,
                                     measured_on[name], unfinished)
    if not sections:
      raise SystemExit(f'{", ".join(names)}: no run has finished every cycle yet; nothing to '
                       'report, nothing written.')
    for name in list(all_records):
      if f'{name}:pretrained' in all_records:
        sections[f'{name}: the two regimes side by side'] = regimes_markdown(
            name, all_records[name], all_records[f'{name}:pretrained'],
            _command([name, f'{name}:pretrained'], args.seeds, args.smoke),
            ' and '.join(sorted({measured_on[name], measured_on[f'{name}:pretrained']})))
    scope = (f'{_command(names, args.seeds, args.smoke)}; '
             f'{" and ".join(sorted(set(measured_on.values())))}.')
    body = list(sections.values())
    if args.update and os.path.exists(out_path):
      with open(out_path) as f:
        body = merge_sections(f.read(), sections)
      scope = 'Each section names its command and the machine it ran on.'
    header = ['# Active-learning quality on the offline tasks', '', scope, '']
    text = '\n'.join(header + body)
    workdir_lib.write_atomic(out_path, text)
  print(text)
  return text


def _task_of(records) -> str:
  metric = records[0]['metric']
  return {m: t for t, (m, _) in tasks.METRICS.items()}[metric]


if __name__ == '__main__':
  sys.exit(0 if main() else 1)
