"""The training input pipeline: batches gathered on the host in background threads and put on the
devices ahead of the step that needs them.

    for batch in pipeline.device_batches(x, y, batches, sharding):
      state, metrics = p_train_step(state, batch, keys[step])

Built on grain: a ``MapDataset`` over the steps whose element ``i`` is the batch ``batches[i]``
(rows gathered from ``x`` and ``y``, split into one shard per local device), read by
``read_threads`` threads, then ``grain.experimental.device_put``: a host buffer and a device
buffer, each filled by its own thread. The step loop therefore finds every batch already on its
devices; gathering (or decoding, for an array-like pool) and the host-to-device copy overlap the
previous steps.
"""
from typing import Any, Dict

import grain
import jax
import numpy as np


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
      sharded (:func:`l2r_jax.train.device_sharding`).
    read_threads: threads gathering batches on the host.
    host_buffer, device_buffer: batches kept ready on the host and on the devices.

  Returns:
    An iterator of ``{'x': [n_dev, b / n_dev, ...], 'y': [n_dev, b / n_dev, ...]}`` device
    arrays (``[n_dev, s, b / n_dev, ...]`` with a seed axis); ``close()`` stops its threads
    (``contextlib.closing`` when it may not be exhausted).
  """
  batches = np.asarray(batches)
  if batches.ndim not in (2, 3):
    raise ValueError('batches must be [steps, batch_size] or [steps, seeds, batch_size] indices, '
                     f'got shape {batches.shape}.')
  n_dev = len(sharding.device_set)
  if batches.shape[-1] % n_dev:
    raise ValueError(f'A batch of {batches.shape[-1]} does not split over {n_dev} devices.')
  lead = batches.shape[1:-1]  # () or (seeds,)
  per_device = batches.shape[-1] // n_dev

  def split(rows: np.ndarray) -> np.ndarray:
    # [*lead, b, ...] -> [n_dev, *lead, b / n_dev, ...]: device d holds rows d*b/n_dev onwards.
    rows = rows.reshape(*lead, n_dev, per_device, *rows.shape[len(lead) + 1:])
    return np.moveaxis(rows, len(lead), 0)

  def gather(step: int) -> Dict[str, np.ndarray]:
    idx = batches[step]
    flat = idx.reshape(-1)
    return {'x': split(np.asarray(x[flat]).reshape(*idx.shape, *x.shape[1:])),
            'y': split(np.asarray(y[flat]).reshape(*idx.shape, *y.shape[1:]))}

  ds = grain.MapDataset.range(len(batches)).map(gather).to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=host_buffer))
  ds = grain.experimental.device_put(ds, sharding, cpu_buffer_size=host_buffer,
                                     device_buffer_size=device_buffer)
  return iter(ds)
