"""TypiClust and ProbCover against hand-made geometry and their authors' selections, written
here from their code's definitions (numpy, scipy, scikit-learn)."""
import jax
import numpy as np
import pytest
from scipy import spatial
from sklearn import cluster
from sklearn import datasets

from configs import synthetic_crowd
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import state as state_lib
from l2r_jax.strategies import geometry
from l2r_jax.strategies import typicality
import smoke


def test_typicality_is_the_inverse_mean_squared_distance_to_the_nearest_neighbours():
  points = np.array([[0.0], [1.0], [3.0], [7.0]])
  # Squared distances to the nearest two, as faiss's IndexFlatL2 gives them: of 0, 1 and 9 (mean
  # 5); of 1, 1 and 4 (2.5); of 3, 4 and 9 (6.5); of 7, 16 and 36 (26). The authors add 1e-5.
  np.testing.assert_allclose(typicality.typicality(points, 2, chunk=3),
                             1 / (np.array([5, 2.5, 6.5, 26]) + 1e-5))


def test_pairwise_distances_match_numpy():
  r = np.random.default_rng(0)
  points = r.normal(size=(30, 5)) + 100.0
  want = ((points[:, None] - points[None]) ** 2).sum(-1)
  np.testing.assert_allclose(geometry.pairwise_sq_distances(points), want, atol=1e-8)


def _blobs(r, centres, n, spread=0.1):
  return np.concatenate([c + spread * r.normal(size=(n, len(c))) for c in centres])


def _authors_kmeans(features, clusters, seed):
  # Their calls, with the defaults of their scikit-learn (1.0.2) spelled out.
  if clusters <= 50:
    return cluster.KMeans(clusters, n_init=10, random_state=seed).fit(features).labels_
  return cluster.MiniBatchKMeans(clusters, batch_size=5000, n_init=3,
                                 random_state=seed).fit(features).labels_


def _authors_typiclust(features, num_labeled, budget, seed, max_clusters=500, min_size=5,
                       k_nn=20):
  """TypiClust as avihu111/TypiClust deep-al/pycls/al/typiclust.py selects, from its definitions
  (numpy and scipy): unit-normalised features; clusters ordered once by (labeled count, -size),
  those of more than `min_size` kept and visited in turn; each visit takes the member of highest
  1 / (mean squared distance to its min(k_nn, m // 2) nearest + 1e-5) among the cluster's m
  unlabeled members."""
  features = features / np.linalg.norm(features, axis=1, keepdims=True)
  labels = _authors_kmeans(features, min(num_labeled + budget, max_clusters), seed)
  ids, sizes = np.unique(labels, return_counts=True)
  counts = np.bincount(labels[:num_labeled], minlength=len(ids))
  kept = [(counts[c], -sizes[c], c) for c in ids if sizes[c] > min_size]
  order = [c for _, _, c in sorted(kept)]
  labels = labels.copy()
  labels[:num_labeled] = -1
  selected = []
  for i in range(budget):
    members = np.flatnonzero(labels == order[i % len(order)])
    k = min(k_nn, len(members) // 2)
    d = spatial.distance.cdist(features[members], features[members], 'sqeuclidean')
    mean = np.sort(d, 1)[:, 1:k + 1].mean(1)
    best = members[np.argmax(1 / (mean + 1e-5))]
    selected.append(best - num_labeled)
    labels[best] = -1
  return selected


@pytest.mark.parametrize('num_labeled,budget,max_clusters', [
    (20, 30, 500),    # 50 clusters: KMeans
    (40, 30, 500),    # 70 clusters: MiniBatchKMeans
    (4, 20, 8)])      # 8 clusters for 20 picks: the visits go round the clusters again
def test_typiclust_is_the_authors_selection(num_labeled, budget, max_clusters):
  features, _ = datasets.make_blobs(400, n_features=16, centers=12, cluster_std=3.0,
                                    random_state=0)
  features = features + 5.0          # off the origin: unit normalisation moves them
  want = _authors_typiclust(features, num_labeled, budget, seed=7, max_clusters=max_clusters)
  got = typicality.typiclust_picks(features, num_labeled, budget, seed=7,
                                   max_clusters=max_clusters, min_cluster_size=5,
                                   k_neighbours=20)
  assert got.tolist() == want


def test_typiclust_takes_the_densest_point_of_each_uncovered_cluster():
  # Three well-separated blobs of 30 around (0, 0), (10, 0) and (0, 10), on the unit circle
  # after normalisation (moved off the origin first); the labeled set sits in blob 0. With
  # budget 2 the clusters are 1 + 2 = 3, the blobs: the picks are blob 1's and blob 2's most
  # typical points, not blob 0's.
  r = np.random.default_rng(1)
  centres = np.array([[20.0, 20.0], [30.0, 20.0], [20.0, 30.0]])
  candidates = _blobs(r, centres, 30)
  labeled = centres[:1] + 0.01
  picks = typicality.typiclust_picks(np.concatenate([labeled, candidates]), 1, 2, seed=0,
                                     max_clusters=500, min_cluster_size=5, k_neighbours=20)
  assert sorted((picks // 30).tolist()) == [1, 2]


def test_the_exhausted_clusters_are_passed_over():
  # Blobs of 6, 6 and 3 candidates, 15 picks: the authors' code fails once a cluster has no
  # unlabeled member left; here the visits pass it over, and the cluster of 3 (at most
  # min_cluster_size) joins once no other has a candidate left.
  r = np.random.default_rng(2)
  points = _blobs(r, np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0]]), 6)[:15]
  picks = typicality.typiclust_picks(points, 0, 15, seed=0, max_clusters=3, min_cluster_size=5,
                                     k_neighbours=20)
  assert sorted(picks.tolist()) == list(range(15))
  assert set(picks[:12].tolist()) == set(range(12))   # the clusters of 6 first


def _authors_radius(features, labels, purity):
  """The largest delta at which `purity` of the points' balls {x': |x' - x| < delta} hold only
  their own cluster. Purity changes only at the distances between points and falls as delta
  grows: the largest of those distances at which it holds, by bisection (scipy)."""
  d = spatial.distance.cdist(features, features)
  other = labels[:, None] != labels[None]
  pure = lambda delta: np.mean(~(other & (d < delta)).any(1)) >= purity  # noqa: E731
  candidates = np.unique(d)
  low, high = 0, len(candidates) - 1      # pure(candidates[low]); candidates[0] = 0
  while low < high:
    mid = (low + high + 1) // 2
    low, high = (mid, high) if pure(candidates[mid]) else (low, mid - 1)
  return candidates[low]


def _authors_probcover(features, num_labeled, delta, budget):
  """ProbCover as avihu111/TypiClust deep-al/pycls/al/prob_cover.py selects (numpy and scipy):
  edges x -> y where |x - y| < delta; remove the edges into the labeled set's covered points,
  then each time take the point of highest out-degree and remove the edges into what it
  covers."""
  x, y = np.nonzero(spatial.distance.cdist(features, features) < delta)
  keep = ~np.isin(y, y[np.isin(x, np.arange(num_labeled))])
  x, y = x[keep], y[keep]
  selected = []
  for _ in range(budget):
    degrees = np.bincount(x, minlength=len(features))
    cur = int(degrees.argmax())
    assert degrees[cur] > 0
    keep = ~np.isin(y, y[x == cur])
    x, y = x[keep], y[keep]
    selected.append(cur - num_labeled)
  return selected


def test_probcover_is_the_authors_selection():
  features, _ = datasets.make_blobs(300, n_features=8, centers=6, cluster_std=2.0,
                                    random_state=3)
  features = features / np.linalg.norm(features, axis=1, keepdims=True)
  labels = _authors_kmeans(features, 6, seed=1)
  delta = _authors_radius(features, labels, 0.95)
  assert typicality.choose_radius(features, 6, 0.95, seed=1) == pytest.approx(delta, rel=1e-12)
  want = _authors_probcover(features, 10, delta, 12)
  assert typicality.max_coverage(features, 10, delta, 12, seed=0).tolist() == want


def test_the_distances_to_another_cluster_match_scipy_whatever_the_chunk():
  r = np.random.default_rng(5)
  points = r.normal(size=(50, 3)) + 100.0   # far from the origin: centred before the products
  distances = spatial.distance.cdist(points, points)
  labels = r.integers(0, 3, 50)
  want = np.min(np.where(labels[:, None] != labels[None], distances, np.inf), 1)
  for chunk in (1024, 8):   # every row at once, and 8 at a time
    np.testing.assert_allclose(typicality.nearest_other_cluster(points, labels, chunk=chunk),
                               want, rtol=1e-9)


def test_probcover_covers_the_uncovered_blob_first_and_then_picks_at_random():
  r = np.random.default_rng(3)
  centres = np.array([[0.0, 0.0], [5.0, 0.0]])
  points = np.concatenate([centres[:1], _blobs(r, centres, 10)])   # 1 labeled, in blob 0
  got = typicality.max_coverage(points, 1, 1.0, 3, seed=0)
  assert 10 <= got[0] < 20                    # blob 1, the only uncovered samples
  assert len(set(got.tolist())) == 3          # then everything is covered: distinct random picks


def test_the_radius_is_the_largest_pure_one():
  # Two blobs 10 apart, spread 0.1: balls up to ~9.5 hold only their own blob.
  r = np.random.default_rng(4)
  points = _blobs(r, np.array([[0.0, 0.0], [10.0, 0.0]]), 40)
  labels = np.repeat([0, 1], 40)
  purity = typicality.ball_purity(points, labels, np.array([1.0, 9.0, 11.0]))
  np.testing.assert_allclose(purity, [1.0, 1.0, 0.0])
  # Hand-worked: distances to the other cluster 1, 2, 3, 4: 3 of 4 balls are pure up to 2.
  assert typicality.largest_pure_radius(np.array([3.0, 1.0, 4.0, 2.0]), 0.75) == 2.0
  assert typicality.largest_pure_radius(np.array([3.0, 1.0, 4.0, 2.0]), 0.76) == 1.0


@pytest.mark.parametrize('name,field,value,must', [
    ('typiclust', 'min_cluster_size', -1, 'an integer >= 0'),
    ('typiclust', 'k_neighbours', 0, 'an integer >= 1'),
    ('typiclust', 'max_clusters', 0, 'an integer >= 1'),
    ('probcover', 'purity', 0.0, r'a fraction in \(0, 1\]'),
    ('probcover', 'purity', 1.5, r'a fraction in \(0, 1\]'),
    ('probcover', 'radius', -0.5, 'a number >= 0'),
    ('probcover', 'clusters', 1, r"0 \(the model's number of outputs\) or an integer >= 2")])
def test_a_bad_option_is_refused_by_name(name, field, value, must):
  config = smoke.mnist1d(strategies=(name,), **{f'{name}.{field}': value})
  with pytest.raises(errors.ConfigError, match=rf'config.{name}.{field} must be {must}.*, got '):
    experiment.make_experiment(config)


def test_the_pretrained_embedding_is_the_starting_backbones_whatever_the_training(tmp_path):
  """``config.typiclust.embedding='pretrained'``: the crowd stand-in's target starting from the
  shipped backbone embeds the pool; a target moved by training (here its parameters perturbed)
  makes the same picks with it, other picks with the target's own embedding."""
  config = smoke.override(synthetic_crowd.get_config('pretrained_smoke'),
                          strategies=('typiclust',), **{'typiclust.embedding': 'pretrained',
                                                        'al.subset': 40})
  exp = experiment.make_experiment(config)
  start = state_lib.initial_train_state(exp, 'typiclust', jax.random.PRNGKey(0))
  moved = start.replace(target=start.target.replace(params=jax.tree.map(
      lambda p: p + 0.5 * jax.random.normal(jax.random.PRNGKey(1), p.shape), start.target.params)))
  labeled = np.arange(8)
  picks = {}
  for embedding in ('pretrained', 'target'):
    exp = exp._replace(config=smoke.override(exp.config, **{'typiclust.embedding': embedding}))
    for name, state in (('start', start), ('moved', moved)):
      al = state_lib.RunState('typiclust', 0, 0, labeled, jax.random.PRNGKey(2), state, [])
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
