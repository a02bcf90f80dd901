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

* ``typiclust``: the labeled set and the subset are clustered into ``|labeled| + budget``
  clusters (at most ``config.typiclust.max_clusters``; k-means, scikit-learn's ``KMeans`` or, for
  more than 50 clusters, ``MiniBatchKMeans``, as the authors' code does); clusters of fewer than
  ``min_cluster_size`` samples are left out while others remain. Each pick takes the cluster with
  the fewest labeled (and picked) members, the largest of those, and from it the candidate of
  highest typicality, the inverse of its mean distance to its ``k_neighbours`` nearest neighbours
  in the cluster (``min(k, cluster size // 2)``).
* ``probcover``: every sample covers the samples within ``radius`` of it (Euclidean, on
  unit-normalised embeddings, as the authors'); greedily, the candidate that covers the most
  samples not yet covered (by the labeled set or earlier picks), ties to the lowest index; once
  everything is covered, the rest at random. ``radius`` 0 picks it as the paper does: the largest
  of a grid of radii for which at least ``purity`` of the samples have balls holding only their
  own k-means cluster (``num_outputs`` clusters; the pairs' distances, 8 bytes each, computed a
  chunk of rows at a time). The coverage graph is dense: memory and time per pick
  ``(|labeled| + |subset|)²``, the one strategy here whose cost is quadratic in the subset.
"""
import functools
from typing import Tuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax.strategies import base
from l2r_jax.strategies.coreset import _first_argmax
from l2r_jax.strategies.coreset import _origin
from l2r_jax.strategies.coreset import _sq_dist


EMBEDDINGS = ('target', 'pretrained')


def _check(name: str, config) -> None:
  options = base.options_with_defaults(name, config.get(name))
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
  embedding = np.asarray(outputs.embedding, np.float64)
  if not np.isfinite(embedding).all():
    raise FloatingPointError('The target model embeds pool samples to non-finite values; it has '
                             'diverged.')
  return embedding, len(labeled), np.shape(outputs.prediction)[-1]


def kmeans_labels(points: np.ndarray, clusters: int, seed: int) -> np.ndarray:
  """Cluster of each point, by scikit-learn's k-means (mini-batch beyond 50 clusters)."""
  from sklearn import cluster as sk_cluster  # pylint: disable=g-import-not-at-top  (a second)
  if clusters <= 50:
    model = sk_cluster.KMeans(clusters, n_init=1, random_state=seed)
  else:
    model = sk_cluster.MiniBatchKMeans(clusters, n_init=1, batch_size=1024, random_state=seed)
  return model.fit_predict(points)


def pairwise_sq_distances(points: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
  """``[len(rows), n]`` squared Euclidean distances from ``points[rows]`` to every point (float64,
  by one matrix product of centred points: memory ``len(rows) x n``, not ``x d``)."""
  points = np.asarray(points, np.float64)
  points = points - points.mean(0)
  sq = (points**2).sum(1)
  return np.maximum(sq[rows, None] + sq[None, :] - 2 * points[rows] @ points.T, 0.0)


def typicality(points: np.ndarray, k: int) -> np.ndarray:
  """``1 / mean distance to the k nearest other points`` of each of ``points`` (``[n, d]``)."""
  distances = np.sqrt(pairwise_sq_distances(points))
  np.fill_diagonal(distances, -1.0)                # the point itself sorts first
  nearest = np.sort(distances, 1)[:, 1:k + 1]      # column 0: the point itself
  return 1.0 / (nearest.mean(1) + 1e-12)


def typiclust_picks(embedding: np.ndarray, num_labeled: int, budget: int, seed: int,
                    max_clusters: int, min_cluster_size: int, k_neighbours: int) -> np.ndarray:
  """``[budget]`` indices into the candidates (``embedding[num_labeled:]``), in pick order."""
  clusters = min(num_labeled + budget, max_clusters, len(embedding))
  labels = kmeans_labels(embedding, clusters, seed)
  sizes = np.bincount(labels, minlength=clusters)
  covered = np.bincount(labels[:num_labeled], minlength=clusters)
  remaining = np.zeros(len(embedding), bool)
  remaining[num_labeled:] = True
  score = np.full(len(embedding), -np.inf)
  for c in range(clusters):
    members = np.flatnonzero(labels == c)
    if len(members) > 1:
      score[members] = typicality(embedding[members], max(1, min(k_neighbours, len(members) // 2)))
    else:
      score[members] = 0.0
  picks = []
  for _ in range(budget):
    open_ = np.bincount(labels[remaining], minlength=clusters) > 0
    eligible = open_ & (sizes >= min_cluster_size)
    if not eligible.any():
      eligible = open_
    # The fewest labeled members first, then the largest cluster, then the lowest cluster id.
    order = np.lexsort((np.arange(clusters), -sizes, covered))
    c = next(c for c in order if eligible[c])
    members = np.flatnonzero((labels == c) & remaining)
    best = members[np.argmax(score[members])]
    picks.append(best - num_labeled)
    remaining[best] = False
    covered[c] += 1
  return np.asarray(picks)


@base.register('typiclust', check=functools.partial(_check, 'typiclust'))
def select_typiclust(state, pool_subset, budget, rng):
  options = base.options_with_defaults('typiclust', state.options)
  embedding, num_labeled, _ = _embeddings(state, pool_subset, options.embedding)
  seed = int(jax.random.randint(rng, (), 0, 2**31 - 1))
  picks = typiclust_picks(embedding, num_labeled, budget, seed, int(options.max_clusters),
                          int(options.min_cluster_size), int(options.k_neighbours))
  return np.asarray(pool_subset)[picks]


def ball_purity(points: np.ndarray, labels: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """For each radius, the fraction of points whose ball holds only points of their own
  cluster."""
  return _purity(_pair_distances(points, labels)[1], radii)


def _purity(nearest_other: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """:func:`ball_purity` from each point's distance to its nearest point of another cluster: a
  point is pure up to that distance (exclusive)."""
  return (nearest_other[None, :] >= radii[:, None]).mean(1)


def _pair_distances(points: np.ndarray, labels: np.ndarray,
                    chunk: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
  """Every pair's distance once (``[n (n - 1) / 2]``, float64, row by row of the upper triangle)
  and each point's distance to its nearest point of another cluster (``inf`` if none), computed a
  chunk of rows at a time: memory 8 bytes per pair plus ``chunk x n``, never ``n x n``."""
  n = len(points)
  pairs, nearest_other, at = np.empty(n * (n - 1) // 2), np.empty(n), 0
  for start in range(0, n, chunk):
    stop = min(start + chunk, n)
    block = pairwise_sq_distances(points, slice(start, stop))
    other = labels[start:stop, None] != labels[None]
    nearest_other[start:stop] = np.sqrt(np.min(np.where(other, block, np.inf), 1))
    for i in range(start, stop):
      row = block[i - start, i + 1:]
      pairs[at:at + len(row)] = np.sqrt(row)
      at += len(row)
  return pairs, nearest_other


@functools.partial(jax.jit, static_argnames=('budget',))
def max_coverage(points: chex.Array, num_labeled: int, radius: float, budget: int,
                 rng: chex.PRNGKey) -> chex.Array:
  """ProbCover's greedy picks: ``[budget]`` indices into the candidates (``points[num_labeled:]``)."""
  n = points.shape[0]
  points = points - _origin(points)
  sq_norms = jnp.sum(points**2, -1)
  adjacency = (_sq_dist(points, sq_norms, points) <= radius**2).astype(jnp.float32)   # [n, n]
  is_labeled = jnp.arange(n) < num_labeled
  covered = jnp.any(adjacency * is_labeled[None, :], 1)
  available = ~is_labeled

  def pick(k, carry):
    covered, available, chosen = carry
    gain = adjacency @ (~covered).astype(jnp.float32)
    gain = jnp.where(available, gain, -1.0)
    best = _first_argmax(gain)
    # Everything covered: the rest at random among the available.
    random = jax.random.categorical(jax.random.fold_in(rng, k),
                                    jnp.where(available, 0.0, -jnp.inf))
    i = jnp.where(gain[best] > 0, best, random)
    covered = covered | (adjacency[i] > 0)
    return covered, available.at[i].set(False), chosen.at[k].set(i - num_labeled)

  carry = (covered, available, jnp.zeros((budget,), jnp.int32))
  return jax.lax.fori_loop(0, budget, pick, carry)[2]


def choose_radius(points: np.ndarray, clusters: int, purity: float, seed: int) -> float:
  """The largest radius of a grid (40 from the 1st to the 50th percentile of the distances between
  points) at which at least ``purity`` of the balls are pure."""
  labels = kmeans_labels(points, clusters, seed)
  pairs, nearest_other = _pair_distances(points, labels)
  low, median = np.quantile(pairs, [0.01, 0.5], overwrite_input=True)
  radii = np.geomspace(max(low, 1e-6), median, 40)
  pure = _purity(nearest_other, radii) >= purity
  return float(radii[np.flatnonzero(pure)[-1]] if pure.any() else radii[0])


@base.register('probcover', check=functools.partial(_check, 'probcover'))
def select_probcover(state, pool_subset, budget, rng):
  options = base.options_with_defaults('probcover', state.options)
  embedding, num_labeled, num_outputs = _embeddings(state, pool_subset, options.embedding)
  embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
  rng_radius, rng_picks = jax.random.split(rng)
  radius = float(options.radius)
  if radius <= 0:
    clusters = int(options.clusters) or num_outputs
    radius = choose_radius(embedding, max(2, clusters), float(options.purity),
                           int(jax.random.randint(rng_radius, (), 0, 2**31 - 1)))
  picks = max_coverage(jnp.asarray(embedding, jnp.float32), num_labeled, radius, budget,
                       rng_picks)
  return np.asarray(pool_subset)[np.asarray(picks)]
