r"""A person's answers: read, checked and written in one place, bound to the samples they name.

An answer names a pool sample and gives its label. It comes from
:meth:`~l2r_jax.learner.ActiveLearner.teach` (indices and labels), from a file given to
``python -m l2r_jax.label answer`` (a table or JSON lines), or from the learner's own log,
``WORKDIR/answers.jsonl``. All three pass one check (:func:`check`) and each problem is one line,
``<where>[, index N]: <problem>``, where ``<where>`` is ``answer K`` (the K-th of a ``teach``) or
``<file>, line N``.

**Samples by id.** Each sample has an id that stays with it when the pool changes
(:func:`sample_ids`): its ``Dataset.pool_ids`` entry where the dataset has them (an image folder's:
the file's path relative to its root), else a fingerprint of its input (``sha256:`` and the first
16 hex digits of the SHA-256 of its float32 bytes; the second of two identical inputs gets ``#2``,
in pool order). Each line of the log records the sample's index and id, its label (the class's name
where the dataset names its classes) and the pool it was made for (:attr:`Pool.fingerprint`). What
decides the sample an answer names:

* a line made for this pool (the log, or a file that says so): index and id, which must agree;
* a line made for another pool (an older workdir's log, carried into a new workdir after the pool
  changed): the id; the index is ignored. The learner's own log holds only its pool's lines;
* a line that does not say (a table, JSON lines from a tool): the id where given, and an index
  that disagrees with it is refused (the file may have been made for another pool: leave the
  index out to map by id); else the index (as in a log of indices and labels only).

**Corrections.** A label known (taught, or given by the dataset) is changed by a correction
(:meth:`~l2r_jax.learner.ActiveLearner.relabel`, ``label answer --relabel``): a new line
``{..., "correction": true}``, never a rewrite; the log is read in order, so the last word on a
sample is the label it has, and the whole history stays in the file.

**The log** grows by one write per ``teach`` (all its answers or none, also on a full disk:
:func:`l2r_jax.workdir.append_synced`) and is read strictly: a last line without its newline (cut
off by a kill) is dropped, or completed if it holds a whole answer, by an atomic rewrite; any other
line that cannot be read refuses the learner, naming it.

**Files as people save them**: UTF-8 with or without a byte-order mark, UTF-16 or UTF-32 with one
(a spreadsheet's "Unicode text"), or Windows-1252 (cp1252); comma-, tab- or semicolon-separated,
the first row naming the columns. Text cells a spreadsheet would take for a formula (beginning
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are written after a ``'``, which is
dropped when read back (OWASP's advice against CSV injection).
"""
import codecs
import csv
import hashlib
import io
import json
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from l2r_jax import data as data_lib
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import ConfigError
from l2r_jax.errors import Refusal

ANSWERS_FILE = 'answers.jsonl'
QUERY_FILE = 'query.json'
QUERY_FOLDER = 'query'
COLUMNS = ('index', 'id', 'file', 'score', 'label')   # the query's table
# Where an answer comes from: it decides how labels are read and what an answer given again means.
TEACH, LOG, FILE = 'teach', 'log', 'file'
# What describe_pool records of the pool's samples: the pool's fingerprint.
POOL_FIELDS = ('pool_size', 'sample_shape', 'pool_sha256', 'pool_ids_sha256')
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')
CARRY = 'python -m l2r_jax.label answer --answers=FILE'


class LabelError(Refusal, ValueError):
  """Answers that cannot be taught: one line per problem; nothing of them is taught."""


def refusal(header: str, problems: Sequence[str]) -> LabelError:
  """One refusal: ``header``, then a line per problem."""
  return LabelError('\n'.join([header, *problems]))


def count(n: int) -> str:
  return f'{n} problem{"s" * (n != 1)}'


# -- the pool's samples ---------------------------------------------------------------------------


def fingerprint(description: Dict[str, Any]) -> str:
  """16 hex digits that tell a pool from another: of what ``description``
  (:func:`l2r_jax.learner.describe_pool`) records of its samples (:data:`POOL_FIELDS`)."""
  samples = {k: description[k] for k in POOL_FIELDS if k in description}
  return hashlib.sha256(json.dumps(samples, sort_keys=True).encode()).hexdigest()[:16]


def sample_ids(dataset: data_lib.Dataset, chunk: int = 256) -> List[str]:
  """Each pool sample's id: ``Dataset.pool_ids`` where given, else the fingerprint of its input
  (see the module's docstring); an array-like pool is read once, ``chunk`` samples at a time."""
  if dataset.pool_ids is not None:
    return [str(i) for i in dataset.pool_ids]
  x, ids, copies = dataset.x_train, [], {}
  for start in range(0, len(x), chunk):
    rows = np.arange(start, min(start + chunk, len(x)))
    block = x[start:start + chunk] if isinstance(x, np.ndarray) else x[rows]
    for row in np.asarray(block, np.float32):
      digest = 'sha256:' + hashlib.sha256(np.ascontiguousarray(row).tobytes()).hexdigest()[:16]
      copies[digest] = copies.get(digest, 0) + 1
      ids.append(digest if copies[digest] == 1 else f'{digest}#{copies[digest]}')
  return ids


def check_class_names(dataset: data_lib.Dataset) -> None:
  """Refuses class names that cannot name a class in an answer: empty, given twice, or a whole
  number that is another class's index."""
  if dataset.class_names is None:
    return
  names = [str(n).strip() for n in dataset.class_names]
  for k, name in enumerate(names):
    if not name:
      problem = f'Dataset.class_names[{k}] is empty'
    elif names.index(name) != k:
      problem = f'Dataset.class_names names {name!r} twice (classes {names.index(name)} and {k})'
    elif re.fullmatch(r'[+-]?\d+', name) and int(name) != k:
      problem = f'Dataset.class_names[{k}]={name!r} reads as class index {int(name)}'
    else:
      continue
    raise ConfigError(f'{problem}: answers give a class by its name or its index; give each '
                      'class a name of its own.')


class Pool:
  """A dataset's pool as answers name its samples: by index (``0 .. size - 1``), by id
  (:attr:`ids`, computed once, when first needed), and as a whole by :attr:`fingerprint`.
  ``description``: what the learner's workdir records of the pool (``describe_pool``)."""

  def __init__(self, dataset: data_lib.Dataset, description: Dict[str, Any]):
    self.dataset = dataset
    self.size = int(dataset.pool_size)
    self.fingerprint = fingerprint(description)
    self._ids: Optional[List[str]] = None
    self._by_id: Optional[Dict[str, int]] = None
    names = dataset.class_names
    self._by_name = {} if names is None else {str(n).strip(): k for k, n in enumerate(names)}

  @property
  def ids(self) -> List[str]:
    if self._ids is None:
      self._ids = sample_ids(self.dataset)
    return self._ids

  def index_of(self, sample_id: str) -> Optional[int]:
    """The index of the sample ``sample_id`` names (as given, else without surrounding blanks)."""
    if self._by_id is None:
      self._by_id = {s: i for i, s in enumerate(self.ids)}
    found = self._by_id.get(sample_id)
    return self._by_id.get(sample_id.strip()) if found is None else found

  def class_index(self, name: str) -> Optional[int]:
    return self._by_name.get(name.strip())

  def show(self, label: Any) -> str:
    """A label as messages show it: a class's index and name, or the values."""
    names = self.dataset.class_names
    if self.dataset.task == 'classification' and names is not None:
      return f'{int(label)}, {names[int(label)]!r}'
    return str(np.asarray(label).tolist())

  def record(self, index: int, label: Any, correction: bool = False) -> Dict[str, Any]:
    """An answer (or a correction of one) as the log keeps it."""
    if self.dataset.task == 'classification':
      names = self.dataset.class_names
      value = int(label) if names is None else str(names[int(label)])
    else:
      value = np.asarray(label).tolist()
    out = {'index': int(index), 'id': self.ids[index], 'label': value, 'pool': self.fingerprint}
    return dict(out, correction=True) if correction else out


# -- one check for every answer -------------------------------------------------------------------


class Answer(NamedTuple):
  """One answer as given: its ``line`` in ``file`` (None: the ``line``-th answer of a ``teach``),
  the sample it names (``index`` and/or ``sample_id``, None where not given), its ``label``, and
  ``pool``, the fingerprint of the pool it says it was made for (None: it does not say), and
  whether it corrects a label known (``correction``)."""
  file: Optional[str]
  line: int
  index: Any = None
  sample_id: Any = None
  label: Any = None
  pool: Optional[str] = None
  correction: bool = False

  @property
  def where(self) -> str:
    return f'answer {self.line}' if self.file is None else f'{self.file}, line {self.line}'

  @property
  def short(self) -> str:
    return f'answer {self.line}' if self.file is None else f'line {self.line}'


Problem = Tuple[int, str]   # (line, text): problems are shown in the order of their lines


def in_order(problems: Sequence[Problem]) -> List[str]:
  return [text for _, text in sorted(problems, key=lambda p: p[0])]


def given(indices: Any, labels: Any) -> Tuple[List[Answer], List[Problem]]:
  """``teach(indices, labels)``'s answers."""
  try:
    n, m = len(indices), len(labels)
  except TypeError:
    return [], [(0, 'give indices and labels as sequences, one label per index.')]
  if n != m:
    return [], [(0, f'{n} indices and {m} labels: give one label per index.')]
  return [Answer(None, k, i, None, y) for k, (i, y) in enumerate(zip(indices, labels), 1)], []


def check(answers: Sequence[Answer], pool: Pool, known: np.ndarray, source: str,
          correcting: bool = False) -> Tuple[List[int], List[Any], List[Problem]]:
  """``(indices, labels, problems)``: the answers that can be taught, the labels as the task keeps
  them, and a line for each that cannot. ``known``: the pool's labels known now (unknown ones
  marked); ``source``: :data:`TEACH` (labels as values), :data:`LOG` or :data:`FILE` (a class also
  by name, a regression label also as JSON text; from a file, an answer equal to the label known
  is left out, so a file may be given again). ``correcting``: the answers correct labels known
  (each sample must have one), rather than give new ones."""
  unknown = data_lib.unknown_labels(pool.dataset.task, known)
  indices, labels, problems, seen = [], [], [], {}
  for answer in answers:
    index, problem = _sample(answer, pool, source)
    if problem is not None:
      problems.append((answer.line, f'{answer.where}: {problem}'))
      continue
    label, problem = _label(answer.label, pool, named=source != TEACH)
    same = problem is None and not unknown[index] and np.array_equal(
        known[index], np.asarray(label, known.dtype))
    if problem is None and index in seen:
      problem = f'answered twice (also {seen[index]}).'
    elif problem is None and correcting and unknown[index]:
      problem = ('has no label to correct yet: teach it (a correction changes a label known).')
    elif problem is None and (same if correcting else not unknown[index]):
      if source == FILE and same:
        seen[index] = answer.short
        continue   # given again: taught already, with this label
      problem = (f'labeled {pool.show(known[index])} already: nothing to correct.' if correcting
                 else f'labeled already (as {pool.show(known[index])}); correct a label with '
                      'relabel (label answer --relabel), never by answering again.')
    if problem is not None:
      problems.append((answer.line, f'{answer.where}, index {index}: {problem}'))
      continue
    seen[index] = answer.short
    indices.append(index)
    labels.append(label)
  return indices, labels, problems


def _sample(answer: Answer, pool: Pool, source: str) -> Tuple[Optional[int], Optional[str]]:
  """The pool index ``answer`` names, or why it names none (the rules: the module's docstring)."""
  index, sample_id = answer.index, answer.sample_id
  carried = answer.pool is not None and answer.pool != pool.fingerprint
  if carried and source != FILE:
    return None, (f'made for another pool (pool {answer.pool}; this workdir\'s is '
                  f'{pool.fingerprint}): a learner\'s log holds its own pool\'s answers. Remove '
                  f'the line, and carry answers between pools with {CARRY}.')
  whole = not isinstance(index, (bool, np.bool_)) and isinstance(index, (int, np.integer))
  bad_index = None
  if index is not None and not (whole and 0 <= index < pool.size):
    bad_index = f'index {index!r} is not a pool sample (whole numbers 0 .. {pool.size - 1}).'
  if sample_id is None:
    if index is None:
      return None, 'names no sample: give its index or its id.'
    if carried:
      return None, ('made for another pool and names its sample by index only: give its id '
                    '(the pool\'s samples moved).')
    return (None, bad_index) if bad_index else (int(index), None)
  if not isinstance(sample_id, str):
    return None, f'id {sample_id!r} is not text.'
  found = pool.index_of(sample_id)
  if found is None:
    return None, (f'id {sample_id!r} is not a sample of this pool' +
                  (' (removed or renamed since?); remove the line to carry the others.'
                   if carried else '.'))
  if index is None or carried:
    return found, None
  if bad_index:
    return None, bad_index
  if int(index) == found:
    return found, None
  mismatch = (f'index {index} is {pool.ids[index]!r} in this pool, but the answer names id '
              f'{sample_id!r} (index {found})')
  if answer.pool == pool.fingerprint:
    return None, f'{mismatch}; index and id of one answer disagree: mend the line.'
  return None, (f'{mismatch}: the file may have been made for another pool. To map its answers by '
                'id, leave the index out (delete the index column, or the "index" fields).')


def _label(label: Any, pool: Pool, named: bool) -> Tuple[Any, Optional[str]]:
  """``label`` as the task keeps it, or why it is not one of the task's."""
  ds = pool.dataset
  if named and isinstance(label, str):
    if ds.task == 'classification':
      index = pool.class_index(label)
      if index is not None:
        return index, None
      if re.fullmatch(r'\s*[+-]?\d+\s*', label):
        label = int(label)
      else:
        names = ('' if ds.class_names is None else
                 f' or a name of {[str(n) for n in ds.class_names]}')
        return None, (f'label {label!r} is not a class (an index 0 .. {ds.num_outputs - 1}'
                      f'{names}).')
    else:
      try:
        label = json.loads(label)
      except (ValueError, RecursionError):
        return None, (f'label is not a JSON array of numbers of shape '
                      f'{tuple(ds.y_train.shape[1:])}.')
  problem = label_problem(ds, label)
  return (None, problem) if problem else (label, None)


def label_problem(dataset: data_lib.Dataset, label: Any) -> Optional[str]:
  """Why ``label`` is not a label of ``dataset``'s task, or None if it is one."""
  if dataset.task == 'classification':
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
      return f'label {label!r} is not a class index (whole numbers 0 .. {dataset.num_outputs - 1}).'
    if not 0 <= label < dataset.num_outputs:
      return f'label {label} is not a class: 0 .. {dataset.num_outputs - 1}.'
    return None
  shape = dataset.y_train.shape[1:]
  try:
    value = np.asarray(label, np.float64)
  except (TypeError, ValueError):
    return f'label is not an array of numbers of shape {tuple(shape)}.'
  if value.shape != tuple(shape):
    return f'label has shape {value.shape}; the {dataset.task} task needs {tuple(shape)}.'
  if not np.isfinite(value).all():
    return 'label has NaN or infinite values.'
  return None


# -- the learner's log ----------------------------------------------------------------------------


def check_workdir(workdir: str) -> None:
  """Refuses a workdir where a file or folder the answers use is a symbolic link, or whose answers
  have lost the record of the experiment they belong to (``experiment.json``)."""
  if not os.path.isdir(workdir):
    return
  log = workdir_lib.path_in(workdir, ANSWERS_FILE)
  workdir_lib.path_in(workdir, QUERY_FILE)
  workdir_lib.folder_in(workdir, QUERY_FOLDER)
  identity = workdir_lib.path_in(workdir, workdir_lib.IDENTITY_FILE)
  if os.path.lexists(log) and not os.path.lexists(identity):
    raise workdir_lib.WorkdirError(
        f'{log} holds answers, but {identity}, the record of the experiment and pool they were '
        'made for, is gone: restore it, or carry the answers into a new --workdir with '
        f'python -m l2r_jax.label answer --answers={log}.')


class AnswerLog:
  """``WORKDIR/answers.jsonl``: every answer taught, one JSON line
  ``{"index", "id", "label", "pool"}`` each, in the order taught (the module's docstring)."""

  def __init__(self, workdir: str, pool: Pool):
    self._workdir, self._pool = workdir, pool

  @property
  def path(self) -> str:
    return workdir_lib.path_in(self._workdir, ANSWERS_FILE)

  def read(self, given_labels: np.ndarray) -> List[Tuple[int, Any, bool]]:
    """``(index, label, correction)`` of every answer and correction, in the order taught,
    after ``given_labels`` (the dataset's); refused (:class:`LabelError`) with a line per line of
    the file that cannot be read or taught."""
    path = self.path
    if not os.path.lexists(path):
      return []
    answers, problems = [], []
    for number, line in enumerate(self._mended(path, _log_bytes(path)).split(b'\n')[:-1], 1):
      try:
        answer, problem = _record(line.decode('utf-8'), path, number) if line.strip() else (
            None, None)
      except UnicodeDecodeError as e:
        answer, problem = None, f'not UTF-8 text (byte {e.start} of the line).'
      answers += [answer] if answer else []
      problems += [(number, f'{path}, line {number}: {problem}')] if problem else []
    known, events, more = np.array(given_labels), [], []
    for group in _in_turn(answers):
      indices, labels, group_problems = check(group, self._pool, known, LOG, group[0].correction)
      more += group_problems
      for i, y in zip(indices, labels):
        known[i] = np.asarray(y, known.dtype)
        events.append((i, y, group[0].correction))
    n = len(problems) + len(more)
    if n:
      raise refusal(f'{path}: {count(n)}; it holds every answer taught, and nothing else reads it: '
                    f'mend or remove the line{"s" * (n > 1)} named.', in_order(problems + more))
    return events

  def append(self, indices: Sequence[int], labels: Sequence[Any], correction: bool = False
             ) -> None:
    """Adds the answers (or corrections), all in one write, synced; on a failure (a full disk)
    none of them."""
    text = ''.join(json.dumps(self._pool.record(i, y, correction)) + '\n'
                   for i, y in zip(indices, labels))
    path = self.path
    if not text:
      return
    try:
      workdir_lib.append_synced(path, text)
    except OSError as e:
      raise LabelError(f'{path}: the answers could not be saved ({e.strerror or e}); none of them '
                       'was taught and the file is as it was. Free some space, then teach them '
                       'again.') from None

  def _mended(self, path: str, content: bytes) -> bytes:
    """``content`` without a last line that lacks its newline (cut off by a kill), or with its
    newline if that line is a whole answer (saved by an editor that leaves it out); the file
    rewritten to match, atomically."""
    if not content or content.endswith(b'\n'):
      return content
    last = content[content.rfind(b'\n') + 1:]
    whole = _record(last.decode('utf-8', 'replace'), path, 0)[0] is not None
    mended = content + b'\n' if whole else content[:len(content) - len(last)]
    try:
      workdir_lib.write_atomic(path, mended)
    except OSError as e:
      raise LabelError(f'{path}: its last line lacks a newline and the file cannot be rewritten '
                       f'({e.strerror or e}); free some space and try again.') from None
    if not whole:
      logging.warning('%s: its last line was cut off (a kill while it was written); dropped: %r',
                      path, last[:80])
    return mended


def _in_turn(answers: Sequence[Answer]) -> List[List[Answer]]:
  """The log's answers in groups that can be checked together: consecutive, all answers or all
  corrections, no sample corrected twice (a later line sees what the earlier ones taught)."""
  groups, names = [], set()
  for answer in answers:
    name = (answer.index, answer.sample_id)
    # A sample answered twice is refused as such; corrected twice, the later one wins.
    if not groups or answer.correction != groups[-1][0].correction or (
        answer.correction and name in names):
      groups.append([])
      names = set()
    groups[-1].append(answer)
    names.add(name)
  return groups


def fold_corrections(answers: Sequence[Answer]) -> List[Answer]:
  """``answers`` (a carried log, say) with each correction folded into the answer it corrects
  (the same sample, by id where given, else by index, earlier in the file): one answer per sample,
  holding the last word on its label."""
  out, at = [], {}
  for answer in answers:
    name = answer.sample_id if answer.sample_id is not None else answer.index
    key = (type(name).__name__, str(name))
    if answer.correction and key in at:
      out[at[key]] = out[at[key]]._replace(label=answer.label)
      continue
    at[key] = len(out)
    out.append(answer._replace(correction=False))
  return out


def _log_bytes(path: str) -> bytes:
  try:
    return workdir_lib.read_bytes(path)
  except OSError as e:
    raise LabelError(f'{path} cannot be read ({e.strerror or e}): it holds every answer taught; '
                     'restore it as a file.') from None


def _record(line: str, file: str, number: int) -> Tuple[Optional[Answer], Optional[str]]:
  """A JSON line's answer, or why it is not one."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    return None, f'not JSON ({e.msg}, column {e.colno}).'
  except ValueError:
    return None, 'not JSON (a number with too many digits).'
  except RecursionError:
    return None, 'not JSON (arrays or objects nested too deep).'
  if not isinstance(record, dict) or 'label' not in record or not (
      'index' in record or 'id' in record):
    return None, 'give {"index": ..., "label": ...} (or "id" for "index").'
  pool = record.get('pool')
  if pool is not None and not isinstance(pool, str):
    return None, '"pool" must be text: the fingerprint of the pool the answer was made for.'
  correction = record.get('correction', False)
  if not isinstance(correction, bool):
    return None, '"correction" must be true or false.'
  return Answer(file, number, _whole(record.get('index')), record.get('id'), record['label'],
                pool, correction), None


def _whole(value: Any) -> Any:
  """A whole number given as text read as one; anything else as it is."""
  if isinstance(value, str) and re.fullmatch(r'\s*[+-]?\d+\s*', value):
    return int(value)
  return value


# -- the last query -------------------------------------------------------------------------------


def read_query(workdir: str, pool: Pool) -> Optional[Dict[str, Any]]:
  """``WORKDIR/query.json``, the last query (None before the first), checked: refused naming the
  file if it is not one of this pool's queries."""
  path = workdir_lib.path_in(workdir, QUERY_FILE)
  if not os.path.lexists(path):
    return None
  try:
    query = json.loads(workdir_lib.read_bytes(path).decode('utf-8'))
    problem = _query_problem(query, pool)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    problem = f'cannot be read ({getattr(e, "strerror", None) or e}).'
  if problem:
    raise LabelError(f'{path}: {problem} It records the last query: delete it, and the next query '
                     'asks anew.')
  return query


def write_query(workdir: str, pool: Pool, query: Dict[str, Any]) -> None:
  workdir_lib.write_atomic(workdir_lib.path_in(workdir, QUERY_FILE),
                           json.dumps({**query, 'pool': pool.fingerprint}))


def _query_problem(query: Any, pool: Pool) -> Optional[str]:
  if not isinstance(query, dict):
    return 'not a JSON object.'
  if query.get('pool', pool.fingerprint) != pool.fingerprint:
    return f'made for another pool (pool {query["pool"]!r}; this one is {pool.fingerprint}).'
  indices = query.get('indices')
  if not isinstance(indices, list) or not indices:
    return '"indices" must be a list of pool indices.'
  for i in indices:
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < pool.size:
      return f'"indices" holds {i!r}, not a pool sample (whole numbers 0 .. {pool.size - 1}).'
  if len(set(indices)) != len(indices):
    return '"indices" names a sample twice.'
  scores = query.get('scores')
  if scores is not None and not (isinstance(scores, list) and len(scores) == len(indices) and all(
      isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
    return '"scores" must be null or a number per index.'
  for key in ('round', 'num_labeled'):
    value = query.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      return f'"{key}" must be a whole number, 0 or more; it is {value!r}.'
  if not isinstance(query.get('strategy'), str):
    return '"strategy" must be a strategy\'s name.'
  return None


# -- tables and JSON lines from people ------------------------------------------------------------


def text_cell(value: str) -> str:
  """``value`` as a table cell a spreadsheet shows as text: after a ``'`` if it begins like a
  formula (or with a ``'``, so that reading it back is exact)."""
  return "'" + value if value.startswith(FORMULA_STARTS + ("'",)) else value


def cell_text(cell: str) -> str:
  """A text cell's value: :func:`text_cell` undone."""
  return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS + ("'",)) else cell


def write_table(path: str, rows: Sequence[Dict[str, Any]],
                header: Optional[Dict[str, str]] = None) -> None:
  """``rows`` (dicts with the :data:`COLUMNS`, and ``predicted`` and ``probability`` where a model
  predicted their classes) as a CSV at ``path`` (a :func:`l2r_jax.workdir.path_in` path), written
  atomically: UTF-8 with a byte-order mark (which tells a spreadsheet it is UTF-8), text cells as
  :func:`text_cell` makes them. ``header``: a column's name as shown, where it says more than the
  name (the score's meaning); reading the table back needs only ``index``/``id`` and ``label``."""
  columns = list(COLUMNS)
  if rows and 'predicted' in rows[0]:
    columns[-1:-1] = ['predicted', 'probability']
  out = io.StringIO(newline='')
  writer = csv.writer(out)
  writer.writerow([(header or {}).get(c, c) for c in columns])
  text = ('id', 'file', 'label', 'predicted')
  for row in rows:
    writer.writerow([text_cell(str(row[c])) if c in text else row[c] for c in columns])
  workdir_lib.write_atomic(path, '\ufeff' + out.getvalue())


def read_file(path: str) -> Tuple[List[Answer], List[Problem]]:
  """The answers in the file at ``path`` (a table with a ``label`` column and an ``index`` or
  ``id`` column, or JSON lines), and a line for each part that cannot be read; rows whose label
  is empty are not answers yet."""
  text, problem = _file_text(path)
  if problem:
    return [], [(0, f'{path}: {problem}')]
  start = text.lstrip()[:1]
  if start == '{':
    return _json_lines(text, path)
  if start == '[':
    return [], [(0, f'{path}: a JSON array; give one JSON object per line (JSON lines), '
                    '{"index": ..., "label": ...}.')]
  return _table(text, path)


ENCODINGS = ((codecs.BOM_UTF8, 'utf-8-sig', 'UTF-8'), (codecs.BOM_UTF32_LE, 'utf-32', 'UTF-32'),
             (codecs.BOM_UTF32_BE, 'utf-32', 'UTF-32'), (codecs.BOM_UTF16_LE, 'utf-16', 'UTF-16'),
             (codecs.BOM_UTF16_BE, 'utf-16', 'UTF-16'))


def _file_text(path: str) -> Tuple[Optional[str], Optional[str]]:
  """The file's text, decoded as the module's docstring says, or why it cannot be."""
  if os.path.isdir(path):
    return None, 'a folder; give the answers file in it (a CSV or JSON lines).'
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    return None, f'cannot be read ({e.strerror or e}).'
  for mark, codec, name in ENCODINGS:
    if data.startswith(mark):
      try:
        return data.decode(codec), None
      except UnicodeDecodeError as e:
        return None, (f'begins with a {name} byte-order mark, but is not {name} text (byte '
                      f'{e.start}): save it again, as CSV UTF-8.')
  if b'\x00' in data:
    return None, ('not a text file (it holds NUL bytes: a binary file, or UTF-16 without a '
                  'byte-order mark): give a CSV (UTF-8) or JSON lines.')
  for codec in ('utf-8', 'cp1252'):
    try:
      return data.decode(codec), None
    except UnicodeDecodeError as e:
      error = e
  return None, (f'neither UTF-8 nor Windows-1252 (cp1252) text (byte {error.start}): save it as '
                'CSV UTF-8.')


def _json_lines(text: str, path: str) -> Tuple[List[Answer], List[Problem]]:
  answers, problems = [], []
  for number, line in enumerate(text.split('\n'), 1):
    if line.strip():
      answer, problem = _record(line, path, number)
      answers += [answer] if answer else []
      problems += [(number, f'{path}, line {number}: {problem}')] if problem else []
  return answers, problems


def _header(text: str) -> Tuple[Optional[str], List[str]]:
  """The table's delimiter (comma, tab or semicolon: the one whose first row names a label column
  and an index or id column) and its column names; None and the first row if none does."""
  first = []
  for delimiter in (',', '\t', ';'):
    try:
      rows = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter, strict=True)
      row = next((r for r in rows if r), [])
    except csv.Error:
      continue
    names = [cell_text(c.strip()).strip().lower() for c in row]
    first = first or names
    if 'label' in names and ('index' in names or 'id' in names):
      return delimiter, names
  return None, first


def _table(text: str, path: str) -> Tuple[List[Answer], List[Problem]]:
  delimiter, names = _header(text)
  if delimiter is None:
    return [], [(0, f'{path}: a table of answers needs a first row naming a label column and an '
                    f'index or id column; it has {names}.')]
  twice = sorted({n for n in names if n in ('index', 'id', 'label') and names.count(n) > 1})
  if twice:
    return [], [(0, f'{path}: the first row names {", ".join(twice)} twice; name each column '
                    'once.')]
  answers, problems = [], []
  reader = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter, strict=True)
  header, line = None, 1
  try:
    for row in reader:
      number, line = line, reader.line_num + 1
      if not any(c.strip() for c in row):
        continue
      if header is None:
        header = row
        continue
      extra = [c for c in row[len(names):] if c.strip()]
      if extra:
        problems.append((number, f'{path}, line {number}: {len(row)} cells; the first row names '
                                 f'{len(names)} columns.'))
        continue
      cells = dict(zip(names, row))
      label = cell_text(cells.get('label', '').strip())
      if label:
        index, sample_id = cells.get('index', '').strip(), cell_text(cells.get('id', ''))
        answers.append(Answer(path, number, _whole(index) if index else None,
                              sample_id if sample_id.strip() else None, label))
  except csv.Error as e:
    hint = ('; give labels that long (density maps) as JSON lines' if 'field limit' in str(e)
            else '')
    problems.append((line, f'{path}, line {line}: cannot be read as a table ({e}){hint}.'))
  return answers, problems
