"""TypiClust and ProbCover against hand-made geometry and numpy references."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import spatial

from configs import synthetic_crowd
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax.strategies import typicality
import smoke


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


def test_the_pair_distances_match_scipy_whatever_the_chunk():
  r = np.random.default_rng(5)
  points = r.normal(size=(50, 3)) + 100.0   # far from the origin: centred before the products
  distances = spatial.distance.cdist(points, points)
  labels = r.integers(0, 3, 50)
  want = np.min(np.where(labels[:, None] != labels[None], distances, np.inf), 1)
  for chunk in (1024, 8):   # every row at once, and 8 at a time
    pairs, nearest_other = typicality._pair_distances(points, labels, chunk=chunk)
    np.testing.assert_allclose(pairs, spatial.distance.pdist(points), rtol=1e-9)
    np.testing.assert_allclose(nearest_other, want, rtol=1e-9)


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


def test_the_pretrained_embedding_is_the_starting_backbones_whatever_the_training(tmp_path):
  """``config.typiclust.embedding='pretrained'``: the crowd stand-in's target starting from the
  shipped backbone embeds the pool; a target moved by training (here its parameters perturbed)
  makes the same picks with it, other picks with the target's own embedding."""
  config = smoke.override(synthetic_crowd.get_config('pretrained_smoke'),
                          strategies=('typiclust',), **{'typiclust.embedding': 'pretrained',
                                                        'al.subset': 40})
  exp = experiment.make_experiment(config)
  start = experiment.initial_train_state(exp, 'typiclust', jax.random.PRNGKey(0))
  moved = start.replace(target=start.target.replace(params=jax.tree.map(
      lambda p: p + 0.5 * jax.random.normal(jax.random.PRNGKey(1), p.shape), start.target.params)))
  labeled = np.arange(8)
  picks = {}
  for embedding in ('pretrained', 'target'):
    exp = exp._replace(config=smoke.override(exp.config, **{'typiclust.embedding': embedding}))
    for name, state in (('start', start), ('moved', moved)):
      al = experiment.ALState('typiclust', 0, 0, labeled, jax.random.PRNGKey(2), state, [])
      picks[embedding, name] = experiment.select(exp, al, 4)[0]
  np.testing.assert_array_equal(picks['pretrained', 'start'], picks['pretrained', 'moved'])
  np.testing.assert_array_equal(picks['pretrained', 'start'], picks['target', 'start'])
  assert not np.array_equal(picks['target', 'start'], picks['target', 'moved'])


def test_the_pretrained_embedding_needs_pretrained_weights():
  config = smoke.mnist1d(strategies=('probcover',), **{'probcover.embedding': 'pretrained'})
  with pytest.raises(errors.ConfigError, match="config.probcover.embedding='pretrained' embeds "
                                               "with the target's pretrained backbone, and "
                                               'config.model.pretrained is None'):
    experiment.make_experiment(config)
  config = smoke.mnist1d(strategies=('typiclust',), **{'typiclust.embedding': 'simclr'})
  with pytest.raises(errors.ConfigError, match=r"config.typiclust.embedding='simclr': choose one "
                                               r"of \('target', 'pretrained'\)"):
    experiment.make_experiment(config)
