"""Core-set selection (Sener & Savarese, ICLR 2018): k-center greedy on last-block embeddings."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax.strategies import base


def _sq_dist(points, sq_norms, others):
  """``[n, k]`` squared Euclidean distances, by one matrix product. ``|a|² - 2ab + |b|²`` keeps
  float32 precision only for points near the origin: callers centre them first."""
  return jnp.maximum(sq_norms[:, None] - 2 * points @ others.T + jnp.sum(others**2, -1), 0.0)


def _first_argmax(v: chex.Array) -> chex.Array:
  """``jnp.argmax`` for a vector without NaNs, as two plain reductions (a maximum, then the least
  index holding it). XLA's CPU backend runs an argmax's paired reduction about 10x slower."""
  return jnp.min(jnp.where(v == jnp.max(v), jnp.arange(v.shape[0]), v.shape[0]))


def k_center_greedy(candidates: chex.Array, centers: chex.Array, budget: int,
                    chunk: int = 512) -> chex.Array:
  """Greedy farthest-point selection.

  ``budget`` times, pick the candidate farthest (Euclidean) from its nearest centre and make it a
  centre. The initial centres are ``centers`` (the labeled samples); with none, the first pick is
  candidate 0. Memory is O(n * chunk), never ``n x n``: distances to the initial centres are
  reduced ``chunk`` centres at a time, then one distance vector is kept up to date. Every point is
  first moved by about the candidates' mean (:func:`_origin`; distances are unchanged), so that the
  matrix-product form of the distance keeps float32 precision for embeddings far from the origin.

  Args:
    candidates: ``[n, d]``.
    centers: ``[m, d]``, ``m >= 0``.
    budget: how many to pick, at most ``n``.

  Returns:
    ``[budget]`` distinct indices into ``candidates``, in the order they were picked.
  """
  chex.assert_rank((candidates, centers), 2)
  n, m = candidates.shape[0], centers.shape[0]
  if not 0 < budget <= n:
    raise ValueError(f'k-center greedy cannot pick {budget} of {n} candidates.')
  if m % chunk:
    # Padded with copies of a real centre (a duplicate centre changes no minimum) to whole chunks:
    # one compiled program serves every labeled-set size up to the next multiple of ``chunk``.
    centers = jnp.concatenate([centers, jnp.repeat(centers[:1], -m % chunk, 0)])
  return _k_center_greedy(candidates, centers, budget, chunk)


def _origin(points: chex.Array) -> chex.Array:
  """``[d]``: the points' mean, rounded to a multiple of the power of two nearest below their
  spread. Subtracting it brings the points near the origin, and is exact for points on a coarser
  grid (integer coordinates, say), so distances that tie exactly still tie."""
  spread = jnp.maximum(jnp.std(points), jnp.finfo(jnp.float32).tiny)
  step = 2.0 ** jnp.floor(jnp.log2(spread))
  return jnp.round(jnp.mean(points, 0) / step) * step


@functools.partial(jax.jit, static_argnames=('budget', 'chunk'))
def _k_center_greedy(candidates, centers, budget, chunk):
  n = candidates.shape[0]
  candidates = candidates.astype(jnp.float32)
  origin = _origin(candidates)
  candidates = candidates - origin
  sq_norms = jnp.sum(candidates**2, -1)
  min_d = jnp.full((n,), jnp.inf)
  if centers.shape[0]:
    def reduce_block(min_d, block):
      return jnp.minimum(min_d, _sq_dist(candidates, sq_norms, block).min(-1)), None

    blocks = (centers.astype(jnp.float32) - origin).reshape(-1, chunk, centers.shape[-1])
    min_d, _ = jax.lax.scan(reduce_block, min_d, blocks)

  def pick(k, carry):
    min_d, chosen = carry
    i = _first_argmax(min_d)
    d_new = _sq_dist(candidates, sq_norms, candidates[i][None])[:, 0]
    min_d = jnp.where(jnp.arange(n) == i, -1.0, jnp.minimum(min_d, d_new))
    return min_d, chosen.at[k].set(i)

  _, chosen = jax.lax.fori_loop(0, budget, pick, (min_d, jnp.zeros((budget,), jnp.int32)))
  return chosen


@base.register('coreset')
def select_coreset(state, pool_subset, budget, rng):
  """k-center greedy over the subset, the labeled samples as the initial centres."""
  del rng
  pool_subset = np.asarray(pool_subset)
  candidates = state.infer(pool_subset).embedding
  centers = state.infer(np.asarray(state.labeled)).embedding
  for name, e in (('pool subset', candidates), ('labeled set', centers)):
    if not np.isfinite(e).all():
      raise FloatingPointError(f'coreset: the target model embeds the {name} to non-finite '
                               'values, so no distance can be ranked; the model has diverged.')
  return pool_subset[np.asarray(k_center_greedy(jnp.asarray(candidates), jnp.asarray(centers),
                                                budget))]
