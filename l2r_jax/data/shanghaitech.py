"""ShanghaiTech Part B (Zhang et al., CVPR 2016) as density maps, the C^3 framework's way.

The paper counts crowds on ShanghaiTech Part B (street scenes, 400 train / 316 test images of
768 x 1024) with the C^3 framework (Gao et al., 2019): the network regresses a density map, a sum
of one unit Gaussian per annotated head multiplied by ``LOG_PARA = 100`` so that the targets are
not vanishingly small, and the count is the map's sum / 100. C^3 draws each head as a fixed
15 x 15 Gaussian of sigma 4 pixels at full resolution and normalises images with Part B's own
mean and std (below).

**Files (manual download).** The manual folder (``config.manual_dir``; default
``<data_dir>/downloads/manual/shanghaitech_part_b``) holds the dataset's Part B as released::

  part_B/train_data/images/IMG_<k>.jpg            k = 1..400
  part_B/train_data/ground-truth/GT_IMG_<k>.mat   image_info{1}.location: [P, 2] heads (x, y),
  part_B/test_data/images/IMG_<k>.jpg             1-based; image_info{1}.number: P
  part_B/test_data/ground-truth/GT_IMG_<k>.mat    k = 1..316

(``part_B_final`` and ``ground_truth``, spellings of other copies, are accepted too.)

**Preparing.** ``python -m l2r_jax.data.shanghaitech --manual_dir DIR [--data_dir DIR]``, or the
first :func:`load_shanghaitech`; no TensorFlow needed. Records hold the original JPEG bytes (80 MB
in all, so the prepared dataset stands alone), the head points made 0-based (pixel centres at
integers) and the count.
"""
import io
import os
import re
from typing import Dict, Optional, Sequence, Tuple

from absl import logging
import ml_collections
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from l2r_jax.data import base
from l2r_jax.data import tfds_util
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages
from l2r_jax.data.density import density_map

# C^3 framework, datasets/SHHB/setting.py and prepare_SHHB.m
SHHB_MEAN = np.array([0.452016860247, 0.447249650955, 0.431981861591], np.float32)
SHHB_STD = np.array([0.23242045939, 0.224925786257, 0.221840232611], np.float32)
SIGMA = 4.0            # the Gaussian per head, in input pixels
DENSITY_SCALE = 100.0  # LOG_PARA
NUM_EXAMPLES = {'train': 400, 'test': 316}

URL = 'https://github.com/desenzhou/ShanghaiTechDataset'
_SPLIT_DIRS = {'train': 'train_data', 'test': 'test_data'}
_ROOTS = ('part_B', 'part_B_final')
_GT_DIRS = ('ground-truth', 'ground_truth')
_IMAGE_RE = re.compile(r'^IMG_(\d+)\.jpg$')
_GT_RE = re.compile(r'^GT_IMG_(\d+)\.mat$')

_INSTRUCTIONS = f"""
Put ShanghaiTech Part B in the manual folder <manual_dir>:
  <manual_dir>/part_B/train_data/images/IMG_1.jpg ... IMG_400.jpg
  <manual_dir>/part_B/train_data/ground-truth/GT_IMG_1.mat ... GT_IMG_400.mat
  <manual_dir>/part_B/test_data/images/IMG_1.jpg ... IMG_316.jpg
  <manual_dir>/part_B/test_data/ground-truth/GT_IMG_1.mat ... GT_IMG_316.mat
The dataset (ShanghaiTech_Crowd_Counting_Dataset.zip, Parts A and B) is linked from
{URL}; unzip it and move or link its part_B folder there.
"""


class ShanghaitechPartB(tfds.core.GeneratorBasedBuilder):
  """ShanghaiTech Part B: street crowds with one point per head."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Original images and head points, 400 train / 316 test.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='ShanghaiTech Part B crowd counting: original JPEGs, head points (x, y) '
                    '0-based, head counts.',
        features=tfds.features.FeaturesDict({
            'index': np.int32,  # k of IMG_k.jpg
            'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
            'points': tfds.features.Tensor(shape=(None, 2), dtype=np.float32),
            'count': np.int32,
        }),
        homepage=URL,
        citation='Zhang, Zhou, Chen, Gao, Ma. Single-Image Crowd Counting via Multi-Column '
                 'Convolutional Neural Network. CVPR 2016.',
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    missing = check_manual_dir(root)
    if missing:
      raise _manual().error(root, None, missing)
    return {split: self._generate_examples(*split_dirs(root, split)) for split in _SPLIT_DIRS}

  def _generate_examples(self, image_dir: str, gt_dir: str):
    """Yields ``(k, example)`` for every ``IMG_k.jpg`` and its ``GT_IMG_k.mat``."""
    for k in sorted(_numbers(image_dir, _IMAGE_RE)):
      points = read_points(os.path.join(gt_dir, f'GT_IMG_{k}.mat'))
      yield k, {
          'index': k,
          'image': os.path.join(image_dir, f'IMG_{k}.jpg'),  # stored as is, not re-encoded
          'points': points.astype(np.float32),
          'count': len(points),
      }


def read_points(gt_file: str) -> np.ndarray:
  """``[P, 2]`` head positions ``(x, y)``, 0-based, from a ShanghaiTech ``GT_IMG_k.mat``.

  The file holds a 1 x 1 cell ``image_info`` of a struct with fields ``location`` (``[P, 2]``,
  1-based Matlab pixels) and ``number`` (``P``).
  """
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  info = sio.loadmat(gt_file)['image_info'][0, 0][0, 0]
  points = np.asarray(info['location'], np.float64).reshape(-1, 2) - 1
  if 'number' in (info.dtype.names or ()):
    number = int(np.asarray(info['number']).reshape(-1)[0])
    if number != len(points):
      logging.warning('%s: number=%d but %d points; using the points.', gt_file, number,
                      len(points))
  return points


def _numbers(folder: str, pattern) -> set:
  if not os.path.isdir(folder):
    return set()
  return {int(m.group(1)) for m in map(pattern.match, os.listdir(folder)) if m}


def _first_existing(base: str, names: Sequence[str]) -> str:
  for name in names:
    if os.path.isdir(os.path.join(base, name)):
      return os.path.join(base, name)
  return os.path.join(base, names[0])


def split_dirs(manual_dir: str, split: str) -> Tuple[str, str]:
  """``(images folder, ground-truth folder)`` of a split, in whichever spelling is present."""
  data = os.path.join(_first_existing(manual_dir, _ROOTS), _SPLIT_DIRS[split])
  return os.path.join(data, 'images'), _first_existing(data, _GT_DIRS)


def check_manual_dir(manual_dir: str) -> list:
  """Full paths missing from ``manual_dir``: folders, unpaired files and gaps in the numbering.

  Every split needs ``IMG_k.jpg`` with ``GT_IMG_k.mat`` for ``k = 1..max k`` (the release's
  400 / 316 when a folder is empty). A complete folder with other than 400 / 316 images (a subset,
  say) is accepted with a warning.
  """
  missing = []
  for split in _SPLIT_DIRS:
    image_dir, gt_dir = split_dirs(manual_dir, split)
    for folder in (image_dir, gt_dir):
      if not os.path.isdir(folder):
        missing.append(folder + '/')
    images, gts = _numbers(image_dir, _IMAGE_RE), _numbers(gt_dir, _GT_RE)
    wanted = range(1, max(images | gts) + 1 if images or gts else NUM_EXAMPLES[split] + 1)
    if os.path.isdir(image_dir):
      missing += [os.path.join(image_dir, f'IMG_{k}.jpg') for k in wanted if k not in images]
    if os.path.isdir(gt_dir):
      missing += [os.path.join(gt_dir, f'GT_IMG_{k}.mat') for k in wanted if k not in gts]
    if not missing and len(wanted) != NUM_EXAMPLES[split]:
      logging.warning('ShanghaiTech Part B %s: %d images, the release has %d.', split,
                      len(wanted), NUM_EXAMPLES[split])
  return missing


def _manual():
  return tfds_util.ManualDataset(ShanghaitechPartB, 'ShanghaiTech Part B', 'l2r_jax.data.shanghaitech', _INSTRUCTIONS, check_manual_dir)


# config.data.normalize: Part B's own mean and std (C^3's MEAN_STD), or ImageNet's.
NORMALISATIONS = {'shhb': (SHHB_MEAN, SHHB_STD), 'imagenet': (base.IMAGENET_MEAN, base.IMAGENET_STD)}


def normalize(image: np.ndarray, normalisation: str = 'shhb') -> np.ndarray:
  """uint8 RGB -> float32 with Part B's mean and std (C^3's MEAN_STD) or ImageNet's."""
  mean, std = NORMALISATIONS[normalisation]
  return ((np.asarray(image, np.float32) / 255.0 - mean) / std).astype(np.float32)


def _read_split(builder, split: str, max_examples: Optional[int]):
  """Points, counts and image sizes of a split (images left encoded), and its data source."""
  meta = builder.as_data_source(split=split, decoders={'image': tfds.decode.SkipDecoding()})
  rows = tfds_util.read_rows(meta)
  keep = tfds_util.order_and_cap(np.array([r['index'] for r in rows]), max_examples)
  rows = [rows[i] for i in keep]
  sizes = []
  for r in rows:
    with Image.open(io.BytesIO(r['image'])) as im:  # reads the header only
      sizes.append(im.size[::-1])
  return {'record': keep, 'points': [np.asarray(r['points'], np.float64) for r in rows],
          'count': np.array([len(r['points']) for r in rows], np.float32),
          'hw': sizes}, builder.as_data_source(split=split)


def _images(split: Dict, source, hw: Tuple[int, int], normalisation: str) -> LazyImages:
  def read(i):
    image = np.asarray(source[int(split['record'][i])]['image'])
    if image.shape[:2] != hw:
      image = np.asarray(Image.fromarray(image).resize(hw[::-1], Image.Resampling.BILINEAR))
    return normalize(image, normalisation)
  return LazyImages(len(split['record']), (*hw, 3), read)


def _densities(split: Dict, hw: Tuple[int, int], stride: int, sigma: float,
               scale: float) -> LazyImages:
  shape = (hw[0] // stride, hw[1] // stride)

  def read(i):
    (h0, w0), points = split['hw'][i], split['points'][i]
    # Resized images carry their points along; heads on or past the border are clamped inside,
    # as C^3 does, so every annotated head keeps its unit of mass.
    points = (points + 0.5) * np.array([hw[1] / w0, hw[0] / h0]) - 0.5
    return head_density(points, shape, stride, sigma, scale)
  return LazyImages(len(split['record']), shape, read)


def head_density(points: np.ndarray, shape: Tuple[int, int], stride: int, sigma: float,
                 scale: float) -> np.ndarray:
  """The target density map ``[H / s, W / s]`` of head ``points`` ``[P, 2]`` (x, y in input
  pixels): heads on or past the border clamped inside (C^3's way), one Gaussian of ``sigma``
  input pixels per head, times ``scale``. The loader's maps, and a person's placed heads
  (:mod:`l2r_jax.annotate`)."""
  points = np.clip(np.asarray(points, np.float64).reshape(-1, 2), 0,
                   np.array([shape[1] * stride - 1, shape[0] * stride - 1]))
  return scale * density_map(points, shape, sigma / stride, stride)


def load_shanghaitech(config: ml_collections.ConfigDict) -> Dataset:
  """ShanghaiTech Part B images and density maps; prepares the TFDS dataset on first use.

  Config fields (``config.data``):
    data_dir: TFDS data dir (None: TFDS's default, ``~/tensorflow_datasets``).
    manual_dir: folder holding ``part_B/`` (None: ``<data_dir>/downloads/manual/
      shanghaitech_part_b``); needed only until the dataset is prepared.
    image_size: ``(H, W)`` every image is resized to (None: the first training image's size,
      768 x 1024 for Part B, whose images all share it).
    density_stride: input pixels per density pixel (1: full resolution, as C^3).
    sigma: the Gaussian per head in input pixels (4.0, C^3's Part B maps).
    density_scale: factor on the maps (100, C^3's LOG_PARA).
    max_examples: keep the first N images of each split, by number (None: all).
    normalize: 'shhb' (Part B's mean and std, as C^3) or 'imagenet' (for ImageNet weights).

  Returns:
    ``Dataset(task='crowd', num_outputs=1)``: ``x_*`` lazy ``[N, H, W, 3]`` float32 normalised
    as ``normalize`` says (grey images made RGB); ``y_*`` lazy ``[N, H / s, W / s]`` density
    maps summing to ``density_scale`` x the head count; ``task_params``: ``density_scale``,
    ``counts_train`` and ``counts_test`` (``[N]`` true head counts, for MAE).

  Raises:
    DataNotFoundError: the dataset is not prepared and the manual folder lacks files.
  """
  normalisation = base.normalisation(config, 'shanghaitech', tuple(NORMALISATIONS))
  stride = int(config.get('density_stride', 1))
  sigma = float(config.get('sigma', SIGMA))
  scale = float(config.get('density_scale', DENSITY_SCALE))
  max_examples = config.get('max_examples', None)
  builder, _ = _manual().prepared(config)

  (train, train_src), (test, test_src) = (_read_split(builder, s, max_examples)
                                          for s in ('train', 'test'))
  hw = config.get('image_size', None)
  hw = tuple(int(v) for v in hw) if hw is not None else tuple(train['hw'][0])
  if any(tuple(s) != hw for s in train['hw'] + test['hw']):
    logging.warning('ShanghaiTech Part B: images of several sizes; resizing all to %s.', hw)
  return Dataset(
      x_train=_images(train, train_src, hw, normalisation),
      y_train=_densities(train, hw, stride, sigma, scale),
      x_test=_images(test, test_src, hw, normalisation),
      y_test=_densities(test, hw, stride, sigma, scale),
      num_outputs=1,
      task='crowd',
      task_params={'density_scale': scale, 'counts_train': train['count'],
                   'counts_test': test['count'], 'normalisation': normalisation},
  )


if __name__ == '__main__':
  _manual().prepare_main()
