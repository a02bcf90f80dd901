"""``results.jsonl`` → ``curves.png`` (the paper's figures) and ``summary.md``; several workdirs
(experiments or active learners) in one table and one plot:

    python -m l2r_jax.report runs/mine runs/mine-entropy runs/digits --out=runs/compared

prints the table and writes ``OUT/summary.md`` and ``OUT/curves.png`` (OUT a new or empty folder,
or one a report wrote, outside every workdir). Each curve is named ``<workdir>/<strategy>``; the
workdirs' metric must be one, and each is given once. The workdirs are only read. A cell is the
mean ± std (ddof 0) over the seeds that reached it (``n=`` where fewer than the table's); a
learner's round after corrections replaces the round before at as many labels.
"""
import collections
import io
import json
import os
import sys
from typing import Any, Dict, List, Sequence

import numpy as np

from l2r_jax import fields
from l2r_jax import tasks
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import ReportError

_HIGHER_IS_BETTER = dict(tasks.METRICS.values())


def _latest(records):
  """One record per strategy, seed and number of labels: the latest round's (a learner's round
  after corrections trains again on as many labels; it replaces the one before, it is no seed)."""
  kept = {}
  for k, r in enumerate(records):
    key = (r['strategy'], r['seed'], r['num_labeled'])
    if key not in kept or (r.get('cycle', -1), k) >= kept[key][0]:
      kept[key] = ((r.get('cycle', -1), k), r)
  return [r for _, r in sorted(kept.values(), key=lambda kr: kr[0][1])]


def _group(records):
  """{strategy: {num_labeled: [values over seeds]}} for value and spearman (:func:`_latest`'s)."""
  values = collections.defaultdict(lambda: collections.defaultdict(list))
  rhos = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in _latest(records):
    values[r['strategy']][r['num_labeled']].append(r['value'])
    if r.get('spearman') is not None:
      rhos[r['strategy']][r['num_labeled']].append(r['spearman'])
  return values, rhos


def _mean_std(xs):
  return float(np.mean(xs)), float(np.std(xs))


def summary_markdown(records: List[Dict[str, Any]]) -> str:
  if not records:
    return 'No results yet.\n'
  values, rhos = _group(records)
  metric = records[0]['metric']
  sizes = sorted({r['num_labeled'] for r in records})
  seeds = sorted({r['seed'] for r in records})
  better = 'higher' if _HIGHER_IS_BETTER.get(metric, True) else 'lower'
  lines = [f'{metric} on the test set ({better} is better), mean ± std (numpy\'s, ddof 0) over '
           f'{len(seeds)} seed(s) ({", ".join(map(str, seeds))}), by number of labeled samples '
           '("n=": a cell over fewer seeds, its runs not there yet); rho: Spearman correlation of '
           'predicted and true test losses in the last cycle.', '',
           '| strategy | ' + ' | '.join(map(str, sizes)) + ' | last-cycle rho |',
           '|---|' + '---|' * (len(sizes) + 1)]

  def cell(v, digits):
    n = '' if len(v) == len(seeds) else f' (n={len(v)})'
    return '{:.{d}f} ± {:.{d}f}'.format(*_mean_std(v), d=digits) + n

  for s in values:
    cells = ['' if not values[s].get(n) else cell(values[s][n], 4) for n in sizes]
    last = max(rhos[s]) if rhos[s] else None
    rho = '' if last is None else cell(rhos[s][last], 3)
    lines.append(f'| {s} | ' + ' | '.join(cells) + f' | {rho} |')
  return '\n'.join(lines) + '\n'


def curves_png(records: List[Dict[str, Any]]) -> bytes:
  """:func:`curves_figure` as a PNG file's bytes."""
  fig = curves_figure(records)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format='png', dpi=120)
  return png.getvalue()


def curves_figure(records: List[Dict[str, Any]]):
  """The learning curves and, where loss modules ran, the Spearman curves, side by side."""
  # A Figure of its own, drawn by Agg: no pyplot, so a notebook's backend is left alone.
  import matplotlib  # pylint: disable=g-import-not-at-top
  from matplotlib import figure  # pylint: disable=g-import-not-at-top
  values, rhos = _group(records)
  n_panels = 2 if any(rhos.values()) else 1
  fig = figure.Figure(figsize=(6 * n_panels, 4.5))
  axes = fig.subplots(1, n_panels, squeeze=False)
  # One colour per strategy, the same in both panels (a panel's own cycle would shift them).
  cycle = [c['color'] for c in matplotlib.rcParams['axes.prop_cycle']]
  if len(values) > len(cycle):   # more strategies than the default cycle has colours
    cycle = [matplotlib.colormaps['tab20'](i) for i in range(20)]
  colours = {s: cycle[i % len(cycle)] for i, s in enumerate(values)}
  for ax, groups, ylabel in zip(axes[0], (values, rhos),
                                (records[0]['metric'], "Spearman's rho (test losses)")):
    for s, by_size in groups.items():
      if not by_size:
        continue
      sizes = sorted(by_size)
      stats = np.array([_mean_std(by_size[n]) for n in sizes])
      ax.plot(sizes, stats[:, 0], marker='o', label=s, color=colours[s])
      ax.fill_between(sizes, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], alpha=0.2,
                      color=colours[s])
    ax.set(xlabel='number of labeled samples', ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
  return fig


def write(records: List[Dict[str, Any]], workdir: str, appendix: str = '') -> None:
  """``WORKDIR/summary.md`` (the table of ``records``, then ``appendix``) and (with records)
  ``WORKDIR/curves.png``, each replaced atomically; refused if either is a symbolic link
  (:func:`l2r_jax.workdir.path_in`)."""
  summary, curves = workdir_lib.path_in(workdir, 'summary.md'), workdir_lib.path_in(
      workdir, 'curves.png')
  workdir_lib.write_atomic(summary, summary_markdown(records) + appendix)
  if records:
    workdir_lib.write_atomic(curves, curves_png(records))


def is_record(record: Any, required: Sequence[str]) -> bool:
  """Whether ``record`` is an object with the fields ``required``, each of its kind (a line
  edited by hand to hold another kind is damaged)."""
  whole = fields.is_whole
  kinds = {'strategy': lambda v: isinstance(v, str), 'metric': lambda v: isinstance(v, str),
           'seed': whole, 'cycle': whole, 'num_labeled': whole,
           'value': lambda v: v is None or whole(v) or isinstance(v, float),
           'spearman': lambda v: v is None or whole(v) or isinstance(v, float)}
  return isinstance(record, dict) and all(
      k in record and kinds.get(k, lambda _: True)(record[k]) for k in required)


def read_records(workdir: str, scored: bool = True) -> List[Dict[str, Any]]:
  """The result records of ``workdir``'s ``results.jsonl``, read without changing the file (a
  line that cannot be parsed is left out, said on stderr); ``scored``: only those with a test
  metric (a learner's round without a test split scores nothing)."""
  path = os.path.join(workdir, 'results.jsonl')
  if not os.path.isfile(path):
    raise ReportError(f'{workdir} holds no results.jsonl: give the workdir of an experiment or of '
                      'an active learner that has trained a round.')
  records = []
  with open(path, encoding='utf-8', errors='replace') as f:
    for number, line in enumerate(f, 1):
      try:
        record = json.loads(line)
      except ValueError:
        if line.strip():
          print(f'{path}, line {number}: cannot be parsed; left out.', file=sys.stderr)
        continue
      if is_record(record, ('strategy', 'seed', 'cycle', 'num_labeled', 'metric', 'value')) and (
          is_record(record, ('spearman',)) or 'spearman' not in record):
        if record['value'] is not None or not scored:
          records.append(record)
      elif line.strip():
        print(f'{path}, line {number}: not a result record; left out.', file=sys.stderr)
  return records


def compare(workdirs: Sequence[str]) -> List[Dict[str, Any]]:
  """The records of every workdir, each strategy named ``<workdir>/<strategy>`` (the workdir's
  folder name, or as much of its path as tells it from the others); refused if their metrics
  differ."""
  real = [os.path.realpath(w) for w in workdirs]
  twice = sorted({w for w, r in zip(workdirs, real) if real.count(r) > 1})
  if twice:
    raise ReportError(f'{", ".join(twice)}: one workdir given twice (by these names); give each '
                      'once.')
  names = _short_names([os.path.abspath(w) for w in workdirs])
  out, metrics = [], {}
  for workdir, name in zip(workdirs, names):
    for r in read_records(workdir):
      metrics.setdefault(r['metric'], workdir)
      out.append(dict(r, strategy=f'{name}/{r["strategy"]}'))
  if len(metrics) > 1:
    raise ReportError('the workdirs report different metrics ('
                      + ', '.join(f'{m} in {w}' for m, w in metrics.items())
                      + '): one table holds one metric.')
  if not out:
    raise ReportError('no test results in these workdirs (a learner without a test split has '
                      'none): nothing to compare.')
  return out


def experiments_differ(workdirs: Sequence[str]) -> List[str]:
  """How each workdir's experiment (its ``experiment.json``) differs from the first's, one line
  each (none where they are one experiment run in parts, or a workdir records none): a table of
  several workdirs says what it compares."""
  names = _short_names([os.path.abspath(w) for w in workdirs])
  identities = []
  for workdir in workdirs:
    try:
      identities.append(json.loads(workdir_lib.read_text(
          workdir_lib.path_in(workdir, workdir_lib.IDENTITY_FILE))))
    except (OSError, ValueError, workdir_lib.WorkdirError):
      identities.append(None)
  if identities[0] is None:
    return []
  return [f'{name} against {names[0]}: {"; ".join(diffs)}'
          for name, ident in zip(names[1:], identities[1:]) if ident is not None
          for diffs in [workdir_lib.differences(identities[0], ident)] if diffs]


def _short_names(paths: Sequence[str]) -> List[str]:
  """The shortest path tails that tell ``paths`` apart."""
  for depth in range(1, 64):
    names = [os.sep.join(p.split(os.sep)[-depth:]) for p in paths]
    if len(set(names)) == len(names):
      return names
  return list(paths)


def main(argv: Sequence[str]) -> int:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(prog='python -m l2r_jax.report',
                                   description='Several workdirs in one table and one plot.')
  parser.add_argument('workdirs', nargs='+')
  parser.add_argument('--out', help='a new or empty folder for summary.md and curves.png')
  args = parser.parse_args(argv)
  try:
    records = compare(args.workdirs)
    differ = experiments_differ(args.workdirs)
    appendix = ('\nThe experiments differ:\n\n' + ''.join(f'- {d}\n' for d in differ)
                if differ else '')
    table = summary_markdown(records) + appendix
    if args.out:
      out = os.path.realpath(args.out)
      for w in args.workdirs:
        if os.path.commonpath([out, os.path.realpath(w)]) == os.path.realpath(w):
          raise ReportError(f'--out={args.out} is {w} or a folder in it, and the workdirs are '
                            'only read: give a folder outside them.')
      others = sorted(set(os.listdir(out)) - {'summary.md', 'curves.png'}) if os.path.isdir(
          out) else []
      if others:
        raise ReportError(f'--out={args.out} holds {", ".join(others[:5])}'
                          f'{", ..." if len(others) > 5 else ""}: give a new or empty folder '
                          '(or one a report wrote).')
      try:
        os.makedirs(out, exist_ok=True)
      except OSError as e:  # a file there, or a file among the folders above it
        raise ReportError(f'--out={args.out} cannot be a folder ({e.strerror}): give a new or '
                          'empty folder.') from None
      write(records, out, appendix)
  except workdir_lib.WorkdirError as e:
    print(f'l2r_jax.report: {e}', file=sys.stderr)
    return 2
  print(table)
  if args.out:
    print(f'{os.path.join(args.out, "summary.md")}, {os.path.join(args.out, "curves.png")}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
