"""Datasets by name: ``load(config.data)`` returns a :class:`Dataset`; the pool is the train split.

Loaders are imported on first use, so the offline tasks never import TensorFlow Datasets.
"""
import importlib
from typing import Callable, Dict

import ml_collections

from l2r_jax.data.base import Dataset
from l2r_jax.errors import ConfigError
from l2r_jax.errors import Refusal
from l2r_jax.data.base import LazyImages
from l2r_jax.data.base import TASKS


def _lazy(module: str, fn: str) -> Callable[[ml_collections.ConfigDict], Dataset]:
  def load(config):
    return getattr(importlib.import_module(f'l2r_jax.data.{module}'), fn)(config)
  load.__name__ = fn
  return load


LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {
    'mnist1d': _lazy('offline', 'load_mnist1d'),
    'digits': _lazy('offline', 'load_digits'),
    'random_images': _lazy('offline', 'load_random_images'),
    'synthetic_pose': _lazy('synthetic', 'load_synthetic_pose'),
    'synthetic_crowd': _lazy('synthetic', 'load_synthetic_crowd'),
    'cifar10': _lazy('catalog', 'load_cifar10'),
    'celeba': _lazy('catalog', 'load_celeba'),
    'mpii': _lazy('mpii', 'load_mpii'),
    'shanghaitech': _lazy('shanghaitech', 'load_shanghaitech'),
}


# Real datasets and their offline stand-ins (``config.data.synthetic=True``).
STAND_INS = {'mpii': 'synthetic_pose', 'shanghaitech': 'synthetic_crowd'}


class DataNotFoundError(Refusal, FileNotFoundError):
  """A dataset that needs files the user must provide; the message says which, and where."""


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
    return LOADERS[STAND_INS[config.name]](stand_in)
  return LOADERS[config.name](config)


__all__ = ['DataNotFoundError', 'Dataset', 'LOADERS', 'LazyImages', 'TASKS', 'load']
