"""The active-learning protocol's host-side draws, numpy only (no JAX import): which samples start
labeled, which unlabeled samples a cycle's strategy sees, the batches of every epoch, and the top
``budget`` scores. Seeded by ``(seed, purpose, cycle[, epoch])``, so every strategy of a seed
shares them, and importable by code that never loads JAX (``benchmarks/speed.py``'s PyTorch
children run the same protocol from here).
"""
import math
from typing import Optional

import numpy as np

_INITIAL, _SUBSET, _EPOCH, _STOP = 0, 1, 2, 3   # the purposes, part of each generator's seed


def initial_labeled(seed: int, pool_size: int, size: int) -> np.ndarray:
  """The ``size`` pool indices labeled before cycle 0."""
  return np.random.default_rng([seed, _INITIAL]).permutation(pool_size)[:size]


def stop_set(seed: int, pool_size: int, size: int) -> np.ndarray:
  """The ``min(size, pool_size)`` pool indices, sorted, whose predictions the stopping signal
  compares from round to round (:mod:`l2r_jax.stopping`), fixed for a seed and a pool size."""
  draw = np.random.default_rng([seed, _STOP]).permutation(pool_size)[:min(size, pool_size)]
  return np.sort(draw)


def pool_subset(seed: int, cycle: int, unlabeled: np.ndarray, size: Optional[int]) -> np.ndarray:
  """A random subset of the unlabeled pool (``unlabeled``: a boolean mask over the pool): the
  unlabeled samples in an order fixed by (seed, cycle), first ``size`` of them (all when ``size``
  is None)."""
  order = np.random.default_rng([seed, _SUBSET, cycle]).permutation(unlabeled.shape[0])
  members = order[unlabeled[order]]
  return members if size is None else members[:size]


def epoch_order(seed: int, cycle: int, epoch: int, n: int, batch_size: int) -> np.ndarray:
  """``ceil(n / batch_size)`` full batches of positions in ``range(n)`` covering every sample
  once, the last batch filled from a second permutation (the ranking losses need full lists)."""
  r = np.random.default_rng([seed, _EPOCH, cycle, epoch])
  steps = math.ceil(n / batch_size)
  reps = math.ceil(steps * batch_size / n)
  return np.concatenate([r.permutation(n) for _ in range(reps)])[:steps * batch_size]


def top_k(scores: np.ndarray, members: np.ndarray, budget: int) -> np.ndarray:
  """The ``budget`` members (of a pool subset) with the highest scores (ties: lower position).
  A NaN score cannot be ranked: refused, naming the samples, rather than never picked."""
  scores = np.asarray(scores, np.float64)
  if np.isnan(scores).any():
    bad = np.asarray(members)[np.isnan(scores)]
    raise FloatingPointError(f'{len(bad)} pool samples (indices {bad[:5].tolist()}...) have a NaN '
                             'score, which cannot be ranked: the model has diverged.')
  order = np.argsort(-scores, kind='stable')
  return np.asarray(members)[order[:budget]]
