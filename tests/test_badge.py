"""BADGE: gradient embeddings against their closed form, k-means++ seeding's properties."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from l2r_jax import strategies
from l2r_jax.strategies import badge


def test_gradient_embeddings_are_the_closed_form():
  # d CE(hW + b, y) / dW = h ⊗ (softmax(z) - onehot(y)), y the predicted class.
  r = np.random.default_rng(0)
  logits = r.normal(size=(6, 4)) * 2
  features = r.normal(size=(6, 5))
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  residual = p - np.eye(4)[np.argmax(logits, -1)]
  want = (features[:, :, None] * residual[:, None, :]).reshape(6, -1)
  got = badge.gradient_embeddings(jnp.asarray(logits, jnp.float32),
                                  jnp.asarray(features, jnp.float32))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # A sure prediction has a (near) zero embedding: nothing to learn from its label.
  sure = badge.gradient_embeddings(jnp.array([[30.0, 0.0, 0.0]]), jnp.ones((1, 2)))
  assert float(jnp.abs(sure).max()) < 1e-6


def test_kmeans_plus_plus_starts_with_the_longest_and_samples_by_squared_distance():
  points = jnp.array([[10.0], [0.0], [7.0], [9.0]])
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  picks = np.asarray(jax.vmap(lambda k: badge.kmeans_plus_plus(points, 2, k))(keys))
  assert (picks[:, 0] == 0).all()                           # |10| is the longest
  # Squared distances to 10: 100, 9, 1.
  counts = np.bincount(picks[:, 1], minlength=4)[1:]
  expected = np.array([100.0, 9.0, 1.0]) / 110 * len(keys)
  assert stats.chisquare(counts, expected).pvalue > 1e-4, counts


def test_kmeans_plus_plus_picks_distinct_points_and_duplicates_last():
  # 20 distinct locations, the first 5 twice (points 20-24 copy 0-4). Once one of a pair is
  # chosen the other is at distance 0: it may come only after all 20 locations are covered.
  r = np.random.default_rng(1)
  unique = r.normal(size=(20, 3))
  points = jnp.asarray(np.concatenate([unique, unique[:5]]), jnp.float32)
  location = np.concatenate([np.arange(20), np.arange(5)])
  for seed in range(5):
    got = np.asarray(badge.kmeans_plus_plus(points, 25, jax.random.PRNGKey(seed)))
    assert sorted(got.tolist()) == list(range(25))
    assert len(set(location[got[:20]].tolist())) == 20


def test_badge_refuses_other_tasks():
  with pytest.raises(ValueError, match="'badge' does not apply to the 'pose' task: its embeddings "
                                       'are gradients of a cross-entropy'):
    strategies.check_task('badge', 'pose')
