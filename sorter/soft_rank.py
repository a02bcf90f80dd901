"""The analytic differentiable rank of Blondel et al. (ICML 2020), "Fast Differentiable Sorting
and Ranking", with quadratic regularisation, in pure JAX.

The soft rank is the projection of ``-z / eps`` onto the permutahedron of ``(L, ..., 1)``:

    r(z) = P(-z / eps),   P(y) = y - v[inv sigma],   v = argmin_{v_1 >= ... >= v_L} |v - (y_sigma - w)|^2

with ``sigma`` sorting ``y`` in descending order and ``w = (L, L-1, ..., 1)``. As ``eps -> 0`` it
tends to the exact descending ranks (largest score -> 1); as ``eps`` grows all ranks tend to
``(L + 1) / 2``. In float32 the block means lose precision as the scores' range over ``eps``
grows: through :func:`sorter.make_soft_rank` at a strength of 1e-3, normal scores' soft ranks lie
0.04 positions from the exact ones on average at L = 64, 8 at L = 1,024 and 132 at L = 4,096
(the shipped configs rank lists of 4 to 64 at a strength of 4).

The isotonic regression ``v`` is solved exactly by the min-max formula
``v_i = min_{j <= i} max_{k >= i} mean(y_j..y_k)`` on ``L x L`` block means, O(L^2) work and
memory, all dense array operations: it jits, vmaps and differentiates on any backend, and
automatic differentiation through the min/max reproduces the block-averaging Jacobian of the
pool-adjacent-violators solution. (jaxopt's PAV runs on the host through a callback; the
reference fast-soft-sort calls numpy inside its custom VJP.)
"""
import chex
import jax
import jax.numpy as jnp


def isotonic_decreasing(y: chex.Array) -> chex.Array:
  """``argmin_{v_1 >= v_2 >= ... >= v_L} ||v - y||^2`` for a 1-D ``y``."""
  chex.assert_rank(y, 1)
  n = y.shape[0]
  csum = jnp.concatenate([jnp.zeros((1,), y.dtype), jnp.cumsum(y)])
  j = jnp.arange(n)[:, None]
  k = jnp.arange(n)[None, :]
  valid = k >= j
  length = jnp.where(valid, k - j + 1, 1)
  # means[j, k] = mean(y[j..k]) for k >= j; entries below the diagonal are never selected.
  means = jnp.where(valid, (csum[k + 1] - csum[j]) / length, -jnp.inf)
  # suffix_max[j, i] = max_{k >= i} means[j, k]
  suffix_max = jax.lax.cummax(means, axis=1, reverse=True)
  # v_i = min_{j <= i} suffix_max[j, i]
  return jnp.min(jnp.where(valid, suffix_max, jnp.inf), axis=0)


def soft_rank(scores: chex.Array, regularization_strength: float = 1.0) -> chex.Array:
  """Soft descending ranks in ``[1, L]`` of a 1-D list (largest score -> rank near 1).

  Args:
    scores: ``[L]`` scores.
    regularization_strength: ``eps`` above; smaller is closer to the exact ranks and has
      sparser gradients.

  Returns:
    ``[L]`` soft ranks summing to ``L (L + 1) / 2``.
  """
  chex.assert_rank(scores, 1)
  n = scores.shape[0]
  y = -scores / regularization_strength
  order = jnp.argsort(-y)
  y_sorted = y[order]
  w = jnp.arange(n, 0, -1, dtype=y.dtype)
  primal_sorted = y_sorted - isotonic_decreasing(y_sorted - w)
  return jnp.zeros_like(y).at[order].set(primal_sorted)
