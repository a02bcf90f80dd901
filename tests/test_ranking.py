import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from l2r_jax import metrics
from sorter import ranking


def _random_lists(seed, tied):
  r = np.random.default_rng(seed)
  x = r.normal(size=(20, 17)).astype(np.float32)
  if tied:
    x = np.round(x * 2) / 2  # a handful of levels: many ties
  return x


@pytest.mark.parametrize('tied', [False, True])
def test_descending_ranks_match_scipy(tied):
  x = _random_lists(0, tied)
  expected = np.stack([stats.rankdata(-row, method='average') for row in x])
  np.testing.assert_allclose(ranking.descending_ranks(x, normalise=False), expected)
  np.testing.assert_allclose(ranking.descending_ranks(x), expected / x.shape[-1], rtol=1e-6)


def test_descending_ranks_hand_worked():
  r = ranking.descending_ranks(jnp.array([0.3, 2.0, 0.3, -1.0]), normalise=False)
  np.testing.assert_array_equal(r, [2.5, 1.0, 2.5, 4.0])


def test_descending_ranks_have_no_gradient():
  g = jax.grad(lambda x: ranking.descending_ranks(x).sum())(jnp.arange(4.0))
  np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize('tied', [False, True])
def test_spearman_matches_scipy(tied):
  x, y = _random_lists(1, tied), _random_lists(2, tied)
  y = 0.7 * x + y  # correlated, so the values are not all near 0
  expected = [stats.spearmanr(a, b).statistic for a, b in zip(x, y)]
  got = jax.jit(metrics.spearman)(x, y)
  assert got.shape == (x.shape[0],)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_spearman_extremes_and_constant_list():
  x = jnp.arange(10.0)
  np.testing.assert_allclose(metrics.spearman(x, x**3), 1.0, rtol=1e-6)
  np.testing.assert_allclose(metrics.spearman(x, -x), -1.0, rtol=1e-6)
  assert float(metrics.spearman(x, jnp.ones(10))) == 0.0  # undefined: 0, not NaN


def test_spearman_rejects_mismatched_shapes():
  with pytest.raises(AssertionError):
    metrics.spearman(jnp.zeros(4), jnp.zeros(5))
