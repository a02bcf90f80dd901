import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sorter
from l2r_jax import losses


def _exact_ranker(seq_len):
  return sorter.Ranker('exact', seq_len, sorter.descending_ranks)


def test_pairwise_margin_hand_worked():
  # pairs (0, 3) and (1, 2): predicted differences [2.5, -1.5], true differences [-3, -1] -> s = -1;
  # hinge: max(0, 1 + 2.5) = 3.5 and max(0, 1 - 1.5) = 0; mean 1.75.
  pred = jnp.array([3.0, 1.0, 2.5, 0.5])
  true = jnp.array([1.0, 2.0, 3.0, 4.0])
  np.testing.assert_allclose(losses.pairwise_margin_loss(pred, true), 1.75)
  np.testing.assert_allclose(losses.pairwise_margin_loss(pred, true, margin=0.0), 1.25)


def test_pairwise_margin_gradient_reaches_predictions_only():
  pred, true = jnp.array([3.0, 1.0, 2.5, 0.5]), jnp.array([1.0, 2.0, 3.0, 4.0])
  gp, gt = jax.grad(losses.pairwise_margin_loss, argnums=(0, 1))(pred, true)
  # only pair (0, 3) is inside the margin: d(1 + p0 - p3) / 2
  np.testing.assert_allclose(gp, [0.5, 0.0, 0.0, -0.5])
  np.testing.assert_array_equal(gt, 0.0)


def test_pairwise_margin_rejects_odd_batch():
  with pytest.raises(ValueError, match='even batch size'):
    losses.pairwise_margin_loss(jnp.zeros(5), jnp.zeros(5))


def test_listwise_loss_is_zero_for_a_perfect_ranker():
  true = jax.random.exponential(jax.random.PRNGKey(0), (16,))
  pred = 3.0 * true + 1.0  # same order
  assert float(losses.listwise_ranking_loss(pred, true, _exact_ranker(8))) == 0.0


def test_listwise_loss_ranks_each_list_separately():
  r = np.random.default_rng(0)
  pred, true = r.normal(size=12).astype(np.float32), r.normal(size=12).astype(np.float32)
  ranker = _exact_ranker(4)
  expected = np.mean([
      (stats.rankdata(-true[i:i + 4]) / 4 - stats.rankdata(-pred[i:i + 4]) / 4) ** 2
      for i in range(0, 12, 4)])
  np.testing.assert_allclose(losses.listwise_ranking_loss(pred, true, ranker), expected, rtol=1e-6)


def test_listwise_gradient_flows_to_scores_not_to_target_losses():
  ranker = sorter.make_soft_rank(8, regularization_strength=1.0)
  pred = jax.random.normal(jax.random.PRNGKey(1), (16,))
  true = jax.random.normal(jax.random.PRNGKey(2), (16,))
  gp, gt = jax.jit(jax.grad(lambda p, t: losses.listwise_ranking_loss(p, t, ranker),
                            argnums=(0, 1)))(pred, true)
  assert np.abs(np.asarray(gp)).sum() > 1e-4
  np.testing.assert_array_equal(gt, 0.0)


def test_listwise_loss_with_pretrained_gru():
  ranker = sorter.load_pretrained(seq_len=32)
  true = jax.random.exponential(jax.random.PRNGKey(3), (64,))
  good = float(losses.listwise_ranking_loss(2 * true, true, ranker))
  bad = float(losses.listwise_ranking_loss(-true, true, ranker))
  assert good < 1e-3 < 0.1 < bad
  gp = jax.grad(lambda p: losses.listwise_ranking_loss(p, true, ranker))(-true)
  assert np.isfinite(np.asarray(gp)).all() and np.abs(np.asarray(gp)).sum() > 0


def test_listwise_loss_rejects_batch_not_a_multiple_of_the_length():
  with pytest.raises(ValueError, match='multiple of 8'):
    losses.listwise_ranking_loss(jnp.zeros(12), jnp.zeros(12), _exact_ranker(8))
