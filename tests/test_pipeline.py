import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from l2r_jax import devices as devices_lib
from l2r_jax import models
from l2r_jax import train
from l2r_jax.data import base
from l2r_jax.data import pipeline


def _pool(n=50):
  x = np.arange(n * 6, dtype=np.float32).reshape(n, 3, 2)
  y = (np.arange(n) % 7).astype(np.int32)
  return x, y


def test_batches_come_in_order_one_shard_per_device():
  x, y = _pool()
  batches = np.random.default_rng(0).integers(0, 50, (9, 8))
  sharding = devices_lib.device_sharding(jax.local_devices()[:2])
  got = list(pipeline.device_batches(x, y, batches, sharding))
  assert len(got) == 9
  for idx, batch in zip(batches, got):
    assert batch['x'].shape == (2, 4, 3, 2) and batch['y'].shape == (2, 4)
    assert batch['x'].sharding.is_equivalent_to(sharding, 4)
    np.testing.assert_array_equal(np.asarray(batch['x']).reshape(8, 3, 2), x[idx])
    np.testing.assert_array_equal(np.asarray(batch['y']).reshape(8), y[idx])
    # Device d holds rows [4d, 4d + 4) of the batch.
    for shard in batch['x'].addressable_shards:
      d = shard.index[0].start
      np.testing.assert_array_equal(np.asarray(shard.data)[0], x[idx[4 * d:4 * d + 4]])
      assert shard.device == jax.local_devices()[d]


def test_a_seed_axis_keeps_each_seeds_rows_together_on_every_device():
  x, y = _pool()
  batches = np.random.default_rng(1).integers(0, 50, (4, 3, 8))  # 4 steps, 3 seeds, batch 8
  sharding = devices_lib.device_sharding(jax.local_devices()[:2])
  got = list(pipeline.device_batches(x, y, batches, sharding))
  for idx, batch in zip(batches, got):
    assert batch['x'].shape == (2, 3, 4, 3, 2) and batch['y'].shape == (2, 3, 4)
    for d in range(2):
      for s in range(3):
        np.testing.assert_array_equal(np.asarray(batch['x'])[d, s], x[idx[s, 4 * d:4 * d + 4]])
        np.testing.assert_array_equal(np.asarray(batch['y'])[d, s], y[idx[s, 4 * d:4 * d + 4]])


def test_an_array_like_pool_is_read_a_batch_at_a_time():
  x, y = _pool()
  reads = []

  def read(i):
    reads.append(i)
    return x[i]

  lazy = base.LazyImages(50, (3, 2), read, threads=1)
  batches = np.arange(12).reshape(3, 4) * 2
  got = list(pipeline.device_batches(lazy, y, batches, devices_lib.device_sharding(),
                                     read_threads=1))
  assert sorted(reads) == sorted(batches.ravel().tolist())
  np.testing.assert_array_equal(np.asarray(got[-1]['x']).reshape(4, 3, 2), x[batches[-1]])


def test_a_batch_that_does_not_split_over_the_devices_is_refused():
  x, y = _pool()
  with pytest.raises(ValueError, match='does not split over 2 devices'):
    pipeline.device_batches(x, y, np.zeros((2, 5), int), devices_lib.device_sharding())
  with pytest.raises(ValueError, match=r'\[steps, batch_size\]'):
    pipeline.device_batches(x, y, np.zeros(8, int), devices_lib.device_sharding())


def test_fed_batches_and_replicated_state_share_one_program(caplog):
  r = np.random.default_rng(0)
  x = r.normal(size=(32, 40)).astype(np.float32)
  y = r.integers(0, 10, 32).astype(np.int32)
  target = models.CNN1D(widths=(8,), pool_after=(True,), bn_axis_name=devices_lib.AXIS)
  state = devices_lib.replicate(train.create_state(jax.random.PRNGKey(0), target,
                                                   optax.sgd(0.1), jnp.zeros((2, 40))))
  p_step = train.make_p_train_step()
  feed = pipeline.device_batches(x, y, r.integers(0, 32, (4, 16)), devices_lib.device_sharding())
  rngs = jax.random.split(jax.random.PRNGKey(0), 2)
  state, _ = p_step(state, next(feed), rngs, np.zeros(2, np.int32))
  caplog.clear()
  with jax.log_compiles(True):
    for batch in feed:
      state, metrics = p_step(state, batch, rngs, np.zeros(2, np.int32))
    jax.block_until_ready(metrics)
  assert not [r for r in caplog.records if 'Compiling' in r.getMessage()]


@pytest.mark.parametrize('threads', [1, 4])
def test_array_like_rows_come_back_in_the_order_asked(threads):
  x, _ = _pool()
  lazy = base.LazyImages(50, (3, 2), lambda i: x[i], threads=threads)
  idx = np.random.default_rng(1).permutation(50)[:17]
  np.testing.assert_array_equal(lazy[idx], x[idx])
  np.testing.assert_array_equal(lazy[5:9], x[5:9])
  np.testing.assert_array_equal(lazy[3], x[3])


def test_a_closed_feed_gives_no_more_batches():
  x, y = _pool()
  feed = pipeline.device_batches(x, y, np.arange(40).reshape(10, 4), devices_lib.device_sharding())
  first = next(feed)
  np.testing.assert_array_equal(np.asarray(first['y']).reshape(4), y[:4])
  feed.close()
  with pytest.raises(ValueError, match='closed'):
    next(feed)


@pytest.mark.parametrize('shape', [(5, 8), (4, 3, 8)])  # steps x batch; steps x seeds x batch
def test_device_rows_give_each_device_the_shard_the_host_feed_gives_it(shape):
  x, y = _pool()
  batches = np.random.default_rng(2).integers(0, 50, shape)
  sharding = devices_lib.device_sharding(jax.local_devices()[:2])
  rows = pipeline.device_rows(batches, 2)
  assert rows.dtype == np.int32 and rows.shape == (shape[0], 2, *shape[1:-1], 4)
  for step_rows, batch in zip(rows, pipeline.device_batches(x, y, batches, sharding)):
    np.testing.assert_array_equal(x[step_rows], np.asarray(batch['x']))
    np.testing.assert_array_equal(y[step_rows], np.asarray(batch['y']))
  with pytest.raises(ValueError, match='does not split over 2 devices'):
    pipeline.device_rows(np.zeros((2, 5), int), 2)


def test_the_feed_is_chosen_by_the_labeled_sets_size():
  limit = pipeline.DEVICE_FEED_MAX_BYTES
  assert pipeline.choose_feed('auto', limit) == 'device'
  assert pipeline.choose_feed('auto', limit + 1) == 'host'
  assert pipeline.choose_feed('host', 10) == 'host'
  assert pipeline.choose_feed('device', 2 * limit) == 'device'
  with pytest.raises(ValueError, match=r"feed='disk': choose one of \('auto', 'device', 'host'\)"):
    pipeline.choose_feed('disk', 10)
