"""Core-set selection (Sener & Savarese, ICLR 2018): k-center greedy on last-block embeddings."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax import devices as devices_lib
from l2r_jax import numerics
from l2r_jax.strategies import base
from l2r_jax.strategies import geometry

_AXIS = 'devices'


def k_center_greedy(candidates: chex.Array, centers: chex.Array, budget: int,
                    chunk: int = 512) -> np.ndarray:
  """Greedy farthest-point selection, over every device of every process.

  ``budget`` times, pick the candidate farthest (Euclidean) from its nearest centre and make it a
  centre; of equally far candidates, the first. The initial centres are ``centers`` (the labeled
  samples); with none, the first pick is candidate 0. Every point is first moved by about the
  candidates' mean (:func:`geometry.origin`; distances are unchanged), so that the matrix-product
  form of the distance keeps float32 precision for embeddings far from the origin; points with a
  NaN or an infinity are refused, and very large or small ones rescaled
  (:func:`geometry.well_scaled`).

  The candidates are cut into one block per device (:mod:`l2r_jax.devices`); each device keeps its
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
  candidates, centers = geometry.well_scaled('k_center_greedy', [('candidates', candidates),
                                                                 ('centers', centers)])
  if m % chunk:
    # Padded with copies of a real centre (a duplicate centre changes no minimum) to whole chunks:
    # one compiled program serves every labeled-set size up to the next multiple of ``chunk``.
    centers = np.concatenate([centers, np.repeat(centers[:1], -m % chunk, 0)])
  size = devices_lib.per_block(n)
  chosen = _k_center_greedy(devices_lib.local_share(candidates, size),
                            devices_lib.local_valid(n, size),
                            centers, geometry.origin(candidates), budget, chunk)
  return np.asarray(chosen.addressable_shards[0].data)[0]


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
      return jnp.minimum(min_d, geometry.sq_dist(candidates, sq_norms, block).min(-1)), None

    min_d, _ = jax.lax.scan(reduce_block, min_d, (centers - origin).reshape(-1, chunk,
                                                                          centers.shape[-1]))
  min_d = jnp.where(valid, min_d, -1.0)   # padding, like a chosen candidate, is never picked
  first_row = jax.lax.axis_index(_AXIS) * size

  def pick(k, carry):
    min_d, chosen = carry
    i = geometry.first_argmax(min_d)
    farthest = jax.lax.all_gather(min_d[i], _AXIS)          # [devices], block order
    rows = jax.lax.all_gather(first_row + i, _AXIS)
    points = jax.lax.all_gather(candidates[i], _AXIS)
    # Blocks are contiguous: the lowest index among the farthest.
    owner = geometry.first_argmax(farthest)
    d_new = geometry.sq_dist(candidates, sq_norms, points[owner][None])[:, 0]
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
