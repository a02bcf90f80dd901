r"""Labels from a person: the current query out as files, the answers back in.

    python -m l2r_jax.label query  --config=my_config.py --workdir=runs/mine [--n=50]
    python -m l2r_jax.label answer --config=my_config.py --workdir=runs/mine --answers=FILE

``query`` trains on the labels known (if any came since the last round), asks the strategy
(:class:`~l2r_jax.learner.ActiveLearner`; what is left of an unanswered query is asked again) and
writes ``WORKDIR/query/``:

* ``query.csv``: one row per queried sample, in the strategy's order: ``index`` (in the pool),
  ``id`` (the sample's file, relative to the dataset's root, where it has one), ``file`` (its
  full path), ``score`` (the strategy's, for one that queries the highest scores) and an empty
  ``label`` column to fill in: a class name or index for classification, a JSON array for pose
  joints ``[K, 3]`` or a density map ``[H, W]``;
* ``contact_sheet.png``: the queried images side by side, each with its index and score.

``answer`` reads answers back, as that CSV (rows whose ``label`` is empty are skipped: a query
may be answered in parts) or as JSON lines ``{"index": ..., "label": ...}`` (or ``"id"`` instead
of ``"index"``), and teaches them. Malformed lines, unknown ids, indices outside the pool,
samples answered twice or labeled already with another label, and labels that are not the task's
are refused, one line per problem, and then nothing of the file is taught; an answer equal to the
label already taught is skipped, so a file can be given again. Nothing taught is ever lost
(``WORKDIR/answers.jsonl``).
"""
import csv
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from l2r_jax import cli
from l2r_jax import errors
from l2r_jax import learner as learner_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags, defined when it runs (importing this module for its functions defines
  none, so it imports beside other commands)."""
  config_flags.DEFINE_config_file('config', None, 'Experiment config file (one strategy).',
                                  lock_config=True)
  flags.DEFINE_string('workdir', None, 'The active learner\'s folder.')
  flags.DEFINE_integer('n', None, 'query: samples to ask (default config.al.budget; the first '
                       'query config.al.initial).')
  flags.DEFINE_string('answers', None, 'answer: a CSV (the query.csv, label filled in) or a JSON '
                      'lines file of answers.')
  flags.mark_flags_as_required(['config', 'workdir'])


COLUMNS = ('index', 'id', 'file', 'score', 'label')
SHEET_MAX = 100     # samples shown on a contact sheet


def write_query(learner, out_dir: str) -> Tuple[str, Optional[str]]:
  """``query.csv`` and (for image inputs) ``contact_sheet.png`` of the learner's pending query,
  in ``out_dir``; returns their paths (the sheet's None for inputs that are not images)."""
  os.makedirs(out_dir, exist_ok=True)
  ds, query = learner.dataset, learner.last_query
  pending = set(learner.pending.tolist())
  rows = []
  for k, index in enumerate(query['indices']):
    if index not in pending:
      continue
    score = None if query['scores'] is None else query['scores'][k]
    rows.append({'index': index, 'id': _id(ds, index), 'file': _file(ds, index) or '',
                 'score': '' if score is None else f'{score:.6g}', 'label': ''})
  path = os.path.join(out_dir, 'query.csv')
  with open(path + '.tmp', 'w', newline='') as f:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(path + '.tmp', path)
  return path, contact_sheet(ds, rows, os.path.join(out_dir, 'contact_sheet.png'))


def _id(ds, index: int) -> str:
  return ds.pool_ids[index] if ds.pool_ids is not None else str(index)


def _file(ds, index: int) -> Optional[str]:
  if ds.pool_ids is None or ds.source_root is None:
    return None
  return os.path.join(ds.source_root, ds.pool_ids[index])


def contact_sheet(ds, rows: List[Dict[str, Any]], path: str) -> Optional[str]:
  """The first :data:`SHEET_MAX` queried samples as one image grid at ``path`` (source files where
  the dataset has them, else the inputs scaled to their range); None for inputs that are not
  images (``[H, W]`` or ``[H, W, 1 or 3]``)."""
  shape = tuple(ds.x_train.shape[1:])
  if not rows or not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))):
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  shown = rows[:SHEET_MAX]
  cols = min(10, len(shown))
  grid = math.ceil(len(shown) / cols)
  fig, axes = plt.subplots(grid, cols, figsize=(1.6 * cols, 1.9 * grid), squeeze=False)
  for ax in axes.flat:
    ax.axis('off')
  for ax, row in zip(axes.flat, shown):
    pixels = None
    if row['file']:
      try:
        with Image.open(row['file']) as image:
          pixels = np.asarray(image.convert('RGB'))
      except OSError:  # moved or unreadable since the pool was listed: the input it was read as
        pass
    if pixels is None:
      x = np.asarray(ds.x_train[int(row['index'])], np.float32)
      pixels = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
      pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    ax.imshow(pixels, cmap='gray' if pixels.ndim == 2 else None)
    ax.set_title(f'{row["index"]}' + (f'\n{row["score"]}' if row['score'] else ''), fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def read_answers(path: str, learner) -> Tuple[List[int], List[Any], List[str]]:
  """``(indices, labels, problems)`` from an answers file: CSV with ``label`` and ``index`` or
  ``id`` columns, or JSON lines. Problems name the line, in the file's order; answers equal to a
  label taught already are left out."""
  ds = learner.dataset
  ids = {_id(ds, i): i for i in range(learner.pool_size)}
  if not os.path.exists(path):
    return [], [], [f'--answers={path}: no such file.']
  entries, problems = [], []
  with open(path, newline='', encoding='utf-8-sig') as f:  # a spreadsheet's BOM, if any
    text = f.read()
  if path.endswith(('.jsonl', '.json')):
    for number, line in enumerate(text.splitlines(), 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        problems.append((number, f'line {number}: not JSON ({e.msg}).'))
        continue
      if not isinstance(record, dict) or 'label' not in record or not (
          'index' in record or 'id' in record):
        problems.append((number, f'line {number}: give {{"index": ..., "label": ...}} (or "id" '
                                 'for "index").'))
        continue
      entries.append((number, record.get('index'), record.get('id'), record['label']))
  else:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if 'label' not in columns or not ('index' in columns or 'id' in columns):
      return [], [], [f'{path}: a CSV of answers needs a header with a label column and an index '
                      f'or id column; it has {columns}.']
    for number, row in enumerate(reader, 2):
      if None in row or any(v is None for v in row.values()):
        problems.append((number, f'line {number}: {len(columns)} columns expected.'))
        continue
      label = row['label'].strip()
      if not label:
        continue  # not answered yet
      entries.append((number, row.get('index', '').strip() or None,
                      row.get('id', '').strip() or None, label))
  indices, labels, seen = [], [], {}
  taught = set(learner.labeled[0].tolist())
  for number, index, sid, label in entries:
    where = f'line {number}'
    i, problem = _index(index, sid, ids, learner.pool_size)
    if problem:
      problems.append((number, f'{where}: {problem}'))
      continue
    y, problem = _label(ds, label)
    if problem:
      problems.append((number, f'{where}, index {i}: {problem}'))
      continue
    if i in seen:
      problems.append((number, f'{where}: index {i} is answered already on line {seen[i]}.'))
      continue
    seen[i] = number
    problem = learner_lib.label_problem(ds, y)
    if problem:
      problems.append((number, f'{where}, index {i}: {problem}'))
      continue
    if i in taught:
      if np.array_equal(np.asarray(ds.y_train[i]), np.asarray(y, ds.y_train.dtype)):
        continue  # taught already, with this label
      problems += [(number, f'{where}, {problem}') for problem in learner.check_answers([i], [y])]
    indices.append(i)
    labels.append(y)
  return indices, labels, [text for _, text in sorted(problems, key=lambda p: p[0])]


def _index(index, sid, ids, pool_size) -> Tuple[Optional[int], Optional[str]]:
  if index is not None and str(index).strip() != '':
    try:
      i = int(str(index))
    except ValueError:
      return None, f'index {index!r} is not a whole number.'
    if not 0 <= i < pool_size:
      return None, f'index {i} is not in the pool (0 .. {pool_size - 1}).'
    return i, None
  if sid in ids:
    return ids[sid], None
  return None, f'id {sid!r} is not a pool sample.'


def _label(ds, label) -> Tuple[Any, Optional[str]]:
  """A label as the task keeps it: a class by name or index; a JSON array for regression."""
  if ds.task == 'classification':
    if isinstance(label, str):
      if ds.class_names is not None and label in ds.class_names:
        return list(ds.class_names).index(label), None
      try:
        return int(label), None
      except ValueError:
        names = (f' or a name of {[str(n) for n in ds.class_names]}' if ds.class_names is not None
                 else '')
        return None, f'label {label!r} is not a class (an index 0 .. {ds.num_outputs - 1}{names}).'
    return label, None
  if isinstance(label, str):
    try:
      label = json.loads(label)
    except json.JSONDecodeError:
      return None, 'label is not a JSON array.'
  return label, None


def main(argv):
  if len(argv) != 2 or argv[1] not in ('query', 'answer'):
    raise app.UsageError('Give one command: query or answer.')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    if argv[1] == 'answer' and not FLAGS.answers:
      raise errors.ConfigError('answer: give --answers=FILE (the query.csv with its label column '
                               'filled in, or JSON lines).')
    with learner_lib.ActiveLearner(FLAGS.config, FLAGS.workdir) as learner:
      if argv[1] == 'query':
        indices = learner.query(FLAGS.n)
        csv_path, sheet = write_query(learner, os.path.join(FLAGS.workdir, 'query'))
        query = learner.last_query
        print(f'{len(indices)} samples to label ({query["strategy"]}, after '
              f'{query["num_labeled"]} labels): {csv_path}' +
              (f'\ncontact sheet: {sheet}' if sheet else ''))
        config_file = config_flags.get_config_filename(FLAGS['config'])
        print('Fill in the label column, then: python -m l2r_jax.label answer '
              f'--config={config_file} --workdir={FLAGS.workdir} --answers={csv_path}')
      else:
        indices, labels, problems = read_answers(FLAGS.answers, learner)
        if problems:
          raise learner_lib.LabelError(
              f'{FLAGS.answers}: {len(problems)} problem{"s" * (len(problems) > 1)}; nothing of '
              'it was taught:\n' + '\n'.join(problems))
        learner.teach(indices, labels)
        left = len(learner.pending)
        print(f'{len(indices)} labels taught ({len(learner.labeled[0])} in all); '
              + (f'{left} of the query left to answer.' if left else
                 'the query is answered: `python -m l2r_jax.label query` trains and asks again.'))
  except errors.Refusal as e:
    print(f'l2r_jax.label: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
