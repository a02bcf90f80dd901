"""The training input pipeline: how each step gets its batch, in one of two ways (``feed``).

``'device'``: the cycle's labeled set is put on every device once, and each step is sent only its
batch's row indices, gathering its shard of the batch where it runs::

    data, rows = devices.replicate({'x': x, 'y': y}), pipeline.device_rows(batches, n_dev)
    for step in range(len(rows)):
      state, metrics = p_train_step(state, data, rows[step], keys[step], epochs[step])  # on_rows

``'host'``: batches are gathered on the host in background threads and put on the devices ahead
of the step that needs them::

    for batch in pipeline.device_batches(x, y, batches, sharding):
      state, metrics = p_train_step(state, batch, keys[step], epochs[step])

The host feed is built on grain: a ``MapDataset`` over the steps whose element ``i`` is the batch
``batches[i]`` (rows gathered from ``x`` and ``y``, split into one shard per local device), read
by ``read_threads`` threads, then ``grain.experimental.device_put``: a host buffer and a device
buffer, each filled by its own thread, so gathering and the host-to-device copy overlap the
previous steps. It holds a few batches on the devices instead of the whole labeled set. On a CPU
its threads compete with the steps for the same cores, and the device feed is faster
(benchmarks/results/speed.md). Both give every step the same batch.
"""
from typing import Any, Dict

import grain
import jax
import numpy as np

FEEDS = ('auto', 'device', 'host')
# feed='auto' puts the labeled set on the devices when it takes at most this (inputs and labels,
# on each device), and feeds from the host above it.
DEVICE_FEED_MAX_BYTES = 1 << 30


def choose_feed(feed: str, nbytes: int) -> str:
  """``'device'`` or ``'host'``: ``feed`` itself, or for ``'auto'`` what a labeled set of
  ``nbytes`` (inputs and labels) allows."""
  if feed not in FEEDS:
    raise ValueError(f'feed={feed!r}: choose one of {FEEDS}.')
  if feed != 'auto':
    return feed
  return 'device' if nbytes <= DEVICE_FEED_MAX_BYTES else 'host'


def _check(batches: np.ndarray, n_dev: int) -> np.ndarray:
  batches = np.asarray(batches)
  if batches.ndim not in (2, 3):
    raise ValueError('batches must be [steps, batch_size] or [steps, seeds, batch_size] indices, '
                     f'got shape {batches.shape}.')
  if batches.shape[-1] % n_dev:
    raise ValueError(f'A batch of {batches.shape[-1]} does not split over {n_dev} devices.')
  return batches


def _split(rows: np.ndarray, lead: int, n_dev: int) -> np.ndarray:
  """``[*lead_axes, b, ...] -> [n_dev, *lead_axes, b / n_dev, ...]``: device ``d`` holds rows
  ``d * b / n_dev`` onwards of every batch (``lead`` leading axes, the seeds of a vmapped step)."""
  shape = rows.shape
  rows = rows.reshape(*shape[:lead], n_dev, shape[lead] // n_dev, *shape[lead + 1:])
  return np.moveaxis(rows, lead, 0)


def device_rows(batches: np.ndarray, n_dev: int) -> np.ndarray:
  """``int32 [steps, n_dev, b / n_dev]`` (``[steps, n_dev, s, b / n_dev]`` with a seed axis): each
  step's row indices, one shard per device, split as :func:`device_batches` splits the batch."""
  batches = _check(batches, n_dev)
  return np.moveaxis(_split(batches.astype(np.int32), batches.ndim - 1, n_dev), 0, 1)


def device_batches(x: Any, y: np.ndarray, batches: np.ndarray, sharding: jax.sharding.Sharding,
                   *, read_threads: int = 2, host_buffer: int = 4,
                   device_buffer: int = 2) -> grain.DatasetIterator:
  """``{'x', 'y'}`` for every row of ``batches``, in order, on the devices of ``sharding``.

  Args:
    x, y: inputs and labels, indexable by an integer array (arrays or array-likes such as
      :class:`l2r_jax.data.base.LazyImages`).
    batches: ``int [steps, b]`` row indices of each batch; ``b`` a multiple of the device count.
      ``int [steps, s, b]``: ``s`` batches per step, one per seed of a vmapped step.
    sharding: how a ``[n_dev, b / n_dev, ...]`` batch lies on the devices, its leading axis
      sharded (:func:`l2r_jax.devices.device_sharding`).
    read_threads: threads gathering batches on the host.
    host_buffer, device_buffer: batches kept ready on the host and on the devices.

  Returns:
    An iterator of ``{'x': [n_dev, b / n_dev, ...], 'y': [n_dev, b / n_dev, ...]}`` device
    arrays (``[n_dev, s, b / n_dev, ...]`` with a seed axis); ``close()`` stops its threads
    (``contextlib.closing`` when it may not be exhausted).
  """
  n_dev = len(sharding.device_set)
  batches = _check(batches, n_dev)
  lead = batches.ndim - 2  # 0, or 1 (seeds)

  def gather(step: int) -> Dict[str, np.ndarray]:
    idx = batches[step]
    flat = idx.reshape(-1)
    return {'x': _split(np.asarray(x[flat]).reshape(*idx.shape, *x.shape[1:]), lead, n_dev),
            'y': _split(np.asarray(y[flat]).reshape(*idx.shape, *y.shape[1:]), lead, n_dev)}

  ds = grain.MapDataset.range(len(batches)).map(gather).to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=host_buffer))
  ds = grain.experimental.device_put(ds, sharding, cpu_buffer_size=host_buffer,
                                     device_buffer_size=device_buffer)
  return iter(ds)
