r"""How well each differentiable ranker ranks, and how fast, per shipped list length.

    python benchmarks/sorter_quality.py [--num_lists 10000] [--out benchmarks/results]

For each shipped length L and each ranker (the pretrained GRU sorter; Blondel et al.'s soft rank
at several strengths), on ``num_lists`` fresh lists per distribution: the mean and 1st percentile
of Spearman's rho between the ranker's output and the exact ranks, and the mean absolute rank
error in rank units (1 = one position). Then the time of a jitted forward and forward+backward
pass over a batch of 256 lists, and whether the ranker's gradient teaches (fitting scores to losses
through the listwise loss). Writes ``sorter_quality.md`` and ``sorter_quality.json``.
"""
import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from l2r_jax import losses as l2r_losses
import sorter
from sorter import data

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position

DISTRIBUTIONS = ('uniform', 'normal', 'exponential', 'log_normal', 'pareto', 'tied')
SOFT_RANK_STRENGTHS = (1.0, 4.0, 16.0)
TIMING_LISTS = 256


def _rankers(seq_len):
  yield 'gru', sorter.load_pretrained(seq_len=seq_len)
  for eps in SOFT_RANK_STRENGTHS:
    yield f'soft_rank(strength={eps:g})', sorter.make_soft_rank(seq_len, eps)


def _quality(ranker, x, chunk=2000):
  rho, err = [], []
  f = jax.jit(jax.vmap(ranker))
  for i in range(0, x.shape[0], chunk):
    xi = x[i:i + chunk]
    out, exact = f(xi), sorter.descending_ranks(xi)
    rho.append(sorter.spearman(out, exact))
    err.append(jnp.abs(out - exact).mean(-1) * x.shape[1])
  rho, err = np.concatenate(rho), np.concatenate(err)
  return {'rho_mean': float(rho.mean()), 'rho_p01': float(np.percentile(rho, 1)),
          'rank_err': float(err.mean())}


def _time(f, *args, repeats=20):
  jax.block_until_ready(f(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def _fit(ranker, seq_len, num_lists=32, steps=300):
  """Does the ranker's gradient teach? Fit random scores to log-normal "losses" by minimising the
  listwise loss through it (Adam 0.05); the mean Spearman rho reached."""
  losses_ = jnp.exp(1.5 * jax.random.normal(jax.random.PRNGKey(11), (num_lists * seq_len,)))
  scores = jax.random.normal(jax.random.PRNGKey(12), (num_lists * seq_len,))
  opt = optax.adam(0.05)

  @jax.jit
  def step(scores, state):
    grad = jax.grad(l2r_losses.listwise_ranking_loss)(scores, losses_, ranker)
    updates, state = opt.update(grad, state)
    return optax.apply_updates(scores, updates), state

  state = opt.init(scores)
  for _ in range(steps):
    scores, state = step(scores, state)
  rho = sorter.spearman(scores.reshape(num_lists, seq_len), losses_.reshape(num_lists, seq_len))
  return float(rho.mean())


def _speed(ranker, seq_len):
  x = jax.random.normal(jax.random.PRNGKey(7), (TIMING_LISTS, seq_len))
  w = jax.random.normal(jax.random.PRNGKey(8), (TIMING_LISTS, seq_len))
  fwd = jax.jit(jax.vmap(ranker))
  fwd_bwd = jax.jit(jax.value_and_grad(lambda v: jnp.sum(jax.vmap(ranker)(v) * w)))
  return {'fwd_ms': 1e3 * _time(fwd, x), 'fwd_bwd_ms': 1e3 * _time(fwd_bwd, x)}


def run(num_lists, lengths):
  rows = []
  for seq_len in lengths:
    lists = {name: data.sample_family(jax.random.PRNGKey(2026 + i), name, num_lists, seq_len)
             for i, name in enumerate(DISTRIBUTIONS)}
    for name, ranker in _rankers(seq_len):
      row = {'seq_len': seq_len, 'ranker': name, 'fit_rho': _fit(ranker, seq_len),
             **_speed(ranker, seq_len)}
      for dist, x in lists.items():
        row[dist] = _quality(ranker, x)
      rows.append(row)
      print(f'L={seq_len:3d} {name:22s} ' + ' '.join(
          f'{d}={row[d]["rho_mean"]:.4f}/{row[d]["rank_err"]:.2f}' for d in DISTRIBUTIONS) +
            f' fit={row["fit_rho"]:.3f}' +
            f' fwd={row["fwd_ms"]:.1f}ms fwd+bwd={row["fwd_bwd_ms"]:.1f}ms', flush=True)
  return rows


def to_markdown(rows, num_lists):
  lines = [
      '# Sorter quality', '',
      f'`python benchmarks/sorter_quality.py --num_lists {num_lists}` on {machine.describe()}. '
      f'Fresh lists ({num_lists} per '
      'distribution, seeds unseen in training). rho: mean Spearman correlation between the '
      "ranker's output and the exact ranks (p01: its 1st percentile over lists); err: mean "
      'absolute rank error in positions. fit: mean Spearman rho reached by fitting 32 lists of '
      'random scores to log-normal losses through the ranker with the listwise loss (300 Adam '
      'steps): whether its gradient teaches. Time: one jitted batch of '
      f'{TIMING_LISTS} lists.', '',
      '| L | ranker | ' + ' | '.join(f'{d} rho (p01) / err' for d in DISTRIBUTIONS) +
      ' | fit | fwd ms | fwd+bwd ms |',
      '|---|---|' + '---|' * (len(DISTRIBUTIONS) + 3)]
  for r in rows:
    cells = [f'{r[d]["rho_mean"]:.4f} ({r[d]["rho_p01"]:.3f}) / {r[d]["rank_err"]:.2f}'
             for d in DISTRIBUTIONS]
    lines.append(f'| {r["seq_len"]} | {r["ranker"]} | ' + ' | '.join(cells) +
                 f' | {r["fit_rho"]:.3f} | {r["fwd_ms"]:.1f} | {r["fwd_bwd_ms"]:.1f} |')
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--num_lists', type=int, default=10000)
  parser.add_argument('--lengths', default=','.join(map(str, sorter.shipped_lengths())))
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args()
  rows = run(args.num_lists, [int(x) for x in args.lengths.split(',')])
  os.makedirs(args.out, exist_ok=True)
  md = to_markdown(rows, args.num_lists)
  with open(os.path.join(args.out, 'sorter_quality.md'), 'w') as f:
    f.write(md)
  with open(os.path.join(args.out, 'sorter_quality.json'), 'w') as f:
    json.dump(rows, f, indent=1)
  print(md)


if __name__ == '__main__':
  main()
