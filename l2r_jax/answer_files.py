r"""Files around a query: the last query as the learner records it (``WORKDIR/query.json``), the
query as a table for a person or a tool, and the answers read back as people save them.

**Files as people save them**: UTF-8 with or without a byte-order mark, UTF-16 or UTF-32 with one
(a spreadsheet's "Unicode text"), or Windows-1252 (cp1252; Mac Roman's accented letters, and
lines in two encodings, refused as such); comma-, tab- or semicolon-separated, the first row that
is not blank naming the columns. Text cells a spreadsheet would take for a formula (beginning
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are written after a ``'``, which is
dropped when read back (OWASP's advice against CSV injection). Answers given as JSON lines are read
as the learner's log reads its own (:func:`l2r_jax.answers.answer_from_json`), and all of them
pass its one check (:func:`l2r_jax.answers.check`).
"""
import codecs
import csv
import io
import json
import os
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from l2r_jax import workdir as workdir_lib
from l2r_jax.answers import Answer
from l2r_jax.answers import answer_from_json
from l2r_jax.answers import MARK_FIELDS
from l2r_jax.answers import Marks
from l2r_jax.answers import marks_problem
from l2r_jax.answers import Problem
from l2r_jax.answers import QUERY_FILE
from l2r_jax.answers import SET_ASIDE
from l2r_jax.answers import SET_ASIDE_FILE
from l2r_jax.answers import whole_number
from l2r_jax.errors import LabelError
from l2r_jax.pool import Pool

COLUMNS = ('index', 'id', 'file', 'score', 'label')   # the query's table
# Why Label Studio's JSON-MIN, CSV and TSV exports are refused.
LABEL_STUDIO_MIN = ('its "id" is Label Studio\'s task number, not the sample\'s, and it keeps one '
                    'annotation per task, leaving out those skipped and who made each (two '
                    'people who disagree go unseen). Export the project as "JSON" (Export > '
                    'JSON) and give that file.')
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')


# -- the last query -------------------------------------------------------------------------------


def read_query(workdir: str, pool: Pool) -> Optional[Dict[str, Any]]:
  """``WORKDIR/query.json``, the last query (None before the first), checked: refused naming the
  file if it is not one of this pool's queries."""
  return _read_checked(workdir, QUERY_FILE, lambda query: _query_problem(query, pool),
                       'It records the last query: delete it, and the next query asks anew.')


def _read_checked(workdir: str, name: str, problem_of: Callable[[Any], Optional[str]],
                  fix: str) -> Any:
  """The JSON file ``WORKDIR/name`` (None where there is none), refused with ``fix`` if it cannot
  be read or ``problem_of`` finds a problem with it."""
  path = workdir_lib.path_in(workdir, name)
  if not os.path.lexists(path):
    return None
  try:
    content = json.loads(workdir_lib.read_bytes(path).decode('utf-8'))
    problem = problem_of(content)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    problem = f'cannot be read ({getattr(e, "strerror", None) or e}).'
  if problem:
    raise LabelError(f'{path}: {problem} {fix}')
  return content


def write_query(workdir: str, pool: Pool, query: Dict[str, Any]) -> None:
  workdir_lib.write_atomic(workdir_lib.path_in(workdir, QUERY_FILE),
                           json.dumps({**query, 'pool': pool.fingerprint}))


def read_set_aside(workdir: str, pool: Pool) -> List[int]:
  """The pool indices ``WORKDIR/set_aside.json`` names (none before the first set aside),
  checked: refused naming the file if it is not this pool's, or an index and its id disagree."""
  kept = _read_checked(workdir, SET_ASIDE_FILE, lambda kept: _set_aside_problem(kept, pool),
                       'It records the samples set aside: mend it, or delete it to have them '
                       'asked again.')
  return [] if kept is None else [s['index'] for s in kept['samples']]


def write_set_aside(workdir: str, pool: Pool, indices: Sequence[int]) -> None:
  """``WORKDIR/set_aside.json``: each sample set aside by index and id, replaced atomically."""
  workdir_lib.write_atomic(workdir_lib.path_in(workdir, SET_ASIDE_FILE), json.dumps({
      'pool': pool.fingerprint,
      'samples': [{'index': int(i), 'id': pool.ids[i]} for i in sorted(indices)]}, indent=1))


def _set_aside_problem(kept: Any, pool: Pool) -> Optional[str]:
  if not isinstance(kept, dict) or not isinstance(kept.get('samples'), list):
    return 'not a JSON object with a list of "samples".'
  if kept.get('pool') != pool.fingerprint:
    return f'made for another pool (pool {kept.get("pool")!r}; this one is {pool.fingerprint}).'
  for s in kept['samples']:
    i = s.get('index') if isinstance(s, dict) else None
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < pool.size:
      return f'"samples" holds {s!r}, not a pool sample (index 0 .. {pool.size - 1}, and its id).'
    if s.get('id') != pool.ids[i]:
      return f'index {i} is {pool.ids[i]!r} in this pool, but it names id {s.get("id")!r}.'
  return None


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
  """:func:`table_text` of the query's ``rows`` (:data:`COLUMNS`) written at ``path`` (a
  :func:`l2r_jax.workdir.path_in` path), atomically."""
  workdir_lib.write_atomic(path, table_text(rows, header))


def table_text(rows: Sequence[Dict[str, Any]], header: Optional[Dict[str, str]] = None,
               columns: Sequence[str] = COLUMNS) -> str:
  """``rows`` (dicts with the ``columns``, and ``predicted`` and ``probability`` where a model
  predicted their classes) as a CSV: UTF-8 with a byte-order mark (which tells a spreadsheet it is
  UTF-8), text cells as :func:`text_cell` makes them. ``header``: a column's name as shown, where
  it says more than the name (the score's meaning); reading the table back needs only
  ``index``/``id`` and ``label``."""
  columns = list(columns)
  if rows and 'predicted' in rows[0]:
    columns[-1:-1] = ['predicted', 'probability']
  marks = [f for f in MARK_FIELDS.values() if rows and f in rows[0] and f not in columns]
  columns[columns.index('label'):columns.index('label')] = marks   # a pose's joints, or heads
  out = io.StringIO(newline='')
  writer = csv.writer(out)
  writer.writerow([(header or {}).get(c, c) for c in columns])
  text = ('id', 'file', 'label', 'predicted', 'source', *MARK_FIELDS.values())
  for row in rows:
    writer.writerow([text_cell(str(row[c])) if c in text else row[c] for c in columns])
  return '\ufeff' + out.getvalue()


def read_file(path: str, json_array: Optional[Callable[
    [List[Tuple[int, Any]], List[Problem], str], Tuple[List[Answer], List[Problem]]]] = None,
              marks: Optional[Marks] = None) -> Tuple[List[Answer], List[Problem]]:
  """The answers in the file at ``path`` (a table with a ``label`` column and an ``index`` or
  ``id`` column, and optionally :data:`BOUND_COLUMNS`; JSON lines; or a JSON array of answers),
  and a line for each part that cannot be read; rows whose label is empty (or null) are not
  answers yet. A workdir's ``set_aside.json`` gives its samples with the label
  :data:`~l2r_jax.answers.SET_ASIDE` (carried by id into a new workdir).
  ``json_array(items, problems, path)`` reads a JSON array of objects with ``"data"`` (Label
  Studio's export, :mod:`l2r_jax.label_studio`), its items as :func:`json_array_items` gives them.
  ``marks``: the task's marks (a pose's ``joints``, a crowd's ``heads``, input pixels) that a
  line or row may give instead of its label, a column or field of that name."""
  text, problem = file_text(path)
  if problem:
    return [], [(0, f'{path}: {problem}')]
  start = text.lstrip()[:1]
  if start == '{':
    return _set_aside_file(text, path) or _json_lines(text, path, marks)
  if start == '[':
    problems = []
    items = list(json_array_items(text, path, problems))
    if json_array is not None and any(isinstance(item, dict) and 'data' in item
                                      for _, item in items):
      return json_array(items, problems, path)   # objects with "data": Label Studio's tasks
    if problems:
      return [], problems
    if any(isinstance(item, dict) and 'annotation_id' in item for _, item in items):
      return [], [(0, f'{path}: a Label Studio JSON-MIN export: {LABEL_STUDIO_MIN}')]
    if not all(isinstance(item, dict) for _, item in items):
      return [], [(0, f'{path}: a JSON array of other things than answers; give one '
                      '{"index": ..., "label": ...} per line (JSON lines), or an array of them.')]
    answers = []
    for line, item in items:   # an array of answers (pandas' to_json(orient='records'), say)
      answer, problem = answer_from_json(json.dumps(item), path, line, marks)
      answers += [answer] if answer and answer.label is not None else []   # null: not yet
      problems += [(line, f'{path}, line {line}: {problem}')] if problem else []
    return answers, problems
  return _table(text, path, marks)


def _set_aside_file(text: str, path: str
                    ) -> Optional[Tuple[List[Answer], List[Problem]]]:
  """The samples of a workdir's ``set_aside.json`` (:func:`write_set_aside`) as answers labeled
  :data:`~l2r_jax.answers.SET_ASIDE`, each with the line it begins on; None for another file."""
  try:
    kept = json.loads(text)
  except (ValueError, RecursionError):
    return None
  if not (isinstance(kept, dict) and isinstance(kept.get('samples'), list)
          and isinstance(kept.get('pool'), str)):
    return None
  problems = []
  at = text.index('[', text.index('"samples"'))
  before = text.count('\n', 0, at)
  answers = []
  for line, sample in json_array_items(text[at:], path, problems):
    line += before
    if not isinstance(sample, dict):
      problems.append((line, f'{path}, line {line}: {sample!r} is not a sample '
                             '({"index": ..., "id": ...}).'))
      continue
    answers.append(Answer(path, line, whole_number(sample.get('index')), sample.get('id'),
                          SET_ASIDE, kept['pool']))
  return answers, problems


def json_array_items(text: str, path: str, problems: List[Problem]
                     ) -> Iterator[Tuple[int, Any]]:
  """``(line, item)`` of each element of the JSON array ``text`` (read from ``path``), the line
  its element begins on; where the text stops being JSON, a line is added to ``problems`` and the
  items end."""
  decoder, at = json.JSONDecoder(), text.index('[') + 1
  while True:
    while at < len(text) and text[at] in ' \t\r\n,':
      at += 1
    if at >= len(text) or text[at] == ']':
      return
    line = text.count('\n', 0, at) + 1
    try:
      item, at = decoder.raw_decode(text, at)
    except (ValueError, RecursionError) as e:
      problems.append((line, f'{path}, line {line}: not JSON ({getattr(e, "msg", e)}): mend '
                             'it, or give the file as it was exported.'))
      return
    yield line, item


ENCODINGS = ((codecs.BOM_UTF8, 'utf-8-sig', 'UTF-8'), (codecs.BOM_UTF32_LE, 'utf-32', 'UTF-32'),
             (codecs.BOM_UTF32_BE, 'utf-32', 'UTF-32'), (codecs.BOM_UTF16_LE, 'utf-16', 'UTF-16'),
             (codecs.BOM_UTF16_BE, 'utf-16', 'UTF-16'))


def file_text(path: str) -> Tuple[Optional[str], Optional[str]]:
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
  if data.startswith((b'PK\x03\x04', b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1')):
    return None, ('a workbook (.xlsx, .ods or .xls), not a table as text: save the sheet as '
                  '"CSV UTF-8" (File > Save As) and give that file.')
  if b'\x00' in data:
    return None, ('not a text file (it holds NUL bytes: a binary file, or UTF-16 without a '
                  'byte-order mark): give a CSV (UTF-8) or JSON lines.')
  try:
    return data.decode('utf-8'), None
  except UnicodeDecodeError as e:
    error = e
  problem = _not_windows_1252(data)
  if problem:
    return None, problem
  try:
    return data.decode('cp1252'), None
  except UnicodeDecodeError as e:
    error = e
  return None, (f'neither UTF-8 nor Windows-1252 (cp1252) text (byte {error.start}): save it as '
                'CSV UTF-8.')


# Bytes that are letters in Mac Roman (é, ü, ä, ö, à, á, ...) and rare signs in Windows-1252
# (Ž, Ÿ, Š, š, ˆ, ‡, ...), whose own accented letters lie at 0xC0-0xFF.
MAC_ROMAN_LETTERS = frozenset(b'\x83\x86\x87\x88\x89\x8a\x8c\x8e\x98\x9a\x9c\x9e\x9f')


def _not_windows_1252(data: bytes) -> Optional[str]:
  """Why ``data`` (not UTF-8) is not to be read as Windows-1252, or None: text in Mac Roman (Excel
  for Mac's "CSV (Macintosh)"), or lines in UTF-8 beside lines in another encoding."""
  high = {b for b in data if b >= 0x80}
  if high & MAC_ROMAN_LETTERS and not any(b >= 0xC0 for b in high):
    return ('not UTF-8, and its accented letters are Mac Roman\'s (as Excel for Mac\'s "CSV '
            '(Macintosh)" saves them), not Windows-1252\'s: save it as "CSV UTF-8".')
  utf8, other = None, None
  for number, line in enumerate(data.split(b'\n'), 1):
    if any(b >= 0x80 for b in line):
      try:
        line.decode('utf-8')
        utf8 = utf8 or number
      except UnicodeDecodeError:
        other = other or number
  if utf8 and other:
    return (f'mixes encodings: line {utf8} is UTF-8, line {other} is not: save it as "CSV '
            'UTF-8" (or mend the lines pasted from elsewhere).')
  return None


def _json_lines(text: str, path: str, marks: Optional[Marks]
                ) -> Tuple[List[Answer], List[Problem]]:
  answers, problems = [], []
  for number, line in enumerate(text.split('\n'), 1):
    if line.strip():
      answer, problem = answer_from_json(line, path, number, marks)
      answers += [answer] if answer and answer.label is not None else []   # null: not yet
      problems += [(number, f'{path}, line {number}: {problem}')] if problem else []
  return answers, problems


def _header(text: str) -> Tuple[Optional[str], List[str]]:
  """The table's delimiter (comma, tab or semicolon: the one whose first row names a label (or
  marks) column and an index or id column) and its column names; None and the first row if none
  does."""
  first = []
  for delimiter in (',', '\t', ';'):
    try:
      rows = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter, strict=True)
      row = next((r for r in rows if any(c.strip() for c in r)), [])
    except csv.Error:
      continue
    names = [cell_text(c.strip()).strip().lower() for c in row]
    first = first or [c.strip() for c in row]
    answered = 'label' in names or any(f in names for f in MARK_FIELDS.values())
    if answered and ('index' in names or 'id' in names):
      return delimiter, names
  return None, first


# Columns a table may give beside an answer, as the log's lines do (``label labels`` writes them):
# the pool it was made for, the content of the file answered, whether it corrects a given label.
BOUND_COLUMNS = ('pool', 'file_sha256', 'correction')


def _bound(cells: Dict[str, str]) -> Tuple[Dict[str, Any], Optional[str]]:
  """A row's :data:`BOUND_COLUMNS` as :class:`~l2r_jax.answers.Answer` fields, or why not."""
  out = {}
  for name in ('pool', 'file_sha256'):
    value = cell_text(cells.get(name, '')).strip()
    if value:
      out[name] = value
  correction = cells.get('correction', '').strip().lower()
  if correction not in ('', 'true', 'false'):
    return {}, f'correction {correction!r}: true, false or empty.'
  out['correction'] = correction == 'true'
  return out, None


def _table(text: str, path: str, marks: Optional[Marks]) -> Tuple[List[Answer], List[Problem]]:
  first_line = next((line for line in text.split('\n') if line.strip(' \t\r,;\ufeff')), '')
  first_row = {c.strip().strip('"').lower() for c in re.split(r'[,\t;]', first_line)}
  if 'annotation_id' in first_row:   # Label Studio's CSV and TSV exports name it
    return [], [(0, f'{path}: a Label Studio CSV or TSV export: {LABEL_STUDIO_MIN}')]
  if re.match(r'\ufeff?sep=.?\r?(\n|$)', text):   # Excel's line naming the delimiter: blank
    text = '\n' + text.split('\n', 1)[1] if '\n' in text else ''
  delimiter, names = _header(text)
  if delimiter is None:
    return [], [(0, f'{path}: a table of answers needs a first row naming a label column and an '
                    f'index or id column; it has {names}.')]
  columns = ('index', 'id', 'label', *MARK_FIELDS.values(), *BOUND_COLUMNS)
  twice = sorted({n for n in names if n in columns and names.count(n) > 1})
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
                                 f'{len(names)} columns: name the column of the cells past them '
                                 'in the first row (any name: it is not read), or empty them.'))
        continue
      cells = dict(zip(names, row))
      label = cell_text(cells.get('label', '').strip())
      given = [f for f in MARK_FIELDS.values() if cell_text(cells.get(f, '')).strip()]
      if given:
        problem = marks_problem(given, bool(label), marks)
        if problem is None:
          label, problem = marks.label(cell_text(cells[marks.field]))
        if problem is not None:
          problems.append((number, f'{path}, line {number}: {problem}'))
          continue
      if given or label:
        index, sample_id = cells.get('index', '').strip(), cell_text(cells.get('id', ''))
        bound, problem = _bound(cells)
        if problem is not None:
          problems.append((number, f'{path}, line {number}: {problem}'))
          continue
        answers.append(Answer(path, number, whole_number(index) if index else None,
                              sample_id if sample_id.strip() else None, label, **bound))
  except csv.Error as e:
    hint = ('; give labels that long (density maps) as JSON lines' if 'field limit' in str(e)
            else '')
    problems.append((line, f'{path}, line {line}: cannot be read as a table ({e}){hint}.'))
  return answers, problems
