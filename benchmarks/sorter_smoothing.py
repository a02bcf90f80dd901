r"""GRU sorters trained on exact and on smoothed ranks: how well they rank, and whether they teach.

    python benchmarks/sorter_smoothing.py --lengths 4 --smoothing 0,0.1,0.3,1,3 --steps 6000
    python benchmarks/sorter_smoothing.py --lengths 32,64 --smoothing 0,0.3,1 --steps 1500

For each list length L and target smoothing s, trains a sorter with ``configs/sorter.py``
(``--config.seq_len=L --config.target_smoothing=s``, ``--steps`` steps, other fields as the config,
with L = 32's wider GRU as shipped) in ``WORKDIR/L{L}-s{s}`` (resumed if it exists), then measures
on fresh lists of every family of ``benchmarks/sorter_quality.py`` the mean Spearman rho against
the exact ranks and the mean rank error, and ``fit``: the rho reached by fitting random scores to
log-normal losses through the sorter with the listwise loss (whether its gradient teaches).
Appends its rows to ``sorter_smoothing.json`` and rewrites ``sorter_smoothing.md`` from all rows.
"""
import argparse
import json
import os
import sys

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: configs/ and benchmarks/ importable

from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import sorter_quality  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import sorter as sorter_config  # pylint: disable=g-import-not-at-top,wrong-import-position
import sorter  # pylint: disable=g-import-not-at-top,wrong-import-position
from sorter import data  # pylint: disable=g-import-not-at-top,wrong-import-position
from sorter import train  # pylint: disable=g-import-not-at-top,wrong-import-position

# Fields of the shipped sorters that differ from configs/sorter.py's defaults, by length.
SHIPPED_OVERRIDES = {32: dict(model=dict(hidden=64))}


def train_one(workdir: str, seq_len: int, smoothing: float, steps: int) -> dict:
  config = sorter_config.get_config()
  config.seq_len = seq_len
  config.target_smoothing = smoothing
  config.num_steps = steps
  config.decay_every_steps = max(1, steps // 3)
  for key, value in SHIPPED_OVERRIDES.get(seq_len, {}).items():
    config[key].update(value)
  path = os.path.join(workdir, f'L{seq_len}-s{smoothing:g}')
  export = os.path.join(path, 'export')
  if os.path.exists(os.path.join(export, 'training.json')):
    with open(os.path.join(export, 'training.json')) as f:
      info = json.load(f)
    if info['steps'] == steps:
      return info
  return train.train_and_export(config, path)


def measure(export: str, seq_len: int, num_lists: int) -> dict:
  ranker = sorter.load_pretrained(path=export)
  row = {'fit_rho': sorter_quality._fit(ranker, seq_len)}  # pylint: disable=protected-access
  for i, name in enumerate(sorter_quality.DISTRIBUTIONS):
    x = data.sample_family(jax.random.PRNGKey(2026 + i), name, num_lists, seq_len)
    row[name] = sorter_quality._quality(ranker, x)  # pylint: disable=protected-access
  return row


def to_markdown(rows) -> str:
  dists = sorter_quality.DISTRIBUTIONS
  lines = [
      '# GRU sorters trained on smoothed ranks', '',
      '`python benchmarks/sorter_smoothing.py` (the commands in its docstring), on '
      f'{machine.describe()}. s: the target '
      "smoothing, the standard deviation of Gaussian noise on the sorter's robust-standardised "
      'scores whose expected ranks are the training targets (0: exact ranks, as SoDeep). rho: '
      'mean Spearman rho against the exact ranks on fresh lists of each family (err: mean absolute '
      'rank error in positions, against the exact ranks). fit: mean rho reached by fitting 32 lists '
      'of random scores to log-normal losses through the sorter with the listwise loss (300 Adam '
      'steps), as in `sorter_quality.md`. val L1: against the training targets.', '',
      '| L | s | steps | wall s | ' + ' | '.join(f'{d} rho / err' for d in dists) +
      ' | min rho | fit | val L1 |',
      '|---|---|---|---|' + '---|' * (len(dists) + 3)]
  for r in sorted(rows, key=lambda r: (r['seq_len'], r['steps'], r['smoothing'])):
    cells = [f'{r[d]["rho_mean"]:.4f} / {r[d]["rank_err"]:.2f}' for d in dists]
    lowest = min(r[d]['rho_mean'] for d in dists)
    lines.append(f'| {r["seq_len"]} | {r["smoothing"]:g} | {r["steps"]} | {r["wall_s"]:.0f} | ' +
                 ' | '.join(cells) + f' | {lowest:.4f} | {r["fit_rho"]:.3f} | '
                 f'{r["val_l1"]:.4f} |')
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--lengths', default='4')
  parser.add_argument('--smoothing', default='0,0.1,0.3,1,3')
  parser.add_argument('--steps', type=int, default=6000)
  parser.add_argument('--num_lists', type=int, default=10000)
  parser.add_argument('--workdir', default='runs/sorter_smoothing')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  json_path = os.path.join(args.out, 'sorter_smoothing.json')
  rows = []
  if os.path.exists(json_path):
    with open(json_path) as f:
      rows = json.load(f)
  for seq_len in map(int, args.lengths.split(',')):
    for smoothing in map(float, args.smoothing.split(',')):
      info = train_one(args.workdir, seq_len, smoothing, args.steps)
      row = {'seq_len': seq_len, 'smoothing': smoothing, 'steps': args.steps,
             'wall_s': info['wall_s'], 'val_l1': info['val_l1'],
             **measure(os.path.join(args.workdir, f'L{seq_len}-s{smoothing:g}', 'export'),
                       seq_len, args.num_lists)}
      rows = [r for r in rows if (r['seq_len'], r['smoothing'], r['steps']) !=
              (seq_len, smoothing, args.steps)] + [row]
      print(f'L={seq_len} s={smoothing:g}: fit {row["fit_rho"]:.3f}, ' + ', '.join(
          f'{d} {row[d]["rho_mean"]:.4f}' for d in sorter_quality.DISTRIBUTIONS), flush=True)
      os.makedirs(args.out, exist_ok=True)
      with open(json_path, 'w') as f:
        json.dump(rows, f, indent=1)
      with open(os.path.join(args.out, 'sorter_smoothing.md'), 'w') as f:
        f.write(to_markdown(rows))
  print(to_markdown(rows))


if __name__ == '__main__':
  main()
