"""Datasets by name: ``load(config.data)`` returns a :class:`Dataset`; the pool is the train split.

Loaders are imported on first use, so the offline tasks never import TensorFlow Datasets. A user
adds a dataset with :func:`register_dataset`; every dataset, built in or not, is checked against
:class:`Dataset`'s contract when it is loaded (:func:`check_dataset`).
"""
import importlib
import inspect
from typing import Callable, Dict

import ml_collections

from l2r_jax.data.base import check_dataset
from l2r_jax.data.base import class_key
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import describe
from l2r_jax.data.base import LazyImages
from l2r_jax.data.base import TASKS
from l2r_jax.data.base import unknown_labels
from l2r_jax import errors
from l2r_jax import fields
from l2r_jax.errors import ConfigError
from l2r_jax.errors import DataNotFoundError


def _lazy(module: str, fn: str) -> Callable[[ml_collections.ConfigDict], Dataset]:
  def load(config):
    return getattr(importlib.import_module(f'l2r_jax.data.{module}'), fn)(config)
  load.__name__ = fn
  return load


LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {
    'mnist1d': _lazy('offline', 'load_mnist1d'),
    'digits': _lazy('offline', 'load_digits'),
    'random_images': _lazy('offline', 'load_random_images'),
    'image_folder': _lazy('image_folder', 'load_image_folder'),
    'synthetic_pose': _lazy('synthetic_pose', 'load_synthetic_pose'),
    'synthetic_crowd': _lazy('synthetic_crowd', 'load_synthetic_crowd'),
    'cifar10': _lazy('catalog', 'load_cifar10'),
    'celeba': _lazy('catalog', 'load_celeba'),
    'mpii': _lazy('mpii', 'load_mpii'),
    'shanghaitech': _lazy('shanghaitech', 'load_shanghaitech'),
}
BUILT_IN = frozenset(LOADERS)


def register_dataset(name: str, loader: Callable[[ml_collections.ConfigDict], Dataset]
                     ) -> Callable[[ml_collections.ConfigDict], Dataset]:
  """Makes ``loader`` the dataset ``config.data.name=name``; returns it, so it can decorate.

  ``loader(config.data)`` receives the whole ``config.data`` section (its own fields beside
  ``name``: sizes, folders, seeds; set them in the config, ``config.data.my_field = ...``) and
  returns a :class:`Dataset`, checked by :func:`check_dataset`. A built-in name cannot be taken;
  registering a user name again replaces the earlier loader only if it has the same qualified name
  (a notebook cell run twice)."""
  errors.check_name('register_dataset', name)
  if name in BUILT_IN:
    raise ConfigError(f'register_dataset: {name!r} is a built-in dataset; choose another name '
                      f'(built in: {sorted(BUILT_IN)}).')
  if not callable(loader):
    raise ConfigError(f'register_dataset({name!r}, ...): give a function config.data -> '
                      f'Dataset, not {type(loader).__name__}.')
  try:
    inspect.signature(loader).bind(None)
  except TypeError:
    raise ConfigError(f'register_dataset({name!r}, ...): the loader must take one argument, '
                      'config.data (its own fields beside name), and return a Dataset.') from None
  except ValueError:   # no signature to read (a builtin): called as it is
    pass
  errors.check_replacement('register_dataset', name, LOADERS.get(name), loader)
  LOADERS[name] = loader
  return loader


# Real datasets and their offline stand-ins (``config.data.synthetic=True``).
STAND_INS = {'mpii': 'synthetic_pose', 'shanghaitech': 'synthetic_crowd'}

# The fields of ``config.data`` that the generated datasets read, each with its check
# (:mod:`l2r_jax.fields`), run before the loader; a field left out takes the loader's default.
_SEED = fields.non_negative_int
FIELD_CHECKS = {
    'mnist1d': {'num_samples': fields.positive_int, 'seed': _SEED},
    'digits': {'num_test': fields.positive_int, 'seed': _SEED},
    'random_images': {'num_samples': fields.positive_int, 'num_test': fields.positive_int,
                      'seed': _SEED},
    'synthetic_pose': {'num_train': fields.positive_int, 'num_test': fields.positive_int,
                       'seed': _SEED, 'image_size': fields.positive_int,
                       'heatmap_size': fields.positive_int, 'sigma': fields.positive_number},
    'synthetic_crowd': {'num_train': fields.positive_int, 'num_test': fields.positive_int,
                        'seed': _SEED, 'image_size': fields.size,
                        'density_stride': fields.positive_int, 'sigma': fields.positive_number,
                        'density_scale': fields.positive_number},
}


def check_fields(name: str, config: ml_collections.ConfigDict) -> None:
  """Refuses (:class:`ConfigError`) a field of ``config`` (``config.data``) that the dataset
  ``name`` reads and cannot take, naming it."""
  for field, check in FIELD_CHECKS.get(name, {}).items():
    if field in config:
      check({'data': config}, f'data.{field}')


def load(config: ml_collections.ConfigDict) -> Dataset:
  """The dataset ``config.name``; with ``config.synthetic`` its offline stand-in at the same sizes,
  generated on demand."""
  if config.name not in LOADERS:
    raise ConfigError(f'config.data.name={config.name!r} is not a dataset: choose from '
                     f'{sorted(LOADERS)}.')
  if config.get('synthetic'):
    if config.name not in STAND_INS:
      raise ConfigError(f'config.data.synthetic=True: {config.name!r} has no synthetic stand-in '
                       f'(those that do: {sorted(STAND_INS)}).')
    stand_in = ml_collections.ConfigDict(config.to_dict())
    stand_in.lazy = True
    check_fields(STAND_INS[config.name], stand_in)
    return check_dataset(LOADERS[STAND_INS[config.name]](stand_in), config.name)
  check_fields(config.name, config)
  return check_dataset(LOADERS[config.name](config), config.name)


__all__ = ['BUILT_IN', 'DataNotFoundError', 'Dataset', 'FIELD_CHECKS', 'LOADERS', 'LazyImages',
           'TASKS', 'check_dataset', 'check_fields', 'load', 'register_dataset', 'unknown_labels']
