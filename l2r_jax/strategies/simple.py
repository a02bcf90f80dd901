"""Random, the uncertainty strategies (entropy, least confidence, margin), highest-predicted-loss
selection (LL4AL and L2R-AL), and the diagnostic highest-true-loss selection."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax import losses
from l2r_jax.models import loss_modules
from l2r_jax.strategies import base


@base.register('random')
def select_random(state, pool_subset, budget, rng):
  del state
  return np.asarray(pool_subset)[np.asarray(jax.random.permutation(rng, len(pool_subset)))[:budget]]


def softmax_entropy(logits: chex.Array, axis=-1) -> chex.Array:
  """Entropy (nats) of ``softmax(logits)`` along ``axis``. A class of probability zero (a logit
  of ``-inf``, or one far below the rest) adds its limit, 0, not ``0 * -inf``; a NaN logit (or
  ``+inf``) gives NaN, which a ranking refuses, not an entropy of 0."""
  logp = jax.nn.log_softmax(logits, axis=axis)
  p = jnp.exp(logp)
  return jnp.sum(jnp.where(p == 0, 0.0, -p * logp), axis=axis)


def prediction_entropy(prediction: chex.Array) -> chex.Array:
  """Per-sample uncertainty: the class entropy of logits ``[n, C]``; for maps ``[n, H, W, K]``, the
  entropy of the softmax over each map's pixels, averaged over the ``K`` maps."""
  if prediction.ndim == 2:
    return softmax_entropy(prediction)
  n, k = prediction.shape[0], prediction.shape[-1]
  per_map = softmax_entropy(jnp.moveaxis(prediction, -1, 1).reshape(n, k, -1))
  return per_map.mean(-1)


@base.register_scores('entropy')
def entropy_scores(state, pool_subset, rng):
  del rng
  return np.asarray(prediction_entropy(jnp.asarray(state.infer(pool_subset).prediction)))


def least_confidence(prediction: chex.Array) -> chex.Array:
  """Per-sample uncertainty ``1 - max_c p(c)`` of logits ``[n, C]``; for heatmaps
  ``[n, H, W, K]``, ``1 -`` the peak of the softmax over each map's pixels (how unsure the model
  is of the joint's location), averaged over the ``K`` maps."""
  if prediction.ndim == 2:
    return 1.0 - jnp.max(jax.nn.softmax(prediction, -1), -1)
  n, k = prediction.shape[0], prediction.shape[-1]
  per_map = jax.nn.softmax(jnp.moveaxis(prediction, -1, 1).reshape(n, k, -1), -1)
  return (1.0 - jnp.max(per_map, -1)).mean(-1)


def top_two_margin(logits: chex.Array) -> chex.Array:
  """``p(first) - p(second)`` of ``softmax(logits)`` ``[n, C]``, the two likeliest classes:
  small where the model hesitates between two."""
  top2 = jax.lax.top_k(jax.nn.softmax(logits, -1), 2)[0]
  return top2[:, 0] - top2[:, 1]


@base.register_scores('least_confidence', tasks=('classification', 'pose'),
               refusal='a density map is not a distribution over locations, so its peak is no confidence.')
def least_confidence_scores(state, pool_subset, rng):
  del rng
  return np.asarray(least_confidence(jnp.asarray(state.infer(pool_subset).prediction)))


@base.register_scores('margin', tasks=('classification',),
               refusal='its margin is between the two likeliest classes; over a map\'s pixels the '
                       'two likeliest are neighbours of one peak, so the margin says nothing.')
def negative_margin_scores(state, pool_subset, rng):
  """Minus the margin: the samples whose two likeliest classes are closest are queried."""
  del rng
  return -np.asarray(top_two_margin(jnp.asarray(state.infer(pool_subset).prediction)))


def predicted_loss_scores(state, pool_subset, rng):
  del rng
  outputs = state.infer(pool_subset)
  if outputs.predicted_loss is None:
    raise ValueError('This strategy queries by predicted loss, but the run has no '
                     'loss-prediction module.')
  return np.asarray(outputs.predicted_loss)


# The loss-based strategies: each one registration of the selection above with its loss module.
base.register_scores('l2r', loss_module=base.LossModule(
    loss_modules.L2RLossModule, losses.LISTWISE, isolated=True))(predicted_loss_scores)
base.register_scores('ll4al', loss_module=base.LossModule(
    loss_modules.LL4ALLossModule, losses.PAIRWISE, isolated=False))(predicted_loss_scores)
# The paper's Fig. 5 ablation, 'Rank-all-features': LL4AL's module on every stage's features,
# trained by L2R-AL's listwise loss and isolated as L2R-AL's.
base.register_scores('l2r_all_features', loss_module=base.LossModule(
    loss_modules.LL4ALLossModule, losses.LISTWISE, isolated=True))(predicted_loss_scores)


@base.register_scores('oracle_loss', reads_labels=True)
def true_loss_scores(state, pool_subset, rng):
  """The samples with the highest *true* loss under the current target: what LL4AL and L2R-AL
  would query with a perfect loss ranking. A diagnostic that reads the labels (it separates the
  quality of a predicted ranking from the value of querying high-loss samples), not a strategy
  for real labeling."""
  del rng
  if state.true_loss is None:
    raise ValueError('oracle_loss needs the true losses of the pool (SelectionState.true_loss), '
                     'which only the driver can give.')
  return np.asarray(state.true_loss(pool_subset))
