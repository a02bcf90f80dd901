"""TypiClust (Hacohen, Dekel & Weinshall, ICML 2022) and ProbCover (Yehuda, Dekel, Hacohen &
Weinshall, NeurIPS 2022): label what is typical of the data, and what covers it, for small
budgets.

Both read an embedding of the labeled set and the pool subset, ``config.<name>.embedding``:
``'target'`` (the default), the pooled last-block features of the model being trained
(``PoolOutputs.embedding``), so early cycles embed with a model trained on few labels; or
``'pretrained'``, the same features of the target as it starts, its backbone the weights of
``config.model.pretrained`` (ImageNet's for the paper configs, a shipped backbone for the offline
stand-ins), which no training moves. Their papers embed with a self-supervised model (SimCLR,
SCAN, DINO) trained on the pool beforehand: the pretrained backbone is this project's nearest
equivalent. Both work for every task.

Both unit-normalise the embeddings first, as their authors' code loads its features.
docs/strategies.md says how both follow that code (avihu111/TypiClust, which also holds
ProbCover), and where and by how much they depart from it.

* ``typiclust``: the labeled set and the subset are clustered into ``|labeled| + budget``
  clusters (at most ``config.typiclust.max_clusters``; scikit-learn's ``KMeans``, beyond 50
  clusters ``MiniBatchKMeans``). The clusters of more than ``min_cluster_size`` samples are
  ordered once, the fewest labeled members first, then the largest, and visited in turn, round
  after round; each visit picks the cluster's most typical unlabeled member, typicality being
  the inverse of the mean squared distance to its ``min(k_neighbours, m // 2)`` nearest
  neighbours among the cluster's ``m`` unlabeled (and unpicked) members.
* ``probcover``: every sample covers the samples closer than ``radius``; greedily, the candidate
  that covers the most samples not yet covered (by the labeled set or earlier picks), ties to
  the lowest index; once everything is covered, the rest at random. ``radius`` 0 picks it as the
  paper does: the largest radius at which at least ``purity`` of the samples have balls holding
  only their own k-means cluster (``num_outputs`` clusters), computed exactly from each sample's
  distance to its nearest sample of another cluster. The coverage graph is dense: memory
  ``(|labeled| + |subset|)²`` bytes and as much time over all picks, the one strategy here whose
  cost is quadratic in the subset.
"""
import functools
import math
from typing import Tuple

import jax
import numpy as np

from l2r_jax import numerics
from l2r_jax.strategies import base
from l2r_jax.strategies import geometry


EMBEDDINGS = ('target', 'pretrained')
# Each option's rule: (test, what it must be).
_INTEGER = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
_RULES = {
    'max_clusters': (lambda v: _INTEGER(v) and v >= 1, 'an integer >= 1'),
    'min_cluster_size': (lambda v: _INTEGER(v) and v >= 0,
                         'an integer >= 0 (clusters of at most this many are left out)'),
    'k_neighbours': (lambda v: _INTEGER(v) and v >= 1, 'an integer >= 1'),
    'radius': (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
               and math.isfinite(v) and v >= 0, 'a number >= 0 (0: chosen by purity)'),
    'purity': (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1,
               'a fraction in (0, 1]'),
    'clusters': (lambda v: _INTEGER(v) and v != 1 and v >= 0,
                 "0 (the model's number of outputs) or an integer >= 2"),
}


def _check(name: str, config) -> None:
  options = base.options_with_defaults(name, config.get(name))
  for field, (valid, what) in _RULES.items():
    if field in options and not valid(options[field]):
      raise ValueError(f'config.{name}.{field} must be {what}, got {options[field]!r}.')
  if options.embedding not in EMBEDDINGS:
    raise ValueError(f'config.{name}.embedding={options.embedding!r}: choose one of '
                     f'{EMBEDDINGS}.')
  if options.embedding == 'pretrained' and not config.model.get('pretrained'):
    raise ValueError(f"config.{name}.embedding='pretrained' embeds with the target's pretrained "
                     'backbone, and config.model.pretrained is None: name the weights (e.g. '
                     "'imagenet', 'synthetic_shapes'), or use the embedding 'target'.")


def _embeddings(state, pool_subset, embedding: str) -> Tuple[np.ndarray, int, int]:
  """The labeled samples' then the subset's embeddings (float64; ``embedding``: see the module's
  docstring), how many are labeled, and the model's number of outputs."""
  labeled = np.asarray(state.labeled)
  rows = np.concatenate([labeled, np.asarray(pool_subset)]).astype(np.int64)
  if embedding == 'pretrained':
    if state.infer_pretrained is None:
      raise ValueError("The embedding 'pretrained' needs the target's pretrained backbone "
                       '(SelectionState.infer_pretrained, set with config.model.pretrained).')
    outputs = state.infer_pretrained(rows)
  else:
    outputs = state.infer(rows)
  # Distances here are float64: any finite float32 embedding is safe to square.
  numerics.check_outputs([('embeddings', outputs.embedding, numerics.TARGET_DIVERGED)], rows,
                         'pool samples')
  embedding = np.asarray(outputs.embedding, np.float64)
  return embedding, len(labeled), np.shape(outputs.prediction)[-1]


def unit_normalised(points: np.ndarray) -> np.ndarray:
  """``points`` scaled to unit Euclidean length (a zero row stays zero), as both authors' codes
  load their features."""
  points = np.asarray(points, np.float64)
  return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def kmeans_labels(points: np.ndarray, clusters: int, seed: int) -> np.ndarray:
  """Cluster of each point: scikit-learn's ``KMeans`` (10 initialisations) up to 50 clusters,
  ``MiniBatchKMeans`` (batches of 5,000, 3 initialisations) beyond, the authors' calls with the
  defaults of the scikit-learn they ran (1.0)."""
  from sklearn import cluster as sk_cluster  # pylint: disable=g-import-not-at-top  (a second)
  if clusters <= 50:
    model = sk_cluster.KMeans(clusters, n_init=10, random_state=seed)
  else:
    model = sk_cluster.MiniBatchKMeans(clusters, batch_size=5000, n_init=3, random_state=seed)
  return model.fit_predict(points)


def typicality(points: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
  """``1 / (1e-5 + mean squared distance to the k nearest other points)`` of each of ``points``
  (``[n, d]``, ``1 <= k < n``; the authors' typicality, on faiss's squared L2 distances), a
  chunk of rows at a time."""
  n = len(points)
  out = np.empty(n)
  for start in range(0, n, chunk):
    block = geometry.pairwise_sq_distances(points, slice(start, min(start + chunk, n)))
    block[np.arange(len(block)), np.arange(start, start + len(block))] = -1.0   # itself: first
    nearest = np.partition(block, k, axis=1)[:, :k + 1]                         # it and k others
    out[start:start + len(block)] = 1.0 / ((nearest.sum(1) + 1.0) / k + 1e-5)
  return out


def typiclust_picks(embedding: np.ndarray, num_labeled: int, budget: int, seed: int,
                    max_clusters: int, min_cluster_size: int, k_neighbours: int) -> np.ndarray:
  """``[budget]`` indices into the candidates (``embedding[num_labeled:]``), in pick order: the
  authors' selection (docs/strategies.md)."""
  points = unit_normalised(embedding)
  clusters = min(num_labeled + budget, max_clusters, len(points))
  labels = kmeans_labels(points, clusters, seed)
  sizes = np.bincount(labels, minlength=clusters)
  labeled_counts = np.bincount(labels[:num_labeled], minlength=clusters)
  # Fixed once: the fewest labeled members first, then the largest, then the lowest cluster id.
  order = np.lexsort((np.arange(clusters), -sizes, labeled_counts))
  cycle = order[sizes[order] > min_cluster_size]
  remaining = np.arange(len(points)) >= num_labeled
  picks, turn = [], 0
  for _ in range(budget):
    open_ = np.bincount(labels[remaining], minlength=clusters) > 0
    if not open_[cycle].any():          # only clusters left out remain: they join the cycle
      cycle, turn = order[open_[order]], 0
    while not open_[cycle[turn % len(cycle)]]:
      turn += 1
    members = np.flatnonzero((labels == cycle[turn % len(cycle)]) & remaining)
    turn += 1
    k = min(k_neighbours, len(members) // 2)
    best = members[np.argmax(typicality(points[members], k))] if k else members[0]
    picks.append(best - num_labeled)
    remaining[best] = False
  return np.asarray(picks)


@base.register('typiclust', check=functools.partial(_check, 'typiclust'))
def select_typiclust(state, pool_subset, budget, rng):
  options = base.options_with_defaults('typiclust', state.options)
  embedding, num_labeled, _ = _embeddings(state, pool_subset, options.embedding)
  seed = int(jax.random.randint(rng, (), 0, 2**31 - 1))
  picks = typiclust_picks(embedding, num_labeled, budget, seed, int(options.max_clusters),
                          int(options.min_cluster_size), int(options.k_neighbours))
  return np.asarray(pool_subset)[picks]


def nearest_other_cluster(points: np.ndarray, labels: np.ndarray,
                          chunk: int = 1024) -> np.ndarray:
  """``[n]``: each point's distance to its nearest point of another cluster (``inf`` if none),
  a chunk of rows at a time: memory ``chunk x n``, never ``n x n``."""
  out = np.empty(len(points))
  for start in range(0, len(points), chunk):
    stop = min(start + chunk, len(points))
    other = labels[start:stop, None] != labels[None]
    block = geometry.pairwise_sq_distances(points, slice(start, stop))
    out[start:stop] = np.sqrt(np.min(np.where(other, block, np.inf), 1))
  return out


def ball_purity(points: np.ndarray, labels: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """For each radius, the fraction of points whose open ball (distance ``< radius``) holds only
  points of their own cluster."""
  return _purity(nearest_other_cluster(points, labels), radii)


def _purity(nearest_other: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """:func:`ball_purity` from each point's distance to its nearest point of another cluster: a
  point is pure up to that distance (exclusive)."""
  return (nearest_other[None, :] >= radii[:, None]).mean(1)


def largest_pure_radius(nearest_other: np.ndarray, purity: float) -> float:
  """The largest radius at which at least ``purity`` of the balls are pure, exactly: the m-th
  largest distance to another cluster, m the fewest pure balls that make ``purity``."""
  n = len(nearest_other)
  m = next(m for m in range(int(np.floor(purity * n)), n + 1) if m / n >= purity)
  return float(np.sort(nearest_other)[::-1][max(m, 1) - 1])


def choose_radius(points: np.ndarray, clusters: int, purity: float, seed: int) -> float:
  """ProbCover's radius (its paper's choice): the largest at which at least ``purity`` of the
  points' balls hold only points of their own k-means cluster (``clusters`` of them)."""
  labels = kmeans_labels(points, min(clusters, len(points)), seed)
  return largest_pure_radius(nearest_other_cluster(points, labels), purity)


def coverage_graph(points: np.ndarray, radius: float, chunk: int = 1024) -> np.ndarray:
  """``bool [n, n]``: ``[i, j]`` where point ``j`` lies in point ``i``'s open ball (distance
  ``< radius``, as the authors' graph), a chunk of rows at a time."""
  graph = np.empty((len(points), len(points)), bool)
  for start in range(0, len(points), chunk):
    rows = slice(start, min(start + chunk, len(points)))
    graph[rows] = np.sqrt(geometry.pairwise_sq_distances(points, rows)) < radius
  return graph


def max_coverage(points: np.ndarray, num_labeled: int, radius: float, budget: int,
                 seed: int) -> np.ndarray:
  """ProbCover's greedy picks: ``[budget]`` indices into the candidates (``points[num_labeled:]``).
  Each pick is the candidate whose ball holds the most points not yet in a ball of the labeled
  set or an earlier pick (ties to the lowest index); once every point is covered, the rest are
  drawn at random (``seed``). Each point's gain is updated as points become covered: time
  ``n²`` over all picks, memory ``n²`` bytes."""
  graph = coverage_graph(points, radius)
  covered = graph[:num_labeled].any(0)
  gain = np.array([np.count_nonzero(row & ~covered) for row in graph])
  available = np.arange(len(points)) >= num_labeled
  rng = np.random.default_rng(seed)
  picks = []
  for _ in range(budget):
    i = int(np.argmax(np.where(available, gain, -1)))
    if gain[i] == 0:
      i = int(rng.choice(np.flatnonzero(available)))
    newly = graph[i] & ~covered
    gain -= np.count_nonzero(graph[:, newly], axis=1)
    covered |= newly
    available[i] = False
    picks.append(i - num_labeled)
  return np.asarray(picks)


@base.register('probcover', check=functools.partial(_check, 'probcover'))
def select_probcover(state, pool_subset, budget, rng):
  options = base.options_with_defaults('probcover', state.options)
  embedding, num_labeled, num_outputs = _embeddings(state, pool_subset, options.embedding)
  points = unit_normalised(embedding)
  seed_radius, seed_picks = (int(s) for s in jax.random.randint(rng, (2,), 0, 2**31 - 1))
  radius = float(options.radius)
  if radius <= 0:
    radius = choose_radius(points, int(options.clusters) or max(2, num_outputs),
                           float(options.purity), seed_radius)
  picks = max_coverage(points, num_labeled, radius, budget, seed_picks)
  return np.asarray(pool_subset)[picks]
