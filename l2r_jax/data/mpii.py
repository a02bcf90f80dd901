"""MPII Human Pose (Andriluka et al., CVPR 2014) as SimpleBaseline person crops.

The paper trains SimpleBaseline (Xiao et al., ECCV 2018) on MPII: each annotated person is cut out
of its image by a square box around the person's centre, resized to 256 x 256, and the network
regresses one 64 x 64 Gaussian heatmap per joint. Scores are PCKh@0.5 on the 2,958 validation
poses that SimpleBaseline and HRNet use as the test set (22,246 training poses form the pool).

**Files (manual download).** The manual folder (``config.manual_dir``; default
``<data_dir>/downloads/manual/mpii_human_pose``) holds::

  images/*.jpg           the images of mpii_human_pose_v1.tar.gz (MPII site, about 12 GB)
  annot/train.json       SimpleBaseline's json annotations (the MPII .mat converted):
  annot/valid.json         [{"image", "center": [x, y], "scale": box side / 200,
                             "joints": 16 x [x, y], "joints_vis": 16 x 0/1}, ...]
  annot/gt_valid.mat     MPII's evaluation file for valid.json, same order: headboxes_src
                           [2 corners, (x, y), N], pos_gt_src, jnt_missing, dataset_joints

Coordinates in these files are 1-based (Matlab); the builder stores them 0-based, pixel centres at
integers, as SimpleBaseline converts them.

**Preparing.** ``python -m l2r_jax.data.mpii --manual_dir DIR [--data_dir DIR]``, or simply the
first :func:`load_mpii`. It runs without TensorFlow (TFDS writes ArrayRecord in pure Python); if a
TFDS version ever needs it, the error says to ``pip install -e '.[prepare]'``.

**What a record holds.** The annotation and the image's *file name*, not its pixels: the JPEGs
already sit in the manual folder, copying them would double 12 GB (more, since an image holds
several people), and the crop size is a choice made when reading. So ``images/`` must stay where
it is; the loader checks it.

**Geometry.** A crop is a similarity transform (scale and shift, no rotation): centre ``c`` moved
down by 15 x scale pixels, side ``S = 1.25 x 200 x scale`` pixels, as SimpleBaseline does for MPII;
pixel ``x`` maps to ``(x - c) n / S + n / 2 - 0.5`` in an ``n``-pixel output, so that the crop is
centred on ``c`` with pixel centres at integers in both (SimpleBaseline's OpenCV crop sits half an
output pixel off this). Heatmap coordinates use the same map with ``n = heatmap_size``, so image,
heatmap and head box agree, and PCKh distances are the image's times the common factor ``n / S``.
"""
import json
import os
from typing import Dict, Optional

import ml_collections
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from l2r_jax.data import base
from l2r_jax.data import tfds_util
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages

NUM_JOINTS = 16  # MPII order: see l2r_jax.metrics
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))  # right <-> left
PIXEL_STD = 200.0  # MPII's scale is the person's box side in units of 200 pixels
CENTER_SHIFT = 15.0  # SimpleBaseline moves the centre down by 15 x scale pixels ...
SCALE_FACTOR = 1.25  # ... and enlarges the box by 1.25, so that limbs stay inside
IMAGENET_MEAN, IMAGENET_STD = base.IMAGENET_MEAN, base.IMAGENET_STD
NUM_EXAMPLES = {'train': 22246, 'test': 2958}

IMAGES_URL = 'https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1.tar.gz'
ANNOT_URL = 'https://github.com/microsoft/human-pose-estimation.pytorch#data-preparation'
REQUIRED = ('images', 'annot/train.json', 'annot/valid.json', 'annot/gt_valid.mat')

_INSTRUCTIONS = f"""
Put the MPII Human Pose files in the manual folder <manual_dir>:
  <manual_dir>/images/              the images of mpii_human_pose_v1.tar.gz (about 12 GB), from
                                    http://human-pose.mpi-inf.mpg.de/#download ({IMAGES_URL});
                                    `tar -xzf mpii_human_pose_v1.tar.gz -C <manual_dir>` makes images/.
  <manual_dir>/annot/train.json     the SimpleBaseline / HRNet json annotations and MPII's
  <manual_dir>/annot/valid.json     validation file, linked from
  <manual_dir>/annot/gt_valid.mat   {ANNOT_URL} (folder `mpii/annot`).
"""


class MpiiHumanPose(tfds.core.GeneratorBasedBuilder):
  """MPII Human Pose, one example per annotated person, SimpleBaseline's train/valid split."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'SimpleBaseline split: train.json (train), valid.json (test).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    vec = lambda *shape: tfds.features.Tensor(shape=shape, dtype=np.float32)
    return tfds.core.DatasetInfo(
        builder=self,
        description='MPII Human Pose, one example per person: SimpleBaseline annotations, '
                    '0-based pixel coordinates; pixels stay in the manual folder.',
        features=tfds.features.FeaturesDict({
            'index': np.int32,               # position in the annotation file
            'image': tfds.features.Text(),   # file name under <manual_dir>/images
            'center': vec(2),                # person centre (x, y)
            'scale': np.float32,             # person box side / 200
            'joints': vec(NUM_JOINTS, 2),    # (x, y)
            'joints_vis': vec(NUM_JOINTS),   # 1 = annotated
            'head_box': vec(2, 2),           # two corners (x, y); zeros in train
        }),
        homepage='http://human-pose.mpi-inf.mpg.de/',
        citation='Andriluka, Pishchulin, Gehler, Schiele. 2D Human Pose Estimation: New '
                 'Benchmark and State of the Art Analysis. CVPR 2014.',
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    missing = check_manual_dir(root)
    if missing:
      raise _manual().error(root, None, missing)
    annot = os.path.join(root, 'annot')
    return {
        'train': self._generate_examples(os.path.join(annot, 'train.json')),
        'test': self._generate_examples(os.path.join(annot, 'valid.json'),
                                        os.path.join(annot, 'gt_valid.mat')),
    }

  def _generate_examples(self, annot_file: str, gt_file: Optional[str] = None):
    """Yields ``(index, example)`` per person of a SimpleBaseline json, coordinates made 0-based."""
    with open(annot_file) as f:
      entries = json.load(f)
    boxes = (np.zeros((len(entries), 2, 2)) if gt_file is None
             else read_head_boxes(gt_file, len(entries)))
    for i, a in enumerate(entries):
      yield i, {
          'index': i,
          'image': a['image'],
          'center': np.asarray(a['center'], np.float32) - 1,
          'scale': np.float32(a['scale']),
          'joints': np.asarray(a['joints'], np.float32).reshape(NUM_JOINTS, 2) - 1,
          'joints_vis': np.asarray(a['joints_vis'], np.float32).reshape(NUM_JOINTS),
          'head_box': boxes[i].astype(np.float32),
      }


def read_head_boxes(gt_file: str, n: int) -> np.ndarray:
  """``[n, 2, 2]`` head boxes (two corners, (x, y), 0-based) from MPII's ``gt_valid.mat``."""
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  src = np.asarray(sio.loadmat(gt_file)['headboxes_src'], np.float64)
  boxes = src.reshape(2, 2, -1).transpose(2, 0, 1) - 1  # Matlab drops a trailing N = 1
  if len(boxes) != n:
    raise ValueError(f'{gt_file} has {len(boxes)} head boxes but the annotations {n} poses: '
                     'gt_valid.mat and valid.json must come from the same release.')
  return boxes


def check_manual_dir(manual_dir: str) -> list:
  """Full paths of the required files missing from ``manual_dir``, images named in the jsons too."""
  missing = [os.path.join(manual_dir, p) + ('/' if p == 'images' else '')
             for p in REQUIRED if not os.path.exists(os.path.join(manual_dir, p))]
  names = set()
  for split in ('train', 'valid'):
    path = os.path.join(manual_dir, 'annot', f'{split}.json')
    if os.path.isfile(path):
      with open(path) as f:
        names.update(a['image'] for a in json.load(f))
  image_dir = os.path.join(manual_dir, 'images')
  if os.path.isdir(image_dir):
    missing += missing_images(image_dir, names)
  return missing


def missing_images(image_dir: str, names) -> list:
  """Full paths of the files ``names`` absent from ``image_dir``."""
  present = set(os.listdir(image_dir))
  return [os.path.join(image_dir, n) for n in sorted(set(names)) if n not in present]


def _manual():
  return tfds_util.ManualDataset(MpiiHumanPose, 'MPII Human Pose', 'l2r_jax.data.mpii', _INSTRUCTIONS, check_manual_dir)


# --- Crop geometry ------------------------------------------------------------------------------

def person_box(center, scale):
  """SimpleBaseline's crop box: ``(centre [..., 2], side [...])`` in image pixels.

  Args:
    center: ``[..., 2]`` the annotated person centre ``(x, y)``, 0-based pixels.
    scale: ``[...]`` the annotated scale (person box side / 200).
  """
  center = np.asarray(center, np.float64)
  scale = np.asarray(scale, np.float64)
  shift = np.stack([np.zeros_like(scale), CENTER_SHIFT * scale], -1)
  return center + shift, SCALE_FACTOR * PIXEL_STD * scale


def image_to_crop(points, center, scale, size: int) -> np.ndarray:
  """Maps image pixels ``[..., K, 2]`` into a ``size``-pixel crop of the person (or heatmap).

  ``u = (x - c) size / S + size / 2 - 0.5`` with ``(c, S) = person_box(center, scale)``; pixel
  centres at integers on both sides. ``center [..., 2]`` and ``scale [...]`` broadcast over the
  leading axes of ``points``.

  >>> image_to_crop([[100., 215.]], [100., 200.], 1.0, 64)  # the crop's centre
  array([[31.5, 31.5]])
  """
  c, side = person_box(center, scale)
  k = size / side
  return (np.asarray(points, np.float64) - c[..., None, :]) * k[..., None, None] + (size / 2 - 0.5)


def crop_to_image(points, center, scale, size: int) -> np.ndarray:
  """The inverse of :func:`image_to_crop`: crop (e.g. heatmap) pixels back to image pixels.

  Use it to score predictions against the original annotations (add 1 for MPII's 1-based files).
  """
  c, side = person_box(center, scale)
  k = size / side
  return (np.asarray(points, np.float64) - (size / 2 - 0.5)) / k[..., None, None] + c[..., None, :]


def crop_person(image: Image.Image, center, scale, size: int) -> np.ndarray:
  """The ``[size, size, 3]`` uint8 crop of one person, bilinear, black outside the image.

  A JPEG is decoded at 1/2, 1/4 or 1/8 resolution (PIL's ``draft``, done in the DCT, so it also
  averages like a box filter) when the crop would still have at least one source pixel per output
  pixel; the transform accounts for the exact reduction, so the geometry is unchanged.
  """
  c, side = person_box(center, scale)
  c, side = c.reshape(2), float(side)
  factor = 1.0  # original pixels per decoded pixel
  reduce = int(side // size)
  if image.format == 'JPEG' and reduce >= 2:
    w, h = image.size
    drafted = image.draft('RGB', (-(-w // reduce), -(-h // reduce)))
    if drafted is not None:
      factor = w / drafted[1][2]
  image = image.convert('RGB')
  # PIL maps output to input in corner coordinates (pixel x spans [x, x + 1]): X = a U + b, with
  # U = k (X - (c + 0.5)) + size / 2 from image_to_crop shifted by half a pixel on both sides.
  a = side / size / factor
  bx, by = (c + 0.5) / factor - a * size / 2
  out = image.transform((size, size), Image.Transform.AFFINE, (a, 0, bx, 0, a, by),
                        resample=Image.Resampling.BILINEAR)
  return np.asarray(out, np.uint8)


def normalize(image: np.ndarray) -> np.ndarray:
  """uint8 RGB -> float32 with ImageNet's mean and std, SimpleBaseline's input normalisation."""
  return ((np.asarray(image, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


# --- Loader -------------------------------------------------------------------------------------

_KEYS = ('index', 'image', 'center', 'scale', 'joints', 'joints_vis', 'head_box')


def _read_split(builder, split: str, max_examples: Optional[int]) -> Dict[str, np.ndarray]:
  ann = tfds_util.read_all(builder.as_data_source(split=split), _KEYS)
  keep = tfds_util.order_and_cap(ann['index'], max_examples)
  ann = {k: v[keep] for k, v in ann.items()}
  ann['image'] = np.array([n.decode() if isinstance(n, bytes) else str(n) for n in ann['image']])
  return ann


def _targets(ann: Dict[str, np.ndarray], heatmap_size: int) -> np.ndarray:
  """``[N, 16, 3]`` joints in heatmap pixels with weight joints_vis, 0 outside the heatmap."""
  xy = image_to_crop(ann['joints'], ann['center'], ann['scale'], heatmap_size)
  inside = np.all((xy >= -0.5) & (xy < heatmap_size - 0.5), axis=-1)
  weight = ann['joints_vis'] * inside
  return np.concatenate([xy, weight[..., None]], -1).astype(np.float32)


def _crops(ann: Dict[str, np.ndarray], image_dir: str, image_size: int) -> LazyImages:
  def read(i):
    with Image.open(os.path.join(image_dir, ann['image'][i])) as im:
      return normalize(crop_person(im, ann['center'][i], ann['scale'][i], image_size))
  return LazyImages(len(ann['index']), (image_size, image_size, 3), read)


def load_mpii(config: ml_collections.ConfigDict) -> Dataset:
  """MPII person crops and joint targets; prepares the TFDS dataset on first use.

  Config fields (``config.data``):
    data_dir: TFDS data dir (None: TFDS's default, ``~/tensorflow_datasets``).
    manual_dir: folder with ``images/`` and ``annot/`` (None: ``<data_dir>/downloads/manual/
      mpii_human_pose``). ``images/`` is read at every load, not only when preparing.
    image_size: side of the input crops in pixels (256).
    heatmap_size: side of the heatmaps (64).
    sigma: std of the target Gaussians in heatmap pixels (2.0).
    max_examples: keep the first N poses of each split, in annotation order (None: all).

  Returns:
    ``Dataset(task='pose', num_outputs=16)``: ``x_*`` lazy ``[N, image_size, image_size, 3]``
    ImageNet-normalised crops; ``y_*`` ``[N, 16, 3]`` (x, y, weight) in heatmap pixels, weight
    = joints_vis and 0 outside the heatmap; ``test_meta``: ``head_boxes [N, 2, 2]`` (heatmap
    pixels), ``visible [N, 16]`` (annotated, even outside the crop: PCKh's mask), ``center
    [N, 2]`` and ``scale [N]`` (the annotation, 0-based, for :func:`crop_to_image`).

  Raises:
    DataNotFoundError: the manual folder lacks files (all named in the message).
  """
  base.normalisation(config, 'mpii', ('imagenet',))
  image_size = int(config.get('image_size', 256))
  heatmap_size = int(config.get('heatmap_size', 64))
  sigma = float(config.get('sigma', 2.0))
  max_examples = config.get('max_examples', None)
  builder, manual_dir = _manual().prepared(config)

  train, test = (_read_split(builder, s, max_examples) for s in ('train', 'test'))
  image_dir = os.path.join(manual_dir, 'images')
  if not os.path.isdir(image_dir):
    raise _manual().error(manual_dir, config.get('data_dir'), [image_dir + '/'])
  missing = missing_images(image_dir, np.concatenate([train['image'], test['image']]))
  if missing:
    raise _manual().error(manual_dir, config.get('data_dir'), missing)

  head_boxes = image_to_crop(test['head_box'], test['center'], test['scale'], heatmap_size)
  return Dataset(
      x_train=_crops(train, image_dir, image_size),
      y_train=_targets(train, heatmap_size),
      x_test=_crops(test, image_dir, image_size),
      y_test=_targets(test, heatmap_size),
      num_outputs=NUM_JOINTS,
      task='pose',
      test_meta={'head_boxes': head_boxes.astype(np.float32),
                 'visible': test['joints_vis'] > 0,
                 'center': test['center'].astype(np.float32),
                 'scale': test['scale'].astype(np.float32)},
      task_params={'sigma': sigma, 'heatmap_size': (heatmap_size, heatmap_size),
                   'flip_pairs': FLIP_PAIRS, 'normalisation': 'imagenet'},
  )


if __name__ == '__main__':
  _manual().prepare_main()
