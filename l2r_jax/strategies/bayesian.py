"""BALD and BatchBALD: disagreement between Monte-Carlo dropout passes of the target model.

* ``bald`` (Houlsby et al. 2011; with MC dropout, Gal, Islam & Ghahramani 2017): the ``budget``
  samples of highest mutual information between the label and the model parameters,
  ``I(y; w | x) = H[mean_t p_t(y|x)] - mean_t H[p_t(y|x)]`` over ``T`` dropout passes ``p_t``.
* ``batchbald`` (Kirsch, van Amersfoort & Gal, NeurIPS 2019): the batch, built greedily, whose
  labels *jointly* say most about the parameters, ``I(y_1..y_b; w) = H(y_1..y_b) -
  sum_i E_w H(y_i | w)``. Near-duplicates that BALD would query together add little to the joint
  information, so the batch spreads out. As in the authors' code (batchbald_redux): the passes
  are consistent, pass ``t``'s dropout mask shared by every sample (a copy of a sample gets its
  predictions), so ``p(y_1..y_k) = mean_t prod_i p_t(y_i)`` is the joint under ``T`` sampled
  models; the joint entropy of the ``k`` chosen labels and a candidate's is enumerated exactly
  while ``C**k <= M`` (``M = config.batchbald.num_samples``), then estimated from ``M // T``
  label configurations ``c_m`` of the chosen samples drawn from each pass (Kirsch et al., sec.
  4.1): ``H(y_1..y_k, y) ~ -(1/M) sum_m sum_y [p(c_m, y) / p(c_m)] log p(c_m, y)``, error
  shrinking as 1/sqrt(M). The first pick is BALD's.

Both need ``config.model.dropout`` above 0 and class probabilities (classification). For the
dense tasks (heatmaps, density maps), ``mc_variance`` queries the highest predictive variance
over the passes, per pixel, averaged over the map (Kendall & Gal 2017's epistemic term). Memory:
``passes x subset x classes`` floats for the passes, and BatchBALD's ``M x chunk x classes`` per
candidate chunk, whatever the subset's size; its cost is ``budget x M x passes x subset x
classes``, linear in the subset.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax.strategies import base
from l2r_jax.strategies import geometry

_REFUSAL = ('it measures disagreement between the class probabilities of dropout passes; '
            'the maps of this task have none.')


def _entropy(log_probs: chex.Array, axis: int = -1) -> chex.Array:
  """Entropy (nats) along ``axis`` of the distributions whose logarithms are ``log_probs``."""
  return -jnp.sum(jnp.where(log_probs > -jnp.inf, jnp.exp(log_probs) * log_probs, 0.0), axis)


def mutual_information(log_probs: chex.Array) -> chex.Array:
  """``[n]`` BALD scores from ``[n, T, C]`` per-pass log-probabilities: the entropy of the mean
  prediction minus the mean of the passes' entropies."""
  chex.assert_rank(log_probs, 3)
  mean = jax.nn.logsumexp(log_probs, axis=1) - jnp.log(log_probs.shape[1])
  return _entropy(mean) - _entropy(log_probs).mean(1)


def max_enumerated(num_classes: int, num_samples: int) -> int:
  """The most chosen samples whose ``num_classes ** k`` label configurations BatchBALD enumerates
  within ``num_samples`` rows (``k >= 0``)."""
  if num_classes < 2:                 # one configuration, however many are chosen
    return num_samples
  k = 0
  while num_classes**(k + 1) <= num_samples:
    k += 1
  return k


@functools.partial(jax.jit, static_argnames=('budget', 'num_samples', 'chunk'))
def batchbald(log_probs: chex.Array, budget: int, rng: chex.PRNGKey, num_samples: int,
              chunk: int = 256) -> chex.Array:
  """BatchBALD's greedy batch: ``[budget]`` distinct indices into ``log_probs`` (``[n, T, C]``
  per-pass log-probabilities), in the order picked; ties to the lowest index.

  The joint entropy of the ``k`` chosen labels and a candidate's is exact while ``C**k <=
  num_samples`` (every configuration enumerated), then estimated from ``T * (num_samples // T)``
  configurations, ``num_samples // T`` drawn from each pass (docs/strategies.md)."""
  chex.assert_rank(log_probs, 3)
  n, passes, num_classes = log_probs.shape
  probs = jnp.exp(log_probs)
  conditional = _entropy(log_probs).mean(1)                       # E_w H(y | w), [n]
  padded = jnp.concatenate([probs, jnp.zeros((-n % chunk, *probs.shape[1:]))])
  chunks = padded.reshape(-1, chunk, *probs.shape[1:])
  row = jnp.arange(num_samples)
  per_pass = max(1, num_samples // passes)
  config_pass = jnp.minimum(row // per_pass, passes - 1)         # stratified: per_pass each
  num_drawn = min(num_samples, per_pass * passes)
  is_drawn = row < num_drawn
  max_exact = max_enumerated(num_classes, num_samples)

  def joint_entropy(weights, row_weights):
    """``[n]``: H(chosen labels, y_x) for every candidate, up to a constant:
    ``-sum_m row_weights[m] sum_y p(c_m, y) log p(c_m, y)``, ``weights[m, t]`` being ``p_t(c_m)``
    up to a factor of configuration ``m``'s own."""

    def one_chunk(chunk_probs):                                    # [chunk, T, C]
      joint = jnp.einsum('mt,ntc->mnc', weights, chunk_probs) / passes   # p(c_m, y)
      terms = jnp.where(joint > 0, joint * jnp.log(jnp.where(joint > 0, joint, 1.0)), 0.0)
      return -jnp.einsum('m,mnc->n', row_weights, terms)

    return jax.lax.map(one_chunk, chunks).reshape(-1)[:n]

  def pick(k, carry):
    enumerated, drawn, taken, chosen = carry
    exact = k <= max_exact
    # Drawn configurations weigh 1 / (M p(c_m)): an importance-sampled mean over p(c_m).
    row_weights = jnp.where(exact, 1.0, is_drawn / (num_drawn * drawn.mean(1)))
    weights = jnp.where(exact, enumerated, drawn)
    score = jnp.where(taken, -jnp.inf, joint_entropy(weights, row_weights) - conditional)
    i = geometry.first_argmax(score)
    # Row r of the enumeration extends row r // C by label r % C; rows past C**(k+1) stay 0.
    enumerated = enumerated[row // num_classes] * probs[i][:, row % num_classes].T
    # Each drawn configuration's label of the new member, from its own pass.
    label = jax.random.categorical(jax.random.fold_in(rng, k), log_probs[i][config_pass])
    drawn = drawn * probs[i][:, label].T                           # [M, T]
    # A configuration's constant factor adds the same to every candidate's estimate: dropped.
    drawn = drawn / jnp.max(drawn, 1, keepdims=True)
    return enumerated, drawn, taken.at[i].set(True), chosen.at[k].set(i)

  first = jnp.zeros((num_samples, passes)).at[0].set(1.0)        # no label yet: one configuration
  carry = (first, jnp.ones((num_samples, passes)), jnp.zeros((n,), bool),
           jnp.zeros((budget,), jnp.int32))
  return jax.lax.fori_loop(0, budget, pick, carry)[3]


# The strategies that read Monte-Carlo dropout passes (SelectionState.sample_predictions).
MONTE_CARLO = ('bald', 'batchbald', 'mc_variance')


def _check(name: str, config) -> None:
  options = base.options_with_defaults(name, config.get(name))
  for field in ('passes', 'num_samples'):
    value = options.get(field, 2)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
      raise ValueError(f'config.{name}.{field} must be an integer >= 2, got {value!r}.')
  if options.get('num_samples', options.passes) < options.passes:
    raise ValueError(f'config.{name}.num_samples={options.num_samples} is fewer than '
                     f'config.{name}.passes={options.passes}: its label configurations are drawn '
                     'num_samples // passes from each pass. Raise num_samples (default 1000) or '
                     'lower passes.')
  if not config.model.get('dropout', 0.0):
    raise ValueError('config.model.dropout=0: every Monte-Carlo pass would be the same model, '
                     'so no sample would show disagreement. Set it above 0 (0.1 to 0.5 is '
                     'usual; it applies to every strategy of the experiment).')


def _log_probs(state, pool_subset, passes: int, rng) -> chex.Array:
  if state.sample_predictions is None:
    raise ValueError('BALD needs Monte-Carlo predictions (SelectionState.sample_predictions).')
  logits = state.sample_predictions(np.asarray(pool_subset), passes, rng)
  return jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), -1)


@base.register_scores('bald', tasks=('classification',), refusal=_REFUSAL,
                      check=functools.partial(_check, 'bald'))
def bald_scores(state, pool_subset, rng):
  options = base.options_with_defaults('bald', state.options)
  return np.asarray(mutual_information(_log_probs(state, pool_subset, int(options.passes), rng)))


@base.register('batchbald', tasks=('classification',), refusal=_REFUSAL,
               check=functools.partial(_check, 'batchbald'))
def select_batchbald(state, pool_subset, budget, rng):
  options = base.options_with_defaults('batchbald', state.options)
  rng_passes, rng_batch = jax.random.split(rng)
  log_probs = _log_probs(state, pool_subset, int(options.passes), rng_passes)
  if not np.isfinite(np.asarray(jnp.max(log_probs))):
    raise FloatingPointError('batchbald: the target model predicts non-finite probabilities; it '
                             'has diverged.')
  picks = batchbald(log_probs, budget, rng_batch, int(options.num_samples))
  return np.asarray(pool_subset)[np.asarray(picks)]


def predictive_variance(samples: chex.Array) -> chex.Array:
  """``[n]``: the variance over passes of ``[n, T, ...]`` predictions, averaged over the rest."""
  return jnp.var(samples, axis=1).reshape(samples.shape[0], -1).mean(1)


@base.register_scores('mc_variance', tasks=('pose', 'crowd'),
                      refusal='for class probabilities, BALD measures the passes\' disagreement.',
                      check=functools.partial(_check, 'mc_variance'))
def mc_variance_scores(state, pool_subset, rng):
  """How much each sample's maps vary between Monte-Carlo dropout passes
  (``config.mc_variance.passes``); the variance is reduced on the devices, so only ``[n]``
  scores come back, never the ``passes`` maps."""
  options = base.options_with_defaults('mc_variance', state.options)
  if state.sample_predictions is None:
    raise ValueError('mc_variance needs Monte-Carlo predictions '
                     '(SelectionState.sample_predictions).')
  return np.asarray(state.sample_predictions(np.asarray(pool_subset), int(options.passes), rng,
                                            predictive_variance))
