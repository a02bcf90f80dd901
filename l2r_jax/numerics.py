"""NaN and infinity, refused where they enter: a dataset's inputs and labels, a model's outputs.

A NaN compares false with everything, so a score, a distance or a metric computed from one does
not fail: it ranks last, ties with its neighbours or counts as a wrong answer, and a table of
believable numbers comes out. So every number that comes from outside a computation is checked
once, on the host, by ``np.isfinite`` over arrays already there: a dataset's arrays when it is
loaded (:func:`~l2r_jax.data.check_dataset`), each batch of an array-like (files read on demand)
as it is read, and the model's outputs as they come back from the devices. A refusal is a
:class:`~l2r_jax.errors.NumericsError` that names the field or the output, how many samples and
which.
"""
from typing import Iterable, Optional, Tuple

import numpy as np

from l2r_jax.errors import ConfigError
from l2r_jax.errors import NumericsError

# Values per np.isfinite over a large array: its boolean copy stays small.
_VALUES_PER_CHECK = 1 << 24

# What to change when the target's outputs, or the loss-prediction module's, are not finite.
TARGET_DIVERGED = ('Its training diverged (a step left NaN or infinite weights), or the model '
                   'computes NaN or infinity on these inputs: lower config.train.lr, and look in '
                   'the model for a log, a division or an exp that can overflow.')
LOSS_MODULE_DIVERGED = (
    "The loss-prediction module's training diverged: lower config.loss_module.lr.")
# What to change when a dataset's numbers are not finite.
DATA_FIX = ('No model can learn from or be scored on them: replace them (impute a missing '
            'measurement, export a damaged image again) or leave those samples out.')


def nonfinite_rows(values) -> np.ndarray:
  """``bool [n]``: which rows (first axis) of the array ``values`` hold a NaN or an infinity."""
  values = np.asarray(values)
  bad = np.zeros(len(values), bool)
  if not np.issubdtype(values.dtype, np.inexact):     # integers and booleans are finite
    return bad
  rows = max(1, _VALUES_PER_CHECK // max(1, values[:1].size))
  for start in range(0, len(values), rows):
    block = values[start:start + rows]
    bad[start:start + len(block)] = ~np.isfinite(block.reshape(len(block), -1)).all(1)
  return bad


def which(indices: np.ndarray, shown: int = 5) -> str:
  """``'index 7'``, or ``'indices 3, 7, 9, ...'`` (the first ``shown``)."""
  if len(indices) == 1:
    return f'index {int(indices[0])}'
  more = ', ...' if len(indices) > shown else ''
  return f'indices {", ".join(str(int(i)) for i in indices[:shown])}{more}'


def _count(bad: np.ndarray, rows: Optional[Iterable[int]]) -> Tuple[np.ndarray, int]:
  """The distinct indices of the bad rows, and how many distinct rows there are (``rows``: each
  row's index, repeats allowed, as in a padded batch; None: 0 .. n-1)."""
  rows = np.arange(len(bad)) if rows is None else np.asarray(rows).reshape(-1)
  return np.unique(rows[bad]), len(np.unique(rows))


def check_data(values, field: str, unit: str = 'samples', rows: Optional[Iterable[int]] = None,
               fix: str = DATA_FIX) -> None:
  """Refuses ``values`` (rows on the first axis, e.g. ``Dataset.x_train``, called ``field``) if a
  row holds a NaN or an infinity, naming how many of the ``unit`` and which (``rows``: their
  indices, default 0 .. n-1), and ``fix``."""
  bad = nonfinite_rows(values)
  if bad.any():
    indices, total = _count(bad, rows)
    raise NumericsError(f'{field}: NaN or infinite values in {len(indices):,} of {total:,} '
                        f'{unit} ({which(indices)}){_where_within(values, bad)}. {fix}')


def _where_within(values, bad: np.ndarray, shown: int = 3) -> str:
  """``', at [1] within a sample'``: where in a sample (a table's column, say) the values are
  bad, read from the first bad samples; empty for one number per sample, or too many places."""
  values = np.asarray(values)
  if values.ndim < 2:
    return ''
  places = np.unique(np.argwhere(~np.isfinite(values[np.flatnonzero(bad)[:100]]))[:, 1:], axis=0)
  if len(places) > shown:
    return ''
  listed = ', '.join(str(list(map(int, p))) for p in places)
  return f', at {listed} within a sample'


def checked_batch(values, rows, field: str):
  """``values`` (a batch: the rows ``rows`` of ``field``, read on demand) once :func:`check_data`
  has found them finite, and, for a dataset's array-like, a float32 array of one row per index
  (what its ``x[indices]`` promises: a list or other pixels would train silently on garbage)."""
  if field.startswith('Dataset.x_') and (
      np.dtype(getattr(values, 'dtype', object)) != np.float32
      or not isinstance(values, np.ndarray) and not hasattr(values, '__array__')
      or np.shape(values)[:1] != (len(rows),)):
    got = (f'{type(values).__name__} of shape {np.shape(values)}'
           + (f', {np.dtype(values.dtype)}' if hasattr(values, 'dtype') else ''))
    raise ConfigError(f'{field}[indices] gave a {got} for {len(rows)} indices: an array-like '
                      "dataset's x[indices] must give a float32 numpy array, one row per index "
                      '(convert in its reader: np.asarray(rows, np.float32), images scaled).')
  check_data(values, field, 'samples read together', rows)
  return values


def check_outputs(outputs: Iterable[Tuple[str, Optional[np.ndarray], str]], rows,
                  samples: str = 'samples', during: str = '') -> None:
  """Refuses a model's outputs ``(name, values, fix)`` (``values`` ``[n, ...]``, None: absent) on
  the samples ``rows`` (called ``samples``: 'pool samples'), if a row of one holds a NaN or an
  infinity: ``during`` (the run and cycle) and the output, how many samples and which, and
  ``fix``."""
  for name, values, fix in outputs:
    if values is None:
      continue
    bad = nonfinite_rows(values)
    if bad.any():
      indices, total = _count(bad, rows)
      subject = f"{during}: the model's" if during else "The model's"
      stops = ' The run stops here; its finished cycles stay saved.' if during else ''
      raise NumericsError(f'{subject} {name} are NaN or infinite on {len(indices):,} of '
                          f'{total:,} {samples} ({which(indices)}). {fix}{stops}')
