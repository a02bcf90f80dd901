"""A person's answers: ids, the log's atomicity and strictness, files as people save them."""
import csv
import errno
import hashlib
import io
import json
import os
import unicodedata

import numpy as np
from PIL import Image
import pytest

from l2r_jax import answer_files
from l2r_jax import answers
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax import pool as pool_lib
from l2r_jax import workdir as workdir_lib

NAMES = ('bright', 'dark')


def _pool(x=None, ids=None, names=NAMES, description=None):
  """A classification pool of six 4-feature samples (labels unknown), and its answers' view."""
  x = np.arange(24, dtype=np.float32).reshape(6, 4) if x is None else x
  ds = data_lib.Dataset(x, np.full(len(x), -1, np.int32), x[:0], np.zeros(0, np.int32), 2,
                        pool_ids=ids, class_names=names)
  return pool_lib.Pool(ds, description or {'pool_size': len(x), 'pool_sha256': 'a'})


def _lines(path):
  return [json.loads(line) for line in open(path, encoding='utf-8')]


def test_a_sample_is_known_by_its_id_or_else_by_a_fingerprint_of_its_input():
  x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  x[3] = x[1]
  x[4] = x[1]
  pool = _pool(x)
  digest = lambda row: 'sha256:' + hashlib.sha256(row.tobytes()).hexdigest()[:16]
  assert pool.ids == [digest(x[0]), digest(x[1]), digest(x[2]), digest(x[1]) + '#2',
                      digest(x[1]) + '#3']
  # An array-like pool read on demand, in small chunks: the same ids.
  lazy = data_lib.LazyImages(5, (3,), lambda i: x[i], threads=1)
  assert pool_lib.sample_ids(pool.dataset._replace(x_train=lazy), chunk=2) == pool.ids
  assert _pool(ids=[f'f{k}.png' for k in range(6)]).ids == [f'f{k}.png' for k in range(6)]
  # The fingerprint: what describe_pool records of the samples, not of the labels or strategy.
  a = pool_lib.fingerprint({'pool_size': 6, 'pool_sha256': 'a', 'strategy': 'l2r'})
  assert a == pool_lib.fingerprint({'pool_size': 6, 'pool_sha256': 'a', 'seed': 3})
  assert a != pool_lib.fingerprint({'pool_size': 6, 'pool_sha256': 'b'})


def test_the_log_records_index_id_label_and_pool_and_reads_back_strictly(tmp_path):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  log = answers.AnswerLog(str(tmp_path), pool)
  log.append([4, 1], [1, 0])
  path = str(tmp_path / answers.ANSWERS_FILE)
  assert _lines(path) == [
      {'index': 4, 'id': 'u4.png', 'label': 'dark', 'pool': pool.fingerprint},
      {'index': 1, 'id': 'u1.png', 'label': 'bright', 'pool': pool.fingerprint}]
  given = pool.dataset.y_train
  assert log.read(given) == [(4, 1, False), (1, 0, False)]
  good = open(path).read()
  # A log of indices and labels only reads by index.
  with open(path, 'w') as f:
    f.write('{"index": 2, "label": 1}\n{"index": 3, "label": " Bright"}\n')   # a name's case aside
  assert log.read(given) == [(2, 1, False), (3, 0, False)]
  # A damaged line that is not the last refuses the log, naming it; nothing is dropped.
  for damage, named in [
      ('{"index": 2, "lab\n', 'line 2: not JSON'),
      ('{"index": 2, "id": "u3.png", "label": 0, "pool": "%s"}\n' % pool.fingerprint,
       "line 2: index 2 is 'u2.png' in this pool, but the answer names id 'u3.png' "
       '(index 3); index and id of one answer disagree: mend the line.'),
      ('{"index": 2, "id": "u2.png", "label": 0, "pool": "0123456789abcdef"}\n',
       'line 2: made for another pool (pool 0123456789abcdef'),
      ('{"index": 4, "label": 0}\n', "line 2, index 4: answered twice (also line 1)."),
      ('{"index": 2, "label": "grey"}\n', "line 2, index 2: label 'grey' is not a class"),
      ('{"label": 1}\n', 'line 2: give {"index": ..., "label": ...}'),
      ('\xff\n', 'line 2: not UTF-8 text (byte 0 of the line).')]:
    first, second = good.splitlines(True)
    before = first.encode() + damage.encode('latin-1') + second.encode()
    with open(path, 'wb') as f:
      f.write(before)
    with pytest.raises(errors.LabelError) as refused:
      log.read(given)
    message = str(refused.value)
    assert message.splitlines()[0].startswith(f'{path}: 1 problem; it holds every answer taught')
    assert f'{path}, {named}' in message, message
    assert open(path, 'rb').read() == before
  # The dataset's own labels count: an answer for a sample given labeled is refused.
  with open(path, 'w') as f:
    f.write(good)
  with pytest.raises(errors.LabelError, match=r"line 2, index 1: labeled already \(as 0, "
                                               r"'bright'\)"):
    log.read(np.array([-1, 0, -1, -1, -1, -1], np.int32))


def test_a_last_line_cut_off_is_dropped_atomically_and_a_whole_one_is_kept(tmp_path):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  log = answers.AnswerLog(str(tmp_path), pool)
  log.append([0, 1], [0, 1])
  path = tmp_path / answers.ANSWERS_FILE
  good = path.read_text()
  path.write_text(good + '{"index": 5, "lab')
  assert log.read(pool.dataset.y_train) == [(0, 0, False), (1, 1, False)]
  assert path.read_text() == good
  # An editor that leaves out the last newline: the answer is whole, and kept.
  path.write_text(good + '{"index": 5, "label": 1}')
  assert log.read(pool.dataset.y_train) == [(0, 0, False), (1, 1, False), (5, 1, False)]
  assert path.read_text() == good + '{"index": 5, "label": 1}\n'


def test_a_log_saved_with_a_byte_order_mark_reads_as_before(tmp_path):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  log = answers.AnswerLog(str(tmp_path), pool)
  log.append([0, 1], [0, 1])
  path = tmp_path / answers.ANSWERS_FILE
  path.write_bytes(b'\xef\xbb\xbf' + path.read_bytes())     # as old Notepad saves it
  assert log.read(pool.dataset.y_train) == [(0, 0, False), (1, 1, False)]
  log.append([2], [1])
  assert log.read(pool.dataset.y_train) == [(0, 0, False), (1, 1, False), (2, 1, False)]
  # One whole answer after the mark, its newline left out: kept, completed.
  line = json.dumps(pool.record(4, 0)).encode()
  path.write_bytes(b'\xef\xbb\xbf' + line)
  assert log.read(pool.dataset.y_train) == [(4, 0, False)]
  assert path.read_bytes() == b'\xef\xbb\xbf' + line + b'\n'
  assert not (tmp_path / answers.CUT_OFF_FILE).exists()


def test_an_id_typed_composed_finds_the_file_macos_named_decomposed():
  decomposed = unicodedata.normalize('NFD', 'unlabeled/café.png')
  twins = [unicodedata.normalize(form, 'unlabeled/né.png') for form in ('NFC', 'NFD')]
  pool = _pool(ids=['unlabeled/a.png', decomposed, 'unlabeled/b.png', *twins, 'unlabeled/c.png'])
  assert decomposed != 'unlabeled/café.png' and pool.index_of('unlabeled/café.png') == 1
  assert pool.index_of(' unlabeled/café.png ') == 1
  # Two ids that compose alike: each is found as written only.
  assert twins[0] != twins[1] and [pool.index_of(t) for t in twins] == [3, 4]
  assert pool.index_of(unicodedata.normalize('NFD', ' unlabeled/né.png')) == 4
  assert pool.index_of('unlabeled/cafe.png') is None


class _Killed(BaseException):
  pass


def _kill_at(monkeypatch, step):
  """Makes the ``step``-th os.write, os.fsync or os.replace raise, as a kill there would stop
  the process; returns the count of calls made."""
  calls = [0]
  for name in ('write', 'fsync', 'replace'):
    real = getattr(os, name)

    def call(*args, real=real):
      calls[0] += 1
      if calls[0] == step:
        raise _Killed
      return real(*args)

    monkeypatch.setattr(os, name, call)
  return calls


def test_a_kill_at_any_write_step_leaves_the_log_old_or_new_never_less(tmp_path, monkeypatch):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  path = tmp_path / answers.ANSWERS_FILE
  answers.AnswerLog(str(tmp_path), pool).append([0, 1], [0, 1])
  good = path.read_text()
  old = good + '{"index": 5, "lab'     # a line cut off: the read rewrites the log without it
  new = good + ''.join(json.dumps(pool.record(i, y)) + '\n' for i, y in [(2, 1), (3, 0), (4, 1)])
  step, steps = 0, None
  while steps is None or step < steps:
    step += 1
    path.write_text(old)
    with monkeypatch.context() as patch:
      calls = _kill_at(patch, step)
      log = answers.AnswerLog(str(tmp_path), pool)
      try:
        log.read(pool.dataset.y_train)
        log.append([2, 3, 4], [1, 0, 1])
        steps = calls[0]
      except _Killed:
        pass
    assert path.read_text() in (old, good, new), step
    cut_off = tmp_path / answers.CUT_OFF_FILE    # the line cut off is kept, once or again
    assert path.read_text() == old or set(cut_off.read_text().splitlines()) == {'{"index": 5, "lab'}
    assert not [f for f in os.listdir(tmp_path) if f not in (answers.ANSWERS_FILE, cut_off.name)]
    if cut_off.exists():
      cut_off.unlink()
  assert steps >= 5 and path.read_text() == new


def test_teaching_on_a_full_disk_saves_none_of_the_answers(tmp_path, monkeypatch):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  log = answers.AnswerLog(str(tmp_path), pool)
  log.append([0], [0])
  path = tmp_path / answers.ANSWERS_FILE
  before = path.read_bytes()
  room = [60]    # bytes the disk has left: part of the first of the three lines
  real = os.write

  def write(fd, data):
    if room[0] <= 0:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    written = real(fd, data[:room[0]])
    room[0] -= written
    return written

  monkeypatch.setattr(os, 'write', write)
  with pytest.raises(errors.LabelError, match='could not be saved .No space left on device.; '
                                               'none of them was taught'):
    log.append([1, 2, 3], [1, 1, 0])
  monkeypatch.undo()
  assert path.read_bytes() == before


def test_links_in_the_workdir_are_refused_and_their_targets_untouched(tmp_path):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  target = elsewhere / 'answers.jsonl'
  target.write_text('{"index": 0, "label": 0}\n')
  for name in (answers.ANSWERS_FILE, answers.QUERY_FILE, answers.QUERY_FOLDER,
               os.path.join(answers.QUERY_FOLDER, 'query.csv'),
               os.path.join(answers.QUERY_FOLDER, 'contact_sheet.png')):
    work = tmp_path / f'w{len(os.listdir(tmp_path))}'
    (work / answers.QUERY_FOLDER).mkdir(parents=True)
    (work / 'experiment.json').write_text('{}')
    if name == answers.QUERY_FOLDER:
      os.rmdir(work / name)
    os.symlink(target, work / name)
    with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
      answers.check_workdir(str(work))
    if name == answers.ANSWERS_FILE:
      with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
        answers.AnswerLog(str(work), pool).append([1], [1])
    if name == answers.QUERY_FILE:
      with pytest.raises(errors.WorkdirError, match='is a symbolic link'):
        answer_files.write_query(str(work), pool, {'indices': [1]})
    assert target.read_text() == '{"index": 0, "label": 0}\n'


def test_answers_without_the_record_of_their_experiment_are_refused(tmp_path):
  answers.AnswerLog(str(tmp_path), _pool()).append([0], [1])
  with pytest.raises(errors.WorkdirError, match=r'holds answers, but .*experiment.json, the '
                                                     r'record of the experiment and pool they '
                                                     r'were made for, is gone'):
    answers.check_workdir(str(tmp_path))


def test_the_query_is_checked_when_read(tmp_path):
  pool = _pool()
  assert answer_files.read_query(str(tmp_path), pool) is None
  query = {'round': 1, 'strategy': 'entropy', 'num_labeled': 4, 'indices': [3, 0],
           'scores': [0.5, 0.25]}
  answer_files.write_query(str(tmp_path), pool, query)
  assert answer_files.read_query(str(tmp_path), pool) == {**query, 'pool': pool.fingerprint}
  path = tmp_path / answers.QUERY_FILE
  for bad, named in [({'indices': [3, -1]}, '"indices" holds -1, not a pool sample'),
                     ({'indices': [3, 6]}, '"indices" holds 6, not a pool sample'),
                     ({'indices': [3, '0']}, '"indices" holds \'0\''),
                     ({'indices': [3, 3]}, '"indices" names a sample twice'),
                     ({'indices': 3}, '"indices" must be a list of pool indices'),
                     ({'scores': [0.5]}, '"scores" must be null or a number per index'),
                     ({'round': True}, '"round" must be a whole number'),
                     ({'pool': 'f' * 16}, 'made for another pool')]:
    path.write_text(json.dumps({**query, **bad}))
    with pytest.raises(errors.LabelError, match=f'{path}: {named}.*delete it, and the next query '
                                                 'asks anew'):
      answer_files.read_query(str(tmp_path), pool)
  for raw in (b'{"indices": [3', b'\xff\xfe', b'[1, 2]'):
    path.write_bytes(raw)
    with pytest.raises(errors.LabelError, match=str(path)):
      answer_files.read_query(str(tmp_path), pool)


def test_class_names_that_cannot_name_a_class_are_refused():
  for names, named in [(('cat', 'cat'), "names 'cat' twice .classes 0 and 1."),
                       (('cat', ' cat '), "names 'cat' twice"),
                       (('1', '0'), r"class_names\[0\]='1' reads as class index 1"),
                       (('cat', ''), r'class_names\[1\] is empty')]:
    with pytest.raises(errors.ConfigError, match=named + '.*give each class a name of its own'):
      pool_lib.check_class_names(_pool(names=names).dataset)
    folders = _pool(names=names).dataset._replace(source_root='/images')   # an image folder's
    with pytest.raises(errors.ConfigError, match=named + '.*rename the class folders'):
      pool_lib.check_class_names(folders)
  pool_lib.check_class_names(_pool(names=('0', 'dog')).dataset)


def _check(pool, answers_, problems=(), known=None):
  known = pool.dataset.y_train if known is None else known
  indices, labels, more = answers.check(answers_, pool, known, answers.FILE)
  return indices, labels, answers.in_order(list(problems) + more)


def test_an_answer_names_its_sample_by_id_where_it_can():
  ids = [f'unlabeled/u{k}.png' for k in range(6)]
  pool = _pool(ids=ids)
  this, other = pool.fingerprint, '0123456789abcdef'
  given = [answers.Answer('a.jsonl', 1, 2, 'unlabeled/u2.png', 'dark', this),    # agree
           answers.Answer('a.jsonl', 2, 0, 'unlabeled/u5.png', 'bright', other),  # carried: id
           answers.Answer('a.jsonl', 3, None, 'unlabeled/u3.png', 1),            # id only
           answers.Answer('a.jsonl', 4, 4, None, '0')]                           # index only
  assert _check(pool, given) == ([2, 5, 3, 4], [1, 0, 1, 0], [])
  refused = [answers.Answer('a.jsonl', 1, 1, 'unlabeled/u2.png', 0, this),
             answers.Answer('a.jsonl', 2, 1, 'unlabeled/u2.png', 0),
             answers.Answer('a.jsonl', 3, 1, 'unlabeled/gone.png', 0, other),
             answers.Answer('a.jsonl', 4, 1, None, 0, other),
             answers.Answer('a.jsonl', 5, None, None, 0),
             answers.Answer('a.jsonl', 6, 9, None, 0),
             answers.Answer('a.jsonl', 7, None, 7, 0)]
  assert _check(pool, refused)[2] == [
      "a.jsonl, line 1: index 1 is 'unlabeled/u1.png' in this pool, but the answer names id "
      "'unlabeled/u2.png' (index 2); index and id of one answer disagree: mend the line.",
      "a.jsonl, line 2: index 1 is 'unlabeled/u1.png' in this pool, but the answer names id "
      "'unlabeled/u2.png' (index 2): the file may have been made for another pool. To map its "
      'answers by id, leave the index out (delete the index column, or the "index" fields).',
      "a.jsonl, line 3: id 'unlabeled/gone.png' is not a sample of this pool (removed or renamed "
      'since?); remove the line to carry the others.',
      'a.jsonl, line 4: made for another pool and names its sample by index only: give its id '
      "(the pool's samples moved).",
      'a.jsonl, line 5: names no sample: give its index or its id.',
      'a.jsonl, line 6: index 9 is not a pool sample (whole numbers 0 .. 5).',
      'a.jsonl, line 7: id 7 is not text.']
  # Given again with the label known: left out; with another: refused.
  known = np.array([-1, -1, 1, -1, -1, -1], np.int32)
  again = [answers.Answer('a.csv', 2, 2, None, 'dark'), answers.Answer('a.csv', 3, 2, None, '0')]
  assert _check(pool, again[:1], known=known) == ([], [], [])
  assert _check(pool, again, known=known)[2] == [
      "a.csv, line 3, index 2: answered twice (also line 2)."]
  assert _check(pool, again[1:], known=known)[2] == [
      "a.csv, line 3, index 2: labeled already (as 1, 'dark'); correct a label with relabel "
      "(label answer --relabel), never by answering again."]



def test_an_id_a_spreadsheet_or_a_path_mangled_is_refused_naming_the_id_it_looks_like():
  pool = _pool(ids=['00012', '1E5', '0.50', 'Unlabeled/IMG_1.JPG', 'a/x.png', 'b/x.png',
                    'unlabeled/кот_31.webp', 'unlabeled/ёж_1.png', 'unlabeled/ёё_1.png'])
  problems = _check(pool, [answers.Answer('a.csv', k + 2, None, text, 0) for k, text in enumerate(
      ['12', '1.00E+05', '.5', '/home/me/photos/Unlabeled/IMG_1.JPG', 'unlabeled\\img_1.jpg',
       'x.png', '13', 'unlabeled/???_31.webp', 'unlabeled/??_1.png', 'img_1.jpg'])])[2]
  number = ('(a spreadsheet turned the id into a number (leading zeros dropped, a decimal, '
            '1E+05): format the id column as text before typing or pasting ids, or give the '
            'index alone).')
  path = ("(an id is written as query.csv's id column writes it, case and all: the path inside "
          'the folder, with "/").')
  assert problems == [
      f"a.csv, line 2: id '12' is not a sample of this pool; '00012' is {number}",
      f"a.csv, line 3: id '1.00E+05' is not a sample of this pool; '1E5' is {number}",
      f"a.csv, line 4: id '.5' is not a sample of this pool; '0.50' is {number}",
      "a.csv, line 5: id '/home/me/photos/Unlabeled/IMG_1.JPG' is not a sample of this pool; "
      f"'Unlabeled/IMG_1.JPG' is {path}",
      "a.csv, line 6: id 'unlabeled\\\\img_1.jpg' is not a sample of this pool; "
      f"'Unlabeled/IMG_1.JPG' is {path}",
      "a.csv, line 7: id 'x.png' is not a sample of this pool.",    # two files end so: no guess
      "a.csv, line 8: id '13' is not a sample of this pool.",
      # Saved by a spreadsheet in a code page without Cyrillic: each letter a "?".
      "a.csv, line 9: id 'unlabeled/???_31.webp' is not a sample of this pool; "
      "'unlabeled/кот_31.webp' is (a spreadsheet saved the file in its own code page, writing "
      '"?" for the letters it lacks: save it as "CSV UTF-8" and give it again).',
      "a.csv, line 10: id 'unlabeled/??_1.png' is not a sample of this pool.",   # two such
      "a.csv, line 11: id 'img_1.jpg' is not a sample of this pool; 'Unlabeled/IMG_1.JPG' is (an "
      "id is the file's path inside the folder, as query.csv's id column writes it, not its name "
      'alone).']


def test_an_answer_whose_picture_was_renamed_names_its_new_id():
  x = np.arange(24, dtype=np.float32).reshape(6, 4)
  ds = data_lib.Dataset(x, np.full(6, -1, np.int32), x[:0], np.zeros(0, np.int32), 2,
                        pool_ids=[f'u{k}.png' for k in range(6)], class_names=NAMES,
                        pool_file_sha256=[f'{k:016x}' for k in range(6)])
  pool = pool_lib.Pool(ds, {'pool_size': 6, 'pool_sha256': 'a'})
  carried = answers.Answer('old.jsonl', 4, 9, 'old name.png', 'dark', '0123456789abcdef',
                           file_sha256=f'{3:016x}')
  assert _check(pool, [carried])[2] == [
      "old.jsonl, line 4: id 'old name.png' is not a sample of this pool; the picture answered is "
      "'u3.png' now (the same file content: renamed or moved since). Write its new id in the "
      'line, or remove the line to carry the others.']


def _write(path, text, encoding):
  with open(path, 'w', encoding=encoding, newline='') as f:
    f.write(text)


def test_answer_files_are_read_as_spreadsheets_and_editors_save_them(tmp_path):
  names = ('café', 'crème brûlée')
  pool = _pool(ids=[f'u{k}.png' for k in range(6)], names=names)
  table = 'index,id,file,score,label\r\n1,u1.png,/x/u1.png,,café\r\n2,u2.png,/x/u2.png,,\r\n' \
          '3,u3.png,/x/u3.png,,crème brûlée\r\n'
  expected = ([1, 3], [0, 1], [])
  for name, text, encoding in [
      ('utf8.csv', table, 'utf-8'),
      ('bom.csv', '\ufeff' + table, 'utf-8'),
      ('excel.csv', table, 'cp1252'),
      ('unicode.txt', table.replace(',', '\t'), 'utf-16'),   # a spreadsheet's "Unicode text"
      ('utf32.txt', table, 'utf-32'),
      ('european.csv', table.replace(',', ';'), 'utf-8'),
      ('mac.csv', table.replace('\r\n', '\r'), 'utf-8'),
      ('lines.jsonl', '{"id": "u1.png", "label": "café"}\r\n\r\n{"index": 3, "label": 1}\n',
       'utf-8-sig')]:
    _write(tmp_path / name, text, encoding)
    assert _check(pool, *answer_files.read_file(str(tmp_path / name))) == expected, name
  # Columns in another order, in capitals, a row shorter than the header, and empty cells after.
  _write(tmp_path / 'mine.csv', 'Label,ID\r\ncafé,u1.png,,\r\n1,u3.png\r\n,u4.png\r\n', 'utf-8')
  assert _check(pool, *answer_files.read_file(str(tmp_path / 'mine.csv'))) == expected
  # A blank row above the header (a sheet whose first row is empty), Excel's line naming the
  # delimiter, a spreadsheet's 3.0 for an index, smart quotes in Windows-1252, a JSON array of
  # answers: read alike, line numbers as in the file.
  for name, text, encoding in [
      ('blank.csv', ',,,,\r\n' + table, 'utf-8'),
      ('sep.csv', 'sep=;\r\n' + table.replace(',', ';'), 'cp1252'),
      ('float.csv', table.replace('\r\n3,', '\r\n3.0,'), 'utf-8'),
      ('quotes.csv', table + '4,u4.png,,“x”,\r\n', 'cp1252'),
      ('array.json', '[{"id": "u1.png", "label": "café"},\n {"index": 3.0, "label": 1}]', 'utf-8')]:
    _write(tmp_path / name, text, encoding)
    read, problems = answer_files.read_file(str(tmp_path / name))
    assert _check(pool, read, problems) == expected, name
    assert [a.line for a in read] == ([1, 2] if name == 'array.json' else
                                      [3, 5] if name in ('blank.csv', 'sep.csv') else [2, 4]), name
  _write(tmp_path / 'extra.csv', 'sep=,\r\nindex,label\r\n1,0,note\r\n', 'utf-8')
  assert answer_files.read_file(str(tmp_path / 'extra.csv'))[1][0][0] == 3
  # pandas' files (to_csv, to_json(orient='records'), the same with lines=True): a column of
  # classes with a gap in it is written as floats (0.0, 1.0), the gap empty or null; the gap is
  # not answered yet.
  for name, text in [
      ('pandas.csv', 'id,label\nu1.png,0.0\nu2.png,\nu3.png,1.0\n'),
      ('pandas.json', '[{"id":"u1.png","label":0.0},{"id":"u2.png","label":null},'
                      '{"id":"u3.png","label":1.0}]'),
      ('pandas.jsonl', '{"id":"u1.png","label":0.0}\n{"id":"u2.png","label":null}\n'
                       '{"id":"u3.png","label":1.0}\n')]:
    _write(tmp_path / name, text, 'utf-8')
    assert _check(pool, *answer_files.read_file(str(tmp_path / name))) == expected, name


def test_files_that_cannot_be_read_are_refused_in_one_line(tmp_path):
  (tmp_path / 'folder').mkdir()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'image.png')
  (tmp_path / 'undecodable.csv').write_bytes(b'index,label\n1,caf\x81\n')
  (tmp_path / 'bad_bom.csv').write_bytes(b'\xff\xfei\x00n\x00\x00\xd8')
  (tmp_path / 'empty.csv').write_bytes(b'')
  (tmp_path / 'array.json').write_text('[1, 2]')
  (tmp_path / 'book.xlsx').write_bytes(b'PK\x03\x04\x14\x00\x06\x00' + bytes(40))
  (tmp_path / 'mac.csv').write_bytes('index,label\n1,café\n2,müsli\n'.encode('mac_roman'))
  (tmp_path / 'mixed.csv').write_bytes('index,label\n1,café\n'.encode('utf-8')
                                       + '2,müsli\n'.encode('cp1252'))
  (tmp_path / 'no_label.csv').write_text('index,class\n1,0\n')
  (tmp_path / 'twice.csv').write_text('index,label,label\n1,0,1\n')
  (tmp_path / 'huge.csv').write_text('index,label\n1,"' + '[' * 200_000 + '"\n2,0\n')
  (tmp_path / 'extra.csv').write_text('index,label\n1,0\n2,1,surprise\n')
  (tmp_path / 'unclosed.csv').write_text('index,label\n1,0\n2,"1\n3,0\n')
  (tmp_path / 'deep.jsonl').write_text('{"index": 1, "label": 0}\n{"index": 2, "label": '
                                       + '[' * 100_000 + '}\n')
  (tmp_path / 'long.jsonl').write_text('{"index": ' + '1' * 5000 + ', "label": 0}\n')
  for name, named in [
      ('missing.csv', 'cannot be read (No such file or directory).'),
      ('folder', 'a folder; give the answers file in it'),
      ('image.png', 'not a text file (it holds NUL bytes'),
      ('undecodable.csv', 'neither UTF-8 nor Windows-1252 (cp1252) text (byte 17)'),
      ('bad_bom.csv', 'begins with a UTF-16 byte-order mark, but is not UTF-16 text'),
      ('empty.csv', 'a table of answers needs a first row naming a label column'),
      ('array.json', 'a JSON array of other things than answers'),
      ('book.xlsx', 'a workbook (.xlsx, .ods or .xls), not a table as text: save the sheet as '
                    '"CSV UTF-8"'),
      ('mac.csv', "its accented letters are Mac Roman's"),
      ('mixed.csv', 'mixes encodings: line 2 is UTF-8, line 3 is not'),
      ('no_label.csv', "needs a first row naming a label column and an index or id column; it "
                       "has ['index', 'class']."),
      ('twice.csv', 'the first row names label twice'),
      ('huge.csv', 'line 2: cannot be read as a table (field larger than field limit (131072)); '
                   'give labels that long (density maps) as JSON lines.'),
      ('extra.csv', 'line 3: 3 cells; the first row names 2 columns: name the column of the '
                    'cells past them in the first row (any name: it is not read), or empty them.'),
      ('unclosed.csv', 'line 3: cannot be read as a table (unexpected end of data)'),
      ('deep.jsonl', 'line 2: not JSON (arrays or objects nested too deep).'),
      ('long.jsonl', 'line 1: not JSON (a number with too many digits).')]:
    path = str(tmp_path / name)
    found, problems = answer_files.read_file(path)
    assert len(problems) == 1 and problems[0][1].startswith(path), (name, problems)
    assert named in problems[0][1], (name, problems)


def test_the_query_table_gives_back_every_id_as_it_was(tmp_path):
  """File names with a line separator, a newline, quotes, commas, and beginnings a spreadsheet
  takes for a formula: each comes back as it was, and a spreadsheet shows those as text."""
  ids = ['a\u2028b.png', 'new\nline.png', '=HYPERLINK("x").png', '-2+3.png', '@SUM(A1).png',
         "'quoted.png", '+plus, "comma".png', '\tTab.png', "'=both.png"]
  pool = _pool(x=np.arange(36, dtype=np.float32).reshape(9, 4), ids=ids)
  rows = [{'index': k, 'id': i, 'file': '/data/' + i, 'score': '', 'label': ''}
          for k, i in enumerate(ids)]
  path = workdir_lib.path_in(str(tmp_path), 'query.csv')
  answer_files.write_table(path, rows)
  raw = open(path, 'rb').read()
  assert raw.startswith(b'\xef\xbb\xbf')
  cells = list(csv.reader(io.StringIO(raw.decode('utf-8-sig'), newline='')))
  assert cells[0] == list(answer_files.COLUMNS) and len(cells) == 10
  shown = [row[1] for row in cells[1:]]
  assert shown == ['a\u2028b.png', 'new\nline.png', "'=HYPERLINK(\"x\").png", "'-2+3.png",
                   "'@SUM(A1).png", "''quoted.png", "'+plus, \"comma\".png", "'\tTab.png",
                   "''=both.png"]
  # The person labels every row (a spreadsheet keeps the cells it shows), then the file is read.
  labeled = [cells[0]] + [row[:4] + [NAMES[k % 2]] for k, row in enumerate(cells[1:])]
  out = io.StringIO(newline='')
  csv.writer(out).writerows(labeled)
  (tmp_path / 'answered.csv').write_text(out.getvalue(), encoding='utf-8-sig', newline='')
  found, problems = answer_files.read_file(str(tmp_path / 'answered.csv'))
  assert [a.sample_id for a in found] == ids
  assert _check(pool, found, problems) == (list(range(9)), [k % 2 for k in range(9)], [])
  # The index column deleted and the rows reordered: each lands on its sample by id alone.
  by_id = [row[1:] for row in labeled]
  out = io.StringIO(newline='')
  csv.writer(out).writerows([by_id[0]] + by_id[1:][::-1])
  (tmp_path / 'ids.csv').write_text(out.getvalue(), encoding='utf-8', newline='')
  assert _check(pool, *answer_files.read_file(str(tmp_path / 'ids.csv'))) == (
      list(range(8, -1, -1)), [k % 2 for k in range(8, -1, -1)], [])


def test_corrections_are_read_in_turn_and_folded_when_carried(tmp_path):
  pool = _pool(ids=[f'u{k}.png' for k in range(6)])
  log = answers.AnswerLog(str(tmp_path), pool)
  given = pool.dataset.y_train
  log.append([0, 1], [0, 1])
  log.append([0], [1], correction=True)
  log.append([0], [0], correction=True)
  log.append([0], [1], correction=True)
  assert log.read(given) == [(0, 0, False), (1, 1, False), (0, 1, True), (0, 0, True),
                             (0, 1, True)]
  assert [line.get('correction', False) for line in _lines(log.path)] == [False, False, True,
                                                                          True, True]
  # A correction of a sample that has no label yet, and one that changes nothing: refused.
  log.append([3], [1], correction=True)
  with pytest.raises(errors.LabelError, match=r'line 6, index 3: has no label to correct yet'):
    log.read(given)
  # Carried into another workdir, a log's corrections fold into their answers: the last word;
  # one with no answer before it (a label the dataset gave) stays a correction.
  folded = answers.fold_corrections(answer_files.read_file(log.path)[0])
  assert [(a.sample_id, a.label, a.correction) for a in folded] == [
      ('u0.png', 'dark', False), ('u1.png', 'dark', False), ('u3.png', 'dark', True)]


def test_a_file_may_give_joints_or_heads_in_input_pixels_instead_of_labels(tmp_path):
  """Marks read from JSON lines and from a table (a spreadsheet's: semicolons, cp1252), made into
  labels by the task's function; marks of another task, both marks and a label, or marks that are
  not an array of numbers refused, one line each."""
  made = []

  def to_label(m):   # stands for annotate.Geometry.label: heads [P, 2] -> their count
    value = np.asarray(m, np.float64)
    if value.size and (value.ndim != 2 or value.shape[1] != 2):
      raise ValueError(f'not heads: shape {value.shape}')
    made.append(value.reshape(-1, 2).tolist())
    return float(len(value))

  class Heads:   # stands for the task's annotate.Geometry
    label = staticmethod(lambda m, placed_on=None: to_label(m))

  marks = answers.Marks('heads', Heads)
  lines = tmp_path / 'heads.jsonl'
  lines.write_text('{"index": 1, "heads": [[1.5, 2], [3, 4]]}\n{"id": "u2.png", "heads": []}\n'
                   '{"index": 3, "joints": [[1, 2, 1]]}\n{"index": 4, "heads": [[1, 2]], '
                   '"label": 1}\n{"index": 5, "heads": "[[1, 2]"}\n{"index": 0, "heads": [3]}\n')
  read, problems = answer_files.read_file(str(lines), marks=marks)
  assert [(a.line, a.index, a.sample_id, a.label) for a in read] == [
      (1, 1, None, 2.0), (2, None, 'u2.png', 0.0)]
  assert made[:2] == [[[1.5, 2.0], [3.0, 4.0]], []]
  assert [text.split(': ', 1)[1] for _, text in problems] == [
      '"joints" are marks of a pose task; this task takes "heads" (or a "label").',
      'give a label or heads, not both.',
      'heads is not a JSON array ([[x, y], ...], one per head, input pixels).',
      'heads: not heads: shape (1,)']
  # A table with a heads column and no label column, as a spreadsheet saves it.
  table = tmp_path / 'heads.csv'
  table.write_bytes('index;id;heads;note\r\n1;;"[[5, 6], [7, 8], [9, 10]]";café\r\n2;;;\r\n'
                    '3;;[[1, 2], [3]];\r\n'.encode('cp1252'))
  read, problems = answer_files.read_file(str(table), marks=marks)
  assert [(a.line, a.index, a.label) for a in read] == [(2, 1, 3.0)]   # row 2 not answered yet
  assert len(problems) == 1 and problems[0][1].startswith(f'{table}, line 4: heads: ')
  # A task that cannot make heads into maps at all says so once, not once a line.
  def cannot():
    raise errors.ConfigError('no Gaussian per head declared')
  with pytest.raises(errors.ConfigError, match='no Gaussian per head declared'):
    answer_files.read_file(str(table), marks=answers.Marks('heads', cannot))
  # Without marks (a classification task), heads are refused, not taken for a label.
  read, problems = answer_files.read_file(str(lines))
  assert not read and problems[0][1].endswith(
      'line 1: "heads" are marks of a crowd task; this task takes none (or a "label").')


@pytest.mark.parametrize('task', ['pose', 'crowd'])
def test_marks_in_a_file_teach_what_the_labeling_page_makes_of_them(tmp_path, task):
  from examples import synthetic_to_label  # pylint: disable=g-import-not-at-top
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  from l2r_jax import label  # pylint: disable=g-import-not-at-top
  from l2r_jax import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from l2r_jax.data import density  # pylint: disable=g-import-not-at-top
  config = synthetic_to_label.get_config(f'{task}_smoke')
  rng = np.random.default_rng(0)
  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    h, w = annotate.input_hw(learner.dataset)
    if task == 'pose':
      marks = np.c_[rng.uniform(0, w - 1, (16, 2)), np.arange(16) % 5 != 0]
      # The stand-in's convention, independently: heatmap x = input x * heatmap / input; a joint
      # not visible has weight 0 and no position, one off the heatmap's pixels weight 0.
      hm = learner.dataset.task_params['heatmap_size']
      xy = marks[:, :2] * [hm[1] / w, hm[0] / h]
      inside = (xy[:, 0] < hm[1] - 0.5) & (xy[:, 1] < hm[0] - 0.5)
      assert 0 < inside.sum() < 16
      expected = np.c_[np.where(marks[:, 2:] > 0, xy, 0), (marks[:, 2] > 0) & inside]
    else:
      marks = rng.uniform(0, w - 1, (5, 2))
      shape = learner.dataset.y_train.shape[1:3]
      expected = learner.dataset.task_params['density_scale'] * density.density_map(
          marks, shape, config.data.sigma, h // shape[0])
    field = answers.MARK_FIELDS[task]
    path = tmp_path / 'answers.jsonl'
    path.write_text(json.dumps({'index': 3, field: marks.tolist()}) + '\n')
    indices, labels, problems, _ = label.read_answers(str(path), learner)
  assert not problems and indices == [3]
  np.testing.assert_allclose(labels[0], expected, rtol=1e-6, atol=1e-9)


def test_a_query_never_writes_over_marks_typed_in(tmp_path):
  from examples import synthetic_to_label  # pylint: disable=g-import-not-at-top
  from l2r_jax import label  # pylint: disable=g-import-not-at-top
  from l2r_jax import learner as learner_lib  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path / 'work' / 'query')
  with learner_lib.ActiveLearner(synthetic_to_label.get_config('crowd_smoke'),
                                 str(tmp_path / 'work')) as learner:
    learner.query()
    path, _ = label.write_query(learner, folder)
    with open(path, encoding='utf-8-sig') as f:
      rows = list(csv.reader(f))
    pristine = open(path, 'rb').read()
    label.write_query(learner, folder)     # nothing typed in: written again
    assert rows[0][rows[0].index('heads') + 1] == 'label'   # a column to give heads in
    col = rows[0].index('heads')
    for marks in ('[[3, 4], [10.5, 7]]', '[[3, 4'):   # readable or not, typed in is kept
      typed = [rows[0], rows[1][:col] + [marks] + rows[1][col + 1:], *rows[2:]]
      with open(path, 'w', newline='', encoding='utf-8-sig') as f:
        csv.writer(f).writerows(typed)
      before = open(path, 'rb').read()
      with pytest.raises(errors.LabelError, match='holds 1 label.s. typed in and not taught'):
        label.write_query(learner, folder)
      assert open(path, 'rb').read() == before != pristine
    # Unreadable as a whole, whatever it holds is kept: its header edited, or the table saved as
    # UTF-16 without a byte-order mark.
    def table(typed):
      return '\r\n'.join(','.join(f'"{c}"' for c in row) for row in typed)
    header_edited = table([['file', 'Heads (x, y)'], *[[r[2], '[[3, 4]]'] for r in rows[1:]]])
    utf16 = table([rows[0] + ['heads'], rows[1] + ['[[3, 4]]']])
    for data in (header_edited.encode('utf-8'), utf16.encode('utf-16-le')):
      open(path, 'wb').write(data)
      with pytest.raises(errors.LabelError, match='may hold labels typed in'):
        label.write_query(learner, folder)
      assert open(path, 'rb').read() == data
    open(path, 'wb').write(b'\xef\xbb\xbf\r\n \n')  # only a mark and blanks: nothing to keep
    label.write_query(learner, folder)
    assert open(path, 'rb').read() == pristine
    open(path, 'w').close()    # an empty file holds nothing to keep
    label.write_query(learner, folder)
    assert open(path, 'rb').read() == pristine


def _marked_folder_config(root, task, side):
  from examples import image_folder  # pylint: disable=g-import-not-at-top
  c = image_folder.get_config(f'{task}_smoke')
  c.data.root, c.data.image_size = str(root), (side, side)
  return c


@pytest.mark.parametrize('task', ['pose', 'crowd'])
def test_marks_travel_with_their_labels_to_another_input_size(tmp_path, task):
  """The log keeps the marks a label was made from: carried into a session whose inputs and maps
  are twice the size, the label is made again from them (a pose's heatmap joints, a crowd's map
  from its heads), as a person marking the larger input would make it; a label given as such,
  with no marks, is refused there rather than taken at the old scale."""
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  from l2r_jax import label  # pylint: disable=g-import-not-at-top
  from l2r_jax import learner as learner_lib  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'pictures'
  (root / 'unlabeled').mkdir(parents=True)
  rng = np.random.default_rng(0)
  for k, (w, h) in enumerate([(200, 100), (90, 160), (64, 64), (300, 300)]):
    picture = rng.integers(0, 255, (h, w, 3), np.uint8)
    Image.fromarray(picture).save(root / 'unlabeled' / f'p{k}.png')
  field = annotate.MARK_FIELDS[task]
  if task == 'pose':
    marks = np.zeros((16, 3))
    marks[:12] = np.c_[rng.uniform(-0.5, 31.5, (12, 2)), np.ones(12)]   # 4 joints not seen
    marks[0, :2] = (31.4, -0.5)   # on the border: placed, and kept
  else:
    marks = np.r_[rng.uniform(-0.5, 31.5, (6, 2)), [[31.4, -0.5]]]
  small = str(tmp_path / 'small')
  with learner_lib.ActiveLearner(_marked_folder_config(root, task, 32), small) as learner:
    given = tmp_path / 'given.jsonl'
    lines = [{'id': 'unlabeled/p0.png', field: marks.tolist()}]
    if task == 'pose':   # and a label given as such, in heatmap pixels
      lines.append({'id': 'unlabeled/p1.png', 'label': [[1.0, 2.0, 1.0]] * 16})
    given.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    label.teach_checked(learner, 'given', *label.read_answers(str(given), learner))
    kept = learner.marked_label(learner.pool.index_of('unlabeled/p0.png'))
    np.testing.assert_array_equal(kept.marks, marks)
    # Marks off the input (the original photo's pixels, say) are named, not dropped unseen; so
    # is a pose label whose weighted joint lies off its heatmap (input pixels in "label").
    wrong = tmp_path / 'wrong.jsonl'
    off = marks.copy()
    off[1, :2] = (411.0, 127.0)
    wrong.write_text(json.dumps({'id': 'unlabeled/p2.png', field: off.tolist()}) + '\n' + (
        json.dumps({'id': 'unlabeled/p3.png', 'label': [[25.0, 7.0, 1.0]] * 16}) + '\n'
        if task == 'pose' else ''))
    problems = label.read_answers(str(wrong), learner)[2]
    what = 'joint 2 (right knee)' if task == 'pose' else 'head 2'
    assert problems[0] == (f'{wrong}, line 1: {field}: {what} at (411, 127) outside the 32 x 32 '
                           'input (x from -0.5 up to 31.5, y up to 31.5): give marks in input '
                           'pixels, the pixels the model reads (not the original picture\'s).')
    assert len(problems) == 1 + (task == 'pose')
    assert task != 'pose' or problems[1].endswith(
        'label: joint 1 at (25, 7) is weighted but lies outside the 8 x 8 heatmap (x from -0.5 '
        'to 7.5, y to 7.5): a label is (x, y, weight) per joint in heatmap pixels; give marks in '
        'input pixels as "joints" instead.')
  log = [json.loads(line) for line in open(os.path.join(small, 'answers.jsonl'))]
  assert log[0][field] == marks.tolist() and log[0]['input_hw'] == [32, 32]
  assert log[0]['label_hw'] == ([8, 8] if task == 'pose' else [4, 4])
  with learner_lib.ActiveLearner(_marked_folder_config(root, task, 32), small) as learner:
    assert learner.marked_label(learner.pool.index_of('unlabeled/p0.png')).marks == marks.tolist()
    labels_file = str(tmp_path / 'labels.jsonl')
    open(labels_file, 'w').write(label.labels_text(learner, '.jsonl')[0])
  # Twice the size: pixel centres at (x + 0.5) * 2 - 0.5, made into the larger task's label.
  big = _marked_folder_config(root, task, 64)
  scaled = marks.copy()
  scaled[:, :2] = (marks[:, :2] + 0.5) * 2 - 0.5
  if task == 'pose':
    scaled[12:] = 0
  for carried in (os.path.join(small, 'answers.jsonl'), labels_file):
    with learner_lib.ActiveLearner(big, str(tmp_path / 'big')) as learner:
      geom = annotate.geometry(learner.dataset, big.data)
      indices, labels, problems, _ = label.read_answers(carried, learner)
    assert [learner.pool.ids[i] for i in indices] == ['unlabeled/p0.png']
    if task == 'pose':
      xy = scaled[:, :2] * 16 / 64   # heatmap pixels: x * 16 / 64; weighted where inside
      expected = np.c_[xy, scaled[:, 2] * np.all((xy >= -0.5) & (xy < 15.5), axis=1)]
      assert expected[0, 2] == 0 and expected[1:12, 2].all()   # past the heatmap's last centre
      np.testing.assert_allclose(labels[0], expected, atol=1e-12)
      assert problems == [f'{carried}, line 2: its label is drawn in a 8 x 8 map of a 32 x 32 '
                          'input, this task\'s in 16 x 16 of 64 x 64, and no "joints" say where '
                          'its marks lie: give them (input pixels) in place of the label, or '
                          'label the sample again.']
    else:
      from l2r_jax.data import density  # pylint: disable=g-import-not-at-top
      np.testing.assert_allclose(labels[0], 100.0 * density.density_map(scaled, (8, 8), 1.0, 8),
                                 rtol=1e-6, atol=1e-9)
      assert not problems
    assert labels[0] == geom.label(scaled)
  # A label in a message: what a person can read (a map's head count, not its values).
  shown = learner.pool.show(labels[0])
  assert shown == ('11 of 16 joints placed, at ' if task == 'pose' else
                   'a density map of 7.00 heads') + (shown[27:] if task == 'pose' else '')


def test_a_carried_label_without_marks_is_taken_only_where_it_lies_as_it_did():
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top

  def carried(task, input_hw, label_hw, record):
    geometry = annotate.Geometry(task, input_hw, label_hw)
    return answers.Marks(annotate.MARK_FIELDS[task], lambda: geometry).carried(record)

  record = {'label': [[1.0]], 'input_hw': [32, 32], 'label_hw': [4, 4]}
  # A density map of the same size is the same picture's, whatever the input's size (stride).
  assert carried('crowd', (64, 64), (4, 4), record) == ([[1.0]], None)
  assert carried('crowd', (32, 32), (8, 8), record)[1].startswith(
      'its label is drawn in a 4 x 4 map of a 32 x 32 input, this task\'s in 8 x 8 of 32 x 32')
  # A heatmap's pixels move with the input's (x * heatmap / input): the same sizes only.
  assert carried('pose', (32, 32), (4, 4), record) == ([[1.0]], None)
  assert carried('pose', (64, 64), (4, 4), record)[1] is not None
  assert carried('pose', (32, 32), (4, 4), dict(record, input_hw=[32]))[1] == (
      '"input_hw" and "label_hw" must be [height, width], whole numbers.')


def test_a_labels_file_edited_or_trimmed_keeps_what_the_person_meant(tmp_path):
  """A label edited in an exported file wins over the marks it was made from (same sizes); marks
  left without their label still say the input they were placed on; a mark on the right edge is
  on the picture."""
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  geometry = annotate.Geometry('crowd', (64, 64), (8, 8), make=lambda m: np.full((8, 8), len(m)))
  marks = answers.Marks('heads', lambda: geometry)
  made = {'label': np.full((8, 8), 1.0).tolist(), 'input_hw': [64, 64], 'label_hw': [8, 8],
          'heads': [[3.0, 4.0]]}
  assert marks.carried(made)[0].marks == [[3.0, 4.0]]          # as made: the marks kept
  edited = dict(made, label=np.full((8, 8), 2.0).tolist())
  assert marks.carried(edited) == (edited['label'], None)      # edited: the edit wins
  line = json.dumps({'index': 0, 'heads': [[10.0, 20.0]], 'input_hw': [32, 32]})
  answer, problem = answers.answer_from_json(line, 'f.jsonl', 1, marks)
  assert problem is None and answer.label.marks == [[20.5, 40.5]]   # placed on 32 x 32
  assert geometry.label([[63.5, 0.0]]).marks[0][0] < 63.5       # the edge, kept inside
