"""CIFAR-10 and CelebA from the TFDS catalogue, read without TensorFlow.

Both are read with ``tfds.data_source`` (ArrayRecord, random access, decoded with NumPy and PIL),
so a prepared dataset needs no TensorFlow. Preparing one is TFDS's job and may need it::

    pip install -e '.[prepare]'
    tfds build cifar10 --file_format=array_record [--data_dir=DIR]
    tfds build celeb_a --file_format=array_record [--data_dir=DIR]

An unprepared dataset raises :class:`l2r_jax.data.DataNotFoundError` with that command, before
anything else runs (``download=False``: a run never starts a download by surprise).

* CIFAR-10 (Krizhevsky 2009): 50,000 / 10,000 images of 32×32, held in memory, normalised per
  channel with the mean and std of the training set; the paper's augmentation (a random 32×32 crop
  of the image zero-padded to 36×36, and flips) runs on device (``config.augment``, pad 2).
* CelebA gender (Liu et al. 2015): the ``Male`` attribute, 162,770 / 19,962 faces (train / test
  splits) resized to 64×64, made on demand (the pool never sits in memory), normalised per channel
  with statistics of ``stats_sample`` training images.
"""
import io
from typing import Optional

import ml_collections
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages
from l2r_jax.errors import DataNotFoundError


def source(name: str, split: str, data_dir: Optional[str], decoders=None):
  """``tfds.data_source`` of a prepared dataset, or a :class:`DataNotFoundError` saying how to
  prepare it."""
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False,
                            decoders=decoders)
  # TFDS says "not prepared" in several ways: a missing folder, no files, or (in its default data
  # dir) a KeyError on an empty split list.
  except (NotImplementedError, AssertionError, FileNotFoundError, KeyError, ValueError,
          tfds.core.registered.DatasetNotFoundError) as e:
    where = f' --data_dir={data_dir}' if data_dir else ''
    raise DataNotFoundError(
        f'TFDS dataset {name!r} (split {split!r}) is not prepared as ArrayRecord'
        f'{" under " + data_dir if data_dir else " in the TFDS data dir"} ({type(e).__name__}). '
        f"Prepare it once with:\n  pip install -e '.[prepare]'\n"
        f'  tfds build {name} --file_format=array_record{where}\n'
        'then run again (config.data.data_dir chooses the folder).') from e


def _rows(src, n: Optional[int] = None):
  n = len(src) if n is None else min(n, len(src))
  return [src[i] for i in range(n)]


def load_cifar10(config: ml_collections.ConfigDict) -> Dataset:
  """CIFAR-10, per-channel normalised. ``config``: ``data_dir`` (None: TFDS's default),
  ``max_examples`` (first N of each split; None: all)."""
  data_dir, cap = config.get('data_dir'), config.get('max_examples')
  splits = {}
  for split in ('train', 'test'):
    rows = _rows(source('cifar10', split, data_dir), cap)
    splits[split] = (np.stack([np.asarray(r['image'], np.uint8) for r in rows]),
                     np.array([r['label'] for r in rows], np.int32))
  x_train = splits['train'][0].astype(np.float32) / 255.0
  mean, std = x_train.mean((0, 1, 2)), x_train.std((0, 1, 2))
  norm = lambda x: ((x.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)  # noqa: E731
  return Dataset(norm(splits['train'][0]), splits['train'][1], norm(splits['test'][0]),
                 splits['test'][1], 10, task_params={'mean': mean, 'std': std,
                              'normalisation': 'train_statistics'})


def _face(src, i: int, size: int) -> np.ndarray:
  """Record ``i``'s image (encoded bytes, or decoded pixels), resized to ``size``×``size``, in
  [0, 1]."""
  raw = src[i]['image']
  image = (Image.open(io.BytesIO(raw)) if isinstance(raw, bytes)
           else Image.fromarray(np.asarray(raw, np.uint8))).convert('RGB')
  image = image.resize((size, size), Image.BILINEAR)
  return np.asarray(image, np.float32) / 255.0


def _encoded_source(name: str, split: str, data_dir: Optional[str]):
  """A source whose images stay encoded until a row is used, so that the labels of 160k faces load
  in seconds. (A source that cannot skip decoding, like TFDS's mock data, is read decoded.)"""
  src = source(name, split, data_dir, decoders={'image': tfds.decode.SkipDecoding()})
  try:
    src[0]
    return src
  except ModuleNotFoundError:
    return source(name, split, data_dir)


def load_celeba(config: ml_collections.ConfigDict) -> Dataset:
  """CelebA gender. ``config``: ``data_dir``, ``image_size`` (64), ``max_examples`` (None: all),
  ``stats_sample`` (2,000: training images the normalisation statistics are computed on)."""
  data_dir, cap = config.get('data_dir'), config.get('max_examples')
  size = int(config.get('image_size', 64))
  sources, labels = {}, {}
  for split in ('train', 'test'):
    src = _encoded_source('celeb_a', split, data_dir)
    n = len(src) if cap is None else min(cap, len(src))
    sources[split] = (src, n)
    labels[split] = np.array([bool(r['attributes']['Male']) for r in _rows(src, n)], np.int32)
  src, n = sources['train']
  sample = np.linspace(0, n - 1, min(n, int(config.get('stats_sample', 2000)))).astype(int)
  faces = np.stack([_face(src, int(i), size) for i in sample])
  mean, std = faces.mean((0, 1, 2)), faces.std((0, 1, 2))

  def images(split):
    s, count = sources[split]
    return LazyImages(count, (size, size, 3), lambda i: (_face(s, i, size) - mean) / std)

  return Dataset(images('train'), labels['train'], images('test'), labels['test'], 2,
                 task_params={'mean': mean, 'std': std,
                              'normalisation': 'train_statistics'})
