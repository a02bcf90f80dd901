"""ShanghaiTech Part B loader on a tiny manual folder in the original formats (JPEG, nested .mat).

Images are 48 x 64 here, not 768 x 1024: the loader takes the size from the images.
"""
import os

import ml_collections
import numpy as np
from PIL import Image
import pytest
from scipy import io as sio

from l2r_jax.data import shanghaitech as shhb
from l2r_jax.errors import DataNotFoundError

H, W = 48, 64
# 1-based (x, y) heads per image; the last head of train image 1 lies past the right border.
HEADS = {
    'train': [[(10, 10), (30.5, 20.25), (64.9, 47.0), (70.0, 5.0)],
              [(30, 25)],
              []],
    'test': [[(32, 24), (33, 25)],
             [(1, 1), (64, 48), (20, 30)]],
}


def write_gt(path, points_1based):
  """A GT_IMG_k.mat as released: a 1 x 1 cell holding a struct with `location` and `number`."""
  location = np.array(points_1based, np.float64).reshape(-1, 2)
  info = np.empty((1, 1), dtype=[('location', object), ('number', object)])
  info[0, 0]['location'] = location
  info[0, 0]['number'] = np.array([[len(location)]], np.uint16)
  cell = np.empty((1, 1), object)
  cell[0, 0] = info
  sio.savemat(path, {'image_info': cell})


def write_manual_dir(root):
  rng = np.random.default_rng(0)
  for split, heads in HEADS.items():
    data = root / 'part_B' / f'{split}_data'
    os.makedirs(data / 'images')
    os.makedirs(data / 'ground-truth')
    for k, points in enumerate(heads, start=1):
      pixels = rng.integers(0, 256, (H, W, 3), np.uint8)
      image = Image.fromarray(pixels)
      if split == 'test' and k == 2:
        image = image.convert('L')  # Part B has a few grey images; they must come out RGB
      image.save(data / 'images' / f'IMG_{k}.jpg', quality=95)
      write_gt(data / 'ground-truth' / f'GT_IMG_{k}.mat', points)


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('shhb_manual')
  write_manual_dir(root)
  return root


@pytest.fixture(scope='module')
def config(manual_dir, tmp_path_factory):
  return ml_collections.ConfigDict({
      'name': 'shanghaitech', 'data_dir': str(tmp_path_factory.mktemp('tfds')),
      'manual_dir': str(manual_dir), 'density_stride': 1, 'max_examples': None})


@pytest.fixture(scope='module')
def data(config):
  return shhb.load_shanghaitech(config)


def test_fixture_has_the_classic_layout(manual_dir):
  mat = sio.loadmat(manual_dir / 'part_B' / 'test_data' / 'ground-truth' / 'GT_IMG_1.mat')
  np.testing.assert_array_equal(mat['image_info'][0][0][0][0][0], HEADS['test'][0])
  assert mat['image_info'][0, 0][0, 0]['number'].item() == 2


def test_missing_files_are_all_named(tmp_path):
  write_manual_dir(tmp_path / 'manual')
  train = tmp_path / 'manual' / 'part_B' / 'train_data'
  os.remove(train / 'images' / 'IMG_2.jpg')
  os.remove(train / 'ground-truth' / 'GT_IMG_3.mat')
  test_gt = tmp_path / 'manual' / 'part_B' / 'test_data' / 'ground-truth'
  for f in os.listdir(test_gt):
    os.remove(test_gt / f)
  os.rmdir(test_gt)
  config = ml_collections.ConfigDict({'data_dir': str(tmp_path / 'tfds'),
                                      'manual_dir': str(tmp_path / 'manual')})
  with pytest.raises(DataNotFoundError) as e:
    shhb.load_shanghaitech(config)
  msg = str(e.value)
  assert str(train / 'images' / 'IMG_2.jpg') in msg
  assert str(train / 'ground-truth' / 'GT_IMG_3.mat') in msg
  assert str(test_gt) + '/' in msg
  assert 'missing 3 file(s)' in msg
  assert shhb.URL in msg
  assert f'python -m l2r_jax.data.shanghaitech --manual_dir {tmp_path / "manual"}' in msg
  assert not (tmp_path / 'tfds' / 'shanghaitech_part_b').exists()


def test_empty_folder_names_the_release_files(tmp_path):
  for split in ('train_data', 'test_data'):
    os.makedirs(tmp_path / 'part_B' / split / 'images')
    os.makedirs(tmp_path / 'part_B' / split / 'ground-truth')
  missing = shhb.check_manual_dir(str(tmp_path))
  assert len(missing) == 2 * (400 + 316)
  assert str(tmp_path / 'part_B' / 'test_data' / 'ground-truth' / 'GT_IMG_316.mat') in missing


def test_generate_examples(manual_dir, tmp_path):
  builder = shhb.ShanghaitechPartB(data_dir=str(tmp_path))
  image_dir, gt_dir = shhb.split_dirs(str(manual_dir), 'train')
  examples = list(builder._generate_examples(image_dir, gt_dir))
  assert [k for k, _ in examples] == [1, 2, 3]
  first = examples[0][1]
  np.testing.assert_allclose(first['points'], np.array(HEADS['train'][0]) - 1)
  assert first['count'] == 4 and examples[2][1]['count'] == 0
  assert first['image'].endswith('IMG_1.jpg')


def test_load_shapes_counts_and_density(data):
  assert data.task == 'crowd' and data.num_outputs == 1
  assert data.x_train.shape == (3, H, W, 3) and data.x_test.shape == (2, H, W, 3)
  assert data.y_train.shape == (3, H, W)
  np.testing.assert_array_equal(data.task_params['counts_train'], [4, 1, 0])
  np.testing.assert_array_equal(data.task_params['counts_test'], [2, 3])
  assert data.task_params['density_scale'] == 100.0
  maps = data.y_train[np.arange(3)]
  # Every head keeps its unit of mass, the one past the border too.
  np.testing.assert_allclose(maps.sum((1, 2)), [400, 100, 0], rtol=1e-4)
  np.testing.assert_allclose(data.y_test[1].sum(), 300, rtol=1e-4)
  # A head at 1-based (30, 25) peaks at 0-based pixel (29, 24), with C^3's sigma of 4 pixels.
  assert np.unravel_index(data.y_train[1].argmax(), (H, W)) == (24, 29)
  peak = 100 / (2 * np.pi * shhb.SIGMA**2)
  np.testing.assert_allclose(data.y_train[1].max(), peak, rtol=0.05)


def test_images_are_normalised_with_shhb_statistics(data, manual_dir):
  test_images = manual_dir / 'part_B' / 'test_data' / 'images'
  with Image.open(test_images / 'IMG_1.jpg') as im:
    raw = np.asarray(im.convert('RGB'), np.float32) / 255
  np.testing.assert_allclose(data.x_test[0] * shhb.SHHB_STD + shhb.SHHB_MEAN, raw, atol=1e-5)
  grey = data.x_test[1] * shhb.SHHB_STD + shhb.SHHB_MEAN
  np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-5)
  with Image.open(test_images / 'IMG_2.jpg') as im:
    assert im.mode == 'L'
    np.testing.assert_allclose(grey[..., 1], np.asarray(im, np.float32) / 255, atol=1e-5)
  mean_pixel = np.round(shhb.SHHB_MEAN * 255).astype(np.uint8)[None, None]
  np.testing.assert_allclose(shhb.normalize(mean_pixel), 0, atol=0.01)


def test_stride_resize_and_cap(config):
  config = ml_collections.ConfigDict(config.to_dict())
  config.update(density_stride=4, max_examples=2, image_size=(24, 32), density_scale=10.0)
  data = shhb.load_shanghaitech(config)  # reuses the prepared dataset
  assert data.x_train.shape == (2, 24, 32, 3) and data.y_train.shape == (2, 6, 8)
  np.testing.assert_allclose(data.y_train[np.arange(2)].sum((1, 2)), [40, 10], rtol=1e-4)
  np.testing.assert_array_equal(data.task_params['counts_train'], [4, 1])


def test_prepare_command(config, capsys):
  shhb._manual().prepare_main(  # pylint: disable=protected-access
      ['--manual_dir', config.manual_dir, '--data_dir', config.data_dir])
  assert "'train': 3" in capsys.readouterr().out


def test_default_manual_dir_is_under_data_dir(tmp_path):
  config = ml_collections.ConfigDict({'data_dir': str(tmp_path), 'manual_dir': None})
  with pytest.raises(DataNotFoundError) as e:
    shhb.load_shanghaitech(config)
  manual = tmp_path / 'downloads' / 'manual' / 'shanghaitech_part_b'
  assert str(manual / 'part_B' / 'train_data' / 'images') + '/' in str(e.value)
