"""Active learning on a pool without labels: the strategy asks, a person answers.

    learner = ActiveLearner(config, 'runs/mine', dataset)   # or config.data names the dataset
    indices = learner.query()              # trains on the labels known so far, then asks
    learner.teach(indices, labels)         # the answers, saved at once
    indices = learner.query()              # ...

A learner is one run of the experiment driver (:mod:`l2r_jax.experiment`) whose labels come from
:meth:`ActiveLearner.teach` instead of the dataset: the strategy ``config.strategies`` names (one)
and the seed ``config.seeds[0]``; the model, optimisers, schedule (``config.train``), the subset a
query is chosen from (``config.al.subset``) and the checkpoints are the driver's. A round trains
the model on every label known (the driver's cycle: the weights continue, the optimisers restart),
scores the test split if the dataset has one (its labels known), and checkpoints. The first query,
with no label known, is a random draw of ``config.al.initial``; later ones ``config.al.budget``
picks of the strategy (or ``n``).

The workdir holds, beside the driver's ``checkpoints/``, ``results.jsonl`` and ``tensorboard/``:

* ``answers.jsonl``: every answer taught, one JSON line ``{"index", "id", "label", "pool"}`` (and
  ``"file_sha256"``, the content of an image folder's file) each
  (:mod:`l2r_jax.answers`: the sample's index and id, its label, the pool it was made for),
  appended in one synced write before :meth:`~ActiveLearner.teach` returns; no answer is
  overwritten. A last line cut off by a kill is moved to ``answers.cut_off.txt``; any other line
  that cannot be read refuses the learner, naming it.
* ``query.json``: the last query. Until all of it is answered, :meth:`~ActiveLearner.query`
  returns what is left of it (a process may stop between a query and its answers, and the next
  one asks the same), so an interrupted session ends with the labeled set of an uninterrupted one.
* ``experiment.json``: the config and a description of the pool, its given labels, the strategy and
  the seed (:func:`describe_pool`); another is refused (:mod:`l2r_jax.workdir`).

Labels by task are those of :class:`l2r_jax.data.Dataset`: a class index (taught also by its name,
where the dataset names its classes); joints ``[K, 3]``;
a density map ``[H, W]``. Pool samples whose label is known from the start (a dataset may give
some, marking the rest unknown: -1 or NaN) count as taught before the first query.
"""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import ml_collections
import numpy as np

from l2r_jax import annotate
from l2r_jax import answer_files
from l2r_jax import answers as answers_lib
from l2r_jax import data as data_lib
from l2r_jax import experiment as experiment_lib
from l2r_jax import export as export_lib
from l2r_jax import inference
from l2r_jax import pool as pool_lib
from l2r_jax import protocol
from l2r_jax import report
from l2r_jax import runs
from l2r_jax import stopping
from l2r_jax import strategies as strategies_lib
from l2r_jax import validation
from l2r_jax import workdir as workdir_lib
# The answers' names, importable from here too (the learner's public API).
from l2r_jax.answers import ANSWERS_FILE  # pylint: disable=unused-import
from l2r_jax.answers import label_problem  # pylint: disable=unused-import
from l2r_jax.answers import QUERY_FILE  # pylint: disable=unused-import
from l2r_jax.errors import ConfigError
from l2r_jax.errors import DataNotFoundError
from l2r_jax.errors import LabelError


class ActiveLearner:
  """A model, a pool, the labels known so far and a strategy, persisted in ``workdir``.

  ``config``: an experiment config (``l2r_jax.defaults``) naming one strategy; ``dataset``: the
  :class:`~l2r_jax.data.Dataset` whose pool (``x_train``) is to be labeled, unknown labels marked
  (-1 classes, NaN regression targets; :func:`unlabeled_pool` makes one from inputs alone), or
  None to load ``config.data``.

  :meth:`query`, :meth:`teach` and :meth:`train` hold the workdir's lock while they work and
  first read back what the workdir holds (answers, the last query, the latest round), so several
  learners on one workdir, in one process or several (a notebook and ``python -m l2r_jax.label``),
  take turns without losing or mixing anything; one that works while another does is refused,
  naming it. :meth:`predict` and the properties read the learner as it last worked."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               dataset: Optional[data_lib.Dataset] = None):
    if len(config.strategies) != 1:
      raise ConfigError(f'config.strategies={tuple(config.strategies)}: an active learner queries '
                        "with one strategy; name it alone (e.g. config.strategies=('l2r',)).")
    name = config.strategies[0]
    if name in strategies_lib.REGISTRY and strategies_lib.get(name).reads_labels:
      raise ConfigError(f'config.strategies=({name!r},) reads the labels of the pool it queries '
                        '(a diagnostic of simulations); an active learner has none. Choose '
                        'another strategy.')
    self._workdir = validation.check_workdir(workdir)
    self._experiment = experiment_lib.make_experiment(config, dataset, simulation=False)
    ds = self._experiment.dataset
    if not isinstance(ds.y_train, np.ndarray):
      raise ConfigError('An active learner keeps the pool\'s labels in memory: give '
                        'Dataset.y_train as a numpy array (unknown labels marked).')
    pool_lib.check_class_names(ds)
    answers_lib.check_workdir(self._workdir)
    # Checked before the workdir is made: a refused learner leaves nothing behind.
    description = describe_pool(ds, name, config.seeds[0])
    ident = workdir_lib.check_identity(
        self._workdir, config, description, pool_changed=(
            'The pool changed (samples added, removed or renamed): its answers go with their '
            'samples into a new workdir, by id: python -m l2r_jax.label answer --config=... '
            f'--workdir=NEW --answers={os.path.join(self._workdir, answers_lib.ANSWERS_FILE)}.'),
        code=experiment_lib.own_code(config))
    if not data_lib.unknown_labels(ds.task, ds.y_train).any() and not os.path.exists(
        os.path.join(self._workdir, workdir_lib.IDENTITY_FILE)):
      where = (f': {os.path.join(ds.source_root, "unlabeled")} holds no image to label'
               if ds.source_root else '')
      raise DataNotFoundError(f'every one of the {ds.pool_size} pool samples has a label'
                              f'{where}; an active learner needs samples to ask about. Give '
                              'the pool its unlabeled samples.')
    self._pool = pool_lib.Pool(ds, description)
    self._log = answers_lib.AnswerLog(self._workdir, self._pool)
    with self._lock():
      workdir_lib.write_identity(self._workdir, ident)
      self._given = np.array(ds.y_train)             # the labels the dataset came with
      self._labels = np.array(ds.y_train)            # and the answers', filled in by _sync
      self._experiment = self._experiment._replace(dataset=ds._replace(y_train=self._labels))
      self._run = None
      self._sync()

  # -- what it holds ------------------------------------------------------------------------------

  @property
  def strategy(self) -> str:
    return self._run.state.strategy

  @property
  def dataset(self) -> data_lib.Dataset:
    """The dataset, its pool's labels as known now."""
    return self._experiment.dataset

  @property
  def pool_size(self) -> int:
    return self._experiment.dataset.pool_size

  @property
  def workdir(self) -> str:
    return self._workdir

  @property
  def config(self) -> ml_collections.ConfigDict:
    """The experiment config the learner runs (its ``data`` names the loader)."""
    return self._experiment.config

  @property
  def pool(self) -> pool_lib.Pool:
    """The pool as answers name its samples: ``pool.ids[i]``, ``pool.index_of(id)``."""
    return self._pool

  @property
  def labeled(self) -> Tuple[np.ndarray, np.ndarray]:
    """``(indices, labels)`` of every pool sample whose label is known, in the order taught."""
    order = np.asarray(self._order, np.int64)
    return order, self._labels[order]

  def marked_label(self, index: int) -> Optional['annotate.MarkedLabel']:
    """Pool sample ``index``'s label with the marks it was made from (a pose's joints, a crowd's
    heads, input pixels: the labeling page's, a file's or Label Studio's), or None where its
    label came otherwise (the dataset's, a label given as such)."""
    return self._marked.get(int(index))

  def is_labeled(self, index: int) -> bool:
    """Whether pool sample ``index``'s label is known."""
    return not self._unknown()[index]

  def has_held(self, index: int, label: Any) -> bool:
    """Whether pool sample ``index`` has held ``label`` (as :meth:`teach` takes it) at some time:
    given with the dataset, taught, or set by a correction."""
    held = [self._given[index]] if not data_lib.unknown_labels(
        self.dataset.task, self._given[index:index + 1])[0] else []
    held += self._held.get(index, [])
    value = self._kept(label)
    return value is not None and any(np.array_equal(h, value) for h in held)

  @property
  def given_labels(self) -> np.ndarray:
    """The labels the dataset came with (unknown ones marked), before any answer or correction."""
    return self._given.copy()

  @property
  def corrected_samples(self) -> np.ndarray:
    """The pool samples whose label a correction set (:meth:`relabel`), sorted."""
    return np.asarray(sorted(self._corrected), np.int64)

  @property
  def pending(self) -> np.ndarray:
    """The last query's indices not answered yet (empty when all are)."""
    query = self._read_query()
    if query is None:
      return np.zeros(0, np.int64)
    asked = np.asarray(query['indices'], np.int64)
    return asked[self._unknown()[asked] & ~np.isin(asked, self.set_aside_samples)]

  @property
  def set_aside_samples(self) -> np.ndarray:
    """The pool samples set aside (:meth:`set_aside`), sorted."""
    return np.asarray(sorted(self._aside), np.int64)

  def is_set_aside(self, index: int) -> bool:
    """Whether pool sample ``index`` is set aside (:meth:`set_aside`)."""
    return int(index) in self._aside

  @property
  def last_query(self) -> Optional[Dict[str, Any]]:
    """The last query as saved: ``indices``, ``scores`` (None for a strategy without, like a
    random draw or core-set's greedy picks), the ``strategy`` and the ``round`` it followed."""
    return self._read_query()

  @property
  def rounds(self) -> int:
    """Rounds of training done (each on the labels known at its start)."""
    return self._run.state.cycle + 1

  @property
  def results(self) -> List[Dict[str, Any]]:
    """Per round: labels, and the test metric if the dataset has a test split."""
    return list(self._run.state.results)

  # -- asking and teaching ------------------------------------------------------------------------

  def query(self, n: Optional[int] = None) -> np.ndarray:
    """Pool indices to label next: what is left of the last query if it is not all answered;
    otherwise, after training on the labels known (if any came since the last round), the
    strategy's ``n`` picks (default ``config.al.budget``; with no label known, a random draw of
    ``config.al.initial``). Saved in ``query.json`` before it returns."""
    with self._lock():
      self._sync()
      pending = self.pending
      if len(pending):
        return pending
      config, al = self._experiment.config, self._run.state
      first = not self._order
      unlabeled = int(self._unknown().sum()) - len(self._aside)
      if not unlabeled:
        aside = f' or set aside ({len(self._aside)})' if self._aside else ''
        raise LabelError(f'query: all {self.pool_size} pool samples are labeled{aside}; nothing '
                         'is left to ask.')
      given, fix = f'n={n!r}', 'ask for that many (label query --n, or query(n))'
      if n is None:
        field = 'initial' if first else 'budget'
        n, given = config.al[field], f'config.al.{field}={config.al[field]}'
        fix = (f'ask for a number (label query --n, or query(n)), or set config.al.{field} '
               'within that with a new workdir (it is a field of the experiment the workdir '
               'holds)')
      most = unlabeled if first or config.al.subset is None else min(unlabeled, config.al.subset)
      if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= most:
        raise LabelError(f'{given}: a query asks for 1 .. {most} samples (the pool samples '
                         f'without a label: {unlabeled}; at most config.al.subset='
                         f'{config.al.subset}, the random subset a query is chosen from): {fix}.')
      if first:   # a random draw (the same as a simulation's), passing over samples set aside
        draw = protocol.initial_labeled(al.seed, self.pool_size, self.pool_size)
        chosen, scores = draw[~np.isin(draw, self.set_aside_samples)][:int(n)], None
      else:
        self._train_locked()
        chosen, scores = experiment_lib.select(self._experiment, self._run.state, int(n),
                                               excluded=self.set_aside_samples)
      self._write_query(chosen, scores)
      return chosen

  def teach(self, indices: Sequence[int], labels: Sequence[Any], *,
            skip_taught: bool = False) -> int:
    """Adds the answers ``labels[i]`` for pool samples ``indices[i]`` (a class by its index or,
    where the dataset names its classes, its name), saved before it returns; returns how many were
    taught. Refused whole, with one line per problem, if any index is not a pool sample, appears
    twice, or is labeled already, or any label is not one of the task's; a failed write (a full
    disk) saves and teaches none of them. ``skip_taught``: an answer equal to the label known by
    then (taught meanwhile by another page or process) is left out, not refused, as a file's
    answers given again are."""
    with self._lock():
      self._sync()
      if skip_taught:
        given = [(i, y) for i, y in zip(indices, labels) if not self._taught_as(i, y)]
        indices, labels = [i for i, _ in given], [y for _, y in given]
      indices, labels, problems = self._check(indices, labels)
      if problems:
        raise answers_lib.refusal(f'{answers_lib.count(len(problems))} in the answers; none of '
                                  'them was taught:', problems)
      if indices:
        self._log.append(indices, labels)
      for i, y in zip(indices, labels):
        self._hold(i, y)
        self._order.append(i)
      self._aside -= set(indices)   # taught: it has its label
      return len(indices)

  def set_aside(self, indices: Sequence[int], aside: bool = True) -> int:
    """Sets pool samples ``indices`` aside: samples no class fits, or whose label cannot be told
    (a blurred photo). No query asks them again, and what is left of a query no longer waits for
    them; a sample set aside can still be taught (it then has its label). ``aside=False`` takes
    them back, to be asked again. Saved (``set_aside.json``) before it returns; refused whole, one
    line per problem, for an index that is not a pool sample or a sample labeled already. Returns
    how many changed."""
    with self._lock():
      self._sync()
      given, problems = list(indices), []
      for k, i in enumerate(given, 1):
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not (
            0 <= i < self.pool_size):
          problems.append(f'sample {k}: index {i!r} is not a pool sample (whole numbers 0 .. '
                          f'{self.pool_size - 1}).')
        elif not self._unknown()[i]:
          problems.append(f'sample {k}, index {i}: labeled already (as '
                          f'{self._pool.show(self._labels[i])}); a label known is corrected with '
                          'relabel, never set aside.')
      if problems:
        raise answers_lib.refusal(f'{answers_lib.count(len(problems))} in the samples to set '
                                  'aside; none of them was:', problems)
      chosen = {int(i) for i in given}
      now = self._aside | chosen if aside else self._aside - chosen
      if now != self._aside:
        answer_files.write_set_aside(self._workdir, self._pool, now)
      changed, self._aside = len(now ^ self._aside), now
      return changed

  def _taught_as(self, index: Any, label: Any) -> bool:
    """Whether pool sample ``index`` is labeled ``label`` already (False for anything that is not
    a pool index or a label of the task: the check says what)."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) or not (
        0 <= index < self.pool_size) or self._unknown()[index]:
      return False
    value = self._kept(label)
    return value is not None and bool(np.array_equal(self._labels[index], value))

  def _kept(self, label: Any) -> Optional[np.ndarray]:
    """``label`` as the task keeps it (a class given by its name as its index), or None if it is
    none of the task's."""
    if isinstance(label, str) and self.dataset.task == 'classification':
      index = self._pool.class_index(label) if self.dataset.class_names is not None else None
      return None if index is None else np.asarray(index, self._labels.dtype)
    try:
      return np.asarray(label, self._labels.dtype)
    except (TypeError, ValueError):
      return None

  def relabel(self, indices: Sequence[int], labels: Sequence[Any]) -> None:
    """Corrects the labels of pool samples ``indices`` (taught, or given by the dataset) to
    ``labels``, saved before it returns as corrections in the answer log (the answers they correct
    stay there: the log is the history). The next round trains on the corrected labels, also
    when no new label came. Refused whole, one line per problem, like :meth:`teach`."""
    with self._lock():
      self._sync()
      indices, labels, problems = self._check(indices, labels, correcting=True)
      if problems:
        raise answers_lib.refusal(f'{answers_lib.count(len(problems))} in the corrections; none '
                                  'of them was made:', problems)
      self._log.append(indices, labels, correction=True)
      for i, y in zip(indices, labels):
        self._hold(i, y)
      self._corrections += len(indices)
      self._corrected.update(int(i) for i in indices)

  def check_answers(self, indices: Sequence[Any], labels: Sequence[Any]) -> List[str]:
    """The problems that :meth:`teach` would refuse ``indices`` and ``labels`` for, one line
    each (empty: they can be taught)."""
    return self._check(indices, labels)[2]

  def _check(self, indices, labels, correcting: bool = False
             ) -> Tuple[List[int], List[Any], List[str]]:
    answers, problems = answers_lib.given(indices, labels)
    indices, labels, more = answers_lib.check(answers, self._pool, self._labels,
                                              answers_lib.TEACH, correcting)
    return indices, labels, answers_lib.in_order(problems + more + self._replaced(answers))

  def _replaced(self, answers) -> List[Tuple[int, str]]:
    """A problem for each answer whose sample's file holds another content than when the pool
    was loaded (a file replaced under the same name while a session is open): which picture it
    answers cannot be told, and the log records the content it labels."""
    ds = self.dataset
    if ds.pool_file_sha256 is None or ds.source_root is None:
      return []
    from l2r_jax.data import image_folder  # pylint: disable=g-import-not-at-top  (Pillow)
    out = []
    for answer in answers:
      i = answer.index
      if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not (
          0 <= i < self.pool_size):
        continue    # refused by the check
      path = os.path.join(ds.source_root, ds.pool_ids[i])
      try:
        now = image_folder.file_sha256(path)
      except OSError as e:
        now = f'unreadable: {e.strerror or e}'
      if now != ds.pool_file_sha256[i]:
        out.append((answer.line, f'{answer.where}, index {i}: {ds.pool_ids[i]!r} holds another '
                                 f'file than when the pool was loaded (content '
                                 f'{ds.pool_file_sha256[i]} then, {now} now): which picture '
                                 'the answer is for cannot be told. Start again (the pool is '
                                 'read anew), then answer it.'))
    return out

  def refresh(self) -> None:
    """Reads back what the workdir holds: the answers and rounds another process (a second page,
    a command line) added since this learner last worked. Every method that changes or uses them
    does so first; :attr:`labeled`, :attr:`pending` and the like show them after this."""
    with self._lock():
      self._sync()

  def train(self) -> Optional[Dict[str, Any]]:
    """A round of training on every label known, if any came since the last round (else
    nothing); its result record (``value``: the test metric, None without a test split)."""
    with self._lock():
      self._sync()
      return self._train_locked()

  def model(self) -> export_lib.ExportedModel:
    """The model of the last round, as :func:`l2r_jax.load_model` gives back an export of it."""
    if self.rounds == 0:
      raise LabelError('the model has not trained yet: answer a query, then train (label query '
                       'trains before it asks again; in Python, teach() then train()).')
    r = self.results[-1]
    return export_lib.from_training(
        self._experiment.config, self.dataset, self._run.state.train_state.target,
        {'workdir': self._workdir, 'strategy': self.strategy, 'round': r['cycle'],
         'num_labeled': r['num_labeled'], 'metric': r['metric'], 'value': r['value']})

  def predict(self, x: Any, preprocessed: bool = False) -> export_lib.Predictions:
    """What the current model predicts on ``x``: a list of file paths, or inputs as a person has
    them (an image folder's: uint8 or [0, 1] pixels of its image size; other data: as the
    dataset's loader was given them), preprocessed as the training data was; ``preprocessed``:
    ``x`` is as the model takes it already (``learner.dataset.x_test``, say). Class probabilities
    and names, joints in input pixels, or counts and density maps
    (:class:`l2r_jax.export.Predictions`); inputs of another shape, or far from the training
    data's range, are refused in one line."""
    return self.model().predict(x, preprocessed, self._experiment.config.eval_batch_size)

  def predict_proba(self, x: Any, preprocessed: bool = False) -> np.ndarray:
    """``[n, classes]``: the class probabilities of :meth:`predict` (classification)."""
    if self.dataset.task != 'classification':
      raise LabelError(f'predict_proba: a {self.dataset.task} model predicts no classes; use '
                       'predict.')
    return self.predict(x, preprocessed).probabilities

  def export(self, path: str) -> str:
    """Writes the model of the last round to the new folder ``path``, to be used anywhere with
    :func:`l2r_jax.load_model` (its outputs equal :meth:`predict`'s); returns its path."""
    return export_lib.save(self.model(), path)

  def status(self) -> Dict[str, Any]:
    """Where the session stands: ``labeled``, ``corrections``, ``set_aside``, ``rounds``,
    ``pending`` (the query's indices not answered yet), ``results`` (a record per round: labels,
    the test metric, ``kappa`` with the round before) and ``stop``
    (:func:`l2r_jax.stopping.signal`)."""
    with self._lock():
      self._sync()
      return {'labeled': len(self._order), 'pool_size': self.pool_size,
              'corrections': self._corrections, 'set_aside': len(self._aside),
              'rounds': self.rounds,
              'pending': self.pending.tolist(), 'results': self.results,
              'stop': stopping.signal(self.results, self._experiment.task.higher_is_better)}

  # -- inside -------------------------------------------------------------------------------------

  def _sync(self) -> None:
    """Reads back what the workdir holds: the answers (after the dataset's own labels) and the
    latest round, which another learner may have added since this one last worked."""
    self._labels[...] = self._given
    self._order = [int(i) for i in np.flatnonzero(~self._unknown())]
    self._corrections, self._corrected = 0, set()
    self._held = {}   # every label the log has given each sample, for has_held
    self._marked = {}   # the marks each sample's label was made from, where it was
    for i, y, correction in self._log.read(self._given):
      self._hold(i, y)
      if correction:
        self._corrections += 1
        self._corrected.add(i)
      else:
        self._order.append(i)
    unknown = self._unknown()   # a sample set aside and taught since has its label
    self._aside = {i for i in answer_files.read_set_aside(self._workdir, self._pool) if unknown[i]}
    if self._run is not None:
      if runs.saved_cycle(self._run) == self._run.state.cycle:
        return
      self.close()
    config = self._experiment.config
    self._run = runs.open_run(self._experiment, self._workdir, config.strategies[0],
                              int(config.seeds[0]), initial=np.zeros(0, np.int64))

  def _hold(self, index: int, label: Any) -> None:
    """Sample ``index`` takes ``label`` (an answer or a correction, checked)."""
    self._labels[index] = np.asarray(label, self._labels.dtype)
    self._held.setdefault(index, []).append(self._labels[index].copy())
    self._marked[index] = label if isinstance(label, annotate.MarkedLabel) else None

  def _train_locked(self) -> Optional[Dict[str, Any]]:
    """A round on every label known, if labels or corrections came since the last one: its
    record, with ``corrections`` (made so far) and ``kappa`` (the stopping signal's agreement with
    the round before, :mod:`l2r_jax.stopping`); the workdir's report follows."""
    al = self._run.state
    # A label the last round trained on and the log no longer holds (its line cut off by a kill,
    # or removed by hand) is unknown again: the round trains without it, and it is asked again.
    kept = al.labeled[~self._unknown()[al.labeled]]
    trained_on = set(kept.tolist())
    new = [i for i in self._order if i not in trained_on]
    corrected = self._corrections > (al.results[-1].get('corrections', 0) if al.results else 0)
    if not new and not corrected and len(kept) == len(al.labeled):
      return None
    before = self._stop_set_classes(al) if al.results else None
    al = al._replace(labeled=np.concatenate([kept, np.asarray(new, np.int64)]))
    (al,), (history,) = experiment_lib.train_and_evaluate(self._experiment, [al])
    after = self._stop_set_classes(al)
    record = dict(al.results[-1], corrections=self._corrections, kappa=None if (
        before is None or after is None) else stopping.cohens_kappa(
            before, after, self.dataset.num_outputs))
    al = al._replace(results=al.results[:-1] + [record])
    self._run = self._run._replace(state=al)
    runs.save_run(self._experiment, self._workdir, self._run, history)
    self._write_report()
    return record

  def _stop_set_classes(self, al) -> Optional[np.ndarray]:
    """The classes the run's model predicts on the stop set (None: not classification)."""
    if self.dataset.task != 'classification':
      return None
    rows = protocol.stop_set(al.seed, self.pool_size, stopping.STOP_SET_SIZE)
    logits = inference.infer(al.train_state, self.dataset.x_train, rows,
                             self._experiment.config.eval_batch_size).prediction
    return np.asarray(logits).argmax(-1)

  def _write_report(self) -> None:
    """``summary.md`` (the metric per round, and the stopping signal) and ``curves.png``."""
    results = self.results
    signal = stopping.signal(results, self._experiment.task.higher_is_better)
    rows = ['| round | labels | corrections | metric | kappa |', '|---|---|---|---|---|']
    for r in results:
      value = '' if r.get('value') is None else f'{r["metric"]} {r["value"]:.4f}'
      kappa = '' if r.get('kappa') is None else f'{r["kappa"]:.4f}'
      rows.append(f'| {r["cycle"]} | {r["num_labeled"]} | {r.get("corrections", 0)} | {value} | '
                  f'{kappa} |')
    advice = ('**Stop?** ' + ('; '.join(signal['stop']) + ': more labels are unlikely to change '
                              'the model much.' if signal['stop'] else 'not yet.'))
    appendix = '\n'.join(['', '## Rounds', '', *rows, '', advice, '',
                          stopping.definition(self.dataset.task), ''])
    report.write([r for r in results if r.get('value') is not None], self._workdir, appendix)

  def _unknown(self) -> np.ndarray:
    return data_lib.unknown_labels(self._experiment.dataset.task, self._labels)

  def _lock(self):
    """The workdir's lock (:func:`l2r_jax.workdir.lock`), the workdir made if new."""
    if not os.path.isdir(self._workdir):
      os.makedirs(self._workdir)
    return workdir_lib.lock(self._workdir)

  def _read_query(self) -> Optional[Dict[str, Any]]:
    return answer_files.read_query(self._workdir, self._pool)

  def _write_query(self, chosen: np.ndarray, scores: Optional[np.ndarray]) -> None:
    answer_files.write_query(self._workdir, self._pool, {
        'round': self.rounds, 'strategy': self.strategy if self._order else 'random',
        'num_labeled': len(self._order), 'indices': np.asarray(chosen).tolist(),
        'scores': None if scores is None else np.asarray(scores, np.float64).tolist()})

  def close(self) -> None:
    """Releases the checkpoint manager and TensorBoard writer (a learner is also a context
    manager that does this on exit)."""
    runs.close_run(self._run)

  def __enter__(self) -> 'ActiveLearner':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def describe_pool(ds: data_lib.Dataset, strategy: str, seed: int) -> Dict[str, Any]:
  """What a learner's workdir records of its data beside the config (``experiment.json``'s
  ``data``): a workdir's answers and queries are its pool's, so another pool, other given labels
  or classes (:func:`l2r_jax.data.describe`), or another strategy or seed (whose rounds and
  queries are another run's) are refused; what it records of the samples fingerprints the pool in
  each answer (:func:`l2r_jax.pool.fingerprint`)."""
  return dict(data_lib.describe(ds), strategy=strategy, seed=int(seed))


def unlabeled_pool(x_pool: Any, num_outputs: int, task: str = 'classification',
                   x_test: Any = None, y_test: Optional[np.ndarray] = None,
                   label_shape: Tuple[int, ...] = (), **fields) -> data_lib.Dataset:
  """A :class:`~l2r_jax.data.Dataset` of a pool whose labels are all unknown (and a test split
  if given, labels known): for :class:`ActiveLearner`. ``label_shape``: a regression label's shape
  (pose ``(K, 3)``, crowd ``(H, W)``); ``fields``: the Dataset's ``task_params`` and
  ``test_meta``."""
  n = len(x_pool)
  if task == 'classification':
    y = np.full(n, -1, np.int32)
  else:
    y = np.full((n, *label_shape), np.nan, np.float32)
  if (x_test is None) != (y_test is None):
    raise ConfigError('unlabeled_pool: give x_test and y_test together (a test split is scored '
                      'with its labels), or neither.')
  if x_test is None:
    x_test = np.zeros((0, *x_pool.shape[1:]), np.float32)
    y_test = y[:0].copy() if task != 'classification' else np.zeros(0, np.int32)
  return data_lib.Dataset(x_pool, y, x_test, np.asarray(y_test), num_outputs, task, **fields)


__all__ = ['ActiveLearner', 'LabelError', 'label_problem', 'unlabeled_pool']
