"""Training steps for a target model and its loss-prediction module.

One pure function, :func:`train_step`, updates both: the target on the mean of its per-sample
losses (eq. 2) with its own optimiser, the loss module on its ranking loss with its own optimiser.
It runs under ``jax.pmap`` over the local devices with ``axis_name='batch'``: gradients are averaged
with ``lax.pmean``, BatchNorm statistics are computed over the global batch (``bn_axis_name``), and
the ranking losses see the whole global batch (gathered), so a run gives the same result on one
device or on several with the same global batch.

A loss-based strategy's module is trained by ``ranking_loss`` (its ranker or margin bound,
:class:`l2r_jax.losses.RankingLoss`) on the global batch's true per-sample losses; the target by
``task loss + weight * ranking loss``. How the ranking loss reaches the target is the module's
:class:`RankingGradient`: never for an isolated module, which reads ``stop_gradient(features)``
(L2R-AL), else until its detach epoch (LL4AL). Without a ranking loss there is no loss module
(random, entropy, core-set).
The learning rates follow optax schedules of the epoch, read inside the step.

``loss_module_updates > 1`` adds that many minus one further loss-module updates per step, on the
step's own (detached) features and per-sample losses: the loss module alone, the target untouched.
"""
import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import chex
from flax import struct
from flax.training import train_state
import jax
import jax.numpy as jnp
import optax

from l2r_jax import devices as devices_lib
from l2r_jax import losses
from l2r_jax import optim
from l2r_jax import tasks
from l2r_jax.models import pretrained

class RankingGradient(NamedTuple):
  """How a loss module's ranking loss reaches the target. ``isolated``: never (L2R-AL: the
  module reads ``stop_gradient(features)``). Otherwise (LL4AL) the target trains on ``task loss +
  weight * ranking loss`` in the epochs up to ``detach_epoch`` and the features are detached after
  it. ``weight`` also scales the module's own gradient."""
  isolated: bool = True
  weight: float = 1.0
  detach_epoch: int = 0


ISOLATED = RankingGradient()


class TargetState(train_state.TrainState):
  batch_stats: Any = None


class State(struct.PyTreeNode):
  """What a training step updates: the target and, for loss-based strategies, the loss module."""
  target: TargetState
  loss_module: Optional[train_state.TrainState]


def create_state(rng: chex.PRNGKey, target_model, target_tx: optax.GradientTransformation,
                 sample_input: chex.Array, loss_module_model=None,
                 loss_module_tx: Optional[optax.GradientTransformation] = None,
                 backbone: Optional[pretrained.Backbone] = None) -> State:
  """Initialises the target (and the loss module on the target's features) from one input batch;
  with ``backbone``, the target's backbone starts from those pretrained weights."""
  rng_target, rng_pred = jax.random.split(rng)
  variables = target_model.init(rng_target, sample_input, train=False)
  if backbone is not None:
    variables = pretrained.with_backbone(variables, backbone)
  # A model without BatchNorm has no statistics: an empty dict, the type the step returns, so that
  # a scanned epoch's carry keeps one structure.
  target = TargetState.create(apply_fn=target_model.apply, params=variables['params'],
                              batch_stats=variables.get('batch_stats', {}), tx=target_tx)
  loss_module = None
  if loss_module_model is not None:
    _, feats = target_model.apply(variables, sample_input, train=False)
    pred_params = loss_module_model.init(rng_pred, feats)['params']
    loss_module = train_state.TrainState.create(apply_fn=loss_module_model.apply,
                                                params=pred_params, tx=loss_module_tx)
  return State(target=target, loss_module=loss_module)


def _gather(x: chex.Array) -> chex.Array:
  """The global batch on every device, in device order (a no-op on one device)."""
  return jax.lax.all_gather(x, devices_lib.AXIS, tiled=True)


def sample_keys(rng: chex.PRNGKey, shard_size: int) -> chex.Array:
  """The keys of this device's ``shard_size`` samples (under pmap over ``AXIS``): sample ``i`` of
  the global batch gets ``split(rng, global batch)[i]``, and device ``d`` holds positions
  ``[d * shard_size, (d + 1) * shard_size)``. So a sample's key is the same whatever the number of
  devices or processes the global batch is split over (and on one device, ``split(rng, b)``)."""
  num_shards = jax.lax.psum(1, devices_lib.AXIS)
  first = jax.lax.axis_index(devices_lib.AXIS) * shard_size
  return jax.random.split(rng, shard_size * num_shards)[first + jnp.arange(shard_size)]


def train_step(state: State, batch: Dict[str, chex.Array], rng: chex.PRNGKey,
               epoch: chex.Array = 0, *,
               task_loss: Callable[[chex.Array, chex.Array], chex.Array] = tasks.cross_entropy,
               classifies: bool = True,
               augment: Optional[Callable] = None,
               ranking_loss: Optional[losses.RankingLossFn] = None,
               gradient: RankingGradient = ISOLATED,
               learning_rates: Optional[Tuple[optax.Schedule, optax.Schedule]] = None,
               loss_module_updates: int = 1) -> Tuple[State, Dict[str, chex.Array]]:
  """One step on one device's shard ``batch = {'x': [b, ...], 'y': [b, ...]}``; run under pmap.

  ``task_loss(prediction, y) -> [b]`` is the per-sample loss (:mod:`l2r_jax.tasks`), and
  ``classifies`` whether the task's predictions are class logits (``tasks.Task.classifies``);
  ``augment(x, y, keys)``, if given, transforms the batch first (:mod:`l2r_jax.augment`), each
  sample with the key of its position in the global batch; ``rng`` is the same on every device.
  ``epoch`` (0-indexed, within the cycle) is what the schedules read: ``learning_rates``, optax
  schedules of the epoch for the target's and the loss module's optimisers (``optim.schedule``;
  None: the rates in their states), and ``gradient``'s detach epoch: the ranking loss's gradient reaches
  the target in epochs up to it and is stopped after it (an isolated ``gradient``: never).
  One compiled step serves every epoch.
  Returns the new state and metrics averaged over the global batch: ``train_loss`` (target),
  ``train_accuracy`` (classification) and, with a loss module, ``train_pred_loss``.
  """
  if augment is not None:
    batch = dict(batch)
    batch['x'], batch['y'] = augment(batch['x'], batch['y'],
                                     sample_keys(jax.random.fold_in(rng, 0), batch['x'].shape[0]))
  extra_updates = loss_module_updates - 1 if ranking_loss is not None else 0

  def module_ranking_loss(loss_module_params, feats, all_true):
    """The loss module's ranking loss on the global batch (unweighted)."""
    predicted = state.loss_module.apply_fn({'params': loss_module_params}, feats)
    # Ranking losses compare samples across the global batch; per-sample losses are labels.
    return ranking_loss(_gather(predicted), all_true)

  def loss_fn(target_params, loss_module_params):
    variables = {'params': target_params, 'batch_stats': state.target.batch_stats}
    # A model with dropout draws its masks from 'dropout' (the same key on every device).
    (prediction, feats), updates = state.target.apply_fn(
        variables, batch['x'], train=True, mutable=['batch_stats'],
        rngs={'dropout': jax.random.fold_in(rng, 1)})
    per_sample = task_loss(prediction, batch['y'])
    target_loss = per_sample.mean()
    aux = {'batch_stats': updates['batch_stats'], 'train_loss': target_loss}
    if classifies:
      aux['train_accuracy'] = jnp.mean(jnp.argmax(prediction, -1) == batch['y'])
    if ranking_loss is None:
      return target_loss, aux
    if gradient.isolated:
      # The isolation of L2R-AL: no gradient of the ranking loss reaches the target model.
      feats = jax.lax.stop_gradient(feats)
    else:
      # LL4AL: it does, until its detach epoch. A select rather than lax.cond: the two phases
      # round exactly as two separately compiled steps would.
      detached = epoch > gradient.detach_epoch
      feats = jax.tree.map(lambda f: jnp.where(detached, jax.lax.stop_gradient(f), f), feats)
    all_true = _gather(jax.lax.stop_gradient(per_sample))
    pred_loss = module_ranking_loss(loss_module_params, feats, all_true)
    total = target_loss + gradient.weight * pred_loss
    if extra_updates:
      aux['loss_module_inputs'] = jax.lax.stop_gradient((feats, all_true))
    aux['train_pred_loss'] = pred_loss
    return total, aux

  pred_params = None if state.loss_module is None else state.loss_module.params
  grads, aux = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(state.target.params, pred_params)
  # Each device holds the gradient of its own shard (of the replicated global ranking loss, its
  # share of the all_gather transpose): the mean over devices is the global-batch gradient.
  grads = jax.lax.pmean(grads, devices_lib.AXIS)
  if learning_rates is not None:
    state = _with_learning_rates(state, *(schedule(epoch) for schedule in learning_rates))
  target = state.target.apply_gradients(grads=grads[0], batch_stats=aux.pop('batch_stats'))
  loss_module = state.loss_module
  if loss_module is not None:
    loss_module = loss_module.apply_gradients(grads=grads[1])
  if extra_updates:
    feats, all_true = aux.pop('loss_module_inputs')

    def update(_, p):
      g = jax.grad(lambda q: gradient.weight * module_ranking_loss(q, feats, all_true))(p.params)
      g = jax.lax.pmean(g, devices_lib.AXIS)
      return p.apply_gradients(grads=g)

    loss_module = jax.lax.fori_loop(0, extra_updates, update, loss_module)
  metrics = jax.lax.pmean(aux, devices_lib.AXIS)
  return State(target=target, loss_module=loss_module), metrics


def _with_learning_rates(state: State, target_lr: chex.Array, loss_module_lr: chex.Array) -> State:
  """``state`` with its optimisers' injected learning rates set (``optim.make``'s optimisers)."""
  target = state.target.replace(opt_state=optim.with_learning_rate(state.target.opt_state,
                                                                   target_lr))
  loss_module = state.loss_module
  if loss_module is not None:
    loss_module = loss_module.replace(
        opt_state=optim.with_learning_rate(loss_module.opt_state, loss_module_lr))
  return State(target=target, loss_module=loss_module)


class Trainer:
  """The training programs of one kind of run: :func:`train_step` with its options bound (task
  loss, augmentation, ranking loss and its gradient, learning-rate schedules, loss_module
  updates), compiled once per loop and layout (:meth:`program`), on first use. An experiment makes
  one per distinct loss module (one for the strategies without), shared by the strategies that
  train it, so their runs share its compiled programs."""

  def __init__(self, **options):
    self.options = options
    self._programs: Dict[Tuple[Any, ...], Callable] = {}

  def program(self, loop, *layouts: Callable[[Callable], Callable]) -> Callable:
    """``loop.compile`` (``cycle.StepLoop``, ``cycle.ScanLoop``) of the bound step wrapped by
    ``layouts`` in order (:func:`over_seeds`, :func:`on_rows`)."""
    key = (loop, *layouts)
    if key not in self._programs:
      step = functools.partial(train_step, **self.options)
      for layout in layouts:
        step = layout(step)
      self._programs[key] = loop.compile(step)
    return self._programs[key]


def over_seeds(step: Callable) -> Callable:
  """``step`` vmapped over a seeds axis of the state, the batch and the key (every seed in the
  same epoch): several independent runs train as one program, ``[n_dev, seeds, ...]``. The
  collectives still reduce over the devices only, so each seed's update is the one it would get
  alone."""
  return jax.vmap(step, in_axes=(0, 0, 0, None))


def on_rows(step: Callable) -> Callable:
  """``step(state, batch, rng, epoch)`` as ``step(state, data, rows, rng, epoch)``: the batch is
  the ``rows`` of ``data`` (``{'x': [n, ...], 'y': [n, ...]}``), gathered where the step runs.
  ``rows`` is ``[b]`` (``[seeds, b]`` for a vmapped step), so the host sends a step only its row
  indices."""

  def step_on_rows(state, data, rows, rng, epoch):
    return step(state, jax.tree.map(lambda a: a[rows], data), rng, epoch)

  return step_on_rows


def pmapped(step: Callable, devices=None) -> Callable:
  """``step`` pmapped over ``devices`` (default: all local devices), state donated: ``(state,
  batch, keys, epochs)``, each with a leading device axis (the step's key and epoch the same on
  every device)."""
  return jax.pmap(step, axis_name=devices_lib.AXIS, devices=devices, donate_argnums=(0,))


def make_p_train_step(devices=None, **options) -> Callable:
  """:func:`train_step` with ``options`` bound, :func:`pmapped` over ``devices``."""
  return pmapped(functools.partial(train_step, **options), devices)
