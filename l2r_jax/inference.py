"""The pmapped forward passes of a run's models, over every device of every process: the target's
predictions, embeddings and the loss module's scores (:func:`infer`), Monte-Carlo dropout passes
(:func:`sample_predictions`), per-sample task losses (:func:`true_losses`) and the test metric
(:func:`evaluate`). Inputs are read in chunks (:func:`read_inputs`), and inputs or outputs with a
NaN or an infinity are refused, never scored.
"""
import functools
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from l2r_jax import devices as devices_lib
from l2r_jax import metrics
from l2r_jax import numerics
from l2r_jax import state as state_lib
from l2r_jax import strategies as strategies_lib
from l2r_jax import tasks as tasks_lib
from l2r_jax import train
from l2r_jax.models.base import global_average_pool


def _apply(train_state: train.State, x):
  t = train_state.target
  prediction, feats = t.apply_fn({'params': t.params, 'batch_stats': t.batch_stats}, x,
                                 train=False)
  predicted_loss = None
  if train_state.loss_module is not None:
    loss_module = train_state.loss_module
    predicted_loss = loss_module.apply_fn({'params': loss_module.params}, feats)
  return prediction, feats, predicted_loss


@functools.partial(jax.pmap, axis_name=devices_lib.AXIS)
def _p_forward(train_state: train.State, x):
  prediction, feats, predicted_loss = _apply(train_state, x)
  return prediction, global_average_pool(feats.last), predicted_loss


@functools.partial(jax.pmap, axis_name=devices_lib.AXIS, static_broadcasted_argnums=(0,))
def _p_score(task: tasks_lib.Task, train_state: train.State, x, y):
  prediction, _, predicted_loss = _apply(train_state, x)
  # A NaN map decodes to a finite argmax: whether the prediction itself is finite, per sample.
  finite = jnp.isfinite(prediction.reshape(prediction.shape[0], -1)).all(-1)
  return (task.decode(prediction), task.truth(y), task.loss(prediction, y), predicted_loss,
          jnp.where(finite, 0.0, jnp.nan))


@functools.partial(jax.pmap, axis_name=devices_lib.AXIS, static_broadcasted_argnums=(0, 1))
def _p_sample_predictions(passes: int, reduce, train_state: train.State, rng, x):
  """``[n, passes, ...]`` (or ``reduce`` of it): the target's predictions under ``passes``
  dropout masks (BatchNorm in inference mode). Consistent MC dropout: pass ``t`` drops by
  ``split(rng, passes)[t]`` for every sample, one sample at a time, so every sample sees the same
  ``passes`` models (what BatchBALD's joint over samples needs) and a sample's passes depend on
  neither its chunk nor its device."""
  t = train_state.target
  variables = {'params': t.params, 'batch_stats': t.batch_stats}

  def one(x, key):
    prediction, _ = t.apply_fn(variables, x[None], train=False, rngs={'dropout': key})
    return prediction[0]

  per_pass = jax.vmap(lambda key: jax.vmap(one, (0, None))(x, key))(
      jax.random.split(rng, passes))
  per_pass = jnp.moveaxis(per_pass, 0, 1)
  return (per_pass if reduce is None else reduce(per_pass),)


def read_inputs(x, rows: np.ndarray, split: Optional[str], axis: str = 'x') -> np.ndarray:
  """``x[rows]``, the inputs (``axis`` 'x') or labels ('y') of ``split`` ('pool', 'test', None:
  inputs given otherwise), refused if they hold a NaN or an infinity: a dataset's arrays were
  checked when it was loaded, its array-likes (files read on demand) and other inputs are checked
  here, batch by batch."""
  values = x[rows]
  if isinstance(x, np.ndarray) and split is not None:
    return values
  field = {'pool': f'Dataset.{axis}_train', 'test': f'Dataset.{axis}_test'}.get(split, 'The inputs')
  return numerics.checked_batch(values, rows, field)


def _samples(split: Optional[str]) -> str:
  return f'{split} samples' if split else 'samples'


def sample_predictions(train_state: train.State, x, indices: np.ndarray, passes: int,
                       rng: jax.Array, chunk: int = 512, reduce=None, split: Optional[str] = None,
                       during: str = '') -> np.ndarray:
  """``[n, passes, ...]``: the target's predictions on ``x[indices]`` under ``passes`` Monte-Carlo
  dropout masks (:class:`models.base.MCDropout`), pass ``t``'s mask the same for every sample
  (consistent MC dropout), over every device of every process; memory
  ``passes x chunk x`` a prediction per device. ``reduce`` (``[n, passes, ...] -> [n, ...]``, a
  module-level function) is applied on the devices, so only its output comes back. ``split`` and
  ``during``: as for :func:`infer`."""
  samples = devices_lib.map_over_devices(
      functools.partial(_p_sample_predictions, passes, reduce, devices_lib.replicate(train_state),
                        devices_lib.replicate(rng)),
      lambda rows: (read_inputs(x, rows, split),), indices, chunk)[0]
  name = 'Monte-Carlo dropout predictions' + ('' if reduce is None else f' ({reduce.__name__})')
  numerics.check_outputs([(name, samples, numerics.TARGET_DIVERGED)], indices,
                         _samples(split), during)
  return samples


def infer(train_state: train.State, x, indices: np.ndarray, chunk: int = 512,
          split: Optional[str] = None, during: str = '') -> strategies_lib.PoolOutputs:
  """The target's (and loss module's) outputs on ``x[indices]`` (``x`` an array or array-like),
  over every device of every process, chunk by chunk. Inputs or outputs with a NaN or an infinity
  are refused (:class:`~l2r_jax.errors.NumericsError`), naming ``split`` (``x`` is the pool's or
  the test split's inputs; None: inputs given otherwise) and, before the rest, ``during`` (the run
  and cycle)."""
  outputs = strategies_lib.PoolOutputs(*devices_lib.map_over_devices(
      functools.partial(_p_forward, devices_lib.replicate(train_state)),
      lambda rows: (read_inputs(x, rows, split),), indices, chunk))
  numerics.check_outputs([('predictions', outputs.prediction, numerics.TARGET_DIVERGED),
                          ('embeddings', outputs.embedding, numerics.TARGET_DIVERGED),
                          ('loss predictions', outputs.predicted_loss,
                           numerics.LOSS_MODULE_DIVERGED)], indices, _samples(split), during)
  return outputs


def true_losses(experiment: state_lib.Experiment, train_state: train.State, indices: np.ndarray,
                during: str = '') -> np.ndarray:
  """The target's per-sample task loss on pool samples ``indices``, with their labels (for the
  diagnostic ``oracle_loss`` strategy only); ``during``: as for :func:`infer`."""
  ds = experiment.dataset
  score = functools.partial(_p_score, experiment.task, devices_lib.replicate(train_state))
  _, _, losses, _, finite = devices_lib.map_over_devices(
      score, lambda rows: (read_inputs(ds.x_train, rows, 'pool'),
                           read_inputs(ds.y_train, rows, 'pool', 'y')),
      indices, experiment.config.eval_batch_size)
  numerics.check_outputs([('predictions', finite, numerics.TARGET_DIVERGED),
                          ('losses', losses, numerics.TARGET_DIVERGED)], indices, 'pool samples',
                         during)
  return losses


def evaluate(experiment: state_lib.Experiment, train_state: train.State, chunk: int = 512,
             during: str = '') -> Dict[str, Any]:
  """The task's test metric and, with a loss module, Spearman's rho of predicted vs true per-sample
  test losses; predictions, losses or loss predictions with a NaN or an infinity are refused
  (``during``: as for :func:`infer`), never scored."""
  ds, task = experiment.dataset, experiment.task
  rows = np.arange(len(ds.x_test))
  decoded, truth, losses, predicted, finite = devices_lib.map_over_devices(
      functools.partial(_p_score, task, devices_lib.replicate(train_state)),
      lambda rows: (read_inputs(ds.x_test, rows, 'test'),
                    read_inputs(ds.y_test, rows, 'test', 'y')), rows, chunk)
  numerics.check_outputs([('predictions', finite, numerics.TARGET_DIVERGED),
                          ('decoded predictions', decoded, numerics.TARGET_DIVERGED),
                          ('losses', losses, numerics.TARGET_DIVERGED),
                          ('loss predictions', predicted, numerics.LOSS_MODULE_DIVERGED)],
                         rows, 'test samples', during)
  scores = task.score(decoded, truth)
  result = {'metric': task.metric, 'value': float(scores.pop(task.metric)),
            'spearman': None, **scores}
  if predicted is not None:
    result['spearman'] = float(metrics.spearman(jnp.asarray(predicted), jnp.asarray(losses)))
  return result
