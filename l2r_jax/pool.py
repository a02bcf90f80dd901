"""The pool as answers name it: each sample by its index and by an id that stays with it, each
class by its index and its name, and the pool as a whole by its fingerprint.

A sample's id (:func:`sample_ids`) is its ``Dataset.pool_ids`` entry where the dataset has them (an
image folder's: the file's path relative to its root), else a fingerprint of its input (``sha256:``
and the first 16 hex digits of the SHA-256 of its float32 bytes; the second of two identical inputs
gets ``#2``, in pool order). How an answer's index and id decide the sample it names:
:mod:`l2r_jax.answers`.
"""
import collections
import hashlib
import json
import re
import unicodedata
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from l2r_jax import annotate
from l2r_jax import data as data_lib
from l2r_jax.errors import ConfigError

# What describe_pool records of the pool's samples: the pool's fingerprint.
POOL_FIELDS = ('pool_size', 'sample_shape', 'pool_sha256', 'pool_ids_sha256')


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
  names = [data_lib.class_key(n) for n in dataset.class_names]
  for k, name in enumerate(names):
    if not name:
      problem = f'Dataset.class_names[{k}] is empty'
    elif names.index(name) != k:
      problem = f'Dataset.class_names names {name!r} twice (classes {names.index(name)} and {k})'
    elif re.fullmatch(r'[+-]?\d+', name) and int(name) != k:
      problem = f'Dataset.class_names[{k}]={name!r} reads as class index {int(name)}'
      if dataset.source_root:   # ratings 1..5 as folders: the numbers are not indices
        fix = ('rename the class folders (under labeled/ and test/) to names that are not whole '
               'numbers (\'1 star\'), or list the classes in config.data.classes so that each '
               'whole number is its own index (a class \'0\' first for folders 1, 2, ...)')
        raise ConfigError(f'{problem}: answers give a class by its name or its index; {fix}.')
    else:
      continue
    fix = ('rename the class folders (under labeled/ and test/), or name the classes in '
           'config.data.classes' if dataset.source_root else 'give each class a name of its own')
    raise ConfigError(f'{problem}: answers give a class by its name or its index; {fix}.')


def _number(text: str) -> Optional[float]:
  """The number ``text`` writes (``00012``, ``12.50``, ``1.2E+05``), or None."""
  if not re.fullmatch(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?', text.strip()):
    return None
  return float(text)


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
    self._by_composed: Dict[str, int] = {}
    self._like: Optional[Dict[Tuple[str, Any], str]] = None
    names = dataset.class_names
    self._by_name = {} if names is None else {data_lib.class_key(n): k
                                              for k, n in enumerate(names)}
    folded = collections.Counter(n.casefold() for n in self._by_name)
    self._by_folded = {n.casefold(): k for n, k in self._by_name.items()
                       if folded[n.casefold()] == 1}   # 'cat' for 'Cat', unless 'CAT' is too

  @property
  def ids(self) -> List[str]:
    if self._ids is None:
      self._ids = sample_ids(self.dataset)
    return self._ids

  def index_of(self, sample_id: str) -> Optional[int]:
    """The index of the sample ``sample_id`` names: as given, else without surrounding blanks,
    else in Unicode's composed form (NFC) where that names one sample (macOS writes the names of
    files decomposed, ``e`` and a combining accent, where a spreadsheet types ``é``)."""
    if self._by_id is None:
      self._by_id = {s: i for i, s in enumerate(self.ids)}
      composed = collections.defaultdict(list)
      for s, i in self._by_id.items():
        composed[unicodedata.normalize('NFC', s)].append(i)
      self._by_composed = {s: i[0] for s, i in composed.items() if len(i) == 1}
    for name in (sample_id, sample_id.strip()):
      if name in self._by_id:
        return self._by_id[name]
    return self._by_composed.get(unicodedata.normalize('NFC', sample_id.strip()))

  def id_like(self, text: str) -> Optional[Tuple[str, str]]:
    """``(id, how)``: the one pool id that ``text``, not an id itself, looks like, and how it
    differs (a spreadsheet's number made of it, a path to its file, its case); None if none or
    several. For messages only: an answer names its sample exactly (:meth:`index_of`)."""
    if self._like is None:
      like = collections.defaultdict(set)
      for s in self.ids:
        like[('case', s.casefold())].add(s)
        like[('name', s.rsplit('/', 1)[-1].casefold())].add(s)
        number = _number(s)
        if number is not None:
          like[('number', number)].add(s)
      self._like = {k: v.pop() for k, v in like.items() if len(v) == 1}
    text = unicodedata.normalize('NFC', text.strip())
    number = _number(text)
    if number is not None and ('number', number) in self._like:
      return self._like[('number', number)], (
          'a spreadsheet turned the id into a number (leading zeros dropped, a decimal, 1E+05): '
          'format the id column as text before typing or pasting ids, or give the index alone')
    if '?' in text:   # saved by a spreadsheet in a code page that lacks some of the letters
      pattern = re.compile(re.escape(text).replace(re.escape('?'), '[^\\x00-\\x7f]'))
      found = [s for s in self.ids if pattern.fullmatch(unicodedata.normalize('NFC', s))]
      if len(found) == 1:
        return found[0], ('a spreadsheet saved the file in its own code page, writing "?" for the '
                          'letters it lacks: save it as "CSV UTF-8" and give it again')
    parts = [p for p in text.replace('\\', '/').split('/') if p not in ('', '.')]
    for k in range(len(parts)):   # a path to the file: its last parts, as the id writes them
      found = self._like.get(('case', '/'.join(parts[k:]).casefold()))
      if found is not None:
        return found, ('an id is written as query.csv\'s id column writes it, case and all: '
                       'the path inside the folder, with "/"')
    found = self._like.get(('name', parts[-1].casefold())) if parts else None
    if found is not None:   # the file's name alone
      return found, ('an id is the file\'s path inside the folder, as query.csv\'s id column '
                     'writes it, not its name alone')
    return None

  def id_with_content(self, file_sha256: str) -> Optional[str]:
    """The one pool sample's id whose file has the content ``file_sha256`` (as answers record
    it), or None: for messages only (a file renamed since it was answered)."""
    contents = self.dataset.pool_file_sha256
    if contents is None:
      return None
    found = [self.ids[i] for i, c in enumerate(contents) if c == file_sha256]
    return found[0] if len(found) == 1 else None

  def class_index(self, name: str) -> Optional[int]:
    """The class named ``name`` (its case aside, where no other class's name differs only in
    case), or None."""
    key = data_lib.class_key(name)
    found = self._by_name.get(key)
    return self._by_folded.get(key.casefold()) if found is None else found

  def show(self, label: Any) -> str:
    """A label as messages show it: a class's index and name; a pose's joints placed; a density
    map's head count (a map's values would fill a screen)."""
    names = self.dataset.class_names
    if self.dataset.task == 'classification' and names is not None:
      return f'{int(label)}, {names[int(label)]!r}'
    if self.dataset.task == 'pose':
      value = np.asarray(label, np.float64)
      return (f'{int(np.sum(value[:, 2] > 0))} of {len(value)} joints placed, at '
              f'{np.round(value, 2).tolist()}')
    if self.dataset.task == 'crowd':
      scale = float(self.dataset.task_params.get('density_scale', 1.0))
      return f'a density map of {np.sum(np.asarray(label, np.float64)) / scale:.2f} heads'
    return str(np.asarray(label).tolist())

  def record(self, index: int, label: Any, correction: bool = False) -> Dict[str, Any]:
    """An answer (or a correction of one) as the log keeps it."""
    if self.dataset.task == 'classification':
      names = self.dataset.class_names
      value = int(label) if names is None else str(names[int(label)])
    else:
      value = np.asarray(label).tolist()
    out = {'index': int(index), 'id': self.ids[index], 'label': value, 'pool': self.fingerprint}
    if self.dataset.pool_file_sha256 is not None:   # the content of the file answered
      out['file_sha256'] = str(self.dataset.pool_file_sha256[index])
    if self.dataset.task in annotate.MARK_FIELDS:   # what the label is drawn in, what made it
      out.update(annotate.frame(self.dataset))
      if isinstance(label, annotate.MarkedLabel):
        out[annotate.MARK_FIELDS[self.dataset.task]] = label.marks
    return dict(out, correction=True) if correction else out
