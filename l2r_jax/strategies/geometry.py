"""Distances and tie rules shared by the strategies that measure their points against each other
(core-set, BADGE, BatchBALD's greedy picks, TypiClust, ProbCover)."""
from typing import List, Sequence, Tuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax import numerics

# Magnitudes beyond these make a float32 squared distance overflow to inf (or underflow to 0).
SAFE_MAGNITUDES = (2.0**-40, 2.0**40)


def well_scaled(caller: str, points: Sequence[Tuple[str, chex.Array]]) -> List[np.ndarray]:
  """The float32 arrays of ``points`` (``(name, [n, d])`` pairs, measured against each other), for
  squared distances: a row with a NaN or an infinity is refused by name (``caller`` first), since
  no distance to it can be compared; and all are multiplied by one power of two that brings the
  largest magnitude near 1 where it lies beyond ``2**±40``. A power of two scales every distance
  alike and exactly, so no comparison changes; within that range the points are returned as they
  are."""
  arrays = []
  for name, values in points:
    numerics.check_data(values, f'{caller}, {name}', 'points',
                        fix='No distance to them can be compared.')
    arrays.append(np.asarray(values, np.float32))
  top = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
  if top == 0.0 or SAFE_MAGNITUDES[0] <= top <= SAFE_MAGNITUDES[1]:
    return arrays
  factor = 2.0**-int(np.frexp(top)[1])       # the largest magnitude becomes [0.5, 1)
  return [(a.astype(np.float64) * factor).astype(np.float32) for a in arrays]


def sq_dist(points, sq_norms, others):
  """``[n, k]`` squared Euclidean distances, by one matrix product. ``|a|² - 2ab + |b|²`` keeps
  float32 precision only for points near the origin: callers centre them first."""
  return jnp.maximum(sq_norms[:, None] - 2 * points @ others.T + jnp.sum(others**2, -1), 0.0)


def first_argmax(v: chex.Array) -> chex.Array:
  """``jnp.argmax`` for a vector without NaNs, as two plain reductions (a maximum, then the least
  index holding it). XLA's CPU backend runs an argmax's paired reduction about 10x slower."""
  return jnp.min(jnp.where(v == jnp.max(v), jnp.arange(v.shape[0]), v.shape[0]))


@jax.jit
def origin(points: chex.Array) -> chex.Array:
  """``[d]``: the points' mean, rounded to a multiple of the power of two nearest below their
  spread. Subtracting it brings the points near the origin, and is exact for points on a coarser
  grid (integer coordinates, say), so distances that tie exactly still tie."""
  spread = jnp.maximum(jnp.std(points), jnp.finfo(jnp.float32).tiny)
  step = 2.0 ** jnp.floor(jnp.log2(spread))
  return jnp.round(jnp.mean(points, 0) / step) * step


def pairwise_sq_distances(points: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
  """``[len(rows), n]`` squared Euclidean distances from ``points[rows]`` to every point (float64,
  by one matrix product of centred points: memory ``len(rows) x n``, not ``x d``)."""
  points = np.asarray(points, np.float64)
  points = points - points.mean(0)
  sq = (points**2).sum(1)
  return np.maximum(sq[rows, None] + sq[None, :] - 2 * points[rows] @ points.T, 0.0)
