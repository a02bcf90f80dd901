"""Checks of an experiment's config and workdir, run before anything is trained.

Each failure raises :class:`~l2r_jax.errors.ConfigError` (a ``ValueError``; a
:class:`~l2r_jax.workdir.WorkdirError` for the workdir) with one message that names the config
field and says how to fix it.
"""
import os
import tempfile

import jax
import jax.numpy as jnp
import ml_collections

from l2r_jax import models as models_lib
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import ConfigError
from l2r_jax import strategies as strategies_lib
from l2r_jax.data import pipeline
import sorter


LOOPS = ('auto', 'step', 'scan')


def _get(config, name):
  for part in name.split('.'):
    config = config[part]
  return config


def _positive_int(config, name, allow_none=False):
  value = _get(config, name)
  if value is None and allow_none:
    return
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ConfigError(f'config.{name} must be a positive integer, got {value!r} '
                     f'({type(value).__name__}).')


def _number(config, name):
  value = _get(config, name)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
    raise ConfigError(f'config.{name} must be a non-negative number, got {value!r}.')


def check_config(config: ml_collections.ConfigDict) -> None:
  for name in ('al.initial', 'al.budget', 'al.cycles', 'train.batch_size', 'train.epochs',
               'predictor.hidden', 'eval_batch_size'):
    _positive_int(config, name)
  if 'updates_per_step' in config.predictor:
    _positive_int(config, 'predictor.updates_per_step')
  _positive_int(config, 'al.subset', allow_none=True)
  for name in ('train.lr', 'train.lr_decay', 'train.weight_decay', 'predictor.lr',
               'predictor.lr_decay', 'predictor.weight_decay', 'll4al.weight', 'll4al.margin'):
    _number(config, name)
  if not config.strategies:
    raise ConfigError('config.strategies is empty: name at least one of '
                     f'{sorted(strategies_lib.REGISTRY)}.')
  for s in config.strategies:
    if s not in strategies_lib.REGISTRY:
      raise ConfigError(f'config.strategies: unknown strategy {s!r}; choose from '
                       f'{sorted(strategies_lib.REGISTRY)}.')
  if not config.seeds or not all(isinstance(s, int) and s >= 0 for s in config.seeds):
    raise ConfigError(f'config.seeds must be non-negative integers, got {config.seeds!r}.')
  if config.train.get('loop', 'step') not in LOOPS:
    raise ConfigError(f'config.train.loop={config.train.loop!r}: choose one of {LOOPS}.')
  if config.train.get('feed', 'auto') not in pipeline.FEEDS:
    raise ConfigError(f'config.train.feed={config.train.feed!r}: choose one of {pipeline.FEEDS}.')
  if not isinstance(config.get('vmap_seeds', False), bool):
    raise ConfigError(f'config.vmap_seeds must be True or False, got {config.vmap_seeds!r}.')
  if config.model.name not in models_lib.TARGETS:
    raise ConfigError(f'config.model.name={config.model.name!r} is not a model; choose from '
                     f'{sorted(models_lib.TARGETS)}.')
  batch = config.train.batch_size
  n_dev = jax.device_count()
  if batch % n_dev:
    raise ConfigError(f'config.train.batch_size={batch} must be a multiple of the {n_dev} '
                     'devices it is split over.')
  losses = {strategies_lib.LOSS_MODULES[s].loss: s for s in config.strategies
            if s in strategies_lib.LOSS_MODULES}
  if 'pairwise' in losses and batch % 2:
    raise ConfigError(f'config.train.batch_size={batch} must be even for {losses["pairwise"]}, '
                     'whose pairwise loss pairs the batch with its reverse.')
  if 'listwise' in losses:
    _check_sorter(config)


def _check_sorter(config):
  p = config.predictor
  if p.sorter not in sorter.RANKERS:
    raise ConfigError(f'config.predictor.sorter={p.sorter!r}: choose one of {sorter.RANKERS}.')
  _positive_int(config, 'predictor.sorter_len')
  if config.train.batch_size % p.sorter_len:
    raise ConfigError(
        f'config.train.batch_size={config.train.batch_size} is not a multiple of '
        f'config.predictor.sorter_len={p.sorter_len}: the listwise loss ranks each mini-batch in '
        f'lists of the sorter\'s length. Make the batch size a multiple of {p.sorter_len}.')
  if (p.sorter == 'gru' and 'path' not in p.get('sorter_kwargs', {})
      and p.sorter_len not in sorter.shipped_lengths()):
    raise ConfigError(
        f'config.predictor.sorter_len={p.sorter_len}: no pretrained GRU sorter of that length '
        f'ships (shipped: {sorter.shipped_lengths()}). Pretrain one with `python -m sorter.train '
        f'--config=configs/sorter.py --config.seq_len={p.sorter_len} --workdir=DIR` and set '
        f'--config.predictor.sorter_kwargs.path=DIR/export, or use '
        f"--config.predictor.sorter=soft_rank.")


def check_against_data(config: ml_collections.ConfigDict, dataset) -> None:
  al, n = config.al, dataset.pool_size
  final = al.initial + (al.cycles - 1) * al.budget
  if final > n:
    raise ConfigError(f'config.al: initial {al.initial} + {al.cycles - 1} cycles x budget '
                     f'{al.budget} = {final} labels, more than the pool of {n}. Lower '
                     'config.al.cycles or config.al.budget.')
  if al.subset is not None and al.budget > al.subset:
    raise ConfigError(f'config.al.budget={al.budget} is larger than config.al.subset='
                     f'{al.subset}, the random subset it is chosen from.')


def check_model(config: ml_collections.ConfigDict, dataset) -> None:
  """The target model's predictions have the shape the dataset's task needs (traced, not run)."""
  model = models_lib.TARGETS[config.model.name](num_outputs=dataset.num_outputs,
                                                **config.model.get('kwargs', {}))
  x = jax.ShapeDtypeStruct((2, *dataset.x_train.shape[1:]), jnp.float32)
  try:
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    prediction, _ = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f'config.model.name={config.model.name!r} with config.model.kwargs='
                     f'{dict(config.model.get("kwargs", {}))} cannot take inputs of shape '
                     f'{tuple(dataset.x_train.shape[1:])} from config.data.name='
                     f'{config.data.name!r}: {e}') from e
  y = dataset.y_train.shape[1:]
  expected = {'classification': (2, dataset.num_outputs),
              'pose': (2, *dataset.task_params.get('heatmap_size', ()), dataset.num_outputs),
              'crowd': (2, *y, 1)}[dataset.task]
  if tuple(prediction.shape) != expected:
    raise ConfigError(
        f'config.model.name={config.model.name!r} predicts shape {tuple(prediction.shape)} for '
        f'a batch of 2, but the {dataset.task} data of {config.data.name!r} needs '
        f'{expected}. Choose a model for this task, or set config.model.kwargs so that its '
        'output resolution matches the targets (heatmap_size, density_stride).')
  aug = config.get('augment')
  if dataset.task == 'crowd' and aug and aug.get('crop') is not None:
    stride = dataset.x_train.shape[1] // y[0]
    crop = tuple(aug.crop)
    if (len(crop) != 2 or any(c % stride for c in crop)
        or crop[0] > dataset.x_train.shape[1] or crop[1] > dataset.x_train.shape[2]):
      raise ConfigError(f'config.augment.crop={crop} must be (h, w), multiples of the density '
                       f'stride {stride}, and fit in the images '
                       f'{tuple(dataset.x_train.shape[1:3])}.')


def check_workdir(workdir: str) -> str:
  """Creates ``workdir`` if needed and proves it writable; returns its absolute path."""
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise workdir_lib.WorkdirError(f'--workdir={workdir} is not writable ({e.strerror}): choose '
                                   'a folder you can write to.') from e
  return workdir


def check_normalisation(config: ml_collections.ConfigDict, dataset, backbone) -> None:
  """Pretrained weights see inputs normalised as in their training, or the run is refused."""
  given = dataset.task_params.get('normalisation')
  if given != backbone.normalisation:
    raise ConfigError(
        f'config.model.pretrained={config.model.pretrained!r} expects inputs normalised as '
        f'{backbone.normalisation!r}, and the data {config.data.name!r} gives {given!r}: set '
        f'--config.data.normalize={backbone.normalisation} if its loader offers it (mpii, '
        f"shanghaitech and the synthetic stand-ins offer 'imagenet'), or start from other "
        f'weights (--config.model.pretrained=None: random).')
