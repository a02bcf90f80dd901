"""Your own images, from a folder: ``config.data.name='image_folder'``.

    ROOT/labeled/<class>/*.png     images whose class is known (optional; may be empty)
    ROOT/unlabeled/*.png           images to label (subfolders are read too)
    ROOT/test/<class>/*.png        a labeled test split (optional: without it, no evaluation)

The pool is every image under ``labeled/`` and ``unlabeled/``, in the order of their paths; the
labels of ``unlabeled/`` are unknown (-1) until answered (:class:`~l2r_jax.learner.ActiveLearner`,
``python -m l2r_jax.label``). Each pool sample's id is its path relative to ``ROOT``. The classes
are ``config.data.classes`` in that order, or else the sorted names of the class folders under
``labeled/`` and ``test/``; a class folder not among ``config.data.classes`` is refused.

Images (PNG, JPEG, BMP, GIF, TIFF, WebP: whatever Pillow reads) are decoded on demand, converted
to RGB (or grey, ``config.data.channels=1``), resized to ``config.data.image_size`` (h, w) and
scaled to [0, 1], then normalised: per channel by the mean and std of up to ``stats_sample``
pool images (``normalize='train_statistics'``, the default), or as ImageNet's weights expect
(``'imagenet'``, for a pretrained backbone).
"""
import os
from typing import List, Sequence, Tuple

import ml_collections
import numpy as np
from PIL import Image

from l2r_jax.data import DataNotFoundError
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import IMAGENET_MEAN
from l2r_jax.data.base import IMAGENET_STD
from l2r_jax.data.base import LazyImages
from l2r_jax.data.base import normalisation
from l2r_jax.errors import ConfigError

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp')


def _images(folder: str) -> List[str]:
  """Image files under ``folder`` (recursively), sorted."""
  found = []
  for parent, _, files in os.walk(folder):
    found += [os.path.join(parent, f) for f in files if f.lower().endswith(EXTENSIONS)]
  return sorted(found)


def _class_folders(folder: str) -> List[str]:
  if not os.path.isdir(folder):
    return []
  return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def _labeled(folder: str, classes: Sequence[str]) -> Tuple[List[str], List[int]]:
  files, labels = [], []
  for name in _class_folders(folder):
    if name not in classes:
      raise ConfigError(f'{os.path.join(folder, name)} is a class folder, but {name!r} is not in '
                        f'config.data.classes={list(classes)}: add it there, or move the folder.')
    found = _images(os.path.join(folder, name))
    files += found
    labels += [classes.index(name)] * len(found)
  order = np.argsort(files, kind='stable')
  return [files[i] for i in order], [labels[i] for i in order]


def read_image(path: str, size: Tuple[int, int], channels: int) -> np.ndarray:
  """The image at ``path`` as float32 ``[h, w, channels]`` in [0, 1], resized (bilinear)."""
  with Image.open(path) as image:
    image = image.convert('L' if channels == 1 else 'RGB').resize((size[1], size[0]),
                                                                  Image.BILINEAR)
    pixels = np.asarray(image, np.float32) / 255.0
  return pixels[..., None] if channels == 1 else pixels


def load_image_folder(config: ml_collections.ConfigDict) -> Dataset:
  """The dataset of images under ``config.root`` (see the module's docstring). ``config``:
  ``root``; ``classes`` (names, optional); ``image_size`` (h, w; default (64, 64)); ``channels``
  (3 or 1); ``normalize``; ``stats_sample`` (default 1,000)."""
  root = config.get('root')
  if not root or not os.path.isdir(root):
    raise DataNotFoundError(f'config.data.root={root!r} is not a folder: give the folder that '
                            'holds labeled/<class>/, unlabeled/ and optionally test/<class>/.')
  root = os.path.abspath(root)
  classes = list(config.get('classes') or sorted(
      set(_class_folders(os.path.join(root, 'labeled'))) |
      set(_class_folders(os.path.join(root, 'test')))))
  if len(classes) < 2:
    raise ConfigError(f'config.data.classes={classes}: name at least 2 classes (or make a '
                      f'folder per class under {os.path.join(root, "labeled")}).')
  size = tuple(int(v) for v in config.get('image_size', (64, 64)))
  channels = int(config.get('channels', 3))
  if len(size) != 2 or min(size) < 1 or channels not in (1, 3):
    raise ConfigError(f'config.data.image_size={size} must be (height, width) and '
                      f'config.data.channels={channels} 1 or 3.')
  labeled, labels = _labeled(os.path.join(root, 'labeled'), classes)
  unlabeled = _images(os.path.join(root, 'unlabeled'))
  pool = sorted(zip(labeled + unlabeled, labels + [-1] * len(unlabeled)))
  if not pool:
    raise DataNotFoundError(f'No images under {os.path.join(root, "labeled")} or '
                            f'{os.path.join(root, "unlabeled")} (extensions {EXTENSIONS}).')
  test, test_labels = _labeled(os.path.join(root, 'test'), classes)
  pool_files = [f for f, _ in pool]
  method = normalisation(config, 'image_folder', ('train_statistics', 'imagenet'))
  if method == 'imagenet':
    if channels != 3:
      raise ConfigError("config.data.normalize='imagenet' needs RGB: config.data.channels=3.")
    mean, std = IMAGENET_MEAN, IMAGENET_STD
  else:
    sample = np.linspace(0, len(pool_files) - 1,
                         min(len(pool_files), int(config.get('stats_sample', 1000)))).astype(int)
    pixels = np.stack([read_image(pool_files[i], size, channels) for i in sample])
    mean, std = pixels.mean((0, 1, 2)), np.maximum(pixels.std((0, 1, 2)), 1e-6)

  def images(files):
    return LazyImages(len(files), (*size, channels),
                      lambda i: (read_image(files[i], size, channels) - mean) / std)

  return Dataset(images(pool_files), np.array([y for _, y in pool], np.int32), images(test),
                 np.array(test_labels, np.int32), len(classes),
                 task_params={'mean': mean, 'std': std, 'normalisation': method},
                 pool_ids=[os.path.relpath(f, root) for f in pool_files], class_names=classes,
                 source_root=root)
