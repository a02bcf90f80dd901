"""MPII loader on a tiny manual folder written in the original formats (json, .mat, JPEG).

The hand-worked pose: annotated centre (81.5, 50.7) and scale 0.32 (1-based, as in the json), so
SimpleBaseline's box is centred at 0-based (80.5, 49.7 + 15 x 0.32) = (80.5, 54.5) with side
1.25 x 200 x 0.32 = 80 pixels. In a 16-pixel heatmap a pixel moves by 16 / 80 = 0.2 per image
pixel: the image pixel (100, 65) lands at ((100 - 80.5) 0.2 + 7.5, (65 - 54.5) 0.2 + 7.5) =
(11.4, 9.6); in an 80-pixel crop (factor 1) at (59, 50) exactly.

The module prepares and reads the dataset for real; where TensorFlow is not installed (the default
test environment) that shows the whole path runs without it.
"""
import doctest
import json
import os

import ml_collections
import numpy as np
from PIL import Image
import pytest
from scipy import io as sio

from l2r_jax import data as data_lib
from l2r_jax.data import mpii
from l2r_jax.errors import DataNotFoundError
from l2r_jax.metrics import pckh

JOINTS_NAMES = ('rank', 'rkne', 'rhip', 'lhip', 'lkne', 'lank', 'pelv', 'thor', 'neck', 'head',
                'rwri', 'relb', 'rsho', 'lsho', 'lelb', 'lwri')
CENTER_1B, SCALE = (81.5, 50.7), 0.32
HEAD_BOX_1B = ((71.0, 31.0), (91.0, 51.0))


def _pose(image, center, scale, joints, vis):
  return {'image': image, 'center': list(center), 'scale': scale,
          'joints': [list(j) for j in joints], 'joints_vis': list(vis)}


def _joints(first, second):
  j = np.tile(np.array([[85.0, 60.0]]), (16, 1))  # every other joint near the centre
  j[0], j[1] = first, second
  return j


def write_manual_dir(root):
  """Two images and 3 train + 2 test poses, in SimpleBaseline's layout."""
  os.makedirs(root / 'images')
  os.makedirs(root / 'annot')
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 256, (120, 160, 3), np.uint8)).save(root / 'images' / 'a.jpg')
  Image.fromarray(rng.integers(0, 256, (100, 90, 3), np.uint8)).save(root / 'images' / 'b.jpg')
  vis = [1] * 16
  vis[15] = 0
  # joint 0 at 0-based (100, 65) -> heatmap (11.4, 9.6); joint 1 at 0-based (125, 54.5) ->
  # heatmap x = 44.5 x 0.2 + 7.5 = 16.4, outside a 16-pixel heatmap: weight 0.
  train = [_pose('a.jpg', CENTER_1B, SCALE, _joints((101, 66), (126, 55.5)), vis),
           _pose('b.jpg', (45, 50), 0.3, _joints((40, 40), (50, 60)), [1] * 16),
           _pose('a.jpg', (30, 30), 0.2, _joints((30, 30), (35, 35)), [1] * 16)]
  test = [_pose('a.jpg', CENTER_1B, SCALE, _joints((101, 66), (126, 55.5)), vis),
          _pose('b.jpg', (45, 50), 0.3, _joints((40, 40), (50, 60)), [1] * 16)]
  for name, poses in (('train', train), ('valid', test)):
    with open(root / 'annot' / f'{name}.json', 'w') as f:
      json.dump(poses, f)
  boxes = np.array([HEAD_BOX_1B, ((40, 20), (52, 34))], np.float64)  # [N, corner, xy]
  names = np.empty((1, 16), object)
  names[0, :] = JOINTS_NAMES
  sio.savemat(root / 'annot' / 'gt_valid.mat', {
      'headboxes_src': boxes.transpose(1, 2, 0),                       # [2, 2, N]
      'pos_gt_src': np.array([p['joints'] for p in test]).transpose(1, 2, 0),  # [16, 2, N]
      'jnt_missing': 1 - np.array([p['joints_vis'] for p in test]).T,  # [16, N]
      'dataset_joints': names})
  return train, test


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('mpii_manual')
  write_manual_dir(root)
  return root


@pytest.fixture(scope='module')
def prepared(manual_dir, tmp_path_factory):
  """A dataset prepared once for the module (no TensorFlow), and its config."""
  config = ml_collections.ConfigDict({
      'name': 'mpii', 'data_dir': str(tmp_path_factory.mktemp('tfds')),
      'manual_dir': str(manual_dir), 'image_size': 32, 'heatmap_size': 16, 'sigma': 1.0,
      'max_examples': None})
  return mpii.load_mpii(config), config


def test_missing_files_are_all_named(tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  data_dir = tmp_path / 'tfds'
  config = ml_collections.ConfigDict({'data_dir': str(data_dir), 'manual_dir': str(manual)})
  with pytest.raises(DataNotFoundError) as e:
    mpii.load_mpii(config)
  msg = str(e.value)
  for p in ('images/', 'annot/train.json', 'annot/valid.json', 'annot/gt_valid.mat'):
    assert os.path.join(str(manual), p) in msg
  assert mpii.IMAGES_URL in msg and mpii.ANNOT_URL in msg
  assert f'python -m l2r_jax.data.mpii --manual_dir {manual} --data_dir {data_dir}' in msg
  assert not (data_dir / 'mpii_human_pose').exists()  # raised before preparing anything


def test_missing_images_are_named(tmp_path):
  write_manual_dir(tmp_path)
  os.remove(tmp_path / 'images' / 'b.jpg')
  assert mpii.check_manual_dir(str(tmp_path)) == [str(tmp_path / 'images' / 'b.jpg')]


def test_generate_examples_makes_coordinates_0_based(manual_dir, tmp_path):
  builder = mpii.MpiiHumanPose(data_dir=str(tmp_path))
  train = list(builder._generate_examples(str(manual_dir / 'annot' / 'train.json')))
  assert [k for k, _ in train] == [0, 1, 2]
  ex = train[0][1]
  assert ex['image'] == 'a.jpg' and ex['index'] == 0
  np.testing.assert_allclose(ex['center'], [80.5, 49.7], rtol=1e-6)
  np.testing.assert_allclose(ex['scale'], SCALE, rtol=1e-6)
  np.testing.assert_allclose(ex['joints'][0], [100, 65])
  assert ex['joints_vis'][15] == 0 and ex['joints_vis'][0] == 1
  np.testing.assert_array_equal(ex['head_box'], 0)  # train has no head boxes
  test = list(builder._generate_examples(str(manual_dir / 'annot' / 'valid.json'),
                                         str(manual_dir / 'annot' / 'gt_valid.mat')))
  assert len(test) == 2
  np.testing.assert_allclose(test[0][1]['head_box'], [[70, 30], [90, 50]])
  np.testing.assert_allclose(test[1][1]['head_box'], [[39, 19], [51, 33]])


def test_crop_geometry_by_hand():
  center = np.array(CENTER_1B) - 1
  c, side = mpii.person_box(center, SCALE)
  np.testing.assert_allclose(c, [80.5, 54.5])
  np.testing.assert_allclose(side, 80.0)
  joint = np.array([[100.0, 65.0]])
  np.testing.assert_allclose(mpii.image_to_crop(joint, center, SCALE, 16), [[11.4, 9.6]])
  np.testing.assert_allclose(mpii.image_to_crop(joint, center, SCALE, 80), [[59.0, 50.0]])
  # The crop itself: a single white pixel at (100, 65) shows up at column 59, row 50.
  image = np.zeros((120, 160, 3), np.uint8)
  image[65, 100] = 255
  crop = mpii.crop_person(Image.fromarray(image), center, SCALE, 80)
  assert crop.shape == (80, 80, 3)
  assert np.unravel_index(crop[..., 0].argmax(), (80, 80)) == (50, 59)
  assert crop[50, 59, 0] == 255 and crop[..., 0].sum() == 255
  # Head boxes scale by the crop factor 16 / 80; the inverse maps back.
  box = np.array(HEAD_BOX_1B) - 1
  box_hm = mpii.image_to_crop(box, center, SCALE, 16)
  np.testing.assert_allclose(np.linalg.norm(box_hm[1] - box_hm[0]),
                             0.2 * np.linalg.norm(box[1] - box[0]))
  np.testing.assert_allclose(mpii.crop_to_image(box_hm, center, SCALE, 16), box)


def test_crop_maps_batch_round_trip():
  rng = np.random.default_rng(1)
  points = rng.uniform(0, 500, (5, 16, 2))
  centers, scales = rng.uniform(100, 400, (5, 2)), rng.uniform(0.5, 4, 5)
  hm = mpii.image_to_crop(points, centers, scales, 64)
  for i in range(5):
    np.testing.assert_allclose(hm[i], mpii.image_to_crop(points[i], centers[i], scales[i], 64))
  np.testing.assert_allclose(mpii.crop_to_image(hm, centers, scales, 64), points)


def test_jpeg_draft_keeps_geometry(tmp_path):
  """A crop decoded at reduced JPEG resolution matches one from the full image."""
  yy, xx = np.mgrid[0:480, 0:640]
  smooth = np.stack([xx * 255 / 640, yy * 255 / 480, (xx + yy) * 255 / 1120], -1)
  path = tmp_path / 'big.jpg'
  Image.fromarray(smooth.astype(np.uint8)).save(path, quality=95)
  with Image.open(path) as im:
    full = Image.fromarray(np.asarray(im))
  center, scale = (320.0, 200.0), 1.6  # side 400 px into 64 px: decoded at 1/4
  with Image.open(path) as im:
    drafted = mpii.crop_person(im, center, scale, 64)
  exact = mpii.crop_person(full, center, scale, 64)
  diff = drafted.astype(float) - exact
  assert np.abs(diff).mean() < 1.0
  # A shift by half a decoded pixel (2 image pixels) would bias the x and y ramps by 0.8 and 1.1.
  assert np.all(np.abs(diff[8:-8, 8:-8].mean((0, 1))) < 0.4)


def test_normalize_imagenet():
  pixel = np.round(mpii.IMAGENET_MEAN * 255).astype(np.uint8)[None, None]
  np.testing.assert_allclose(mpii.normalize(pixel), 0, atol=0.01)
  np.testing.assert_allclose(mpii.normalize(np.zeros((1, 1, 3), np.uint8))[0, 0],
                             -mpii.IMAGENET_MEAN / mpii.IMAGENET_STD, rtol=1e-6)


def test_load_mpii_end_to_end(prepared, manual_dir):
  data, _ = prepared
  assert data.task == 'pose' and data.num_outputs == 16
  assert data.x_train.shape == (3, 32, 32, 3) and data.x_test.shape == (2, 32, 32, 3)
  assert data.y_train.shape == (3, 16, 3) and data.y_train.dtype == np.float32
  np.testing.assert_allclose(data.y_train[0, 0], [11.4, 9.6, 1.0], rtol=1e-5)
  assert data.y_train[0, 1, 2] == 0  # outside the heatmap
  assert data.y_train[0, 15, 2] == 0  # not annotated
  np.testing.assert_allclose(data.y_test[0], data.y_train[0])
  boxes = data.test_meta['head_boxes']
  assert boxes.shape == (2, 2, 2)
  np.testing.assert_allclose(boxes[0], [[5.4, 2.6], [9.4, 6.6]], atol=1e-5)
  assert data.test_meta['visible'][0, 1] and not data.test_meta['visible'][0, 15]
  assert data.task_params['heatmap_size'] == (16, 16)
  assert data.task_params['sigma'] == 1.0 and data.task_params['flip_pairs'] == mpii.FLIP_PAIRS
  # The lazy crops are the normalised crops of the right images, in annotation order.
  with Image.open(manual_dir / 'images' / 'b.jpg') as im:
    want = mpii.normalize(mpii.crop_person(im, (44, 49), 0.3, 32))
  np.testing.assert_allclose(data.x_train[1], want)
  np.testing.assert_allclose(data.x_train[np.array([1])][0], want)
  # Heatmap joints map back to the annotation; perfect predictions score 100 PCKh.
  back = mpii.crop_to_image(data.y_test[..., :2], data.test_meta['center'],
                            data.test_meta['scale'], 16)
  np.testing.assert_allclose(back[0, 0], [100, 65], atol=1e-4)
  _, overall = pckh(data.y_test[..., :2], data.y_test[..., :2], data.test_meta['visible'], boxes)
  assert overall == 100.0


def test_load_mpii_reuses_prepared_data_and_caps(prepared):
  _, config = prepared
  config = ml_collections.ConfigDict(config.to_dict())
  config.max_examples = 2
  data = mpii.load_mpii(config)
  assert len(data.x_train) == 2 and len(data.y_test) == 2
  np.testing.assert_allclose(data.y_train, prepared[0].y_train[:2])


def test_load_mpii_needs_the_images_after_preparing(prepared, tmp_path):
  _, config = prepared
  config = ml_collections.ConfigDict(config.to_dict())
  config.manual_dir = str(tmp_path)  # prepared already: only images/ is needed, and it is gone
  with pytest.raises(DataNotFoundError, match=str(tmp_path / 'images')):
    mpii.load_mpii(config)


def test_docstring_examples():
  result = doctest.testmod(mpii, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert result.attempted > 0 and result.failed == 0


def test_registry_loads_it(prepared):
  _, config = prepared
  data = data_lib.load(config)  # config.name == 'mpii'
  assert data.y_train.shape == (3, 16, 3)
