r"""Pretrains a ResNet backbone on the generated shapes task and exports it.

    python -m l2r_jax.pretrain --config=configs/pretrain_shapes.py --workdir=runs/shapes

The offline stand-ins' counterpart of ImageNet pretraining (:mod:`l2r_jax.data.shapes` says why
this source task). ``config.source_task='classification'``: a classifier (the backbone, global
average pooling, a linear layer) learns the shapes' classes. ``'keypoints'``: SimpleBaseline's
head on the backbone learns one heatmap of every shape's stroke ends and corners (class-agnostic
keypoints, Gaussians of ``config.head.sigma`` heatmap pixels), a localisation task with no figure
or crowd in it. ``config.source='figures'`` (keypoints only) sets the same task on the pose
stand-in's figures instead of shapes: every joint of a figure in one heatmap, whichever joint it
is, rendered by :mod:`l2r_jax.data.synthetic_pose` from a stream of its own (``FIGURES_SPLIT``),
disjoint from the stand-in's pool and test set. Either is trained on ``num_train`` generated
images (each step rotating, reflecting and shifting them, keypoints with them), checked on
``num_val`` more, and its backbone is exported to
``WORKDIR/export`` (:func:`l2r_jax.models.pretrained.export`), where
``--config.model.pretrained=WORKDIR/export`` finds it; copying that folder to
``l2r_jax/models/pretrained_weights/<name>`` ships it under that name. Deterministic from
``config.seed`` on a given machine; minutes on 2 CPU cores (the config's docstring).
"""
import functools
import json
import os
import sys
import time
from typing import Any, Dict

from absl import app
from absl import flags
from absl import logging
import flax
import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax

from l2r_jax import cli
from l2r_jax import models
from l2r_jax import tasks
from l2r_jax import validation
from l2r_jax.data import shapes
from l2r_jax.data import synthetic_pose
from l2r_jax.errors import ConfigError
from l2r_jax.errors import Refusal
from l2r_jax.errors import WorkdirError
from l2r_jax.models import pretrained

SOURCES = ('shapes', 'figures')
# The pose renderer's stream for pretraining figures: the stand-in draws its pool from stream 0
# ('train') and its test set from stream 1 ('test').
FIGURES_SPLIT = 2


class PretrainState(train_state.TrainState):
  batch_stats: Any = None


def make_model(config: ml_collections.ConfigDict):
  if config.source_task == 'keypoints':
    head = {k: v for k, v in config.head.items() if k != 'sigma'}
    return models.SimpleBaseline(num_outputs=1, **config.model, **head)
  return models.ResNet(num_outputs=len(shapes.CLASSES), **config.model)


def source_data(config: ml_collections.ConfigDict, n: int, start: int) -> Dict[str, np.ndarray]:
  """Samples ``start .. start + n - 1`` of ``config.source``: ``images [n, S, S, 3]``, ``labels
  [n]`` (the shapes' classes; zeros for figures) and ``keypoints [n, K, 2]`` in input pixels (NaN:
  none; a figure's joints outside the frame are none)."""
  if config.get('source', 'shapes') == 'shapes':
    return shapes.make_shapes(n, config.seed, config.image_size, start=start)
  s = config.image_size
  figures = [synthetic_pose.pose_sample(config.seed, FIGURES_SPLIT, i, s, heatmap_size=s)
             for i in range(start, start + n)]
  joints = np.stack([f['joints'] for f in figures]).reshape(n, synthetic_pose.NUM_JOINTS, 3)
  return {'images': np.stack([f['image'] for f in figures]).reshape(n, s, s, 3),
          'labels': np.zeros(n, np.int32),
          'keypoints': np.where(joints[..., 2:] > 0, joints[..., :2], np.nan).astype(np.float32)}


def keypoint_channel(keypoints: np.ndarray, image_size: int, sigma: float) -> np.ndarray:
  """``[N, S, S, 1]``: the maximum over a shape's keypoints (``[N, K, 2]`` pixels, NaN: none) of
  Gaussians of ``sigma`` pixels, peak 1: the target at the image's resolution, so that the images'
  augmentation moves it with them."""
  joints = np.concatenate([np.nan_to_num(keypoints, nan=-1e4),
                           np.ones(keypoints.shape[:2] + (1,), np.float32)], -1)
  channel = np.concatenate([np.asarray(tasks.render_heatmaps(joints[i:i + 1000],
                                                             (image_size, image_size), sigma))
                            for i in range(0, len(joints), 1000)])
  return channel.max(-1, keepdims=True)


def heatmap_target(channel, stride: int):
  """The keypoint channel averaged over ``stride``×``stride`` cells: the heatmap's target."""
  return nn.avg_pool(channel, (stride, stride), strides=(stride, stride))[..., 0]


def augment(x, rng):
  """Per image: one of the 8 rotations and reflections of the square (a shape's class does not
  change under any of them) and a shift of up to 4 pixels (zero-padded)."""
  k_turn, k_flip, k_shift = jax.random.split(rng, 3)
  b, s = x.shape[0], x.shape[1]
  turns = jax.random.randint(k_turn, (b,), 0, 4)
  flips = jax.random.bernoulli(k_flip, 0.5, (b,))
  shifts = jax.random.randint(k_shift, (b, 2), 0, 9)

  def one(image, turn, flip, shift):
    image = jax.lax.switch(turn, [lambda a, k=k: jnp.rot90(a, k) for k in range(4)], image)
    image = jnp.where(flip, image[:, ::-1], image)
    padded = jnp.pad(image, ((4, 4), (4, 4), (0, 0)))
    return jax.lax.dynamic_slice(padded, (shift[0], shift[1], 0), (s, s, image.shape[-1]))

  return jax.vmap(one)(x, turns, flips, shifts)


def source_loss(outputs, y, x):
  """Mean cross-entropy of class logits (``y`` the labels), or mean squared error of heatmaps
  against the keypoint channel ``x[..., 3:]`` averaged down to their size."""
  if outputs.ndim == 2:
    return tasks.cross_entropy(outputs, y).mean()
  target = heatmap_target(x[..., 3:], x.shape[1] // outputs.shape[1])
  return jnp.mean((outputs[..., 0] - target)**2)


def train_step(state: PretrainState, x, y, rng):
  """One step on the source task's loss of augmented images (a fourth channel, the keypoints'
  target, is moved with them); BatchNorm on the batch."""
  x = augment(x, rng)

  def loss_fn(params):
    (outputs, _), updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, x[..., :3], train=True,
        mutable=['batch_stats'])
    return source_loss(outputs, y, x), updates['batch_stats']

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), loss


def heatmap_explained(state: PretrainState, x, chunk: int = 500) -> float:
  """``1 - MSE / MSE of the all-zero heatmap`` on ``x`` (images with their keypoint channel)."""
  @jax.jit
  def errors(x):
    heatmaps, _ = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                                 x[..., :3], train=False)
    target = heatmap_target(x[..., 3:], x.shape[1] // heatmaps.shape[1])
    return jnp.sum((heatmaps[..., 0] - target)**2), jnp.sum(target**2)
  sums = np.sum([jax.device_get(errors(x[i:i + chunk])) for i in range(0, len(x), chunk)], 0)
  return float(1 - sums[0] / sums[1])


def accuracy(state: PretrainState, x, y, chunk: int = 500) -> float:
  @jax.jit
  def correct(x, y):
    logits, _ = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, x,
                               train=False)
    return jnp.sum(jnp.argmax(logits, -1) == y)
  return float(sum(int(correct(x[i:i + chunk], y[i:i + chunk]))
                   for i in range(0, len(x), chunk))) / len(x)


def pretrain(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, Any]:
  """Trains the classifier, exports its backbone to ``WORKDIR/export``; returns the export's
  record (``backbone.json``)."""
  for name in ('num_train', 'num_val', 'batch_size', 'epochs', 'image_size'):
    if not isinstance(config[name], int) or isinstance(config[name], bool) or config[name] < 1:
      raise ConfigError(f'config.{name} must be a positive integer, got {config[name]!r}.')
  if config.batch_size > config.num_train:
    raise ConfigError(f'config.batch_size={config.batch_size} is more than config.num_train='
                      f'{config.num_train}: an epoch would take no step. Lower the batch size.')
  if config.source_task not in ('classification', 'keypoints'):
    raise ConfigError(f"config.source_task={config.source_task!r}: use 'classification' or "
                      "'keypoints'.")
  source = config.get('source', 'shapes')
  if source not in SOURCES or (source == 'figures' and config.source_task != 'keypoints'):
    raise ConfigError(f"config.source={source!r}: use 'shapes', or 'figures' with "
                      "config.source_task='keypoints' (figures have no classes).")
  workdir = validation.check_workdir(workdir)     # before anything trains
  if os.path.lexists(os.path.join(workdir, 'export', 'backbone.json')):
    raise WorkdirError(f'--workdir={workdir} holds an exported backbone already '
                       f'({os.path.join(workdir, "export")}): give a new --workdir (an export is '
                       'never written over).')
  t0 = time.time()
  train_data = source_data(config, config.num_train, 0)
  val_data = source_data(config, config.num_val, config.num_train)
  model = make_model(config)
  sample = jnp.zeros((1, config.image_size, config.image_size, 3))
  variables = model.init(jax.random.PRNGKey(config.seed), sample, train=False)
  if config.source_task == 'keypoints':
    heatmaps, _ = jax.eval_shape(functools.partial(model.apply, train=False), variables, sample)
    stride = config.image_size // heatmaps.shape[1]
    for data in (train_data, val_data):
      data['images'] = np.concatenate([data['images'], keypoint_channel(
          data['keypoints'], config.image_size, config.head.sigma * stride)], -1)
  steps_per_epoch = config.num_train // config.batch_size
  schedule = optax.cosine_decay_schedule(config.lr, steps_per_epoch * config.epochs)
  state = PretrainState.create(apply_fn=model.apply, params=variables['params'],
                               batch_stats=variables['batch_stats'],
                               tx=optax.adamw(schedule, weight_decay=config.weight_decay))
  step = jax.jit(train_step, donate_argnums=0)
  rng = jax.random.PRNGKey(config.seed + 1)
  history = []
  for epoch in range(config.epochs):
    order = np.random.default_rng([config.seed, epoch]).permutation(config.num_train)
    losses = []
    for i in range(steps_per_epoch):
      rows = order[i * config.batch_size:(i + 1) * config.batch_size]
      state, loss = step(state, train_data['images'][rows], train_data['labels'][rows],
                         jax.random.fold_in(rng, epoch * steps_per_epoch + i))
      losses.append(loss)
    loss = float(np.mean(jax.device_get(losses)))
    if not np.isfinite(loss):
      raise FloatingPointError(f'Pretraining loss became {loss} in epoch {epoch}.')
    if config.source_task == 'keypoints':
      metric, val = 'val_explained', heatmap_explained(state, val_data['images'])
    else:
      metric, val = 'val_accuracy', accuracy(state, val_data['images'], val_data['labels'])
    history.append({'epoch': epoch, 'train_loss': round(loss, 4), metric: val})
    logging.warning('epoch %d: train loss %.4f, %s %.4f', epoch, loss, metric, val)
  if config.source_task == 'keypoints':
    task = {'source_task': f'{source}_keypoints', 'val_explained': val}
  else:
    task = {'source_task': 'shapes', 'classes': list(shapes.CLASSES), 'val_accuracy': val,
            'chance_accuracy': 1 / len(shapes.CLASSES)}
  info = {**task, 'config': config.to_dict(), 'architecture': dict(config.model),
          'history': history, 'wall_s': round(time.time() - t0, 1),
          'jax_version': jax.__version__, 'flax_version': flax.__version__,
          'device': jax.devices()[0].device_kind}
  pretrained.export(os.path.join(workdir, 'export'), state.params['backbone'],
                    state.batch_stats['backbone'], shapes.NORMALISATION, info)
  return info


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    info = pretrain(flags.FLAGS.config, flags.FLAGS.workdir)
  except Refusal as e:    # its message names what to change; a traceback is for bugs
    print(f'l2r_jax.pretrain: {e}', file=sys.stderr)
    sys.exit(2)
  print(json.dumps({k: v for k, v in info.items() if k != 'history'}, indent=2))


if __name__ == '__main__':
  # Defined here, not on import: the library's other command lines define flags of the same names.
  config_flags.DEFINE_config_file('config', None, 'Pretraining config file.', lock_config=True)
  flags.DEFINE_string('workdir', None, 'Folder for the exported backbone.')
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=cli.parse_flags)
