import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sorter
from benchmarks import sorter_quality
from sorter import data
from sorter import model as model_lib

SHIPPED = (4, 32, 64)
# Mean Spearman rho of each shipped sorter on fresh U(-1, 1) lists, a margin below what
# benchmarks/sorter_quality.py measured (benchmarks/results/sorter_quality.md).
MIN_UNIFORM_RHO = {4: 0.998, 32: 0.998, 64: 0.998}
# Mean absolute error against the exact ranks, in rank positions, a margin above the benchmark's.
# The length-4 sorter is trained on smoothed ranks (expected ranks under input noise): its outputs
# for close scores are pulled towards each other by design, so that its gradient teaches.
MAX_RANK_ERROR = {4: 0.4, 32: 1.0, 64: 1.5}


@functools.lru_cache(maxsize=None)
def _gru(seq_len):
  return sorter.load_pretrained(seq_len=seq_len)


def test_shipped_lengths():
  assert set(SHIPPED) <= set(sorter.shipped_lengths())


@pytest.mark.parametrize('seq_len', SHIPPED)
def test_shipped_sorter_ranks_fresh_uniform_lists(seq_len):
  x = jax.random.uniform(jax.random.PRNGKey(123), (2000, seq_len), minval=-1, maxval=1)
  out = jax.jit(jax.vmap(_gru(seq_len)))(x)
  chex.assert_shape(out, x.shape)
  rho = np.mean([stats.spearmanr(a, b).statistic for a, b in zip(np.asarray(out), -np.asarray(x))])
  assert rho > MIN_UNIFORM_RHO[seq_len]
  exact = sorter.descending_ranks(x)
  assert float(jnp.abs(out - exact).mean()) * seq_len < MAX_RANK_ERROR[seq_len]


@pytest.mark.parametrize('name', sorter.RANKERS)
def test_ranker_under_jit_vmap_grad_and_pmap(name):
  ranker = sorter.get_ranker(name, seq_len=32)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 32))
  out = jax.jit(jax.vmap(ranker))(x)
  chex.assert_shape(out, (4, 32))
  chex.assert_type(out, jnp.float32)
  assert float(out.min()) > 0 and float(out.max()) <= 1
  np.testing.assert_allclose(out, jax.vmap(ranker)(x), atol=1e-5)
  g = jax.grad(lambda v: jnp.dot(ranker(v), jnp.arange(32.0)))(x[0])
  assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0
  assert jax.local_device_count() == 2
  p = jax.pmap(jax.vmap(ranker))(x.reshape(2, 2, 32))
  chex.assert_shape(p, (2, 2, 32))
  np.testing.assert_allclose(p.reshape(4, 32), out, atol=1e-5)


def test_gru_sorter_is_invariant_to_positive_affine_maps():
  ranker = _gru(32)
  x = jax.random.exponential(jax.random.PRNGKey(5), (32,))
  np.testing.assert_allclose(ranker(x), ranker(4.0 * x + 3.0), atol=1e-4)
  np.testing.assert_allclose(ranker(x), ranker(1e-3 * x), atol=1e-4)


def test_the_length_4_sorters_gradient_teaches():
  # A sorter trained on exact ranks ranks 4 scores almost exactly, and its output is then nearly
  # piecewise constant: the fit reached 0.14. Trained on smoothed ranks, it reaches 1.00.
  assert sorter_quality._fit(_gru(4), 4) >= 0.95  # pylint: disable=protected-access


def test_rank_lists_ranks_each_list_independently():
  ranker = _gru(4)
  x = jax.random.normal(jax.random.PRNGKey(6), (12,))
  expected = jnp.concatenate([ranker(x[i:i + 4]) for i in range(0, 12, 4)])
  np.testing.assert_allclose(sorter.rank_lists(ranker, x), expected, atol=1e-6)
  with pytest.raises(ValueError, match='multiple of 4'):
    sorter.rank_lists(ranker, jnp.zeros(10))


@pytest.mark.parametrize('name', sorter.RANKERS)
def test_ranker_bad_input(name):
  ranker = sorter.get_ranker(name, seq_len=4)
  with pytest.raises(ValueError, match='exactly 4 scores; got 5'):
    ranker(jnp.zeros(5))
  with pytest.raises(ValueError, match='1-D array'):
    ranker(jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match=r'NaN or inf at positions \[2\]'):
    ranker(jnp.array([0.0, 1.0, jnp.nan, 2.0]))


def test_unshipped_length_says_how_to_pretrain():
  with pytest.raises(FileNotFoundError, match=r'--config.seq_len=48'):
    sorter.load_pretrained(seq_len=48)
  with pytest.raises(ValueError, match='Unknown sorter'):
    sorter.get_ranker('lstm', seq_len=4)


def test_robust_standardise_is_affine_invariant_and_handles_constant_lists():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  np.testing.assert_allclose(model_lib.robust_standardise(x),
                             model_lib.robust_standardise(5.0 * x - 2.0), atol=1e-5)
  z = model_lib.robust_standardise(jnp.array([[1.0] * 9 + [2.0] * 3 + [5.0] * 4]))
  assert np.isfinite(np.asarray(z)).all() and np.all(np.diff(np.asarray(z)) >= 0)
  np.testing.assert_array_equal(model_lib.robust_standardise(jnp.ones((1, 5))), 0.0)


def test_model_shapes(rng):
  m = model_lib.GRUSorter(hidden=8, num_layers=2)
  params = m.init(rng, jnp.zeros((1, 10)))
  out = m.apply(params, jax.random.normal(rng, (3, 10)))
  chex.assert_shape(out, (3, 10))
  # 2 layers x 2 directions x GRU(8) (+ read-out Dense(16 -> 1))
  n_params = sum(p.size for p in jax.tree.leaves(params))
  # flax GRUCell: 3 input maps with biases, 3 recurrent maps, a bias on the candidate's recurrent map
  gru = lambda i: 3 * (i * 8 + 8 * 8) + 4 * 8  # noqa: E731
  assert n_params == 2 * gru(1) + 2 * gru(16) + 17


@pytest.mark.parametrize('name', sorted(data.FAMILIES))
def test_every_family_is_finite_and_varied(name):
  x = data.sample_family(jax.random.PRNGKey(0), name, 64, 16)
  chex.assert_shape(x, (64, 16))
  chex.assert_tree_all_finite(x)
  if name != 'fixed_ramp':
    assert float(jnp.std(x[:, 0])) > 0  # lists differ from each other


def test_tied_family_has_ties():
  x = np.asarray(data.sample_family(jax.random.PRNGKey(0), 'tied', 64, 16))
  assert np.mean([len(np.unique(row)) < 16 for row in x]) > 0.9


def test_sample_batch_smoothed_targets_are_expected_ranks_of_the_standardised_lists():
  x, smooth = data.sample_batch(jax.random.PRNGKey(0), 64, 8, 0.5)
  z = np.asarray(model_lib.robust_standardise(x), np.float64)
  closed = (0.5 + stats.norm.cdf((z[:, None, :] - z[:, :, None]) / (0.5 * np.sqrt(2))).sum(-1)) / 8
  np.testing.assert_allclose(smooth, closed, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(x, data.sample_batch(jax.random.PRNGKey(0), 64, 8)[0])


def test_sample_batch_ranks_and_freshness():
  f = jax.jit(data.sample_batch, static_argnums=(1, 2))
  x, r = f(jax.random.PRNGKey(0), 256, 8)
  chex.assert_shape((x, r), (256, 8))
  expected = np.stack([stats.rankdata(-row) for row in np.asarray(x)]) / 8
  np.testing.assert_allclose(r, expected, rtol=1e-6)
  x_again, _ = f(jax.random.PRNGKey(0), 256, 8)
  x_next, _ = f(jax.random.PRNGKey(1), 256, 8)
  np.testing.assert_array_equal(x, x_again)
  assert not np.allclose(x, x_next)
