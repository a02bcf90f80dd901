"""Core-set selection (Sener & Savarese, ICLR 2018): k-center greedy on last-block embeddings."""
import functools
from typing import List, Sequence, Tuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax import blocks
from l2r_jax import numerics
from l2r_jax.strategies import base

_AXIS = 'devices'
# Magnitudes beyond these make a float32 squared distance overflow to inf (or underflow to 0).
_SAFE_MAGNITUDES = (2.0**-40, 2.0**40)


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
  if top == 0.0 or _SAFE_MAGNITUDES[0] <= top <= _SAFE_MAGNITUDES[1]:
    return arrays
  factor = 2.0**-int(np.frexp(top)[1])       # the largest magnitude becomes [0.5, 1)
  return [(a.astype(np.float64) * factor).astype(np.float32) for a in arrays]


def _sq_dist(points, sq_norms, others):
  """``[n, k]`` squared Euclidean distances, by one matrix product. ``|a|² - 2ab + |b|²`` keeps
  float32 precision only for points near the origin: callers centre them first."""
  return jnp.maximum(sq_norms[:, None] - 2 * points @ others.T + jnp.sum(others**2, -1), 0.0)


def _first_argmax(v: chex.Array) -> chex.Array:
  """``jnp.argmax`` for a vector without NaNs, as two plain reductions (a maximum, then the least
  index holding it). XLA's CPU backend runs an argmax's paired reduction about 10x slower."""
  return jnp.min(jnp.where(v == jnp.max(v), jnp.arange(v.shape[0]), v.shape[0]))


def k_center_greedy(candidates: chex.Array, centers: chex.Array, budget: int,
                    chunk: int = 512) -> np.ndarray:
  """Greedy farthest-point selection, over every device of every process.

  ``budget`` times, pick the candidate farthest (Euclidean) from its nearest centre and make it a
  centre; of equally far candidates, the first. The initial centres are ``centers`` (the labeled
  samples); with none, the first pick is candidate 0. Every point is first moved by about the
  candidates' mean (:func:`_origin`; distances are unchanged), so that the matrix-product form of
  the distance keeps float32 precision for embeddings far from the origin; points with a NaN or an
  infinity are refused, and very large or small ones rescaled (:func:`well_scaled`).

  The candidates are cut into one block per device (:mod:`l2r_jax.blocks`); each device keeps its
  block's distances to the nearest centre, and a pick is the farthest of the devices' farthest
  (gathered across devices and processes, ties to the lowest index), whose point every device then
  reads from the gathered rows. Memory per device is O(n / devices * chunk), never ``n x n``:
  distances to the initial centres are reduced ``chunk`` centres at a time. Each row's distances
  are computed by the same arithmetic as on one device, so the picks are one device's (tested on
  2 devices against a float64 reference, ties included).

  Args:
    candidates: ``[n, d]``, the same on every process.
    centers: ``[m, d]``, ``m >= 0``.
    budget: how many to pick, at most ``n``.

  Returns:
    ``[budget]`` distinct indices into ``candidates``, in the order they were picked.
  """
  chex.assert_rank((candidates, centers), 2)
  n, m = candidates.shape[0], centers.shape[0]
  if not 0 < budget <= n:
    raise ValueError(f'k-center greedy cannot pick {budget} of {n} candidates.')
  candidates, centers = well_scaled('k_center_greedy', [('candidates', candidates),
                                                        ('centers', centers)])
  if m % chunk:
    # Padded with copies of a real centre (a duplicate centre changes no minimum) to whole chunks:
    # one compiled program serves every labeled-set size up to the next multiple of ``chunk``.
    centers = np.concatenate([centers, np.repeat(centers[:1], -m % chunk, 0)])
  size = blocks.per_block(n)
  chosen = _k_center_greedy(blocks.local_share(candidates, size), blocks.local_valid(n, size),
                            centers, _origin(candidates), budget, chunk)
  return np.asarray(chosen.addressable_shards[0].data)[0]


@jax.jit
def _origin(points: chex.Array) -> chex.Array:
  """``[d]``: the points' mean, rounded to a multiple of the power of two nearest below their
  spread. Subtracting it brings the points near the origin, and is exact for points on a coarser
  grid (integer coordinates, say), so distances that tie exactly still tie."""
  spread = jnp.maximum(jnp.std(points), jnp.finfo(jnp.float32).tiny)
  step = 2.0 ** jnp.floor(jnp.log2(spread))
  return jnp.round(jnp.mean(points, 0) / step) * step


@functools.partial(jax.pmap, axis_name=_AXIS, in_axes=(0, 0, None, None),
                   static_broadcasted_argnums=(4, 5))
def _k_center_greedy(candidates, valid, centers, origin, budget, chunk):
  """One device's part: ``candidates`` ``[size, d]`` its block (``valid`` marks the real rows)."""
  size = candidates.shape[0]
  candidates = candidates - origin
  sq_norms = jnp.sum(candidates**2, -1)
  min_d = jnp.full((size,), jnp.inf)
  if centers.shape[0]:
    def reduce_block(min_d, block):
      return jnp.minimum(min_d, _sq_dist(candidates, sq_norms, block).min(-1)), None

    min_d, _ = jax.lax.scan(reduce_block, min_d, (centers - origin).reshape(-1, chunk,
                                                                          centers.shape[-1]))
  min_d = jnp.where(valid, min_d, -1.0)   # padding, like a chosen candidate, is never picked
  first_row = jax.lax.axis_index(_AXIS) * size

  def pick(k, carry):
    min_d, chosen = carry
    i = _first_argmax(min_d)
    farthest = jax.lax.all_gather(min_d[i], _AXIS)          # [devices], block order
    rows = jax.lax.all_gather(first_row + i, _AXIS)
    points = jax.lax.all_gather(candidates[i], _AXIS)
    owner = _first_argmax(farthest)   # blocks are contiguous: the lowest index among the farthest
    d_new = _sq_dist(candidates, sq_norms, points[owner][None])[:, 0]
    min_d = jnp.where(jnp.arange(size) == rows[owner] - first_row, -1.0,
                      jnp.minimum(min_d, d_new))
    return min_d, chosen.at[k].set(rows[owner])

  _, chosen = jax.lax.fori_loop(0, budget, pick, (min_d, jnp.zeros((budget,), jnp.int32)))
  return chosen


@base.register('coreset')
def select_coreset(state, pool_subset, budget, rng):
  """k-center greedy over the subset, the labeled samples as the initial centres."""
  del rng
  pool_subset = np.asarray(pool_subset)
  labeled = np.asarray(state.labeled)
  candidates = state.infer(pool_subset).embedding
  centers = state.infer(labeled).embedding
  for rows, e in ((pool_subset, candidates), (labeled, centers)):
    numerics.check_outputs([('embeddings', e, numerics.TARGET_DIVERGED)], rows, 'pool samples')
  return pool_subset[k_center_greedy(candidates, centers, budget)]
