"""The dataset the active-learning driver works on, for every task.

A loader returns a :class:`Dataset`: the pool (train split) and the test split, the task they pose,
and what the task needs to score predictions. Inputs are channels-last float32 arrays, or for data
too large to hold in memory any array-like with ``shape``, ``len()`` and ``x[index_array]``
(see :class:`LazyImages`); the driver only ever reads a batch of indices at a time.

Labels by task:

* ``'classification'``: ``int32 [N]`` class indices; ``num_outputs`` classes.
* ``'pose'``: ``float32 [N, K, 3]`` joints ``(x, y, weight)`` in heatmap pixels (``x`` to the right,
  ``y`` down, pixel centres at integers), weight 0 for joints without a target;
  ``num_outputs = K``. ``test_meta['head_boxes']`` ``[N, 2, 2]``: two opposite corners of each test
  person's head box, in heatmap pixels (PCKh's normaliser). ``task_params``: ``sigma`` of the
  target Gaussians (heatmap pixels), ``heatmap_size`` ``(H, W)``, ``flip_pairs`` (left/right joint
  pairs, for flip augmentation).
* ``'crowd'``: ``float32 [N, H, W]`` density maps at the model's output resolution, summing to
  ``density_scale`` x the head count; ``num_outputs = 1``. ``task_params['density_scale']``.
"""
from concurrent import futures
import os
from typing import Any, Callable, Mapping, NamedTuple, Tuple

import numpy as np

from l2r_jax.errors import ConfigError

TASKS = ('classification', 'pose', 'crowd')

# Input normalisation: a loader records the one it applied in ``task_params['normalisation']``,
# and pretrained weights say which they expect (l2r_jax/models/pretrained.py). 'imagenet':
# RGB in [0, 1], then ImageNet's per-channel mean and std (torchvision's weights).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalisation(config, loader: str, offered: Tuple[str, ...]) -> str:
  """``config.normalize`` (default ``offered[0]``), refused by name unless the loader offers it."""
  choice = config.get('normalize', None) or offered[0]
  if choice not in offered:
    raise ConfigError(f'config.data.normalize={choice!r}: the {loader} loader normalises its '
                     f'inputs as one of {offered}.')
  return choice


class Dataset(NamedTuple):
  x_train: Any          # the pool: [N, ...] float32 array or array-like
  y_train: np.ndarray   # its labels, revealed only when queried
  x_test: Any
  y_test: np.ndarray
  num_outputs: int      # classes, joints, or 1 (density)
  task: str = 'classification'
  test_meta: Mapping[str, np.ndarray] = {}
  task_params: Mapping[str, Any] = {}

  @property
  def pool_size(self) -> int:
    return len(self.x_train)


class LazyImages:
  """An array-like over ``n`` samples whose rows are made on demand by ``read(i) -> [...]``.

  ``x[idx]`` for an integer array, a slice or an int returns a stacked float32 ``ndarray``; only
  those rows are read, by ``threads`` threads (``read`` must be thread-safe: decoding, resizing
  and numpy mostly release the GIL). Loaders of large real datasets use it so the pool never sits
  in memory.
  """

  def __init__(self, n: int, sample_shape: Tuple[int, ...], read: Callable[[int], np.ndarray],
               threads: int = min(8, os.cpu_count() or 1)):
    self._n, self._read, self._threads = n, read, threads
    self.shape = (n, *sample_shape)
    self.dtype = np.dtype(np.float32)

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, idx) -> np.ndarray:
    if isinstance(idx, (int, np.integer)):
      return np.asarray(self._read(int(idx)), np.float32)
    rows = np.arange(self._n)[idx]
    out = np.empty((len(rows), *self.shape[1:]), np.float32)

    def fill(j):
      out[j] = self._read(int(rows[j]))

    if self._threads > 1 and len(rows) > 1:
      with futures.ThreadPoolExecutor(min(self._threads, len(rows))) as pool:
        list(pool.map(fill, range(len(rows))))
    else:
      for j in range(len(rows)):
        fill(j)
    return out
