"""TypiClust and ProbCover against hand-made geometry and numpy references."""
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax.strategies import typicality


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours():
  points = np.array([[0.0], [1.0], [3.0], [7.0]])
  # Nearest two of 0: 1 and 3 (mean 2); of 1: 0 and 3 (1.5); of 3: 1 and 0 (2.5); of 7: 3, 1 (5).
  np.testing.assert_allclose(typicality.typicality(points, 2), [1 / 2, 1 / 1.5, 1 / 2.5, 1 / 5])


def test_pairwise_distances_match_numpy():
  r = np.random.default_rng(0)
  points = r.normal(size=(30, 5)) + 100.0
  want = ((points[:, None] - points[None]) ** 2).sum(-1)
  np.testing.assert_allclose(typicality.pairwise_sq_distances(points), want, atol=1e-8)


def _blobs(r, centres, n, spread=0.1):
  return np.concatenate([c + spread * r.normal(size=(n, len(c))) for c in centres])


def test_typiclust_takes_the_densest_point_of_each_uncovered_cluster():
  # Three well-separated blobs of 30; the labeled set sits in blob 0. With budget 2 the clusters
  # are 1 + 2 = 3, the blobs: the picks are blob 1's and blob 2's most typical points (the
  # largest clusters first among the uncovered), not blob 0's.
  r = np.random.default_rng(1)
  centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
  candidates = _blobs(r, centres, 30)
  labeled = centres[:1] + 0.01
  embedding = np.concatenate([labeled, candidates])
  picks = typicality.typiclust_picks(embedding, 1, 2, seed=0, max_clusters=500,
                                     min_cluster_size=5, k_neighbours=20)
  blob = picks // 30
  assert sorted(blob.tolist()) == [1, 2]
  for p in picks:
    members = np.arange(30) + 30 * (p // 30)
    typical = typicality.typicality(candidates[members], 15)
    assert p == members[np.argmax(typical)]


def _numpy_max_coverage(points, num_labeled, radius, budget):
  d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
  adjacency = d <= radius
  covered = adjacency[:, :num_labeled].any(1)
  available = np.arange(len(points)) >= num_labeled
  picks = []
  for _ in range(budget):
    gain = np.where(available, (adjacency & ~covered[None, :]).sum(1), -1)
    i = int(np.argmax(gain))
    assert gain[i] > 0
    picks.append(i - num_labeled)
    covered |= adjacency[i]
    available[i] = False
  return picks


def test_probcover_is_greedy_max_coverage():
  r = np.random.default_rng(2)
  points = r.uniform(size=(60, 2))
  want = _numpy_max_coverage(points, 5, 0.15, 8)
  got = typicality.max_coverage(jnp.asarray(points, jnp.float32), 5, 0.15, 8,
                                jax.random.PRNGKey(0))
  assert np.asarray(got).tolist() == want


def test_probcover_covers_the_uncovered_blob_first_and_then_picks_at_random():
  r = np.random.default_rng(3)
  centres = np.array([[0.0, 0.0], [5.0, 0.0]])
  points = np.concatenate([centres[:1], _blobs(r, centres, 10)])   # 1 labeled, in blob 0
  got = np.asarray(typicality.max_coverage(jnp.asarray(points, jnp.float32), 1, 1.0, 3,
                                           jax.random.PRNGKey(0)))
  assert 10 <= got[0] < 20                    # blob 1, the only uncovered samples
  assert len(set(got.tolist())) == 3          # then everything is covered: distinct random picks


def test_the_radius_is_the_largest_pure_one():
  # Two blobs 10 apart, spread 0.1: balls up to ~9.5 hold only their own blob.
  r = np.random.default_rng(4)
  points = _blobs(r, np.array([[0.0, 0.0], [10.0, 0.0]]), 40)
  labels = np.repeat([0, 1], 40)
  purity = typicality.ball_purity(points, labels, np.array([1.0, 9.0, 11.0]))
  np.testing.assert_allclose(purity, [1.0, 1.0, 0.0])
  radius = typicality.choose_radius(points, 2, 0.95, seed=0)
  assert 1.0 < radius < 10.5
