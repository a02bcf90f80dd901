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

A pool sample whose label is not known yet is marked: ``-1`` for a class, NaN for a pose's joints
or a density map (:func:`unknown_labels`). A simulated experiment needs every pool label (it
reveals them when queried); an :class:`~l2r_jax.learner.ActiveLearner` starts from the known ones.
The test split's labels are always known; it may be empty (no evaluation) for a learner.
"""
from concurrent import futures
import hashlib
import os
import unicodedata
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from l2r_jax import numerics
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
  # Optional, for people who label: each pool sample's id (its file's path relative to
  # ``source_root``, where it has one) and the classes' names (``num_outputs`` of them).
  pool_ids: Optional[Sequence[str]] = None
  class_names: Optional[Sequence[str]] = None
  source_root: Optional[str] = None
  # How inputs as a person has them (files, uint8 pixels, raw values) become x_train's: a
  # l2r_jax.data.preprocessing.Preprocessing; None: x_train is the inputs as given.
  preprocessing: Optional[Any] = None
  # Each pool sample's file's content (16 hex digits of the SHA-256 of its bytes), where it has
  # one: an answer records it, so a file replaced under the same name is not given its old label.
  pool_file_sha256: Optional[Sequence[str]] = None

  @property
  def pool_size(self) -> int:
    return len(self.x_train)


def class_key(name: Any) -> str:
  """A class's name as answers match it: without surrounding blanks, in Unicode's composed form
  (NFC: macOS writes a folder's name decomposed, ``e`` and a combining accent, where a spreadsheet
  types ``\u00e9``)."""
  return unicodedata.normalize('NFC', str(name).strip())


def _sha256(data: Any) -> str:
  return hashlib.sha256(data if isinstance(data, bytes) else
                        np.ascontiguousarray(data).tobytes()).hexdigest()


def describe(dataset: 'Dataset', test: bool = False) -> Dict[str, Any]:
  """What a workdir records of its data beside the config (``experiment.json``'s ``data``), so
  that other data under the same config is refused: the pool's size, sample shape, task and
  classes, the SHA-256 of its given labels, of its inputs where they are an array, and of its ids
  where it has them; with ``test``, the test split's likewise, and the contents of the pool's files
  where it is a folder's. Inputs read on demand (an array-like) are not read: they are known by
  their ids, or by their size and shape only."""
  d = dataset
  out = {'pool_size': int(d.pool_size), 'sample_shape': list(d.x_train.shape[1:]),
         'task': d.task, 'num_outputs': int(d.num_outputs),
         'given_labels_sha256': _sha256(d.y_train)}
  if isinstance(d.x_train, np.ndarray):
    out['pool_sha256'] = _sha256(d.x_train)
  if d.pool_ids is not None:  # the same files in the same order
    out['pool_ids_sha256'] = _sha256('\n'.join(d.pool_ids).encode())
  if d.class_names is not None:
    out['class_names'] = [str(c) for c in d.class_names]
  if test:
    out['test_size'] = len(d.x_test)
    out['test_labels_sha256'] = _sha256(np.asarray(d.y_test))
    if isinstance(d.x_test, np.ndarray):
      out['test_sha256'] = _sha256(d.x_test)
    if d.pool_file_sha256 is not None:
      out['pool_files_sha256'] = _sha256('\n'.join(d.pool_file_sha256).encode())
  return out


def unknown_labels(task: str, labels: np.ndarray) -> np.ndarray:
  """``bool [N]``: which of ``labels`` are marked unknown (-1 classes, NaN regression targets).
  Targets read on demand (an array-like, not an ndarray) come from files: all known."""
  if not isinstance(labels, np.ndarray):
    return np.zeros(len(labels), bool)
  if task == 'classification':
    return labels == -1
  return np.isnan(labels.reshape(len(labels), -1)).any(axis=1)


def _check_split(d: 'Dataset', split: str, where: str) -> None:
  """The inputs and labels of ``split`` ('train': the pool, 'test') have the types and shapes of
  the contract, one label per sample."""
  x, y = getattr(d, f'x_{split}'), getattr(d, f'y_{split}')
  if type(x).__name__ in ('DataFrame', 'Series') and hasattr(x, 'to_numpy'):
    raise ConfigError(f'{where}: Dataset.x_{split} is a pandas {type(x).__name__}, whose '
                      'x[indices] picks columns, not rows: give its values, '
                      'x.to_numpy(np.float32).')
  if not (hasattr(x, 'shape') and hasattr(x, 'dtype') and hasattr(x, '__len__')
          and hasattr(x, '__getitem__')):
    raise ConfigError(f'{where}: Dataset.x_{split} must be an array, or an array-like with '
                      f'shape, dtype, len() and x[indices] (l2r_jax.data.LazyImages), got '
                      f'{type(x).__name__}.')
  if not (isinstance(y, np.ndarray) or (d.task != 'classification' and hasattr(y, 'shape'))):
    raise ConfigError(f'{where}: Dataset.y_{split} must be a numpy array (dense targets may be '
                      f'an array-like read on demand), got {type(y).__name__}: wrap it in '
                      'np.asarray.')
  if len(np.shape(x)) < 1 or len(np.shape(y)) < 1:
    raise ConfigError(f'{where}: Dataset.x_{split} and y_{split} must have a samples axis '
                      f'first (shapes {np.shape(x)} and {np.shape(y)}).')
  if len(x) != len(y):
    raise ConfigError(f'{where}: Dataset.x_{split} has {len(x)} samples and y_{split} '
                      f'{len(y)}; give one label (or an unknown mark) per sample.')
  dtype = getattr(x, 'dtype', np.dtype(np.float32))
  if np.dtype(dtype) != np.float32:
    raise ConfigError(f'{where}: Dataset.x_{split} is {np.dtype(dtype)}; the models take '
                      'float32 inputs: convert with x.astype(np.float32) (and scale images).')
  shape = {'classification': (), 'pose': (d.num_outputs, 3)}.get(d.task)
  if shape is not None and y.shape[1:] != shape:
    raise ConfigError(f'{where}: Dataset.y_{split} has shape {y.shape}; a {d.task} dataset '
                      f'with num_outputs={d.num_outputs} needs [N{", " if shape else ""}'
                      f'{", ".join(map(str, shape))}].')
  if d.task == 'crowd' and len(y.shape) != 3:
    raise ConfigError(f'{where}: Dataset.y_{split} has shape {y.shape}; a crowd dataset needs '
                      'density maps [N, H, W].')


def check_dataset(dataset: Any, name: Optional[str]) -> 'Dataset':
  """``dataset`` if it honours the contract of this module, or a :class:`ConfigError` naming the
  field and the fix (for the loader of ``config.data.name=name``; None: a dataset given directly,
  to :class:`~l2r_jax.learner.ActiveLearner`). A NaN or an infinity in an array's inputs, in a
  test label, in a known pool label (NaN marks an unknown one) or in a head box is a
  :class:`~l2r_jax.errors.NumericsError` naming the field and the samples. An array-like (files
  read on demand) is not read here, which would read every file: scoring and evaluation check
  each of its batches as they read them (:mod:`l2r_jax.numerics`)."""
  where = (f'The loader of config.data.name={name!r}' if name is not None else
           'The dataset given')
  if not isinstance(dataset, Dataset):
    verb = 'is' if name is None else 'returned'
    raise ConfigError(f'{where} {verb} a {type(dataset).__name__}, not an l2r_jax.data.Dataset('
                      'x_train, y_train, x_test, y_test, num_outputs, task).')
  d = dataset
  if d.task not in TASKS:
    raise ConfigError(f'{where}: Dataset.task={d.task!r}; choose one of {TASKS}.')
  if isinstance(d.num_outputs, bool) or not isinstance(d.num_outputs, (int, np.integer)) or (
      d.num_outputs < 1):
    raise ConfigError(f'{where}: Dataset.num_outputs must be a positive int (classes, joints, or 1 '
                      f'density channel), got {d.num_outputs!r}.')
  for split in ('train', 'test'):
    _check_split(d, split, where)
  if len(d.x_train) == 0:
    raise ConfigError(f'{where}: the pool (Dataset.x_train) is empty.')
  if len(getattr(d.x_train, 'shape', ())) < 2:
    raise ConfigError(f'{where}: Dataset.x_train has shape {tuple(d.x_train.shape)}: a sample '
                      'per row and its features after, [N, ...]; one feature a sample is '
                      'x.reshape(-1, 1).')
  shape = tuple(d.x_train.shape[1:])
  if len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] >= 8:
    raise ConfigError(f'{where}: Dataset.x_train has samples of shape {shape}: images channels-'
                      f'first ({shape[0]} channel{"s" * (shape[0] > 1)} of {shape[1]}x'
                      f'{shape[2]})? Models take them channels-last, [N, H, W, C]: give '
                      'x.transpose(0, 2, 3, 1), for the test split too.')
  if len(d.x_test) and tuple(d.x_test.shape[1:]) != tuple(d.x_train.shape[1:]):
    raise ConfigError(f'{where}: test inputs are {tuple(d.x_test.shape[1:])} and pool inputs '
                      f'{tuple(d.x_train.shape[1:])}; give both one shape.')
  if d.task == 'classification' and d.num_outputs < 2:
    raise ConfigError(f'{where}: Dataset.num_outputs={d.num_outputs} for classification: a '
                      'classifier tells at least 2 classes apart.')
  if d.task == 'classification':
    for split in ('train', 'test'):
      y = getattr(d, f'y_{split}')
      if y.dtype.kind in 'OSU':
        raise ConfigError(f'{where}: Dataset.y_{split} holds {y.dtype} values (class names?); '
                          'classes are integers 0 .. num_outputs - 1: map each name to its '
                          'index (names = sorted(set(y)); y = np.array([names.index(v) for v in '
                          'y], np.int32)) and give the names as Dataset(class_names=names).')
      if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f'{where}: Dataset.y_{split} is {y.dtype}; classes are integers: '
                          'convert with y.astype(np.int32).')
      low = -1 if split == 'train' else 0
      bad = (y < low) | (y >= d.num_outputs)
      if bad.any():
        known = [v[v >= 0] for v in (d.y_train, d.y_test) if np.issubdtype(v.dtype, np.integer)]
        known = np.concatenate(known) if len(known) == 2 else y[:0]
        from_one = len(known) > 0 and known.min() == 1 and known.max() == d.num_outputs
        raise ConfigError(
            f'{where}: Dataset.y_{split}[{int(np.argmax(bad))}]={int(y[np.argmax(bad)])} is not '
            f'a class of num_outputs={d.num_outputs} (0 .. {d.num_outputs - 1}'
            f'{"; -1 marks an unknown label" if split == "train" else ""})'
            + ('; the classes look counted from 1: give y - 1.' if from_one else '.'))
  else:
    if isinstance(d.y_test, np.ndarray):
      numerics.check_data(d.y_test, f'{where}: Dataset.y_test (the test split\'s labels, all '
                          'known: NaN marks an unknown label in the pool only)')
    if isinstance(d.y_train, np.ndarray):
      numerics.check_data(np.where(np.isnan(d.y_train), 0.0, d.y_train),
                          f'{where}: Dataset.y_train (NaN marks an unknown label; an infinity '
                          'is none)')
  for split in ('train', 'test'):
    x = getattr(d, f'x_{split}')
    if isinstance(x, np.ndarray):  # an array-like is checked a batch at a time, as it is read
      numerics.check_data(x, f'{where}: Dataset.x_{split}')
  needs = {'pose': ('sigma', 'heatmap_size'), 'crowd': ('density_scale',)}.get(d.task, ())
  missing = [k for k in needs if k not in d.task_params]
  if d.pool_ids is not None and (len(d.pool_ids) != len(d.x_train)
                                 or len(set(d.pool_ids)) != len(d.pool_ids)
                                 or not all(isinstance(i, str) for i in d.pool_ids)):
    raise ConfigError(f'{where}: Dataset.pool_ids must name each pool sample once, as strings '
                      f'({len(d.x_train)} distinct ids).')
  if d.pool_file_sha256 is not None and (
      len(d.pool_file_sha256) != len(d.x_train)
      or not all(isinstance(h, str) for h in d.pool_file_sha256)):
    raise ConfigError(f'{where}: Dataset.pool_file_sha256 must give each pool sample\'s file '
                      f'content as a string ({len(d.x_train)} of them), or be None.')
  if d.class_names is not None and not all(isinstance(c, str) for c in d.class_names):
    raise ConfigError(f'{where}: Dataset.class_names must be strings.')
  if d.preprocessing is not None:
    from l2r_jax.data import preprocessing  # pylint: disable=g-import-not-at-top
    if not isinstance(d.preprocessing, preprocessing.Preprocessing) or (
        d.preprocessing.kind not in preprocessing.KINDS):
      raise ConfigError(f'{where}: Dataset.preprocessing must be an l2r_jax.Preprocessing of kind '
                        f'{preprocessing.KINDS} (or None: the inputs are the model\'s as given), '
                        f'got {d.preprocessing!r}.')
    problem = d.preprocessing.problem(tuple(d.x_train.shape[1:]))
    if problem:
      raise ConfigError(f'{where}: Dataset.preprocessing.{problem}')
  if d.class_names is not None and len(d.class_names) != d.num_outputs:
    raise ConfigError(f'{where}: Dataset.class_names has {len(d.class_names)} names for '
                      f'num_outputs={d.num_outputs} classes.')
  if d.task == 'pose' and len(d.y_test) and np.shape(d.test_meta.get('head_boxes')) != (
      len(d.y_test), 2, 2):
    raise ConfigError(f'{where}: a pose dataset\'s Dataset.test_meta[\'head_boxes\'] must be '
                      f'[{len(d.y_test)}, 2, 2], each test person\'s head box (PCKh\'s '
                      'normaliser).')
  if d.task == 'pose' and len(d.y_test):
    numerics.check_data(np.asarray(d.test_meta['head_boxes'], np.float64),
                        f'{where}: Dataset.test_meta[\'head_boxes\']')
  if missing:
    raise ConfigError(f'{where}: Dataset.task_params lacks {", ".join(missing)}, which the '
                      f'{d.task} task needs (l2r_jax/data/base.py says what each is).')
  return dataset


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
