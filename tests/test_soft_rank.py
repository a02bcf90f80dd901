import jax
from jax import test_util as jtu
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.isotonic import IsotonicRegression

from sorter import soft_rank as sr


@pytest.mark.parametrize('seed', range(5))
def test_isotonic_matches_sklearn(seed):
  r = np.random.default_rng(seed)
  y = r.normal(size=r.integers(1, 40)).astype(np.float32)
  expected = IsotonicRegression(increasing=False).fit_transform(np.arange(y.size), y)
  np.testing.assert_allclose(sr.isotonic_decreasing(jnp.asarray(y)), expected, atol=1e-5)


def test_soft_rank_hand_worked():
  # y = -x = [-.3, -2, -.1, 1]; sorted desc minus w = [1-4, -.1-3, -.3-2, -2-1] = [-3, -3.1, -2.3, -3]
  # isotonic (decreasing) pools the first three to -2.8; primal = [3.8, 2.7, 2.5, 1.0] unsorted.
  got = sr.soft_rank(jnp.array([0.3, 2.0, 0.1, -1.0]), 1.0)
  np.testing.assert_allclose(got, [2.5, 1.0, 2.7, 3.8], rtol=1e-6)


def test_soft_rank_limits():
  x = jax.random.normal(jax.random.PRNGKey(0), (12,))
  exact = stats.rankdata(-np.asarray(x))
  np.testing.assert_allclose(sr.soft_rank(x, 1e-3), exact, atol=1e-3)
  np.testing.assert_allclose(sr.soft_rank(x, 1e4), np.full(12, 6.5), atol=1e-2)
  for eps in (0.1, 1.0, 10.0):
    np.testing.assert_allclose(sr.soft_rank(x, eps).sum(), 12 * 13 / 2, rtol=1e-5)


def test_soft_rank_gradients_match_finite_differences():
  x = jax.random.normal(jax.random.PRNGKey(1), (8,)) * 3
  w = jax.random.normal(jax.random.PRNGKey(2), (8,))
  jtu.check_grads(lambda x: jnp.dot(sr.soft_rank(x, 1.0), w), (x,), order=1,
                  modes=('rev', 'fwd'), eps=1e-3, atol=1e-2, rtol=1e-2)


def test_soft_rank_jit_vmap_and_ties_are_finite():
  x = jnp.array([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
  f = jax.jit(jax.vmap(lambda v: sr.soft_rank(v, 0.5)))
  out = f(x)
  assert out.shape == (2, 4)
  np.testing.assert_allclose(out[1], 2.5)
  g = jax.grad(lambda v: f(v)[:, 0].sum())(x)
  assert np.isfinite(np.asarray(g)).all()


def test_a_list_of_equal_scores_has_a_finite_gradient_whatever_its_rounding():
  """A list the loss module scores alike (its first steps, a constant input): only centred, where
  dividing by the square root of a variance of 0 would give NaN, and by that of rounding noise
  (0.7 eight times: a mean rounded in float32) gradients of millions."""
  import sorter  # pylint: disable=g-import-not-at-top
  ranker = sorter.make_soft_rank(8)

  def gradient(v):
    return jax.grad(lambda v: jnp.dot(ranker(v), jnp.arange(8.0)))(v)

  exact = gradient(jnp.full(8, 0.5))    # its mean is exact: a spread of 0
  assert np.isfinite(exact).all() and np.abs(exact).max() < 1
  np.testing.assert_allclose(gradient(jnp.full(8, 0.7)), exact, atol=1e-5)
  np.testing.assert_array_equal(sorter.standardise(jnp.full(3, 2.0)), np.zeros(3))
  x = jnp.array([0.3, -1.2, 2.0, 0.1])
  np.testing.assert_allclose(sorter.standardise(x), (x - x.mean()) / x.std(), rtol=1e-6)
