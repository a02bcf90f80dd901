import functools

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import sorter
from l2r_jax import devices as devices_lib
from l2r_jax import losses
from l2r_jax import models
from l2r_jax import optim
from l2r_jax import train
import tolerances

GLOBAL_BATCH = 16


def _state(loss_module=None):
  target = models.CNN1D(widths=(8, 8), pool_after=(True, True), bn_axis_name=devices_lib.AXIS)
  return train.create_state(
      jax.random.PRNGKey(0), target, optax.sgd(0.1, momentum=0.9), jnp.zeros((2, 40)),
      # SGD, not Adam: Adam scales a rounding-level gradient on a dead unit up to a full step.
      loss_module, optax.sgd(0.05, momentum=0.9))


def _batches(n_steps):
  r = np.random.default_rng(0)
  return [{'x': r.normal(size=(GLOBAL_BATCH, 40)).astype(np.float32),
           'y': r.integers(0, 10, GLOBAL_BATCH).astype(np.int32)} for _ in range(n_steps)]


def _same_key(key, n_devices):
  """The step's key on every device, as the driver sends it (train.sample_keys keys samples)."""
  return np.broadcast_to(np.asarray(key), (n_devices, *key.shape))


def _run(n_devices, steps=3, loss_module=None, epoch=0, **static):
  devices = jax.local_devices()[:n_devices]
  p_step = train.make_p_train_step(devices=devices, **static)
  state = devices_lib.replicate(_state(loss_module), devices)
  history = []
  for i, batch in enumerate(_batches(steps)):
    shards = jax.tree.map(lambda x: x.reshape(n_devices, -1, *x.shape[1:]), batch)
    state, metrics = p_step(state, shards, _same_key(jax.random.PRNGKey(i), n_devices),
                            np.full(n_devices, epoch, np.int32))
    history.append(jax.tree.map(lambda m: float(m[0]), metrics))
  return jax.tree.map(lambda x: np.asarray(x[0]), state), history


STRATEGIES = {
    'none': dict(),
    'listwise': dict(loss_module=models.L2RLossModule(hidden=16),
                     ranking_loss=functools.partial(losses.listwise_ranking_loss,
                                                    ranker=sorter.make_soft_rank(8, 0.1))),
    'pairwise': dict(loss_module=models.LL4ALLossModule(hidden=16),
                     ranking_loss=functools.partial(losses.pairwise_margin_loss, margin=1.0),
                     # epoch 0: the ranking loss reaches the target
                     gradient=train.RankingGradient(isolated=False, detach_epoch=0)),
}


def _assert_same_loss_module(a, b, start):
  """Two trainings of a loss module agree (tests/tolerances.py), its output bias aside, which a
  ranking loss leaves at zero up to rounding."""
  (a, bias_a), (b, bias_b), (start, _) = map(tolerances.without_output_bias, (a, b, start))
  tolerances.assert_same_training(a, b, start)
  assert np.abs(bias_a).max() < 1e-5 and np.abs(bias_b).max() < 1e-5


@pytest.mark.parametrize('name', sorted(STRATEGIES))
def test_one_and_two_devices_agree(name):
  assert jax.local_device_count() == 2
  state1, hist1 = _run(1, **STRATEGIES[name])
  state2, hist2 = _run(2, **STRATEGIES[name])
  start = _state(STRATEGIES[name].get('loss_module'))
  tolerances.assert_same_metrics(hist1, hist2)
  tolerances.assert_same_training(state1.target.params, state2.target.params, start.target.params)
  tolerances.assert_same_training(state1.target.batch_stats, state2.target.batch_stats,
                                  start.target.batch_stats)
  if state1.loss_module is not None:
    _assert_same_loss_module(state1.loss_module.params, state2.loss_module.params,
                             start.loss_module.params)
    assert hist1[0]['train_pred_loss'] > 0


@pytest.mark.parametrize('n_devices', [1, 2])
def test_sample_keys_follow_the_samples_place_in_the_global_batch(n_devices):
  key = jax.random.PRNGKey(3)
  keys = jax.pmap(lambda k: train.sample_keys(k, 6 // n_devices), axis_name=devices_lib.AXIS,
                  devices=jax.local_devices()[:n_devices])(_same_key(key, n_devices))
  np.testing.assert_array_equal(np.asarray(keys).reshape(6, -1), jax.random.split(key, 6))


def test_listwise_loss_module_never_trains_the_target():
  alone, _ = _run(1)
  with_l2r, hist = _run(1, **STRATEGIES['listwise'])
  chex.assert_trees_all_close(alone.target.params, with_l2r.target.params)
  # ... while the loss module itself does learn.
  start = _state(STRATEGIES['listwise']['loss_module']).loss_module.params
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), start, with_l2r.loss_module.params)
  assert max(jax.tree.leaves(moved)) > 0


def test_pairwise_loss_trains_the_target_until_detached():
  alone, _ = _run(1)
  attached, _ = _run(1, **STRATEGIES['pairwise'])
  detached, _ = _run(1, epoch=1, **STRATEGIES['pairwise'])  # after its detach epoch
  diff = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), alone.target.params,
                      attached.target.params)
  assert max(jax.tree.leaves(diff)) > 1e-6
  chex.assert_trees_all_close(alone.target.params, detached.target.params)


def test_the_step_reads_its_learning_rates_and_detachment_from_the_epoch(caplog):
  # A schedule that stops both optimisers from epoch 1: one compiled step, whose updates stop there.
  stop = optax.join_schedules([optax.constant_schedule(np.float32(0.1)),
                               optax.constant_schedule(np.float32(0.0))], [1])
  devices = jax.local_devices()[:1]
  options = dict(STRATEGIES['pairwise'])
  sgd = optim.make(ml_collections.ConfigDict(
      dict(optimizer='sgd', lr=0.1, momentum=0.9, weight_decay=0.0)))
  target = models.CNN1D(widths=(8, 8), pool_after=(True, True), bn_axis_name=devices_lib.AXIS)
  start = train.create_state(jax.random.PRNGKey(0), target, sgd, jnp.zeros((2, 40)),
                             options.pop('loss_module'), sgd)
  p_step = train.make_p_train_step(devices=devices, learning_rates=(stop, stop), **options)
  state = devices_lib.replicate(start, devices)
  batch = jax.tree.map(lambda x: x[None], _batches(1)[0])
  key = _same_key(jax.random.PRNGKey(0), 1)
  state, _ = p_step(state, batch, key, np.zeros(1, np.int32))
  after_epoch_0 = jax.device_get(state)
  caplog.clear()
  with jax.log_compiles(True):
    state, _ = p_step(state, batch, key, np.ones(1, np.int32))
    jax.block_until_ready(state)
  assert not [r for r in caplog.records if 'Compiling' in r.getMessage()]
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), start.target.params,
                       after_epoch_0.target.params)
  assert max(jax.tree.leaves(moved)) > 1e-4
  # SGD with momentum at rate 0 leaves the parameters where they were.
  chex.assert_trees_all_equal(jax.device_get(state).target.params, after_epoch_0.target.params)
  chex.assert_trees_all_equal(jax.device_get(state).loss_module.params,
                              after_epoch_0.loss_module.params)


def test_extra_loss_module_updates_leave_a_run_without_loss_module_as_it_is():
  plain, hist = _run(1, steps=1)
  extra, hist_extra = _run(1, steps=1, loss_module_updates=3)
  chex.assert_trees_all_equal(plain.target.params, extra.target.params)
  assert hist == hist_extra


def test_classification_metrics_are_reported():
  _, hist = _run(1, steps=1)
  loss = hist[0]['train_loss']
  assert 0 < loss < 10 and 0 <= hist[0]['train_accuracy'] <= 1


def test_replicated_state_and_step_outputs_share_one_program(caplog):
  devices = jax.local_devices()[:2]
  p_step = train.make_p_train_step(devices=devices)
  state = devices_lib.replicate(_state(None), devices)
  batch = jax.tree.map(lambda x: x.reshape(2, -1, *x.shape[1:]), _batches(1)[0])
  rngs = _same_key(jax.random.PRNGKey(0), 2)
  state, _ = p_step(state, batch, rngs, np.zeros(2, np.int32))
  caplog.clear()
  with jax.log_compiles(True):
    for _ in range(2):
      state, metrics = p_step(state, batch, rngs, np.zeros(2, np.int32))
    jax.block_until_ready(metrics)
  assert not [r for r in caplog.records if 'Compiling' in r.getMessage()]


@pytest.mark.parametrize('name,detach', [('listwise', True), ('pairwise', False)])
def test_extra_loss_module_updates_train_the_loss_module_alone_on_the_steps_inputs(name, detach):
  from l2r_jax import tasks  # pylint: disable=g-import-not-at-top
  weight = 1.0 if name == 'listwise' else 0.5
  static = {**STRATEGIES[name],
            'gradient': train.RankingGradient(isolated=detach, weight=weight, detach_epoch=0)}
  once, _ = _run(1, steps=1, **static)
  four, hist = _run(1, steps=1, loss_module_updates=4, **static)
  four_on_two, _ = _run(2, steps=1, loss_module_updates=4, **static)
  start = _state(static['loss_module'])
  # The target gets its single update, as without the extra ones.
  tolerances.assert_same_training(once.target.params, four.target.params, start.target.params)
  # The loss module: after the step's update, three more on the features and losses that the step
  # saw (the target before its update, BatchNorm on the batch), computed here independently.
  batch = _batches(1)[0]
  # The same model outside pmap: BatchNorm over this (whole) batch, no axis name.
  (logits, feats), _ = models.CNN1D(widths=(8, 8), pool_after=(True, True)).apply(
      {'params': start.target.params, 'batch_stats': start.target.batch_stats}, batch['x'],
      train=True, mutable=['batch_stats'])
  true = tasks.cross_entropy(logits, batch['y'])

  def loss(params):  # unweighted
    predicted = start.loss_module.apply_fn({'params': params}, feats)
    if name == 'listwise':
      return losses.listwise_ranking_loss(predicted, true, sorter.make_soft_rank(8, 0.1))
    return losses.pairwise_margin_loss(predicted, true, 1.0)

  loss_module = jax.tree.map(jnp.asarray, once.loss_module)
  grad = jax.jit(jax.grad(lambda p: weight * loss(p)))  # compiled once, not op by op
  for _ in range(3):
    loss_module = loss_module.apply_gradients(grads=grad(loss_module.params))
  _assert_same_loss_module(four.loss_module.params, loss_module.params, start.loss_module.params)
  _assert_same_loss_module(four_on_two.loss_module.params, loss_module.params,
                           start.loss_module.params)
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), once.loss_module.params,
                       four.loss_module.params)
  assert max(jax.tree.leaves(moved)) > 1e-4
  # The reported ranking loss is the step's first one, before the extra updates.
  first = float(jax.jit(loss)(start.loss_module.params))
  assert hist[0]['train_pred_loss'] == pytest.approx(first, rel=1e-4)
