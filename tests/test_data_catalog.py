"""CIFAR-10 and CelebA through TFDS data sources, on TFDS's mock data (no download, no TensorFlow)."""
import io

import ml_collections
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from configs import celeba as celeba_config
from configs import cifar10 as cifar10_config
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax.data import catalog


def _config(**kw):
  return ml_collections.ConfigDict({'data_dir': None, 'max_examples': None, **kw})


def test_cifar10_is_normalised_with_training_statistics():
  with tfds.testing.mock_data(num_examples=24):
    ds = catalog.load_cifar10(_config())
    raw_test = np.stack([np.asarray(tfds.data_source('cifar10', split='test')[i]['image'])
                         for i in range(24)])
  assert ds.x_train.shape == (24, 32, 32, 3) and ds.x_train.dtype == np.float32
  assert ds.y_train.dtype == np.int32 and set(ds.y_train) <= set(range(10))
  np.testing.assert_allclose(ds.x_train.mean((0, 1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(ds.x_train.std((0, 1, 2)), 1, atol=1e-4)
  mean, std = ds.task_params['mean'], ds.task_params['std']
  np.testing.assert_allclose(ds.x_test, (raw_test / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)


def test_celeba_gender_labels_and_lazy_faces():
  with tfds.testing.mock_data(num_examples=10):
    ds = catalog.load_celeba(_config(image_size=64, stats_sample=10))
    src = tfds.data_source('celeb_a', split='train')
    male = np.array([bool(src[i]['attributes']['Male']) for i in range(10)], np.int32)
    x = ds.x_train[np.arange(10)]
  np.testing.assert_array_equal(ds.y_train, male)
  assert ds.num_outputs == 2 and x.shape == (10, 64, 64, 3) and x.dtype == np.float32
  # The statistics were computed on these same 10 faces: normalised, they are centred and scaled.
  np.testing.assert_allclose(x.mean((0, 1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(x.std((0, 1, 2)), 1, atol=1e-3)


def test_face_decodes_encoded_and_decoded_records_alike():
  pixels = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
  pixels = np.asarray(Image.fromarray(pixels).resize((89, 109)).resize((178, 218)))  # smooth
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format='PNG')  # lossless: both paths see the same pixels
  encoded = catalog._face([{'image': buf.getvalue()}], 0, 64)  # pylint: disable=protected-access
  decoded = catalog._face([{'image': pixels}], 0, 64)  # pylint: disable=protected-access
  np.testing.assert_allclose(encoded, decoded)
  assert encoded.shape == (64, 64, 3) and 0 <= encoded.min() and encoded.max() <= 1


@pytest.mark.parametrize('name', ['cifar10', 'celeb_a'])
def test_unprepared_dataset_says_how_to_prepare_it(tmp_path, name):
  load = {'cifar10': catalog.load_cifar10, 'celeb_a': catalog.load_celeba}[name]
  with pytest.raises(errors.DataNotFoundError,
                     match=f'tfds build {name} --file_format=array_record --data_dir={tmp_path}'):
    load(_config(data_dir=str(tmp_path)))


def test_unprepared_dataset_in_the_default_data_dir_says_how_to_prepare_it(tmp_path, monkeypatch):
  # No --config.data.data_dir: TFDS's default folder, here an empty one.
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  with pytest.raises(errors.DataNotFoundError,
                     match=r'(?s)in the TFDS data dir .*tfds build cifar10 --file_format=array_record\n'):
    catalog.load_cifar10(_config(data_dir=None))


@pytest.mark.parametrize('config_module', [cifar10_config, celeba_config])
def test_paper_configs_check_out_against_mock_data(config_module):
  c = config_module.get_config()
  assert 'vaal' in c.strategies
  with tfds.testing.mock_data(num_examples=64):
    c.al.update(initial=8, budget=8, cycles=2)
    c.al.subset = 16
    exp = experiment.make_experiment(c)  # validation, data, model check (traced), ranker
  assert exp.trainers['random'].options['augment'] is not None and exp.dataset.pool_size == 64
