r"""A person's answers: checked in one place and kept in one log, bound to the samples they name.

An answer names a pool sample and gives its label. It comes from
:meth:`~l2r_jax.learner.ActiveLearner.teach` (indices and labels), from a file given to
``python -m l2r_jax.label answer`` (a table or JSON lines), or from the learner's own log,
``WORKDIR/answers.jsonl``. All three pass one check (:func:`check`) and each problem is one line,
``<where>[, index N]: <problem>``, where ``<where>`` is ``answer K`` (the K-th of a ``teach``) or
``<file>, line N``.

**Samples by id.** Each sample has an id that stays with it when the pool changes
(:mod:`l2r_jax.pool`). Each line of the log records the sample's index and id, its label (the
class's name where the dataset names its classes) and the pool it was made for
(:attr:`~l2r_jax.pool.Pool.fingerprint`). What decides the sample an answer names:

* a line made for this pool (the log, or a file that says so): index and id, which must agree;
* a line made for another pool (an older workdir's log, carried into a new workdir after the pool
  changed): the id; the index is ignored. The learner's own log holds only its pool's lines;
* a line that does not say (a table, JSON lines from a tool): the id where given, and an index
  that disagrees with it is refused (the file may have been made for another pool: leave the
  index out to map by id); else the index (as in a log of indices and labels only).

**Files replaced.** Where the pool's samples are files (an image folder), a line also records the
content of the file answered (``file_sha256``); a line whose sample's file has since been replaced
by another under the same name is refused, naming it, so its label never passes to a picture
nobody saw.

**Corrections.** A label known (taught, or given by the dataset) is changed by a correction
(:meth:`~l2r_jax.learner.ActiveLearner.relabel`, ``label answer --relabel``): a new line
``{..., "correction": true}``, never a rewrite; the log is read in order, so the last word on a
sample is the label it has, and the whole history stays in the file.

**The log** grows by one write per ``teach`` (all its answers or none, also on a full disk:
:func:`l2r_jax.workdir.append_synced`) and is read strictly: a last line without its newline (cut
off by a kill) is moved to :data:`CUT_OFF_FILE`, or completed if it holds a whole answer, by an
atomic rewrite; any other line that cannot be read refuses the learner, naming it.

Files around a query (``query.json``, the query's table, answers as people save them) are read
and written by :mod:`l2r_jax.answer_files`.
"""
import codecs
import json
import os
import re
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from l2r_jax import data as data_lib
from l2r_jax.annotate import MARK_FIELDS
from l2r_jax.annotate import MarkedLabel
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import LabelError
from l2r_jax.errors import Refusal
from l2r_jax.pool import Pool

ANSWERS_FILE = 'answers.jsonl'
CUT_OFF_FILE = 'answers.cut_off.txt'   # last lines of the log cut off (by a kill), kept
QUERY_FILE = 'query.json'
SET_ASIDE_FILE = 'set_aside.json'   # the samples set aside: no class fits, or none can be told
# The label of a sample set aside, in an answers file (any case) or a Label Studio export: the
# sample is never asked again (unless a class has this name).
SET_ASIDE_LABEL = 'set aside'


class _SetAside(str):
  """The label :data:`SET_ASIDE` (a file of samples set aside, ``set_aside.json``, gives it): the
  sample is set aside, whatever the classes are called."""


SET_ASIDE = _SetAside(SET_ASIDE_LABEL)
QUERY_FOLDER = 'query'
# Where an answer comes from: it decides how labels are read and what an answer given again means.
TEACH, LOG, FILE = 'teach', 'log', 'file'
CARRY = 'python -m l2r_jax.label answer --answers=FILE'


def refusal(header: str, problems: Sequence[str]) -> LabelError:
  """One refusal: ``header``, then a line per problem."""
  return LabelError('\n'.join([header, *problems]))


def count(n: int) -> str:
  return f'{n} problem{"s" * (n != 1)}'


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
  file_sha256: Optional[str] = None   # the content of the sample's file when it was answered
  task: Any = None   # its number in the tool that made the file (Label Studio's task "id")

  @property
  def where(self) -> str:
    return f'answer {self.line}' if self.file is None else f'{self.file}, {self.short}'

  @property
  def short(self) -> str:
    if self.file is None:
      return f'answer {self.line}'
    return f'line {self.line}' + ('' if self.task is None else f', task {self.task}')


Problem = Tuple[int, str]   # (line, text): problems are shown in the order of their lines


class Marks(NamedTuple):
  """A file's marks for the task at hand: their ``field`` (:data:`MARK_FIELDS`) and
  ``geometry``, which gives the task's :class:`l2r_jax.annotate.Geometry` (made when first
  needed: one that cannot be made refuses the file once)."""
  field: str
  geometry: Callable[[], Any]

  def label(self, value: Any, placed_on: Any = None) -> Tuple[Any, Optional[str]]:
    """The label the marks ``value`` make (JSON text, as a table's cell holds them, or nested
    lists; placed on an input ``placed_on`` = [height, width], where another size), or why they
    make none."""
    if isinstance(value, str):
      try:
        value = json.loads(value)
      except (ValueError, RecursionError):
        return None, f'{self.field} is not a JSON array ({self._form}).'
    try:
      return self.geometry().label(value, placed_on), None
    except Refusal:
      raise   # the task cannot take marks at all (annotate.geometry): one message, not one a line
    except (TypeError, ValueError) as e:
      return None, f'{self.field}: {e}'

  def carried(self, record: Dict[str, Any]) -> Tuple[Any, Optional[str]]:
    """The label of an answer log's line carried here (``record``: its label, the ``input_hw``
    and ``label_hw`` it was drawn in, and the marks that made it, if any): made again from its
    marks where they were placed on another input size, as it was where both sizes are this
    task's; refused where it is drawn in another map size and no marks say where it lies."""
    geometry = self.geometry()
    placed_on, drawn_in = record.get('input_hw'), record.get('label_hw')
    if not _sizes(placed_on) or not _sizes(drawn_in):
      return None, '"input_hw" and "label_hw" must be [height, width], whole numbers.'
    if self.field in record:
      made, problem = self.label(record[self.field], placed_on)
      same_sizes = (list(drawn_in) == list(geometry.label_hw)
                    and list(placed_on) == list(geometry.input_hw))
      if problem is None and same_sizes and not _equal(made, record.get('label')):
        return record.get('label'), None   # the label edited since its marks: the edit wins
      return made, problem
    # A density map's pixels lie where they lie in the picture whatever the input's size (map
    # pixel centres at (x + 0.5) / stride - 0.5); a heatmap's shift with it (x * heatmap / input).
    same_input = geometry.task == 'crowd' or list(placed_on) == list(geometry.input_hw)
    if list(drawn_in) == list(geometry.label_hw) and same_input:
      return record.get('label'), None
    return None, (f'its label is drawn in a {drawn_in[0]} x {drawn_in[1]} map of a '
                  f'{placed_on[0]} x {placed_on[1]} input, this task\'s in '
                  f'{geometry.label_hw[0]} x {geometry.label_hw[1]} of '
                  f'{geometry.input_hw[0]} x {geometry.input_hw[1]}, and no "{self.field}" say '
                  'where its marks lie: give them (input pixels) in place of the label, or label '
                  'the sample again.')

  @property
  def _form(self) -> str:
    return ('[[x, y, visible], ...], one per joint, input pixels' if self.field == 'joints' else
            '[[x, y], ...], one per head, input pixels')


def _equal(made: Any, label: Any) -> bool:
  """Whether ``label`` is the one its marks ``made`` (up to the rounding of a JSON round trip)."""
  try:
    return bool(np.allclose(np.asarray(made, np.float64), np.asarray(label, np.float64),
                            rtol=1e-6, atol=1e-6))
  except (TypeError, ValueError):
    return False


def _sizes(value: Any) -> bool:
  return (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))


def marks_problem(given: Sequence[str], has_label: bool, marks: Optional[Marks]) -> Optional[str]:
  """Why an answer naming the mark fields ``given`` cannot be read with ``marks`` (None: the task
  takes none), or None."""
  if has_label:
    return f'give a label or {given[0]}, not both.'
  if marks is None or list(given) != [marks.field]:
    task = next(t for t, f in MARK_FIELDS.items() if f == given[0])
    takes = f'"{marks.field}"' if marks is not None else 'none'
    return f'"{given[0]}" are marks of a {task} task; this task takes {takes} (or a "label").'
  return None


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
          correcting: bool = False, left_out: Optional[List[Problem]] = None
          ) -> Tuple[List[int], List[Any], List[Problem]]:
  """``(indices, labels, problems)``: the answers that can be taught, the labels as the task keeps
  them, and a line for each that cannot. ``known``: the pool's labels known now (unknown ones
  marked); ``source``: :data:`TEACH` (labels as values, a class also by its name),
  :data:`LOG` or :data:`FILE` (a class also by name, a regression label also as JSON text; from a
  file, an answer equal to the label known is left out, so a file may be given again).
  ``correcting``: the answers correct labels known (each sample must have one), rather than give
  new ones; from a file, its labels win: an answer to a sample with no label yet is a new one and
  an answer equal to the label known is left out (an export holding corrections and new answers is
  given whole). ``left_out``: from the log, an answer whose file was replaced since (another
  picture under its name) is left out, not refused, with a line added to this list: its sample is
  asked again, and the line stays in the log (the picture restored, the label is back)."""
  unknown = data_lib.unknown_labels(pool.dataset.task, known)
  indices, labels, problems, seen = [], [], [], {}
  for answer in answers:
    index, problem = _sample(answer, pool, source)
    if problem is None:
      problem = _content_changed(answer, pool, index)
      if problem is not None and left_out is not None:
        left_out.append((answer.line, f'{answer.where}, index {index}: {pool.ids[index]!r} '
                                      f'holds another file than the one answered: the answer is '
                                      'left out, and the sample asked again (restore the file '
                                      'to have it back).'))
        continue
    if problem is not None:
      problems.append((answer.line, f'{answer.where}: {problem}'))
      continue
    label, problem = _label(answer.label, pool, named=source != TEACH or (
        pool.dataset.task == 'classification' and pool.dataset.class_names is not None))
    same = problem is None and not unknown[index] and np.array_equal(
        known[index], np.asarray(label, known.dtype))
    if problem is None and index in seen:
      problem = f'answered twice (also {seen[index]}).'
    elif problem is None and correcting and unknown[index] and source != FILE:
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
  renamed = pool.id_with_content(answer.file_sha256) if found is None and (
      isinstance(answer.file_sha256, str)) else None
  if renamed is not None:
    return None, (f'id {sample_id!r} is not a sample of this pool; the picture answered is '
                  f'{renamed!r} now (the same file content: renamed or moved since). Write its '
                  'new id in the line, or remove the line to carry the others.')
  if found is None:
    like = pool.id_like(sample_id)
    return None, (f'id {sample_id!r} is not a sample of this pool' +
                  (' (removed or renamed since?); remove the line to carry the others'
                   if carried else '') + (f'; {like[0]!r} is ({like[1]}).' if like else '.'))
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


def _content_changed(answer: Answer, pool: Pool, index: int) -> Optional[str]:
  """Why ``answer`` no longer fits sample ``index``: its file was replaced (same name, other
  content) since the answer was given; None if it fits, or if either does not say."""
  now = pool.dataset.pool_file_sha256
  if answer.file_sha256 is None or now is None or answer.file_sha256 == now[index]:
    return None
  return (f'{pool.ids[index]!r} holds another file than the one answered (its content '
          f'{answer.file_sha256} then, {now[index]} now): the label may not fit the picture it '
          'holds now. Remove the line to have the sample asked again (or, if the file was '
          'replaced by mistake, restore it).')


def _label(label: Any, pool: Pool, named: bool) -> Tuple[Any, Optional[str]]:
  """``label`` as the task keeps it, or why it is not one of the task's."""
  ds = pool.dataset
  if named and isinstance(label, str):
    if ds.task == 'classification':
      index = pool.class_index(label)
      if index is not None:
        return index, None
      if re.fullmatch(r'\s*[+-]?\d+(\.0*)?\s*', label):   # '3', or '3.0' (a column of floats)
        label = int(float(label))
      else:
        names = [] if ds.class_names is None else [str(n) for n in ds.class_names]
        known = f' or a name of {names}' if names else ''
        return None, (f'label {label!r} is not a class (an index 0 .. {ds.num_outputs - 1}'
                      f'{known}).')
    else:
      try:
        label = json.loads(label)
      except (ValueError, RecursionError):
        return None, (f'label is not a JSON array of numbers of shape '
                      f'{tuple(ds.y_train.shape[1:])}.')
  if named and ds.task == 'classification' and isinstance(label, float) and label.is_integer():
    label = int(label)   # pandas writes a column of classes with a gap in it as floats
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
  hm = dataset.task_params.get('heatmap_size') if dataset.task == 'pose' else None
  if hm is not None:   # a weighted joint lies inside the heatmap, as the loaders weight them
    h, w = int(hm[0]), int(hm[1])
    xy = value[:, :2]
    outside = np.flatnonzero((value[:, 2] > 0) & ~np.all(
        (xy >= -0.5) & (xy < np.array([w, h]) - 0.5), axis=1))
    if len(outside):
      k = int(outside[0])
      return (f'label: joint {k + 1} at ({xy[k, 0]:g}, {xy[k, 1]:g}) is weighted but lies outside '
              f'the {w} x {h} heatmap (x from -0.5 to {w - 0.5}, y to {h - 0.5}): a label is '
              '(x, y, weight) per joint in heatmap pixels; give marks in input pixels as '
              '"joints" instead.')
  return None


# -- the learner's log ----------------------------------------------------------------------------


def check_workdir(workdir: str) -> None:
  """Refuses a workdir where a file or folder the answers use is a symbolic link, or whose answers
  have lost the record of the experiment they belong to (``experiment.json``)."""
  if not os.path.isdir(workdir):
    return
  log = workdir_lib.path_in(workdir, ANSWERS_FILE)
  workdir_lib.path_in(workdir, QUERY_FILE)
  workdir_lib.path_in(workdir, SET_ASIDE_FILE)
  workdir_lib.folder_in(workdir, QUERY_FOLDER)
  identity = workdir_lib.path_in(workdir, workdir_lib.IDENTITY_FILE)
  if os.path.lexists(log) and not os.path.lexists(identity):
    raise workdir_lib.WorkdirError(
        f'{log} holds answers, but {identity}, the record of the experiment and pool they were '
        'made for, is gone: restore it, or carry the answers into a new --workdir with '
        f'python -m l2r_jax.label answer --answers={log}.')


class AnswerLog:
  """``WORKDIR/answers.jsonl``: every answer taught, one JSON line
  ``{"index", "id", "label", "pool"}`` each (and ``"file_sha256"`` where the pool's samples are
  files), in the order taught (the module's docstring)."""

  def __init__(self, workdir: str, pool: Pool):
    self._workdir, self._pool = workdir, pool
    self._warned = set()   # the lines left out that a warning named already

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
    content = self._mended(path, _log_bytes(path))
    # A byte-order mark that an editor put at the start (old Notepad) is not part of line 1.
    content = content[len(codecs.BOM_UTF8):] if content.startswith(codecs.BOM_UTF8) else content
    for number, line in enumerate(content.split(b'\n')[:-1], 1):
      try:
        answer, problem = (answer_from_json(line.decode('utf-8'), path, number)
                           if line.strip() else (None, None))
      except UnicodeDecodeError as e:
        answer, problem = None, f'not UTF-8 text (byte {e.start} of the line).'
      answers += [answer] if answer else []
      problems += [(number, f'{path}, line {number}: {problem}')] if problem else []
    known, events, more, left_out = np.array(given_labels), [], [], []
    for group in _in_turn(answers):
      indices, labels, group_problems = check(group, self._pool, known, LOG, group[0].correction,
                                              left_out)
      more += group_problems
      for i, y in zip(indices, labels):
        known[i] = np.asarray(y, known.dtype)
        events.append((i, y, group[0].correction))
    n = len(problems) + len(more)
    if n:
      raise refusal(f'{path}: {count(n)}; it holds every answer taught, and nothing else reads it: '
                    f'mend or remove the line{"s" * (n > 1)} named.', in_order(problems + more))
    for line in in_order(left_out):
      if line not in self._warned:   # once per process, not at every read
        self._warned.add(line)
        logging.warning('%s', line)
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
    """``content`` without a last line that lacks its newline (cut off by a kill; the line kept
    at the end of :data:`CUT_OFF_FILE`, beside it), or with its newline if that line is a whole
    answer (saved by an editor that leaves it out); each file rewritten atomically."""
    if not content or content.endswith(b'\n'):
      return content
    last = content[content.rfind(b'\n') + 1:]
    line = last[len(codecs.BOM_UTF8):] if content.startswith(codecs.BOM_UTF8) and (
        len(last) == len(content)) else last     # line 1, after an editor's byte-order mark
    whole = answer_from_json(line.decode('utf-8', 'replace'), path, 0)[0] is not None
    mended = content + b'\n' if whole else content[:len(content) - len(last)]
    cut_off = workdir_lib.path_in(self._workdir, CUT_OFF_FILE)
    try:
      if not whole:   # kept before it leaves the log: a line typed in by hand is not lost
        kept = workdir_lib.read_bytes(cut_off) if os.path.lexists(cut_off) else b''
        workdir_lib.write_atomic(cut_off, kept + last + b'\n')
      workdir_lib.write_atomic(path, mended)
    except OSError as e:
      raise LabelError(f'{path}: its last line lacks a newline and the files cannot be rewritten '
                       f'({e.strerror or e}); free some space and try again.') from None
    if not whole:
      logging.warning('%s: its last line was cut off (a kill while it was written, or typed in '
                      'by hand and not a whole answer); moved to %s: %r', path, cut_off, last[:80])
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
  holding the last word on its label. A correction with no answer before it (of a label the
  dataset gave) stays a correction, its later ones folded into it."""
  out, at = [], {}
  for answer in answers:
    name = answer.sample_id if answer.sample_id is not None else answer.index
    key = (type(name).__name__, str(name))
    if answer.correction and key in at:
      out[at[key]] = out[at[key]]._replace(   # the file content it was made on, where it says
          label=answer.label, file_sha256=answer.file_sha256 or out[at[key]].file_sha256)
      continue
    at[key] = len(out)
    out.append(answer)
  return out


def sample_index(answer: Answer, pool: Pool) -> Tuple[Optional[int], Optional[str]]:
  """The pool index a file's ``answer`` names, or why it names none."""
  return _sample(answer, pool, FILE)


def resolved(answer: Answer, pool: Pool) -> Optional[Tuple[int, Any]]:
  """``(index, label)`` of a file's ``answer`` as :func:`check` reads them, or None where either
  cannot be read."""
  index, problem = _sample(answer, pool, FILE)
  if problem is not None:
    return None
  label, problem = _label(answer.label, pool, named=True)
  return None if problem is not None else (index, label)


def _log_bytes(path: str) -> bytes:
  try:
    return workdir_lib.read_bytes(path)
  except OSError as e:
    raise LabelError(f'{path} cannot be read ({e.strerror or e}): it holds every answer taught; '
                     'restore it as a file.') from None


# -- an answer as a JSON line (the log's, and a file's) -------------------------------------------


def answer_from_json(line: str, file: str, number: int, marks: Optional[Marks] = None
                     ) -> Tuple[Optional[Answer], Optional[str]]:
  """A JSON line's answer, or why it is not one; ``marks``: the task's marks a line may give
  instead of its label (``{"index": ..., "heads": [[x, y], ...]}``)."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    return None, f'not JSON ({e.msg}, column {e.colno}).'
  except ValueError:
    return None, 'not JSON (a number with too many digits).'
  except RecursionError:
    return None, 'not JSON (arrays or objects nested too deep).'
  given = [f for f in MARK_FIELDS.values() if isinstance(record, dict) and f in record]
  if not isinstance(record, dict) or not ('label' in record or given) or not (
      'index' in record or 'id' in record):
    return None, 'give {"index": ..., "label": ...} (or "id" for "index").'
  label = record.get('label')
  if 'label_hw' in record and 'label' in record:
    # A line of an answer log (a pose's or crowd's): its label, and what it is drawn in (and the
    # marks that made it); read as it is by its own workdir, made again where carried.
    if marks is not None:
      label, problem = marks.carried(record)
      if problem is not None:
        return None, problem
    elif given and isinstance(label, list) and isinstance(record.get('input_hw'), list):
      label = MarkedLabel(label, record[given[0]], record['input_hw'])
  elif given:
    problem = marks_problem(given, 'label' in record, marks)
    if problem is None:   # marks placed on another input size say so (a log's line, trimmed)
      placed_on = record.get('input_hw') if _sizes(record.get('input_hw')) else None
      label, problem = marks.label(record[marks.field], placed_on)
    if problem is not None:
      return None, problem
  pool = record.get('pool')
  if pool is not None and not isinstance(pool, str):
    return None, '"pool" must be text: the fingerprint of the pool the answer was made for.'
  correction = record.get('correction', False)
  if not isinstance(correction, bool):
    return None, '"correction" must be true or false.'
  content = record.get('file_sha256')
  if content is not None and not isinstance(content, str):
    return None, '"file_sha256" must be text: the fingerprint of the file that was answered.'
  return Answer(file, number, whole_number(record.get('index')), record.get('id'), label, pool,
                correction, content), None


def whole_number(value: Any) -> Any:
  """A whole number given as text (``12``, or a spreadsheet's ``12.0``) or as a number with
  nothing after its point read as one; anything else as it is."""
  if isinstance(value, str) and re.fullmatch(r'\s*[+-]?\d+(\.0*)?\s*', value):
    return int(value.strip().split('.')[0])
  if isinstance(value, float) and value.is_integer():
    return int(value)
  return value
