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
  # A NaN cannot be ranked: NaN, as scipy's, not a number.
  assert np.isnan(float(metrics.spearman(x.at[3].set(jnp.nan), x)))
  assert np.isnan(stats.spearmanr(np.asarray(x.at[3].set(jnp.nan)), np.asarray(x)).statistic)
  rows = metrics.spearman(jnp.stack([x, x.at[0].set(jnp.nan)]), jnp.stack([x, x]))
  assert float(rows[0]) == pytest.approx(1.0) and np.isnan(float(rows[1]))


def test_spearman_rejects_mismatched_shapes():
  with pytest.raises(AssertionError):
    metrics.spearman(jnp.zeros(4), jnp.zeros(5))


def test_expected_ranks_match_monte_carlo_and_tend_to_exact_ranks():
  x = np.array([0.3, 2.0, 0.3, -1.0, 0.9], np.float32)
  noise = 0.7
  # An independent estimate: exact ranks of 200,000 noisy copies, averaged.
  r = np.random.default_rng(0)
  noisy = x + noise * r.standard_normal((200_000, 5))
  monte_carlo = np.mean([stats.rankdata(-row) for row in noisy[:20_000]], 0) / 5
  np.testing.assert_allclose(ranking.expected_ranks(x, noise), monte_carlo, atol=0.01)
  # ... and the closed form in float64 with scipy's normal CDF.
  closed = (0.5 + stats.norm.cdf((x[None, :] - x[:, None]) / (noise * np.sqrt(2))).sum(1)) / 5
  np.testing.assert_allclose(ranking.expected_ranks(x, noise), closed, rtol=1e-5)
  # Order kept; ties share a rank; noise -> 0 gives the exact (average) ranks.
  smooth = np.asarray(ranking.expected_ranks(x, noise))
  assert smooth[1] < smooth[4] < smooth[0] == smooth[2] < smooth[3]
  np.testing.assert_allclose(ranking.expected_ranks(x, 1e-4), ranking.descending_ranks(x),
                             atol=1e-6)
  np.testing.assert_array_equal(ranking.expected_ranks(x, 0.0), ranking.descending_ranks(x))
  with pytest.raises(ValueError, match='non-negative'):
    ranking.expected_ranks(x, -1.0)
