"""Exact ranks in the sorter's convention, the reference every ranker is measured against.

Convention (SoDeep's): ranks are *descending* and scaled to (0, 1]. In a list of length L the
largest score gets 1/L and the smallest 1. Tied scores share the average of the ranks they
span, as in Spearman's rho, so a list of equal scores gets (L + 1) / (2L) everywhere.
"""
import chex
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr


def descending_ranks(scores: chex.Array, *, normalise: bool = True) -> chex.Array:
  """Average ranks along the last axis, largest first.

  Args:
    scores: ``[..., L]`` real scores.
    normalise: divide by ``L`` so the ranks lie in ``(0, 1]``; otherwise they lie in ``[1, L]``.

  Returns:
    ``[..., L]`` float ranks; no gradient flows through them (ranks are piecewise constant).

  >>> descending_ranks(jnp.array([0.3, 2.0, 0.3, -1.0]), normalise=False)
  Array([2.5, 1. , 2.5, 4. ], dtype=float32, weak_type=True)
  """
  scores = jax.lax.stop_gradient(jnp.asarray(scores))
  if scores.ndim < 1:
    raise ValueError('scores must have a list axis (the last one); got a scalar.')
  n = scores.shape[-1]
  ranks = jnp.vectorize(_descending_ranks_1d, signature='(n)->(n)')(scores)
  return ranks / n if normalise else ranks


def _descending_ranks_1d(x: chex.Array) -> chex.Array:
  # O(L log L): the number of strictly larger values, plus the middle of the tie block.
  neg_sorted = jnp.sort(-x)
  first = jnp.searchsorted(neg_sorted, -x, side='left')
  last = jnp.searchsorted(neg_sorted, -x, side='right')
  return (first + last + 1) / 2.0


def expected_ranks(scores: chex.Array, noise: float) -> chex.Array:
  """Descending ranks in ``(0, 1]`` averaged over Gaussian noise on the scores, in closed form.

  Each score gets independent ``N(0, noise**2)`` noise; score ``j`` then outranks score ``i`` with
  probability ``Phi((x_j - x_i) / (noise * sqrt(2)))``, so the expected rank of ``i`` is
  ``(1 + sum_{j != i} Phi((x_j - x_i) / (noise * sqrt(2)))) / L``. It keeps the exact order, is
  smooth in the scores (unlike exact ranks, piecewise constant) and tends to
  :func:`descending_ranks`, average ranks for ties, as ``noise -> 0``; ``noise = 0`` gives those.

  Args:
    scores: ``[..., L]`` real scores.
    noise: the noise's standard deviation, in the scores' units; 0 for exact ranks.

  Returns:
    ``[..., L]`` float ranks; no gradient flows through them (they are training targets).

  >>> (expected_ranks(jnp.array([0.0, 10.0, 0.0]), 0.5) * 3).round(2)  # in positions
  Array([2.5, 1. , 2.5], dtype=float32)
  """
  if not noise >= 0:
    raise ValueError(f'noise must be a non-negative standard deviation, got {noise}.')
  scores = jax.lax.stop_gradient(jnp.asarray(scores, jnp.float32))
  if noise == 0:
    return descending_ranks(scores)
  n = scores.shape[-1]
  beats = ndtr((scores[..., None, :] - scores[..., :, None]) / (noise * jnp.sqrt(2.0)))
  # The diagonal adds Phi(0) = 1/2 for each element against itself: 1 + sum_{j != i} = 1/2 + sum_j.
  return (0.5 + beats.sum(-1)) / n


def spearman(x: chex.Array, y: chex.Array) -> chex.Array:
  """Spearman's rank correlation along the last axis, with average ranks for ties.

  Equal to ``scipy.stats.spearmanr`` (the Pearson correlation of the average ranks). A list
  with no variation in ``x`` or ``y`` has no defined correlation and gets 0 rather than NaN; a list
  holding a NaN gets NaN (as scipy's): a NaN cannot be ranked.

  Args:
    x, y: ``[..., L]`` with equal shapes.

  Returns:
    ``[...]`` correlations in [-1, 1].
  """
  chex.assert_equal_shape((x, y))
  rx = descending_ranks(x, normalise=False)
  ry = descending_ranks(y, normalise=False)
  rx = rx - rx.mean(axis=-1, keepdims=True)
  ry = ry - ry.mean(axis=-1, keepdims=True)
  denom = jnp.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))
  safe = jnp.where(denom > 0, denom, 1.0)
  rho = jnp.where(denom > 0, (rx * ry).sum(-1) / safe, 0.0)
  return jnp.where(jnp.isnan(x).any(-1) | jnp.isnan(y).any(-1), jnp.nan, rho)
