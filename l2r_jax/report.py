"""``results.jsonl`` → ``curves.png`` (the paper's figures) and ``summary.md``."""
import collections
import os
from typing import Any, Dict, List

import numpy as np

from l2r_jax import tasks

_HIGHER_IS_BETTER = dict(tasks.METRICS.values())


def _group(records):
  """{strategy: {num_labeled: [values over seeds]}} for value and spearman."""
  values = collections.defaultdict(lambda: collections.defaultdict(list))
  rhos = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in records:
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
  lines = [f'{metric} on the test set ({better} is better), mean ± std over {len(seeds)} seed(s) '
           f'({", ".join(map(str, seeds))}), by number of labeled samples; rho: Spearman '
           'correlation of predicted and true test losses in the last cycle.', '',
           '| strategy | ' + ' | '.join(map(str, sizes)) + ' | last-cycle rho |',
           '|---|' + '---|' * (len(sizes) + 1)]
  for s in values:
    cells = []
    for n in sizes:
      v = values[s].get(n)
      cells.append('' if not v else '{:.4f} ± {:.4f}'.format(*_mean_std(v)))
    last = max(rhos[s]) if rhos[s] else None
    rho = '' if last is None else '{:.3f} ± {:.3f}'.format(*_mean_std(rhos[s][last]))
    lines.append(f'| {s} | ' + ' | '.join(cells) + f' | {rho} |')
  return '\n'.join(lines) + '\n'


def plot_curves(records: List[Dict[str, Any]], path: str) -> None:
  fig = curves_figure(records)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


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


def write(records: List[Dict[str, Any]], workdir: str) -> None:
  with open(os.path.join(workdir, 'summary.md'), 'w') as f:
    f.write(summary_markdown(records))
  if records:
    plot_curves(records, os.path.join(workdir, 'curves.png'))
