"""BADGE (Ash, Zhang, Krishnamurthy, Langford & Agarwal, ICLR 2020): diverse uncertain samples by
k-means++ seeding on gradient embeddings.

A sample's embedding is the gradient of its cross-entropy *under the predicted label* ``ŷ``
with respect to the weights of the classifier's last (linear) layer: long where the model is
unsure (``p`` far from one-hot), pointing where its features do. The logits are ``z = h W + b``
with ``h`` the pooled last-block features (``PoolOutputs.embedding``, the head's input in
``cnn1d``, ``cnn2d`` and ``resnet18``), so the gradient at ``W`` is that of ``CE(z + h Δ, ŷ)``
at ``Δ = 0``: computed here by ``jax.grad`` of the loss, vmapped over samples (its closed form
is ``h ⊗ (p - onehot(ŷ))``, the tests' reference). The batch is seeded as k-means++ (Arthur &
Vassilvitskii 2007) does, as BADGE's code does: the longest embedding first, then each next one
drawn with probability proportional to its squared distance to the nearest one chosen.

Classification only. Memory: ``subset x features x classes`` floats for the embeddings; cost
``budget x subset x features x classes``, linear in the subset.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from l2r_jax.strategies import base
from l2r_jax.strategies import geometry


def gradient_embeddings(logits: chex.Array, features: chex.Array) -> chex.Array:
  """``[n, D * C]``: each sample's gradient of its cross-entropy under its predicted label with
  respect to the last layer's ``[D, C]`` weights, flattened, from its logits ``[n, C]`` and the
  layer's input ``[n, D]``."""
  chex.assert_rank((logits, features), 2)

  def loss(delta, z, h):
    predicted = jax.lax.stop_gradient(jnp.argmax(z))
    return optax.softmax_cross_entropy_with_integer_labels(z + h @ delta, predicted)

  zero = jnp.zeros((features.shape[1], logits.shape[1]), logits.dtype)
  grads = jax.vmap(jax.grad(loss), (None, 0, 0))(zero, logits, features)
  return grads.reshape(len(logits), -1)


def kmeans_plus_plus(points: chex.Array, budget: int, rng: chex.PRNGKey) -> chex.Array:
  """``[budget]`` distinct indices into ``points`` (``[n, d]``): the longest point first, then
  each next drawn with probability proportional to its squared distance to the nearest chosen
  one (points at distance 0 only once every other is chosen). Points with a NaN or an infinity
  are refused, and very large or small ones rescaled (:func:`geometry.well_scaled`)."""
  points, = geometry.well_scaled('badge', [('gradient embeddings', points)])
  return _kmeans_plus_plus(jnp.asarray(points), budget, rng)


@functools.partial(jax.jit, static_argnames=('budget',))
def _kmeans_plus_plus(points: chex.Array, budget: int, rng: chex.PRNGKey) -> chex.Array:
  n = points.shape[0]
  points = points.astype(jnp.float32)
  first = geometry.first_argmax(jnp.sum(points**2, -1))
  # Distances unchanged; float32 kept near the origin.
  points = points - geometry.origin(points)
  sq_norms = jnp.sum(points**2, -1)
  taken = jnp.zeros((n,), bool).at[first].set(True)
  min_d = geometry.sq_dist(points, sq_norms, points[first][None])[:, 0]

  def pick(k, carry):
    min_d, taken, chosen = carry
    logits = jnp.where(taken, -jnp.inf,
                       jnp.where(min_d > 0, jnp.log(jnp.where(min_d > 0, min_d, 1.0)), -1e30))
    i = jax.random.categorical(jax.random.fold_in(rng, k), logits)
    min_d = jnp.minimum(min_d, geometry.sq_dist(points, sq_norms, points[i][None])[:, 0])
    return min_d, taken.at[i].set(True), chosen.at[k].set(i)

  chosen = jnp.zeros((budget,), jnp.int32).at[0].set(first)
  return jax.lax.fori_loop(1, budget, pick, (min_d, taken, chosen))[2]


@base.register('badge', tasks=('classification',),
               refusal='its embeddings are gradients of a cross-entropy under a predicted class.')
def select_badge(state, pool_subset, budget, rng):
  outputs = state.infer(np.asarray(pool_subset))
  embeddings = gradient_embeddings(jnp.asarray(outputs.prediction, jnp.float32),
                                   jnp.asarray(outputs.embedding, jnp.float32))
  return np.asarray(pool_subset)[np.asarray(kmeans_plus_plus(embeddings, budget, rng))]
