"""How long a person waits for the next query, and what the labels buy: a labeling session on a
folder of real images (scikit-learn's handwritten digits as 32x32 PNGs: 20 labeled, 1,280
unlabeled, 497 test; ``examples/digits_folder.py``), answered by the truth.

    python benchmarks/labeling_round.py            # both parts, 3 seeds; resumes (about 40 min)
    python benchmarks/labeling_round.py --quick    # 1 seed, 3 rounds per session

**One round at 100 labels**, ``examples/image_folder.py`` (a small CNN, 30 epochs at batch 32)
side by side with the package's defaults, the paper's CIFAR-10 schedule (ResNet-18, 150 epochs at
batch 64, SGD 0.1 -> 0.01 at 120): the learner knows 100 labels (the 20 given and 80 drawn at
random), and one ``query()`` trains on them, scores the unlabeled pool and picks 20 with L2R-AL;
its wall time and the test accuracy after it, per seed (the paper schedule's for one seed unless
``--paper-seeds`` says more: its round takes a quarter of an hour on 2 cores).

**Sessions**: ``l2r``, ``entropy`` and ``random`` with ``examples/image_folder.py``, 20 labels
and +20 per round, the test accuracy and the stopping signal's kappa per round, per seed.

Writes ``benchmarks/results/labeling_round.md`` (and ``.json``, which a rerun resumes from).
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from examples import digits_folder  # noqa: E402
from examples import image_folder  # noqa: E402
from l2r_jax import defaults  # noqa: E402
from l2r_jax import learner as learner_lib  # noqa: E402
from l2r_jax import stopping  # noqa: E402

RESULTS = os.path.join(ROOT, 'benchmarks', 'results')


def cpu() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown CPU'


def example_config(root: str, seed: int, strategy: str = 'l2r'):
  c = image_folder.get_config()
  c.data.root, c.seeds, c.strategies, c.quiet = root, (seed,), (strategy,), True
  return c


def paper_config(root: str, seed: int):
  """The package's defaults (the paper's CIFAR-10 schedule on ResNet-18) on the same folder."""
  c = defaults.get_config()
  ex = image_folder.get_config()
  c.data = ex.data
  c.data.root = root
  c.seeds, c.strategies, c.quiet = (seed,), ('l2r',), True
  c.al.update(initial=20, budget=20)
  c.al.subset = None
  return c


def one_round(config, truth, workdir: str) -> dict:
  """The learner at 100 labels (the folder's 20 and 80 drawn by the seed), then one timed
  ``query()``: train, score the pool, pick."""
  with learner_lib.ActiveLearner(config, workdir) as learner:
    ids = learner.pool.ids
    unlabeled = np.flatnonzero(learner.dataset.y_train == -1)
    draw = np.random.default_rng(config.seeds[0]).permutation(unlabeled)[:80]
    learner.teach(draw.tolist(), [truth[ids[i]] for i in draw])
    start = time.perf_counter()
    learner.query()
    wall = time.perf_counter() - start
    r = learner.results[-1]
  return {'num_labeled': r['num_labeled'], 'accuracy': r['value'], 'wall_s': round(wall, 1)}


def session(config, truth, workdir: str, rounds: int) -> list:
  """``rounds`` rounds from the folder's 20 labels, +20 each, answered by the truth."""
  out = []
  with learner_lib.ActiveLearner(config, workdir) as learner:
    ids = learner.pool.ids
    for _ in range(rounds):
      start = time.perf_counter()
      asked = learner.query()
      wall = time.perf_counter() - start
      r = learner.results[-1]
      out.append({'num_labeled': r['num_labeled'], 'accuracy': r['value'], 'kappa': r['kappa'],
                  'wall_s': round(wall, 1)})
      learner.teach(asked, [truth[ids[i]] for i in asked])
  return out


def markdown(results: dict) -> str:
  lines = ['# A labeling round on a folder of images', '',
           f'`python benchmarks/labeling_round.py` on {results["cpu"]}, 2 cores; scikit-learn\'s '
           'digits as 32x32 PNGs (20 labeled, 1,280 unlabeled, 497 test), answered by the truth.',
           '', '## One round at 100 labels (train, score the pool, pick 20)', '',
           '| config | seed | labels | test accuracy | wall time (s) |', '|---|---|---|---|---|']
  for name in ('example', 'paper'):
    rows = results['round'].get(name, {})
    for seed, r in sorted(rows.items()):
      lines.append(f'| {name} | {seed} | {r["num_labeled"]} | {r["accuracy"]:.4f} | '
                   f'{r["wall_s"]:.1f} |')
    if rows:
      acc = [r['accuracy'] for r in rows.values()]
      wall = [r['wall_s'] for r in rows.values()]
      lines.append(f'| **{name}, mean** | | | **{np.mean(acc):.4f} ± {np.std(acc):.4f}** | '
                   f'**{np.mean(wall):.1f}** |')
  lines += ['', '`example`: `examples/image_folder.py`; `paper`: the package\'s defaults (the '
            'paper\'s CIFAR-10 schedule on ResNet-18).', '',
            '## Sessions: test accuracy (and kappa with the round before) per round', '']
  sessions = results['session']
  if sessions:
    sizes = sorted({r['num_labeled'] for runs in sessions.values() for s in runs.values()
                    for r in s})
    lines += ['| strategy | ' + ' | '.join(map(str, sizes)) + ' |',
              '|---|' + '---|' * len(sizes)]
    for strategy, runs in sorted(sessions.items()):
      cells = []
      for n in sizes:
        acc = [r['accuracy'] for s in runs.values() for r in s if r['num_labeled'] == n]
        kap = [r['kappa'] for s in runs.values() for r in s
               if r['num_labeled'] == n and r['kappa'] is not None]
        cells.append('' if not acc else f'{np.mean(acc):.3f} ± {np.std(acc):.3f}' +
                     (f' (κ {np.mean(kap):.2f})' if kap else ''))
      lines.append(f'| {strategy} ({len(runs)} seeds) | ' + ' | '.join(cells) + ' |')
    walls = [r['wall_s'] for runs in sessions.values() for s in runs.values() for r in s[1:]]
    if walls:
      lines += ['', f'Wall time of a round (train, score, pick) after the first: median '
                f'{np.median(walls):.1f} s, max {np.max(walls):.1f} s.']
    lines += ['', stopping.DEFINITION]
  return '\n'.join(lines) + '\n'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--rounds', type=int, default=8)
  parser.add_argument('--paper-seeds', type=int, default=1,
                      help='seeds of the paper schedule\'s round (a quarter of an hour each here)')
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--parts', default='round,session')
  parser.add_argument('--out', default=RESULTS)
  args = parser.parse_args(argv)
  if args.quick:
    args.seeds, args.rounds = 1, 3
  path = os.path.join(args.out, 'labeling_round.json')
  results = {'cpu': cpu(), 'round': {}, 'session': {}}
  if os.path.exists(path) and not args.quick:
    with open(path) as f:
      results = json.load(f)
    if results.get('cpu') != cpu():
      raise SystemExit(f'{path} was measured on {results.get("cpu")}; this is {cpu()}: move it '
                       'away to measure here (timings compare on one machine only).')

  def save():
    if args.quick:
      return
    os.makedirs(args.out, exist_ok=True)
    with open(path + '.tmp', 'w') as f:
      json.dump(results, f, indent=1)
    os.replace(path + '.tmp', path)
    with open(os.path.join(args.out, 'labeling_round.md'), 'w') as f:
      f.write(markdown(results))

  with tempfile.TemporaryDirectory() as scratch:
    root = os.path.join(scratch, 'digits')
    truth = digits_folder.write_digits_folder(root)
    parts = args.parts.split(',')
    for seed in range(args.seeds):
      if 'round' in parts:
        for name, make in (('example', example_config), ('paper', paper_config)):
          done = results['round'].setdefault(name, {})
          if str(seed) not in done and (name == 'example' or seed < args.paper_seeds):
            done[str(seed)] = one_round(make(root, seed), truth,
                                        os.path.join(scratch, f'{name}-{seed}'))
            print(name, seed, done[str(seed)], flush=True)
            save()
      if 'session' in parts:
        for strategy in ('l2r', 'entropy', 'random'):
          done = results['session'].setdefault(strategy, {})
          if str(seed) not in done:
            done[str(seed)] = session(example_config(root, seed, strategy), truth,
                                      os.path.join(scratch, f'{strategy}-{seed}'), args.rounds)
            print(strategy, seed, done[str(seed)], flush=True)
            save()
  print(markdown(results))


if __name__ == '__main__':
  main()
