"""Datasets that need no download: mnist1d (generated), scikit-learn's digits, random images."""
import ml_collections
import numpy as np

from l2r_jax.data.base import Dataset


def load_mnist1d(config: ml_collections.ConfigDict) -> Dataset:
  """MNIST-1D (Greydanus 2020), generated locally: 40-long sequences, 10 classes.

  ``config.num_samples`` (default 5000) is split 80/20 into pool and test, as mnist1d does.
  """
  from mnist1d import data as mnist1d_data  # pylint: disable=g-import-not-at-top
  args = mnist1d_data.get_dataset_args()
  args.num_samples = config.get('num_samples', 5000)
  args.seed = config.get('seed', 42)
  d = mnist1d_data.make_dataset(args)  # make_dataset, not get_dataset: the latter downloads
  return Dataset(d['x'].astype(np.float32), d['y'].astype(np.int32),
                 d['x_test'].astype(np.float32), d['y_test'].astype(np.int32), 10)


def load_digits(config: ml_collections.ConfigDict) -> Dataset:
  """scikit-learn's 8x8 digits (1,797 images), scaled to [0, 1], split by a fixed permutation."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  d = datasets.load_digits()
  x = (d.images / 16.0).astype(np.float32)[..., None]
  y = d.target.astype(np.int32)
  perm = np.random.default_rng(config.get('seed', 0)).permutation(len(y))
  n_test = config.get('num_test', 497)
  test, train = perm[:n_test], perm[n_test:]
  return Dataset(x[train], y[train], x[test], y[test], 10)


def load_random_images(config: ml_collections.ConfigDict) -> Dataset:
  """Random CIFAR-shaped images and labels, for exercising models and steps without data."""
  r = np.random.default_rng(config.get('seed', 0))
  shape = tuple(config.get('shape', (32, 32, 3)))
  n, n_test, k = config.get('num_samples', 256), config.get('num_test', 64), 10
  return Dataset(r.normal(size=(n, *shape)).astype(np.float32),
                 r.integers(0, k, n).astype(np.int32),
                 r.normal(size=(n_test, *shape)).astype(np.float32),
                 r.integers(0, k, n_test).astype(np.int32), k)
