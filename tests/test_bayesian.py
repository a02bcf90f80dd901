"""MC dropout, BALD and BatchBALD against hand-worked values, numpy and exact enumeration."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2r_jax import defaults
from l2r_jax import devices as devices_lib
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import inference
from l2r_jax import models as models_lib
from l2r_jax import state as state_lib
from l2r_jax.models.base import MCDropout
from l2r_jax.strategies import bayesian
import smoke


def _numpy_mutual_information(probs):
  mean = probs.mean(1)
  plogp = lambda p: np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)  # noqa: E731
  return -plogp(mean).sum(-1) + plogp(probs).sum(-1).mean(1)


def test_mutual_information_hand_worked_and_numpy():
  # Two passes that are sure of different classes: the mean is (1/2, 1/2), each pass has entropy
  # 0, so I = log 2. Two passes that agree: I = 0.
  log_probs = jnp.log(jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.3, 0.7], [0.3, 0.7]]]))
  np.testing.assert_allclose(bayesian.mutual_information(log_probs), [np.log(2), 0.0], atol=1e-6)
  r = np.random.default_rng(0)
  logits = r.normal(size=(9, 20, 5)) * 2
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(bayesian.mutual_information(jnp.asarray(np.log(probs))),
                             _numpy_mutual_information(probs), rtol=1e-4, atol=1e-6)


def _exact_batchbald(probs, budget):
  """Greedy BatchBALD with the joint entropy enumerated over every label configuration (numpy),
  and each step's gap between the best candidate and the runner-up."""
  n, _, num_classes = probs.shape
  conditional = -np.sum(np.where(probs > 0, probs * np.log(probs), 0), -1).mean(1)

  def joint_entropy(members):
    # Every configuration of the members' labels: p(labels) = mean_t prod_i p_t(labels_i).
    labels = np.array(list(itertools.product(range(num_classes), repeat=len(members))))
    q = np.prod([probs[i][:, labels[:, j]] for j, i in enumerate(members)], axis=0).mean(0)
    return -np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0))

  chosen, gaps = [], []
  for _ in range(budget):
    scores = np.array([-np.inf if x in chosen else joint_entropy(chosen + [x]) - conditional[x]
                       for x in range(n)])
    top2 = np.sort(scores)[-2:]
    gaps.append(top2[1] - top2[0])
    chosen.append(int(np.argmax(scores)))
  return chosen, gaps


def test_predictive_variance_is_numpys():
  samples = np.random.default_rng(0).normal(size=(4, 6, 3, 2, 1))    # [n, T, H, W, K]
  np.testing.assert_allclose(bayesian.predictive_variance(jnp.asarray(samples)),
                             samples.var(1).reshape(4, -1).mean(1), rtol=1e-5)


def test_mc_variance_applies_to_maps_only():
  # Its run: tests/test_regression_tasks.py (the crowd stand-in).
  with pytest.raises(ValueError, match="'mc_variance' does not apply to the 'classification'"):
    experiment.make_experiment(smoke.mnist1d(strategies=('mc_variance',),
                                             **{'model.dropout': 0.2}))


def test_batchbald_is_the_exact_greedy_batch():
  r = np.random.default_rng(0)
  logits = r.normal(size=(7, 6, 3)) * 2
  log_probs = np.asarray(jax.nn.log_softmax(logits, -1))
  want, gaps = _exact_batchbald(np.exp(log_probs), 4)
  assert min(gaps) > 0.01             # no pick is a near-tie
  # 3**3 <= 27 configurations: all four picks enumerated, whatever the key (27 drawn
  # configurations would get some keys' fourth pick wrong).
  for seed in range(5):
    got = bayesian.batchbald(jnp.asarray(log_probs), 4, jax.random.PRNGKey(seed), 27, chunk=4)
    assert np.asarray(got).tolist() == want
  # Its first pick is BALD's.
  assert want[0] == int(np.argmax(_numpy_mutual_information(np.exp(log_probs))))


def test_batchbald_is_the_exact_greedy_batch_on_small_problems():
  # 24 pools of 10 samples, 10 classes, 20 passes, each pass's probabilities drawn from a sharp
  # Dirichlet; batches of 3 at the default number of configurations. The chosen labels' 10**2
  # configurations are enumerated, so only float32 rounding can change a pick.
  num_samples = defaults.get_config().batchbald.num_samples
  agree = 0
  for seed in range(24):
    probs = np.random.default_rng(seed).dirichlet(np.full(10, 0.1), size=(10, 20))
    want, _ = _exact_batchbald(probs, 3)
    got = bayesian.batchbald(jnp.log(jnp.asarray(probs, jnp.float32)), 3,
                             jax.random.PRNGKey(seed), num_samples, chunk=16)
    agree += np.asarray(got).tolist() == want
  assert agree >= 22


def test_batchbald_does_not_query_a_duplicate_that_bald_queries():
  # Sample 0: each pass is sure, and the passes disagree (I = log 2); sample 1 is its copy;
  # sample 2 disagrees by another pattern of passes, a little less surely. BALD takes the copy,
  # which adds nothing once sample 0's label is known; BatchBALD takes sample 2.
  sure = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
  other = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.05, 0.95]])
  probs = np.stack([sure, sure, other, np.full((4, 2), 0.5)])
  log_probs = jnp.log(jnp.asarray(probs, jnp.float32))
  assert np.argsort(-np.asarray(bayesian.mutual_information(log_probs)))[:2].tolist() == [0, 1]
  got = bayesian.batchbald(log_probs, 2, jax.random.PRNGKey(0), 2000, chunk=2)
  assert np.asarray(got).tolist() == [0, 2]


def test_dropout_masks_on_two_devices_are_one_devices_rows():
  # In training, device d drops its rows of one mask drawn for the global batch.
  x = jnp.ones((8, 32))
  layer = MCDropout(0.5, axis_name=devices_lib.AXIS)
  apply = lambda x: layer.apply({}, x, train=True, rngs={'dropout': jax.random.PRNGKey(3)})  # noqa: E731
  one = jax.pmap(apply, axis_name=devices_lib.AXIS)(x[None])[0]
  two = jax.pmap(apply, axis_name=devices_lib.AXIS)(x.reshape(2, 4, 32)).reshape(8, 32)
  np.testing.assert_array_equal(one, two)
  assert 0.3 < float(jnp.mean(one == 0)) < 0.7 and set(np.unique(one).tolist()) == {0.0, 2.0}
  # Without a 'dropout' rng (plain inference), it is the identity.
  np.testing.assert_array_equal(layer.apply({}, x, train=False), x)


def test_monte_carlo_passes_do_not_depend_on_the_chunk_or_the_device():
  config = smoke.mnist1d(strategies=('bald',), **{'model.dropout': 0.3})
  exp = experiment.make_experiment(config)
  state = state_lib.initial_train_state(exp, 'bald', jax.random.PRNGKey(0))
  indices = np.random.default_rng(0).permutation(exp.dataset.pool_size)[:101]
  rng = jax.random.PRNGKey(1)
  a = inference.sample_predictions(state, exp.dataset.x_train, indices, 5, rng, chunk=64)
  b = inference.sample_predictions(state, exp.dataset.x_train, indices[::-1], 5, rng, chunk=8)
  assert a.shape == (101, 5, 10)
  np.testing.assert_allclose(a, b[::-1], rtol=1e-5, atol=1e-6)    # another order, chunk, device
  assert np.abs(a[:, 0] - a[:, 1]).max() > 1e-3                   # the passes differ
  deterministic = inference.infer(state, exp.dataset.x_train, indices).prediction
  assert np.abs(a.mean(1) - deterministic).max() < np.abs(a[:, 0] - deterministic).max()


def test_a_copy_of_a_sample_gets_its_predictions_in_every_pass():
  # Consistent MC dropout: pass t is one model for the whole pool. The pool's second half copies
  # its first; shuffled, in chunks of 8 over 2 devices, each copy is scored apart from its
  # original.
  config = smoke.mnist1d(strategies=('batchbald',), **{'model.dropout': 0.3})
  exp = experiment.make_experiment(config)
  state = state_lib.initial_train_state(exp, 'batchbald', jax.random.PRNGKey(0))
  x = np.asarray(exp.dataset.x_train)[:20]
  order = np.random.default_rng(0).permutation(40)
  got = inference.sample_predictions(state, np.concatenate([x, x]), order, 5,
                                     jax.random.PRNGKey(1), chunk=8)
  by_row = np.empty_like(got)
  by_row[order] = got
  np.testing.assert_allclose(by_row[20:], by_row[:20], rtol=1e-6, atol=1e-7)
  assert np.abs(by_row[:, 0] - by_row[:, 1]).max() > 1e-3       # the passes differ


def test_batchbald_draws_no_fewer_configurations_than_passes():
  config = smoke.mnist1d(strategies=('batchbald',), **{'model.dropout': 0.2,
                                                       'batchbald.num_samples': 10})
  with pytest.raises(errors.ConfigError, match=r'config.batchbald.num_samples=10 is fewer than '
                                               r'config.batchbald.passes=20'):
    experiment.make_experiment(config)


@pytest.mark.parametrize('overrides,match', [
    ({}, r"config.strategies includes 'bald': config.model.dropout=0"),
    ({'model.dropout': 0.2, 'bald.passes': 1}, r'config.bald.passes must be an integer >= 2'),
    ({'model.dropout': 1.0}, r'config.model.dropout must be a rate in \[0, 1\)')])
def test_bald_is_refused_without_dropout(overrides, match):
  with pytest.raises(errors.ConfigError, match=match):
    experiment.make_experiment(smoke.mnist1d(strategies=('random', 'bald'), **overrides))


def test_a_model_without_a_dropout_field_is_refused_when_dropout_is_asked(monkeypatch):
  def make(num_outputs, bn_axis_name=None):         # declares no `dropout`
    return models_lib.CNN1D(num_outputs=num_outputs, bn_axis_name=bn_axis_name)

  monkeypatch.setitem(models_lib.TARGETS, 'no_dropout', make)
  config = smoke.mnist1d(strategies=('bald',), **{'model.name': 'no_dropout',
                                                 'model.dropout': 0.2})
  with pytest.raises(errors.ConfigError, match=r"config.model.name='no_dropout' .* does not "
                                               r'declare dropout, and config.model.dropout=0.2'):
    experiment.make_experiment(config)
  config.model.dropout = 0.0
  config.strategies = ('random',)
  experiment.make_experiment(config)                # without dropout it is a fine model
