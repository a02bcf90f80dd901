r"""Labels from a person: the current query out as files, the answers back in, the labels and the
model out.

    python -m l2r_jax.label query  --config=my_config.py --workdir=runs/mine [--n=50]
    python -m l2r_jax.label answer --config=my_config.py --workdir=runs/mine --answers=FILE [--relabel]
    python -m l2r_jax.label status --config=my_config.py --workdir=runs/mine
    python -m l2r_jax.label export --config=my_config.py --workdir=runs/mine --to=FOLDER
    python -m l2r_jax.label labels --config=my_config.py --workdir=runs/mine --to=labels.csv
    python -m l2r_jax.label serve  --config=my_config.py --workdir=runs/mine [--port=8765]

``query`` trains on the labels known (if any came, or were corrected, since the last round), asks
the strategy (:class:`~l2r_jax.learner.ActiveLearner`; what is left of an unanswered query is
asked again) and writes ``WORKDIR/query/``:

* ``query.csv``: one row per queried sample, in the strategy's order: ``index`` (in the pool),
  ``id`` (the sample's id, :mod:`l2r_jax.pool`: its file, relative to the dataset's root, where
  it has one), ``file`` (its full path), ``score`` (the strategy's, for one that queries the
  highest scores; the column's name says what it is), from the second round ``predicted`` and
  ``probability`` (the model's class for the sample: a label to confirm), and an empty ``label``
  column to fill in: a class name or index for classification, a JSON array for pose joints
  ``[K, 3]`` or a density map ``[H, W]`` (or, in a ``joints`` or ``heads`` column instead, the
  marks in input pixels: below). UTF-8 with a byte-order mark, so that spreadsheets read
  it as such. A ``query.csv`` holding labels typed in and not taught is never written over;
* ``contact_sheet.png``: the queried images side by side, each with its index, score and the
  model's guess.

``answer`` reads answers back (:func:`l2r_jax.answer_files.read_file`), as that table, saved by a
spreadsheet or a tool (rows whose ``label`` is empty are skipped: a query may be answered in
parts), or as JSON lines ``{"index": ..., "label": ...}`` (or ``"id"`` instead of ``"index"``;
another workdir's ``answers.jsonl`` is such a file, its answers mapped by id), and teaches them.
A pose's answer may give its joints and a crowd's its heads instead of the label, as a person or
another tool marks them, in input pixels (pixel centres at integers): a ``joints`` column or field
``[[x, y, visible], ...]`` (one per joint, in the dataset's order), a ``heads`` one
``[[x, y], ...]``; they become labels as the labeling page makes them (:mod:`l2r_jax.annotate`);
answers for samples outside the current query are taught with a note that lists them. Lines that
cannot be read, unknown ids, indices outside the pool or that disagree with the id, samples
answered twice or labeled already with another label, and labels that are not the task's are
refused, one line per problem, and then nothing of the file is taught; an answer equal to the
label already taught is skipped, so a file can be given again. ``--relabel``: the file's labels
win: labels known that it changes are corrected, samples without one taught, the rest skipped (a
Label Studio project exported whole after an answer in it was edited). Nothing taught is ever
lost (``WORKDIR/answers.jsonl``). Each command prints the next one to type, with every flag and
override given.

``query --format=label-studio`` also writes the query as Label Studio tasks and the labeling
config to paste, and ``answer`` reads Label Studio's JSON export (:mod:`l2r_jax.label_studio`).
``serve`` answers on a local web page instead: the queried images, the model's guesses, the joints
or heads placed by clicks, the round trained and the next query shown (:mod:`l2r_jax.serve`); its
answers pass the same checks and land in the same log.

``status`` prints the labels, the rounds, the pending query, the test metric and the stopping
signal's agreement per round (:mod:`l2r_jax.stopping`); while another process holds the workdir
(a round training), who holds it and what its files say, nothing written. ``export`` writes the
last round's model to a folder that :func:`l2r_jax.load_model` reads anywhere
(:mod:`l2r_jax.export`). ``labels`` writes every label known, corrections applied, and the
samples set aside, one per sample in the pool's order, with where each came from (given,
answered, corrected, set aside): a ``.csv`` table (classification) or ``.jsonl``
(:func:`label_records`), which another workdir takes back as answers, by id.
"""
import difflib
import io
import json
import math
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Set, Tuple

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from l2r_jax import annotate
from l2r_jax import answer_files
from l2r_jax import answers as answers_lib
from l2r_jax import cli
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax import label_studio
from l2r_jax import learner as learner_lib
from l2r_jax import report
from l2r_jax import stopping
from l2r_jax import strategies as strategies_lib
from l2r_jax import tasks
from l2r_jax import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags, defined when it runs (importing this module for its functions defines
  none, so it imports beside other commands)."""
  config_flags.DEFINE_config_file('config', None, 'Experiment config file (one strategy).',
                                  lock_config=True)
  flags.DEFINE_string('workdir', None, 'The active learner\'s folder.')
  flags.DEFINE_integer('n', None, 'query: samples to ask (default config.al.budget; the first '
                       'query config.al.initial).', lower_bound=1)
  flags.DEFINE_string('answers', None, 'answer: a CSV (the query.csv, label filled in) or a JSON '
                      'lines file of answers.')
  flags.DEFINE_bool('relabel', False, 'answer: the file\'s labels win: labels known (taught or '
                    'given) that it changes are corrected, new ones taught; the log keeps the '
                    'answers corrected and the corrections.')
  flags.DEFINE_string('to', None, 'export: the new folder to write the model of the last round to '
                      '(l2r_jax.load_model reads it); labels: the file to write the labels to, '
                      '.csv or .jsonl.')
  flags.DEFINE_enum('format', 'csv', ['csv', 'label-studio'], 'query: also write the query as '
                    'Label Studio tasks and its labeling config (label-studio).')
  flags.DEFINE_string('image_url', None, 'query --format=label-studio: tasks show the image at '
                      'this URL followed by the sample\'s id (a folder served elsewhere); '
                      'default: the image inside the task, as a data: URI.')
  flags.DEFINE_integer('port', 8765, 'serve: the port (0: any free one).', lower_bound=0,
                       upper_bound=65535)
  flags.DEFINE_string('host', '127.0.0.1', 'serve: the address to listen on; anything but this '
                      'computer\'s own (127.0.0.1, ::1) lets others on the network label.')
  flags.mark_flags_as_required(['workdir'])   # --config too, but for status (main)


COLUMNS = answer_files.COLUMNS
SHEET_MAX = 100     # samples shown on a contact sheet


def write_query(learner, out_dir: str) -> Tuple[str, Optional[str]]:
  """``query.csv`` and (for image inputs) ``contact_sheet.png`` of the learner's pending query,
  in ``out_dir`` (the table written atomically); returns their paths (the sheet's None for
  inputs that are not images). Refused if either file, or inside the learner's workdir a folder on
  the way to them, is a symbolic link (:func:`l2r_jax.workdir.path_in`)."""
  rows = query_rows(learner)
  folder = _folder(learner, out_dir)
  path, sheet = (workdir_lib.path_in(folder, name) for name in ('query.csv', 'contact_sheet.png'))
  if os.path.lexists(path):
    _refuse_untaught(path, learner)
  os.makedirs(folder, exist_ok=True)
  answer_files.write_table(path, rows, {'score': score_meaning(learner.last_query['strategy'])})
  return path, contact_sheet(learner.dataset, rows, sheet)


def query_rows(learner) -> List[Dict[str, Any]]:
  """The pending query's samples as ``query.csv`` rows: ``index``, ``id``, ``file``, ``score``
  and an empty ``label``; from the second round, for classification, ``predicted`` and
  ``probability``."""
  ds, query = learner.dataset, learner.last_query
  if query is None:
    raise errors.LabelError('write_query: nothing is asked yet; query first.')
  pending = set(learner.pending.tolist())
  rows = []
  for k, index in enumerate(query['indices']):
    if index not in pending:
      continue
    score = None if query['scores'] is None else query['scores'][k]
    rows.append({'index': index, 'id': learner.pool.ids[index], 'file': _file(ds, index) or '',
                 'score': '' if score is None else f'{score:.6g}', 'label': ''})
    if ds.task in annotate.MARK_FIELDS:   # where a person gives the marks, input pixels
      rows[-1][annotate.MARK_FIELDS[ds.task]] = ''
  if rows and learner.rounds and ds.task == 'classification':
    predictions = learner.predict(ds.x_train[np.asarray([r['index'] for r in rows])],
                                  preprocessed=True)
    names = predictions.class_names or [str(c) for c in predictions.classes]
    for row, name, p in zip(rows, names, predictions.probabilities.max(-1)):
      row.update(predicted=name, probability=f'{p:.3f}')
  return rows


def score_meaning(strategy: str) -> str:
  """The score column's name, saying what the strategy's scores are."""
  if strategy == 'random' or strategy not in strategies_lib.REGISTRY:
    return 'score'
  if strategies_lib.get(strategy).loss_module is not None:
    return (f'score ({strategy}: predicted loss as a ranking score, the highest asked first; '
            'only its order means something, it may be negative)')
  return f'score ({strategy}: the highest asked first)'


def _refuse_untaught(path: str, learner) -> None:
  """Refuses to write over a ``query.csv`` holding labels (or marks) typed in and not taught yet,
  readable or not."""
  answers, unread = read_file(path, learner)
  whole = [problem for line, problem in unread if line == 0]
  if whole and not _blank(path):   # unreadable as a whole: whatever it holds is kept
    raise errors.LabelError(
        f'{whole[0]} It may hold labels typed in: fix it and teach them first (python -m '
        f'l2r_jax.label answer ... --answers={path}), or move the file away; a new query never '
        'writes over a file it cannot read.')
  unread = [line for line, _ in unread if line > 0]
  # A row that sets aside a sample set aside (or labeled) since was taken; another is typed in.
  answers, aside, _, _ = split_set_aside(answers, learner)
  unread += [i for i in aside if not learner.is_set_aside(i)]
  # A label the sample has held (taught from this file, then corrected, say) was taught.
  answers = [a for a in answers_lib.fold_corrections(answers)
             for found in [answers_lib.resolved(a, learner.pool)]
             if found is None or not learner.has_held(*found)]
  indices, problems = [], []
  if answers:
    indices, _, problems = answers_lib.check(answers, learner.pool, learner.dataset.y_train,
                                             answers_lib.FILE)
  typed = len(indices) + len(problems) + len(unread)
  if typed:
    raise errors.LabelError(
        f'{path} holds {typed} label(s) typed in and not taught: teach '
        f'them first (python -m l2r_jax.label answer ... --answers={path}), or move the file '
        'away; a new query never writes over them.')


def _blank(path: str) -> bool:
  """Whether the file at ``path`` is text holding nothing but white space."""
  text, _ = answer_files.file_text(path)
  return text is not None and not text.replace('\ufeff', '').strip()


def _folder(learner, out_dir: str) -> str:
  """``out_dir``, through the learner's workdir if it lies inside it (then refused if it, or a
  folder between, is a symbolic link)."""
  workdir = os.path.realpath(learner.workdir)
  inside = os.path.relpath(os.path.abspath(out_dir), workdir)
  if inside == os.pardir or inside.startswith(os.pardir + os.sep):
    return os.path.realpath(out_dir)
  return workdir_lib.path_in(workdir, inside)


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
  from l2r_jax.data import image_folder  # pylint: disable=g-import-not-at-top
  shown = rows[:SHEET_MAX]
  cols = min(10, len(shown))
  grid = math.ceil(len(shown) / cols)
  fig, axes = plt.subplots(grid, cols, figsize=(1.6 * cols, 1.9 * grid), squeeze=False)
  for ax in axes.flat:
    ax.axis('off')
  for ax, row in zip(axes.flat, shown):
    pixels = None
    if row['file']:
      try:  # decoded at about the size shown, turned and scaled as the loader reads it
        pixels = image_folder.thumbnail(row['file'])
      # Moved or damaged since the pool was listed (Pillow raises errors of many kinds): the
      # input it was read as.
      except Exception:  # pylint: disable=broad-except
        pass
    if pixels is None:
      try:
        x = np.asarray(ds.x_train[int(row['index'])], np.float32)
      except errors.Refusal:  # its file cannot be read either: the cell says so
        ax.set_title(f'{row["index"]}\n(unreadable)', fontsize=7)
        continue
      pixels = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
      pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    ax.imshow(pixels, cmap='gray' if pixels.ndim == 2 else None)
    guess = f'\n{row["predicted"]} {row["probability"]}' if row.get('predicted') else ''
    ax.set_title(f'{row["index"]}' + (f'\n{row["score"]}' if row['score'] else '') + guess,
                 fontsize=7)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format='png', dpi=100)
  plt.close(fig)
  workdir_lib.write_atomic(path, png.getvalue())
  return path


def read_answers(path: str, learner, correcting: bool = False
                 ) -> Tuple[List[int], List[Any], List[str], Set[int]]:
  """``(indices, labels, problems, corrections)`` from an answers file
  (:func:`l2r_jax.answer_files.read_file`), as :func:`checked` gives them."""
  answers, problems = read_file(path, learner)
  return checked(answers, problems, learner, correcting)


def read_file(path: str, learner):
  """:func:`l2r_jax.answer_files.read_file`, a JSON array read as Label Studio's export, a pose's
  joints or a crowd's heads (input pixels) made into labels as the labeling page makes them."""
  def geometry():
    return annotate.geometry(learner.dataset, learner.config.data)

  def export(tasks, problems, where):
    return label_studio.read_export(tasks, problems, where, geometry(),
                                    label_studio.class_names(learner.dataset))

  field = answers_lib.MARK_FIELDS.get(learner.dataset.task)
  marks = None if field is None else answers_lib.Marks(field, geometry)
  return answer_files.read_file(path, json_array=export, marks=marks)


def checked(answers, problems, learner, correcting: bool = False
            ) -> Tuple[List[int], List[Any], List[str], Set[int]]:
  """``(indices, labels, problems, corrections)`` of answers read (from a file, or the labeling
  page) and the problems met reading them: the one check every answer from a person passes
  (:func:`l2r_jax.answers.check`). The answers that can be taught (``correcting``: the file's
  labels win, :func:`l2r_jax.answers.check`), a line per problem in the file's order, and the
  indices among them that a carried log's corrections of labels the dataset gave correct (its
  corrections of its own answers are folded into them); answers equal to a label known already
  are left out."""
  answers = answers_lib.fold_corrections(answers)
  plain = [a for a in answers if correcting or not a.correction]
  fixes = [a for a in answers if not correcting and a.correction]
  pool, known = learner.pool, learner.dataset.y_train
  indices, labels, more = answers_lib.check(plain, pool, known, answers_lib.FILE, correcting)
  fixed, fixed_labels, fix_problems = answers_lib.check(fixes, pool, known, answers_lib.FILE,
                                                        correcting=True)
  taught = dict(zip(indices, (a.short for a in plain)))
  for answer, index in zip(fixes, fixed):   # a sample both answered and corrected: which wins?
    if index in taught:
      fix_problems.append((answer.line, f'{answer.where}, index {index}: answered twice (also '
                                        f'{taught[index]}).'))
  return (indices + fixed, labels + fixed_labels,
          answers_lib.in_order(problems + more + fix_problems),
          {i for i in fixed if learner.is_labeled(i)})


def teach_checked(learner, where: str, indices: List[int], labels: List[Any],
                  problems: List[str], corrections: Set[int] = frozenset(),
                  relabel: bool = False) -> Dict[str, Any]:
  """Teaches what :func:`checked` gave (``corrections``: corrects those indices; ``relabel``:
  corrects every label known), or refuses it whole if it met a problem; returns ``taught``,
  ``corrected``, ``outside`` (taught samples outside the current query) and ``left`` (the
  query's samples not answered yet)."""
  if problems:
    raise answers_lib.refusal(f'{where}: {answers_lib.count(len(problems))}; nothing of it was '
                              f'{"corrected" if relabel else "taught"}:', problems)
  # The file's labels win (relabel): those known corrected, new ones taught.
  new = [not (learner.is_labeled(i) if relabel else i in corrections) for i in indices]
  fixes = [(i, y) for i, y, n in zip(indices, labels, new) if not n]
  if fixes:
    learner.relabel([i for i, _ in fixes], [y for _, y in fixes])
  query = learner.last_query   # none yet (a new workdir given a carried log): no "outside"
  asked = None if query is None else set(query['indices'])
  fresh = [i for i, n in zip(indices, new) if n]
  # skip_taught: the same label given meanwhile, by another process or page.
  taught = learner.teach(fresh, [y for y, n in zip(labels, new) if n], skip_taught=True)
  return {'corrected': len(fixes), 'taught': taught,
          'outside': [] if asked is None else [i for i in fresh if i not in asked],
          'left': learner.pending.tolist()}


COMMANDS = ('query', 'answer', 'status', 'export', 'labels', 'serve')
# A command's flags, not the session's.
_OWN_FLAGS = ('n', 'answers', 'relabel', 'norelabel', 'to', 'format', 'image_url', 'port', 'host')


def next_command(command: str, argv: List[str], **flags_given: str) -> str:
  """``python -m l2r_jax.label COMMAND`` with every flag and override of ``argv`` (the command line
  as typed: config, workdir, ``--config.*``) but those of one command, then ``flags_given``:
  what to type next, quoted for a POSIX shell."""
  kept, skip = [], False
  for arg in argv[1:]:
    if skip:
      skip = False
      continue
    name = arg.lstrip('-').split('=', 1)[0]
    if arg in COMMANDS:
      continue
    if arg.startswith('-') and (name in _OWN_FLAGS or name in flags_given):
      skip = '=' not in arg and name not in ('relabel', 'norelabel')
      continue
    kept.append(arg)
  kept += [f'--{k}={v}' for k, v in flags_given.items()]
  return ' '.join(['python -m l2r_jax.label', command, *map(shlex.quote, kept)])


def _query(learner, argv) -> None:
  folder = os.path.join(FLAGS.workdir, 'query')
  if os.path.lexists(os.path.join(folder, 'query.csv')):   # before a round trains
    _refuse_untaught(workdir_lib.path_in(_folder(learner, folder), 'query.csv'), learner)
  asked = learner.last_query
  indices = learner.query(FLAGS.n)
  if asked is not None and learner.last_query == asked and FLAGS.n is not None:   # what is left
    n = len(indices)
    print(f'--n={FLAGS.n} is not used: {n} sample{"s" * (n > 1)} of the last query '
          f'{"are" if n > 1 else "is"} not answered yet, and a new query comes once they '
          'are (answer them, then query again).')
  _, sheet = write_query(learner, folder)
  csv_path = os.path.join(folder, 'query.csv')   # as the person named the workdir
  query = learner.last_query
  print(f'{len(indices)} sample{"s" * (len(indices) != 1)} to label ({query["strategy"]}, after '
        f'{query["num_labeled"]} labels): {csv_path}' +
        (f'\ncontact sheet: {os.path.join(folder, os.path.basename(sheet))}' if sheet else '') +
        classes_line(learner.dataset))
  if FLAGS.format == 'label-studio':
    geom = annotate.geometry(learner.dataset, learner.config.data)
    tasks, config = label_studio.write(learner, geom, query_rows(learner),
                                       _folder(learner, folder), FLAGS.image_url)
    print(f'Label Studio: import {tasks} into a project whose labeling config is {config} (a task '
          f'skipped there is asked again; its choice "{answers_lib.SET_ASIDE_LABEL}" is for an '
          'image no class fits: never asked again); export it as JSON, then: '
          + next_command('answer', argv, answers='EXPORT.json'))
    return
  stale = workdir_lib.path_in(_folder(learner, folder), label_studio.TASKS_FILE)
  if query != asked and os.path.lexists(stale):   # an earlier query's tasks: never imported now
    os.remove(stale)
  field = annotate.MARK_FIELDS.get(learner.dataset.task)
  form = {'joints': '[[x, y, visible], ...], one per joint', 'heads': '[[x, y], ...], one per head'}
  fill = ('the label column' if field is None else f'the {field} column ({form[field]}, input '
          f'pixels; "{answers_lib.SET_ASIDE_LABEL}" in the label column for an image that '
          'cannot be marked)')
  aside = f' ("{answers_lib.SET_ASIDE_LABEL}" for an image no class fits: never asked again)'
  print(f'Fill in {fill}{aside if field is None else ""}, then: '
        + next_command('answer', argv, answers=csv_path))


def classes_line(dataset, shown: int = 30) -> str:
  """A line naming a classification task's classes with their indices, which a label may give
  instead of the name (empty for other tasks)."""
  if dataset.task != 'classification':
    return ''
  names = dataset.class_names or [str(k) for k in range(dataset.num_outputs)]
  listed = ', '.join(f'{k} {name}' for k, name in enumerate(names[:shown]))
  more = f', ... ({len(names) - shown} more)' if len(names) > shown else ''
  return f'\nclasses (a label is a name, or its index): {listed}{more}'


def sets_aside(answer, learner) -> bool:
  """Whether ``answer`` sets its sample aside: labeled :data:`~l2r_jax.answers.SET_ASIDE_LABEL`
  (any case) where no class has this name, or from a file of samples set aside."""
  return answer.label is answers_lib.SET_ASIDE or (
      isinstance(answer.label, str)
      and answer.label.strip().casefold() == answers_lib.SET_ASIDE_LABEL
      and learner.pool.class_index(answer.label) is None)


def split_set_aside(answers, learner
                    ) -> Tuple[List[Any], List[int], List[Any], List[int]]:
  """``(answers, indices, problems, labeled)``: the answers but those that set a sample aside
  (:func:`sets_aside`), the pool indices these name, a problem for each that names no sample, a
  sample labeled already, or one the file also answers; and the samples labeled here that a file
  of samples set aside names (they keep their labels: taught after being set aside)."""
  keep = [a for a in answers if not sets_aside(a, learner)]
  answered = {answers_lib.sample_index(a, learner.pool)[0] for a in keep}
  indices, problems, labeled = [], [], []
  for a in answers:
    if not sets_aside(a, learner):
      continue
    index, problem = answers_lib.sample_index(a, learner.pool)
    if problem is None and learner.is_labeled(index) and a.label is answers_lib.SET_ASIDE:
      labeled.append(index)
      continue
    if problem is None and learner.is_labeled(index):
      known = learner.pool.show(learner.dataset.y_train[index])
      problem = (f'index {index}: labeled already (as {known}); a label known is corrected '
                 '(--relabel), never set aside.')
    elif problem is None and (index in answered or index in indices):
      problem = f'index {index}: answered twice in the file.'
    if problem is not None:
      problems.append((a.line, f'{a.where}: {problem}'))
    else:
      indices.append(index)
  return keep, indices, problems, labeled


def answer_file(learner, path: str, relabel: bool = False) -> Dict[str, Any]:
  """Teaches the answers in the file at ``path`` (:func:`read_file`) and sets aside the samples it
  sets aside, or refuses it whole (``relabel``: the file's labels win, those known corrected;
  what it sets aside is left out). Returns :func:`teach_checked`'s counts, with ``read`` (the
  answers the file holds), ``set_aside`` (the samples set aside), ``kept`` (samples a file of samples set aside names that have labels
  here, which they keep) and ``aside_left_out`` (answers setting a sample aside, left out under
  ``relabel``)."""
  answers, problems = read_file(path, learner)
  read = len(answers)
  aside, kept, left_out = [], [], []
  if relabel:   # corrections change labels known; a sample set aside has none
    left_out = [a for a in answers if sets_aside(a, learner)]
    answers = [a for a in answers if not sets_aside(a, learner)]
  else:
    answers, aside, more, kept = split_set_aside(answers, learner)
    problems = problems + more
  done = teach_checked(learner, path, *checked(answers, problems, learner, relabel),
                       relabel=relabel)
  if aside:
    learner.set_aside(aside)
    done['left'] = learner.pending.tolist()
  return dict(done, set_aside=aside, kept=kept, aside_left_out=len(left_out), read=read)


def _answer(learner, argv) -> None:
  done = answer_file(learner, FLAGS.answers, FLAGS.relabel)
  if not done['read']:
    print(f'note: {FLAGS.answers} holds no answer yet: every row\'s label is empty (a label goes '
          'in the "label" column), or no task of an export is annotated.', file=sys.stderr)
  if done['aside_left_out']:
    print(f'note: the {done["aside_left_out"]} sample(s) the file sets aside are left out '
          '(--relabel corrects labels); give the file without --relabel to set them aside.',
          file=sys.stderr)
  aside, kept = done['set_aside'], done['kept']
  if aside:
    print(f'{len(aside)} set aside (never asked again): {_listed(aside, learner)}')
  if kept:
    print(f'{len(kept)} of the samples set aside in the file have labels here (taught since '
          f'they were set aside), which they keep: {_listed(kept, learner)}')
  outside = done['outside']
  if outside:
    print(f'note: {len(outside)} of the answers are for samples outside the current query '
          f'(taught all the same): {_listed(outside, learner)}', file=sys.stderr)
  if FLAGS.relabel:
    new = (f', {done["taught"]} new label{"" if done["taught"] == 1 else "s"} taught'
           if done['taught'] else '')
    print(f'{done["corrected"]} label{"" if done["corrected"] == 1 else "s"} corrected{new} '
          f'({learner.status()["corrections"]} corrections in all); the next round trains on '
          'them: ' + next_command('query', argv))
    return
  left = done['left']
  taught = f'{done["taught"]} label{"" if done["taught"] == 1 else "s"} taught' + (
      f', {done["corrected"]} given label{"" if done["corrected"] == 1 else "s"} corrected as '
      'the file\'s corrections say' if done['corrected'] else '')
  print(f'{taught} ({len(learner.labeled[0])} in all); '
        + (f'{len(left)} of the query left to answer: {_listed(left, learner)}' if left else
           'the query is answered; to train and ask again: ' + next_command('query', argv)))


def _carry_set_aside_too(path: str, learner, argv) -> None:
  """Says how to carry the samples set aside too, when ``path`` is another workdir's log and
  that workdir set samples aside."""
  folder = os.path.dirname(os.path.abspath(path))
  kept = os.path.join(folder, answers_lib.SET_ASIDE_FILE)
  if (os.path.basename(path) != answers_lib.ANSWERS_FILE or not os.path.isfile(kept)
      or os.path.samefile(folder, learner.workdir)):
    return
  print(f'note: {folder} also sets samples aside; to carry them: '
        + next_command('answer', argv, answers=kept), file=sys.stderr)


LABEL_COLUMNS = ('index', 'id', 'file', 'label', 'source', 'correction', 'pool', 'file_sha256')
# Where a label comes from, in the labels written out: with the dataset, a person's answer, a
# correction (the last word on it); or the sample is set aside (no class fits).
SOURCES = ('given', 'answered', 'corrected', answers_lib.SET_ASIDE_LABEL)


def label_records(learner) -> List[Dict[str, Any]]:
  """Every pool sample whose label is known, or that is set aside, in the pool's order: the line
  the learner's log would hold for it (``index``, ``id``, ``label``, ``pool``, ``file_sha256``;
  ``"correction": true`` where it corrects the label the dataset gave), with ``file`` and its
  ``source`` (:data:`SOURCES`). Given back to ``label answer`` (a new workdir, a changed pool),
  these records teach the same labels and set aside the same samples, by id."""
  ds, pool = learner.dataset, learner.pool
  given = learner.given_labels
  had = ~data_lib.unknown_labels(ds.task, given)
  corrected = set(learner.corrected_samples.tolist())
  labels = dict(zip(*(a.tolist() for a in learner.labeled)))
  aside = set(learner.set_aside_samples.tolist())
  if pool.class_index(answers_lib.SET_ASIDE_LABEL) is not None:
    aside = set()   # a class has the name: the label would teach it
  out = []
  for i in sorted(set(labels) | aside):
    if i in aside:
      record = {'index': i, 'id': pool.ids[i], 'label': answers_lib.SET_ASIDE_LABEL,
                'pool': pool.fingerprint, 'source': answers_lib.SET_ASIDE_LABEL}
    else:
      y = ds.y_train[i]
      differs = bool(had[i]) and not np.array_equal(given[i], y)
      marked = learner.marked_label(i)   # the marks it was made from, if any, travel with it
      record = pool.record(i, y if marked is None else marked, correction=differs)
      record['source'] = ('corrected' if i in corrected and (differs or not had[i]) else
                          'given' if had[i] else 'answered')
    out.append(dict(record, file=_file(ds, i) or ''))
  return out


def _table_row(record: Dict[str, Any]) -> Dict[str, Any]:
  """A :func:`label_records` record as a row of the labels' table (:data:`LABEL_COLUMNS`)."""
  return dict(record, correction='true' if record.get('correction') else '',
              file_sha256=record.get('file_sha256', ''))


LABEL_FORMATS = ('.csv', '.jsonl')


def labels_text(learner, kind: str) -> Tuple[str, Dict[str, int]]:
  """:func:`label_records` as a ``.csv`` table (:data:`LABEL_COLUMNS`, as ``query.csv`` is
  written; classification) or ``.jsonl`` (JSON lines, every task), and the count of each
  source."""
  if kind == '.csv' and learner.dataset.task != 'classification':
    raise errors.ConfigError(f'labels: a {learner.dataset.task} label (an array) does not fit a '
                             'table\'s cell: give a .jsonl file.')
  records = label_records(learner)
  text = (answer_files.table_text([_table_row(r) for r in records], columns=LABEL_COLUMNS)
          if kind == '.csv' else
          ''.join(json.dumps(r) + '\n' for r in records))
  return text, {source: sum(r['source'] == source for r in records) for source in SOURCES}


def write_labels(learner, path: str) -> Dict[str, int]:
  """Writes :func:`labels_text` to ``path`` (named ``.csv`` or ``.jsonl``), atomically, replacing
  only a file of labels written before; returns the count of each source."""
  kind = os.path.splitext(path)[1].lower()
  if kind not in LABEL_FORMATS:
    raise errors.ConfigError(f'labels: --to={path}: give a file named .csv (a table, for a '
                             'spreadsheet) or .jsonl (JSON lines).')
  target = os.path.join(_folder(learner, os.path.dirname(path) or '.'), os.path.basename(path))
  if os.path.lexists(target) and not _labels_written(target):
    raise errors.ConfigError(f'labels: {target} exists and is not a file of labels this command '
                             'wrote: give a new file, or move it away; it is never written over.')
  text, counts = labels_text(learner, kind)
  try:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    workdir_lib.write_atomic(target, text)
  except OSError as e:
    raise errors.ConfigError(f'labels: {target} cannot be written ({e.strerror or e}): give '
                             'another --to.') from None
  return counts


def _labels_written(path: str) -> bool:
  """Whether the file at ``path`` is empty or one :func:`write_labels` wrote (its first row)."""
  text, problem = answer_files.file_text(path)
  if problem or text is None:
    return False
  first = text.replace('\ufeff', '').lstrip().split('\n', 1)[0].strip()
  if not first or first.startswith('index,id,file,label,source'):
    return True
  try:
    return set(json.loads(first)) >= {'index', 'id', 'label', 'source'}
  except (ValueError, TypeError, RecursionError):
    return False


def _labels(learner, argv) -> None:
  counts = write_labels(learner, FLAGS.to)
  aside = counts.pop(answers_lib.SET_ASIDE_LABEL)
  shown = ', '.join(f'{n} {source}' for source, n in counts.items() if n)
  print(f'{sum(counts.values())} labels ({shown or "none yet"})'
        + (f' and {aside} sample{"" if aside == 1 else "s"} set aside' if aside else '')
        + f' written to {FLAGS.to}; given to another workdir, they teach the same labels by id: '
        + next_command('answer', argv, workdir='NEW', answers=FLAGS.to))


def _untrained(learner) -> str:
  """The labels and corrections given since the last round trained, in words ('' for none)."""
  last = learner.results[-1] if learner.results else {}
  status = learner.status()
  labels = status['labeled'] - last.get('num_labeled', 0)
  fixes = status['corrections'] - last.get('corrections', 0)
  said = ([f'{labels} label{"" if labels == 1 else "s"}'] if labels > 0 else []) + (
      [f'{fixes} correction{"" if fixes == 1 else "s"}'] if fixes > 0 else [])
  return ' and '.join(said)


def _listed(indices: List[int], learner, shown: int = 20) -> str:
  items = [f'{i} ({learner.pool.ids[i]})' for i in indices[:shown]]
  return ', '.join(items) + (f', ... ({len(indices) - shown} more)' if len(indices) > shown else '')


def status_text(learner) -> str:
  """What ``label status`` prints: labels, rounds, the pending query, the metric per round and the
  stopping signal."""
  st = learner.status()
  aside = f', {st["set_aside"]} set aside' if st['set_aside'] else ''
  lines = [f'{learner.workdir}: {st["labeled"]} of {st["pool_size"]} pool samples labeled '
           f'({st["corrections"]} corrections{aside}), {_rounds(st["rounds"])} trained.']
  if st['pending']:
    lines.append(f'pending query: {len(st["pending"])} to answer: '
                 f'{_listed(st["pending"], learner)}')
  return '\n'.join(lines + _rounds_and_stop(st['results'], st['stop'], learner.dataset.task))


def _rounds(n: int) -> str:
  return f'{n} round{"" if n == 1 else "s"}'


def _rounds_and_stop(results: List[Dict[str, Any]], stop: Dict[str, Any], task: str
                     ) -> List[str]:
  """``status``'s lines for the rounds' records and the stopping signal."""
  lines = []
  for r in results:
    value = 'no test split' if r.get('value') is None else f'{r["metric"]} {r["value"]:.4f}'
    kappa = '' if r.get('kappa') is None else f', kappa {r["kappa"]:.4f}'
    lines.append(f'round {r["cycle"]}: {r["num_labeled"]} labels, {value}{kappa}')
  lines.append('stop? ' + ('; '.join(stop['stop']) if stop['stop'] else
                           'not yet' + (f' (mean kappa {stop["kappa_mean"]:.4f})'
                                        if stop['kappa_mean'] is not None else '')))
  return lines + [stopping.definition(task)]


def status_from_files(workdir: str, busy: Optional[str] = None) -> str:
  """What ``label status`` says from the workdir's files alone, read as they stand and nothing
  written (a line being written is left out): while another process holds the workdir (a round
  training, a page's submission), after ``busy`` (who holds it); or without the session's config
  and data (``--config`` not given). Labels given with the data are not counted: the files hold
  the answers."""
  log = workdir_lib.path_in(workdir, answers_lib.ANSWERS_FILE)
  records = report.read_records(workdir, scored=False) if os.path.isfile(
      workdir_lib.path_in(workdir, 'results.jsonl')) else []
  answered, corrections, taught = 0, 0, set()
  for line in (workdir_lib.read_text(log) if os.path.isfile(log) else '').splitlines():
    try:
      record = json.loads(line)
    except ValueError:
      continue
    if isinstance(record, dict):
      corrections += record.get('correction') is True
      answered += record.get('correction') is not True
      taught.add(record.get('index') if isinstance(record.get('index'), int) else None)
  aside = {s.get('index') for s in _json_field(workdir, answers_lib.SET_ASIDE_FILE, 'samples')
           if isinstance(s, dict) and isinstance(s.get('index'), int)} - taught
  query = _json_field(workdir, answers_lib.QUERY_FILE, 'indices')
  pending = [i for i in query if isinstance(i, int) and i not in taught and i not in aside]
  higher = dict(tasks.METRICS.values()).get(records[-1]['metric'], True) if records else True
  head = f'{busy} Meanwhile, as' if busy else f'{workdir}, as'
  lines = [f'{head} its files stand: {answered} answers and {corrections} corrections in '
           f'{answers_lib.ANSWERS_FILE}' + (f', {len(aside)} set aside' if aside else '')
           + f', {_rounds(len(records))} trained.']
  if pending:
    lines.append(f'pending query: {len(pending)} to answer (pool indices '
                 f'{", ".join(map(str, pending[:20]))}{", ..." if len(pending) > 20 else ""}).')
  task = _json_field(workdir, workdir_lib.IDENTITY_FILE, 'data', dict).get('task',
                                                                         'classification')
  return '\n'.join(lines + _rounds_and_stop(records, stopping.signal(records, higher), task))


def _json_field(workdir: str, name: str, field: str, kind: type = list) -> Any:
  """The ``field`` of the JSON file ``WORKDIR/name`` (a list, or another ``kind``) as it stands;
  empty where there is none, or it cannot be read (being replaced, say)."""
  path = workdir_lib.path_in(workdir, name)
  try:
    content = json.loads(workdir_lib.read_text(path)) if os.path.isfile(path) else {}
  except (OSError, ValueError):
    return kind()
  value = content.get(field) if isinstance(content, dict) else None
  return value if isinstance(value, kind) else kind()


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    given = ' '.join(argv[1:])
    close = difflib.get_close_matches(argv[-1], COMMANDS, n=1) if given else []
    print(f'l2r_jax.label: {f"{given!r} is not a command" if given else "no command given"}; '
          f'give one of {", ".join(COMMANDS)}' +
          (f' (did you mean {close[0]}?)' if close else '') + '. --help: every flag.',
          file=sys.stderr)
    sys.exit(2)
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  typed = list(sys.argv)
  with cli.one_line_refusals('l2r_jax.label'):
    if argv[1] == 'answer' and not FLAGS.answers:
      raise errors.ConfigError('answer: give --answers=FILE (the query.csv with its label column '
                               'filled in, or JSON lines).')
    if argv[1] == 'export' and not FLAGS.to:
      raise errors.ConfigError('export: give --to=FOLDER, a new folder for the model.')
    if argv[1] == 'labels' and not FLAGS.to:
      raise errors.ConfigError('labels: give --to=FILE.csv (a table) or FILE.jsonl (JSON lines).')
    if argv[1] in ('status', 'export', 'labels') and not os.path.isfile(
        os.path.join(FLAGS.workdir, workdir_lib.IDENTITY_FILE)):
      # A mistyped --workdir would otherwise start an empty session and report on it.
      raise errors.ConfigError(f'{argv[1]}: --workdir={FLAGS.workdir} holds no labeling session '
                               f'(no {workdir_lib.IDENTITY_FILE}): give the workdir of one, or '
                               'start one with label query.')
    if argv[1] == 'status' and FLAGS.config is None:
      print(status_from_files(FLAGS.workdir))
      return
    if FLAGS.config is None:
      raise errors.ConfigError(f'{argv[1]}: give --config=FILE, the config the session was '
                               'started with (label status alone reads a workdir without it).')
    if argv[1] == 'serve':
      from l2r_jax import serve  # pylint: disable=g-import-not-at-top
      serve.main(FLAGS.config, FLAGS.workdir, FLAGS.host, FLAGS.port)
      return
    try:
      learner = learner_lib.ActiveLearner(FLAGS.config, FLAGS.workdir)
    except errors.WorkdirInUse as e:
      if argv[1] != 'status':
        raise
      print(status_from_files(FLAGS.workdir, str(e)))
      return
    with learner:
      if argv[1] == 'query':
        _query(learner, typed)
      elif argv[1] == 'answer':
        _answer(learner, typed)
        _carry_set_aside_too(FLAGS.answers, learner, typed)
      elif argv[1] == 'status':
        print(status_text(learner))
      elif argv[1] == 'labels':
        _labels(learner, typed)
      else:
        path = learner.export(FLAGS.to)
        print(f'the model of round {learner.rounds - 1} exported to {path}: '
              f'l2r_jax.load_model({path!r}).predict([...files or inputs])')
        untrained = _untrained(learner)
        if untrained:
          print(f'note: {untrained} since that round are not in this model; to train a round '
                'on them, then export it: ' + next_command('query', typed), file=sys.stderr)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
