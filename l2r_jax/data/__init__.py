"""Datasets by name. Each loader returns a :class:`Dataset` of host arrays; the pool is the train split."""
from typing import Callable, Dict

import ml_collections

from l2r_jax.data import offline
from l2r_jax.data.base import Dataset

LOADERS: Dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {
    'mnist1d': offline.load_mnist1d,
    'digits': offline.load_digits,
    'random_images': offline.load_random_images,
}


def load(config: ml_collections.ConfigDict) -> Dataset:
  if config.name not in LOADERS:
    raise ValueError(f'config.data.name={config.name!r} is not a dataset: choose from '
                     f'{sorted(LOADERS)}.')
  return LOADERS[config.name](config)


__all__ = ['Dataset', 'LOADERS', 'load']
