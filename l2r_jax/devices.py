"""The devices every stage runs on: the pmapped programs' axis, copies of a state on every local
device, and work over every device of every process.

:data:`AXIS` is the one axis name of every pmapped program (training, inference, core-set, VAAL);
:func:`replicate` and :func:`device_sharding` lay arrays out as those programs' own outputs lie.

**Blocks.** A set of samples is cut into one contiguous block per device, the same layout for
scoring, evaluation, core-set's search and VAAL's batches. Device ``d`` of process ``p`` holds
block ``p * local devices + d`` (the order of ``jax.devices()`` that ``pmap``'s collectives
follow), so a pmapped program fed :func:`local_share` on every process sees the whole set once,
and ``lax.axis_index`` is a device's block number.
"""
from typing import Callable, Optional, Sequence, Tuple

import jax
from jax.experimental import multihost_utils
import numpy as np

AXIS = 'batch'


def device_sharding(devices=None) -> jax.sharding.NamedSharding:
  """Arrays with a leading device axis, one slice per device (default: the local devices), on a
  mesh whose axis is named like the pmapped step's: how the step's own outputs lie, so inputs
  placed this way share its compiled program."""
  devices = list(jax.local_devices() if devices is None else devices)
  return jax.sharding.NamedSharding(jax.sharding.Mesh(np.asarray(devices), (AXIS,)),
                                    jax.sharding.PartitionSpec(AXIS))


def replicate(tree, devices=None):
  """One copy of ``tree`` per device (default: the local devices), stacked on a leading axis and
  placed by :func:`device_sharding`, so that the step's first call and its later calls (fed its
  own outputs) share one compiled program."""
  sharding = device_sharding(devices)
  n = len(sharding.device_set)
  return jax.tree.map(lambda a: jax.device_put(
      np.broadcast_to(np.asarray(a)[None], (n, *np.shape(a))), sharding), tree)


def per_block(n: int) -> int:
  """How many of ``n`` samples each device's block holds (at least one; the last blocks padded)."""
  return max(-(-n // jax.device_count()), 1)


def local_share(values: np.ndarray, size: int) -> np.ndarray:
  """This process's blocks of ``values`` (``[n, ...]``): ``[local devices, size, ...]``, block
  ``b`` being rows ``[b * size, (b + 1) * size)``, padded with copies of row 0."""
  values = np.asarray(values)
  n_local = jax.local_device_count()
  padded = np.concatenate([values, np.repeat(values[:1], size * jax.device_count() - len(values),
                                             0)])
  return padded.reshape(-1, size, *values.shape[1:])[jax.process_index() * n_local:][:n_local]


def local_valid(n: int, size: int) -> np.ndarray:
  """``[local devices, size]``: which rows of :func:`local_share` are real samples."""
  return local_share(np.arange(size * jax.device_count()) < n, size)


def gather(local: Tuple[Optional[np.ndarray], ...]) -> Tuple[Optional[np.ndarray], ...]:
  """``[local devices, ...]`` host outputs of every process, as ``[devices, ...]`` on every
  process (block order); None stays None."""
  if jax.process_count() == 1:
    return local
  return tuple(None if o is None else o.reshape(-1, *o.shape[2:])
               for o in multihost_utils.process_allgather(local))


def map_over_devices(fn: Callable, fetch: Callable[[np.ndarray], Sequence[np.ndarray]],
                     indices: np.ndarray, chunk: int):
  """``fn`` (pmapped, its inputs ``[local devices, chunk, ...]``) on the arrays
  ``fetch(indices)`` (host arrays, one row per index), over every device of every process: one
  block of the indices per device, each block in chunks of a fixed size (the last padded, so one
  compilation serves all; fewer indices than ``chunk`` per device shrink it to the next power of
  two). Every process gets every output, in
  index order; None outputs stay None. Each sample's outputs are those one device gives, up to
  float32 rounding where the chunk size differs (per-sample inference: no sample sees another)."""
  indices = np.asarray(indices)
  size = per_block(len(indices))
  if size < chunk:
    chunk = 1 << (size - 1).bit_length()
  steps = -(-size // chunk)
  share = local_share(indices, size)                       # [local devices, size]
  share = np.concatenate([share, np.repeat(share[:, :1], steps * chunk - size, 1)], 1)
  share = share.reshape(len(share), steps, chunk)
  outs = []
  for step in range(steps):
    rows = share[:, step].reshape(-1)
    inputs = (np.asarray(a).reshape(len(share), chunk, *np.shape(a)[1:]) for a in fetch(rows))
    outs.append(jax.device_get(fn(*inputs)))
  local = tuple(None if outs[0][k] is None else np.concatenate([o[k] for o in outs], 1)
                for k in range(len(outs[0])))     # [local devices, steps * chunk, ...]
  return tuple(None if o is None else o[:, :size].reshape(-1, *o.shape[2:])[:len(indices)]
               for o in gather(local))
