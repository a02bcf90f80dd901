"""The active-learning driver: every configured strategy, seed and cycle, resumable.

    results = experiment.run(config, workdir)

For each (strategy, seed) a :class:`~l2r_jax.state.RunState` is threaded through the cycles.
Cycle 0 trains on the initial labeled set; every later cycle draws a random subset of the
unlabeled pool, lets the strategy pick ``budget`` samples from it, reveals their labels, continues
training the target (its optimisers restarted), and evaluates. The same seed gives every strategy
the same model initialisation, the same initial set and the same subset order. After every cycle
the run is saved (:mod:`l2r_jax.runs`: checkpoint, ``WORKDIR/results.jsonl``); running again on the
same workdir resumes at the first unfinished (strategy, seed, cycle). The forward passes are
:mod:`l2r_jax.inference`'s, a cycle's training :mod:`l2r_jax.cycle`'s.
"""
import contextlib
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from l2r_jax import augment as augment_lib
from l2r_jax import checkpoint
from l2r_jax import cycle as cycle_lib
from l2r_jax import data as data_lib
from l2r_jax import devices as devices_lib
from l2r_jax import inference
from l2r_jax import models as models_lib
from l2r_jax import optim
from l2r_jax import protocol
from l2r_jax import report
from l2r_jax import runs
from l2r_jax import strategies as strategies_lib
from l2r_jax import tasks as tasks_lib
from l2r_jax import train
from l2r_jax import validation
from l2r_jax import workdir as workdir_lib
from l2r_jax.models import pretrained
from l2r_jax.state import Experiment
from l2r_jax.state import initial_train_state
from l2r_jax.state import RunState
import sorter


def _make_trainers(config: ml_collections.ConfigDict, task: tasks_lib.Task,
                   augment: Optional[augment_lib.Augment], ranker: Optional[sorter.Ranker]):
  """Each configured strategy's loss module (with its optimiser) and trainer, one of each per
  distinct :class:`strategies.LossModule` (and one trainer for the strategies without)."""
  built = {}
  loss_modules, trainers = {}, {}
  for name in config.strategies:
    module = strategies_lib.get(name).loss_module
    if module not in built:
      schedules = (optim.schedule(config.train), optim.schedule(config.loss_module))
      options = dict(task_loss=task.loss, classifies=task.classifies, augment=augment,
                     learning_rates=schedules)
      if module is None:
        built[module] = None, train.Trainer(**options)
      else:
        built[module] = (
            (module.architecture(hidden=config.loss_module.hidden), optim.make(config.loss_module)),
            train.Trainer(
                ranking_loss=module.ranking_loss.bind(config, ranker),
                gradient=module.gradient(config),
                loss_module_updates=config.loss_module.get('updates_per_step', 1), **options))
    loss_modules[name], trainers[name] = built[module]
  return loss_modules, trainers


def make_experiment(config: ml_collections.ConfigDict,
                    dataset: Optional[data_lib.Dataset] = None,
                    simulation: bool = True) -> Experiment:
  """Checks the config, loads the data (``config.data``, unless ``dataset`` is given) and the
  ranker: everything before training. ``simulation``: the pool's labels are revealed when
  queried, so all must be known (:class:`~l2r_jax.learner.ActiveLearner` builds one with False)."""
  validation.check_config(config)
  return _make_checked_experiment(config, dataset, simulation)


def _make_checked_experiment(config: ml_collections.ConfigDict,
                             dataset: Optional[data_lib.Dataset] = None,
                             simulation: bool = True) -> Experiment:
  """:func:`make_experiment` for a config that :func:`validation.check_config` has passed."""
  if dataset is None:
    dataset = data_lib.load(config.data)
  else:
    dataset = data_lib.check_dataset(dataset, None)
  validation.check_against_data(config, dataset, simulation)
  task = tasks_lib.Task.for_dataset(dataset)
  validation.check_model(config, dataset, task)
  validation.check_loss_modules(config, dataset)
  loss_modules = [strategies_lib.get(s).loss_module for s in config.strategies]
  ranker = None
  if any(m is not None and m.ranking_loss.needs_ranker for m in loss_modules):
    ranker = sorter.get_ranker(config.loss_module.sorter, config.loss_module.sorter_len,
                               **validation.sorter_arguments(config.loss_module))
  target = (models_lib.make_target(config.model, dataset.num_outputs,
                                   bn_axis_name=devices_lib.AXIS),
            optim.make(config.train))
  backbone = None
  if config.model.get('pretrained'):
    backbone = pretrained.load_for_model(config.model.pretrained, target[0],
                                         jnp.asarray(dataset.x_train[np.arange(2)]))
    validation.check_normalisation(config, dataset, backbone)
  loss_modules, trainers = _make_trainers(config, task,
                                          augment_lib.make(task, config.get('augment')), ranker)
  prepared = {name: strategies_lib.get(name).prepare(config.get(name), dataset.x_train)
              for name in config.strategies if strategies_lib.get(name).prepare is not None}
  loop = cycle_lib.LOOPS[choose_loop(config.train.get('loop', 'auto'))]
  return Experiment(config, dataset, task, loop, target, loss_modules, trainers, backbone,
                    prepared)


def own_code(config: ml_collections.ConfigDict) -> Dict[str, Optional[str]]:
  """The fingerprint of each model, strategy and loss module of the user's own (not this
  package's, whose version the workdir records) that ``config`` runs
  (:func:`l2r_jax.workdir.code_fingerprint`), by what it is and its name."""
  parts = {f'model {config.model.name!r}': models_lib.TARGETS.get(config.model.name)}
  for name in config.strategies:
    strategy = strategies_lib.REGISTRY.get(name)
    if strategy is not None:
      parts[f'strategy {name!r}'] = strategy.score or strategy.select
      if strategy.loss_module is not None:
        parts[f'the loss module of {name!r}'] = strategy.loss_module.architecture
  return {what: workdir_lib.code_fingerprint(code) for what, code in parts.items()
          if code is not None and getattr(code, '__module__', '').split('.')[0] != 'l2r_jax'}


def choose_loop(loop: str, backend: Optional[str] = None) -> str:
  """``config.train.loop`` resolved: ``'auto'`` is ``'step'`` on CPUs, whose XLA runtime runs a
  scanned epoch several times slower (benchmarks/results/speed.md, case (b)), and ``'scan'`` on
  GPUs and TPUs, where it saves a dispatch per step. By backend, not by timing: the two loops agree
  only up to rounding, and a choice made by a clock would make results depend on machine load."""
  if loop != 'auto':
    return loop
  return 'step' if (backend or jax.default_backend()) == 'cpu' else 'scan'

def _during(run_state: RunState, cycle: int) -> str:
  """The run and cycle, as a refusal names them."""
  return f'{run_state.strategy}, seed {run_state.seed}, cycle {cycle}'


def _cycle_rngs(run_state: RunState, cycle: int) -> Tuple[jax.Array, jax.Array]:
  """The run's (training, query) keys of ``cycle``."""
  rng_train, rng_query = jax.random.split(jax.random.fold_in(run_state.rng, cycle))
  return rng_train, rng_query


def select(experiment: Experiment, run_state: RunState, budget: int,
           excluded: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """The strategy's ``budget`` picks for the run's next cycle, from a random subset of the
  unlabeled pool (``config.al.subset``; without the pool indices ``excluded``, an active
  learner's samples set aside), with the cycle's query key, and for a scoring strategy their
  scores (else None). ``true_loss`` (the diagnostic ``oracle_loss``) only where every pool label
  is known."""
  config, ds = experiment.config, experiment.dataset
  cycle = run_state.cycle + 1
  rng_query = _cycle_rngs(run_state, cycle)[1]
  candidates = run_state.unlabeled_mask(ds.pool_size)
  if excluded is not None:
    candidates[np.asarray(excluded, np.int64)] = False
  subset = protocol.pool_subset(run_state.seed, cycle, candidates, config.al.subset)
  labels_known = not data_lib.unknown_labels(ds.task, ds.y_train).any()
  during = _during(run_state, cycle)
  view = strategies_lib.SelectionState(
      infer=lambda idx: inference.infer(run_state.train_state, ds.x_train, idx,
                                        config.eval_batch_size, 'pool', during),
      labeled=run_state.labeled,
      inputs=lambda idx: inference.read_inputs(ds.x_train, np.asarray(idx), 'pool'),
      pool_size=ds.pool_size,
      options=config.get(run_state.strategy, ml_collections.ConfigDict()),
      true_loss=(lambda idx: inference.true_losses(experiment, run_state.train_state, idx,
                                                   during)) if labels_known else None,
      sample_predictions=lambda idx, passes, rng, reduce=None: inference.sample_predictions(
          run_state.train_state, ds.x_train, idx, passes, rng, config.eval_batch_size, reduce,
          'pool', during),
      prepared=experiment.prepared.get(run_state.strategy),
      infer_pretrained=None if experiment.backbone is None else (
          lambda idx: inference.infer(
              initial_train_state(experiment, run_state.strategy, jax.random.PRNGKey(0)),
              ds.x_train, idx, config.eval_batch_size, 'pool', during)))
  return strategies_lib.select(strategies_lib.get(run_state.strategy), view, subset, budget,
                               rng_query)


def query(experiment: Experiment, run_state: RunState) -> RunState:
  """The run with its next cycle's labeled set: after cycle 0, the strategy's picks
  (:func:`select`, ``config.al.budget`` of them) appended."""
  if run_state.cycle + 1 == 0:
    return run_state
  chosen, _ = select(experiment, run_state, experiment.config.al.budget)
  labeled = np.concatenate([run_state.labeled, chosen.astype(run_state.labeled.dtype)])
  return run_state._replace(labeled=labeled)


def run_cycle(experiment: Experiment, run_states: Sequence[RunState]
              ) -> Tuple[List[RunState], List[List[Dict[str, float]]]]:
  """Query (after cycle 0), reveal, train, evaluate: the next cycle of each run in
  ``run_states`` (one strategy, seeds at the same cycle; several train as one vmapped program),
  and the training histories. A record's ``wall_s`` is its own query and evaluation time plus its
  share of the training time."""
  spent = []
  queried = []
  for run_state in run_states:
    t0 = time.time()
    queried.append(query(experiment, run_state))
    spent.append(time.time() - t0)
  return train_and_evaluate(experiment, queried, spent)


def train_and_evaluate(experiment: Experiment, run_states: Sequence[RunState],
                       spent: Optional[Sequence[float]] = None
                       ) -> Tuple[List[RunState], List[List[Dict[str, float]]]]:
  """The next cycle's training of each run in ``run_states`` on its labeled set as it stands, and
  its evaluation on the test split (``value`` None without one); ``spent``: each run's query time,
  counted in its record's ``wall_s``."""
  config, ds = experiment.config, experiment.dataset
  cycle = run_states[0].cycle + 1
  spent = spent or [0.0] * len(run_states)
  rngs = [_cycle_rngs(run_state, cycle)[0] for run_state in run_states]
  t0 = time.time()
  trained, histories = cycle_lib.train_cycle(experiment, run_states, cycle, rngs)
  shared = (time.time() - t0) / len(run_states)
  out = []
  for run_state, m, own in zip(run_states, trained, spent):
    t0 = time.time()
    result = (inference.evaluate(experiment, m, config.eval_batch_size,
                                 _during(run_state, cycle))
              if len(ds.x_test) else
              {'metric': experiment.task.metric, 'value': None, 'spearman': None})
    record = {'strategy': run_state.strategy, 'seed': run_state.seed, 'cycle': cycle,
              'num_labeled': int(len(run_state.labeled)), **result,
              'wall_s': round(own + shared + time.time() - t0, 2)}
    out.append(run_state._replace(cycle=cycle, train_state=m,
                                  results=run_state.results + [record]))
  return out, histories


def run_seeds(experiment: Experiment, workdir: str, strategy: str,
              seeds: Sequence[int]) -> List[RunState]:
  """All cycles of ``strategy`` for each seed, resuming from their checkpoints; the seeds at the
  same cycle train together, as one vmapped program. The results are those of :func:`run_one`
  for each seed (up to floating-point rounding: a vmapped convolution sums in another order)."""
  opened = [runs.open_run(experiment, workdir, strategy, seed) for seed in seeds]
  n_cycles = experiment.config.al.cycles
  while True:
    todo = [i for i, r in enumerate(opened) if r.state.cycle + 1 < n_cycles]
    if not todo:
      break
    # Seeds resumed at different cycles: the furthest behind catch up first.
    behind = min(opened[i].state.cycle for i in todo)
    group = [i for i in todo if opened[i].state.cycle == behind]
    run_states, histories = run_cycle(experiment, [opened[i].state for i in group])
    for i, run_state, history in zip(group, run_states, histories):
      opened[i] = opened[i]._replace(state=run_state)
      runs.save_run(experiment, workdir, opened[i], history)
  for r in opened:
    runs.close_run(r)
  return [r.state for r in opened]


def run_one(experiment: Experiment, workdir: str, strategy: str, seed: int) -> RunState:
  """All cycles of one (strategy, seed), resuming from its checkpoints."""
  return run_seeds(experiment, workdir, strategy, [seed])[0]


def run(config: ml_collections.ConfigDict, workdir: str,
        after_run: Optional[Callable[[str, int], None]] = None) -> List[Dict[str, Any]]:
  """Runs (or resumes) the whole experiment; returns its result records and writes the report.

  The workdir must hold this experiment or none (``l2r_jax.workdir``: a run with a config that
  differs in a field that changes results is refused, as is a second run while one holds the
  workdir). The records and the report cover the runs of ``config`` only: strategies, seeds and
  cycles an earlier run of the same experiment added beyond it stay in ``results.jsonl``.
  ``after_run(strategy, seed)`` is called as each run has its every cycle in ``results.jsonl``
  (to copy its results elsewhere, say), on the first process."""
  validation.check_config(config)
  workdir = validation.check_workdir(workdir)
  primary = jax.process_index() == 0
  with contextlib.ExitStack() as held:
    # An existing workdir is locked and its identity checked before any data is loaded; a new one
    # is created only once every check has passed, so a refused run leaves nothing behind.
    locked = primary and os.path.isdir(workdir)
    if locked:
      held.enter_context(workdir_lib.lock(workdir))
    code, devices = own_code(config), jax.device_count()
    workdir_lib.check_identity(workdir, config, code=code, devices=devices)
    experiment = _make_checked_experiment(config)
    # The data too: a loader whose data changed under the same config is another experiment.
    data = data_lib.describe(experiment.dataset, test=True)
    ident = workdir_lib.check_identity(workdir, config, data, code=code, devices=devices)
    if primary:
      if not locked:   # another run may make the same new workdir meanwhile: one gets the lock
        os.makedirs(workdir, exist_ok=True)
        held.enter_context(workdir_lib.lock(workdir))
        ident = workdir_lib.check_identity(workdir, config, data, code=code, devices=devices)
      workdir_lib.write_identity(workdir, ident)
    for strategy in config.strategies:
      groups = [config.seeds] if config.get('vmap_seeds', False) else [[s] for s in config.seeds]
      for seeds in groups:
        run_seeds(experiment, workdir, strategy, seeds)
        for seed in seeds if primary and after_run is not None else ():
          after_run(strategy, seed)
    records = [r for r in checkpoint.read_results(workdir_lib.path_in(workdir, 'results.jsonl'),
                                                  required=checkpoint.RESULT_FIELDS)
               if r['strategy'] in config.strategies and r['seed'] in config.seeds
               and r['cycle'] < config.al.cycles]
    if primary:
      report.write(records, workdir)
  return records
