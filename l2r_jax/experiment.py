"""The active-learning driver: every configured strategy, seed and cycle, resumable.

    results = experiment.run(config, workdir)

For each (strategy, seed) an :class:`ALState` is threaded through the cycles. Cycle 0 trains on the
initial labeled set; every later cycle draws a random subset of the unlabeled pool, lets the
strategy pick ``budget`` samples from it, reveals their labels, continues training the target (its
optimisers restarted), and evaluates. The same seed gives every strategy the same model
initialisation, the same initial set and the same subset order. After every cycle the state is
checkpointed and its result appended to ``WORKDIR/results.jsonl``; running again on the same
workdir resumes at the first unfinished (strategy, seed, cycle).
"""
import contextlib
import functools
import os
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from l2r_jax import augment as augment_lib
from l2r_jax import blocks
from l2r_jax import checkpoint
from l2r_jax import cycle as cycle_lib
from l2r_jax import data as data_lib
from l2r_jax import metrics
from l2r_jax import models as models_lib
from l2r_jax import numerics
from l2r_jax import optim
from l2r_jax import protocol
from l2r_jax import report
from l2r_jax import strategies as strategies_lib
from l2r_jax import tasks as tasks_lib
from l2r_jax import train
from l2r_jax import validation
from l2r_jax import workdir as workdir_lib
from l2r_jax.models import pretrained
from l2r_jax.models.base import global_average_pool
import sorter


class ALState(NamedTuple):
  """One (strategy, seed) run between cycles. Host values, except the model states."""
  strategy: str
  seed: int
  cycle: int                  # the last finished cycle; -1 before the first
  labeled: np.ndarray         # indices into the pool, in the order they were labeled
  rng: jax.Array              # the run's key; per-cycle keys are folded in from it
  train_state: train.State    # the target's and the predictor's
  results: List[Dict[str, Any]]

  def unlabeled_mask(self, pool_size: int) -> np.ndarray:
    mask = np.ones(pool_size, bool)
    mask[self.labeled] = False
    return mask


class Experiment(NamedTuple):
  """Everything about an experiment that does not change between runs of it, built once by
  :func:`make_experiment`: the target module and its optimiser are one pair of objects, and so
  are each strategy's loss module and its trainer (shared by the strategies that train the same
  loss module), so every (strategy, seed) of the experiment shares the compiled evaluation and,
  where they train alike, the compiled training programs."""
  config: ml_collections.ConfigDict
  dataset: data_lib.Dataset
  task: tasks_lib.Task                     # the task's loss, decoding and metric
  loop: str                                # how an epoch runs: 'step' or 'scan' (choose_loop)
  target: Tuple[nn.Module, optax.GradientTransformation]
  # By strategy: its loss module and that module's optimiser (None for strategies without one),
  # and the trainer of its runs.
  predictors: Dict[str, Optional[Tuple[nn.Module, optax.GradientTransformation]]]
  trainers: Dict[str, train.Trainer]
  backbone: Optional[pretrained.Backbone] = None  # config.model.pretrained's weights, loaded once
  # By strategy with a ``prepare``: what it built for this experiment (VAAL's trainer).
  prepared: Dict[str, Any] = {}


def _make_trainers(config: ml_collections.ConfigDict, task: tasks_lib.Task,
                   augment: Optional[augment_lib.Augment], ranker: Optional[sorter.Ranker]):
  """Each configured strategy's loss module (with its optimiser) and trainer, one of each per
  distinct :class:`strategies.LossModule` (and one trainer for the strategies without)."""
  built = {}
  predictors, trainers = {}, {}
  for name in config.strategies:
    module = strategies_lib.get(name).loss_module
    if module not in built:
      schedules = (optim.schedule(config.train), optim.schedule(config.predictor))
      options = dict(task_loss=task.loss, augment=augment, learning_rates=schedules)
      if module is None:
        built[module] = None, train.Trainer(**options)
      else:
        built[module] = (
            (module.architecture(hidden=config.predictor.hidden), optim.make(config.predictor)),
            train.Trainer(
                ranking_loss=module.ranking_loss.bind(config, ranker),
                ranking_weight=1.0 if module.isolated else config.ll4al.weight,
                detach_after_epoch=None if module.isolated else config.ll4al.detach_epoch,
                predictor_updates=config.predictor.get('updates_per_step', 1), **options))
    predictors[name], trainers[name] = built[module]
  return predictors, trainers


def initial_train_state(experiment: Experiment, strategy: str, rng: jax.Array) -> train.State:
  """A run's initial target and predictor; the target's backbone from ``experiment.backbone``
  if set."""
  predictor, predictor_tx = experiment.predictors[strategy] or (None, None)
  sample = jnp.asarray(experiment.dataset.x_train[np.arange(2)])
  return train.create_state(rng, *experiment.target, sample, predictor, predictor_tx,
                            experiment.backbone)


def _apply(train_state: train.State, x):
  t = train_state.target
  prediction, feats = t.apply_fn({'params': t.params, 'batch_stats': t.batch_stats}, x,
                                 train=False)
  predicted_loss = None
  if train_state.predictor is not None:
    predictor = train_state.predictor
    predicted_loss = predictor.apply_fn({'params': predictor.params}, feats)
  return prediction, feats, predicted_loss


@functools.partial(jax.pmap, axis_name=train.AXIS)
def _p_forward(train_state: train.State, x):
  prediction, feats, predicted_loss = _apply(train_state, x)
  return prediction, global_average_pool(feats.last), predicted_loss


@functools.partial(jax.pmap, axis_name=train.AXIS, static_broadcasted_argnums=(0,))
def _p_score(task: tasks_lib.Task, train_state: train.State, x, y):
  prediction, _, predicted_loss = _apply(train_state, x)
  # A NaN map decodes to a finite argmax: whether the prediction itself is finite, per sample.
  finite = jnp.isfinite(prediction.reshape(prediction.shape[0], -1)).all(-1)
  return (task.decode(prediction), task.truth(y), task.loss(prediction, y), predicted_loss,
          jnp.where(finite, 0.0, jnp.nan))


@functools.partial(jax.pmap, axis_name=train.AXIS, static_broadcasted_argnums=(0, 1))
def _p_sample_predictions(passes: int, reduce, train_state: train.State, rng, x):
  """``[n, passes, ...]`` (or ``reduce`` of it): the target's predictions under ``passes``
  dropout masks (BatchNorm in inference mode). Consistent MC dropout: pass ``t`` drops by
  ``split(rng, passes)[t]`` for every sample, one sample at a time, so every sample sees the same
  ``passes`` models (what BatchBALD's joint over samples needs) and a sample's passes depend on
  neither its chunk nor its device."""
  t = train_state.target
  variables = {'params': t.params, 'batch_stats': t.batch_stats}

  def one(x, key):
    prediction, _ = t.apply_fn(variables, x[None], train=False, rngs={'dropout': key})
    return prediction[0]

  per_pass = jax.vmap(lambda key: jax.vmap(one, (0, None))(x, key))(
      jax.random.split(rng, passes))
  per_pass = jnp.moveaxis(per_pass, 0, 1)
  return (per_pass if reduce is None else reduce(per_pass),)


def sample_predictions(train_state: train.State, x, indices: np.ndarray, passes: int,
                       rng: jax.Array, chunk: int = 512, reduce=None, split: Optional[str] = None,
                       during: str = '') -> np.ndarray:
  """``[n, passes, ...]``: the target's predictions on ``x[indices]`` under ``passes`` Monte-Carlo
  dropout masks (:class:`models.base.MCDropout`), pass ``t``'s mask the same for every sample
  (consistent MC dropout), over every device of every process; memory
  ``passes x chunk x`` a prediction per device. ``reduce`` (``[n, passes, ...] -> [n, ...]``, a
  module-level function) is applied on the devices, so only its output comes back. ``split`` and
  ``during``: as for :func:`infer`."""
  samples = blocks.map_over_devices(
      functools.partial(_p_sample_predictions, passes, reduce, train.replicate(train_state),
                        train.replicate(rng)),
      lambda rows: (_read(x, rows, split),), indices, chunk)[0]
  name = 'Monte-Carlo dropout predictions' + ('' if reduce is None else f' ({reduce.__name__})')
  numerics.check_outputs([(name, samples, numerics.TARGET_DIVERGED)], indices,
                         _samples(split), during)
  return samples


def _read(x, rows: np.ndarray, split: Optional[str], axis: str = 'x') -> np.ndarray:
  """``x[rows]``, the inputs (``axis`` 'x') or labels ('y') of ``split`` ('pool', 'test', None:
  inputs given otherwise), refused if they hold a NaN or an infinity: a dataset's arrays were
  checked when it was loaded, its array-likes (files read on demand) and other inputs are checked
  here, batch by batch."""
  values = x[rows]
  if isinstance(x, np.ndarray) and split is not None:
    return values
  field = {'pool': f'Dataset.{axis}_train', 'test': f'Dataset.{axis}_test'}.get(split, 'The inputs')
  return numerics.checked_batch(values, rows, field)


def _samples(split: Optional[str]) -> str:
  return f'{split} samples' if split else 'samples'


def infer(train_state: train.State, x, indices: np.ndarray, chunk: int = 512,
          split: Optional[str] = None, during: str = '') -> strategies_lib.PoolOutputs:
  """The target's (and predictor's) outputs on ``x[indices]`` (``x`` an array or array-like),
  over every device of every process, chunk by chunk. Inputs or outputs with a NaN or an infinity
  are refused (:class:`~l2r_jax.errors.NumericsError`), naming ``split`` (``x`` is the pool's or
  the test split's inputs; None: inputs given otherwise) and, before the rest, ``during`` (the run
  and cycle)."""
  outputs = strategies_lib.PoolOutputs(*blocks.map_over_devices(
      functools.partial(_p_forward, train.replicate(train_state)),
      lambda rows: (_read(x, rows, split),), indices, chunk))
  numerics.check_outputs([('predictions', outputs.prediction, numerics.TARGET_DIVERGED),
                          ('embeddings', outputs.embedding, numerics.TARGET_DIVERGED),
                          ('loss predictions', outputs.predicted_loss,
                           numerics.PREDICTOR_DIVERGED)], indices, _samples(split), during)
  return outputs


def true_losses(experiment: Experiment, train_state: train.State, indices: np.ndarray,
                during: str = '') -> np.ndarray:
  """The target's per-sample task loss on pool samples ``indices``, with their labels (for the
  diagnostic ``oracle_loss`` strategy only); ``during``: as for :func:`infer`."""
  ds = experiment.dataset
  score = functools.partial(_p_score, experiment.task, train.replicate(train_state))
  _, _, losses, _, finite = blocks.map_over_devices(
      score, lambda rows: (_read(ds.x_train, rows, 'pool'), _read(ds.y_train, rows, 'pool', 'y')),
      indices, experiment.config.eval_batch_size)
  numerics.check_outputs([('predictions', finite, numerics.TARGET_DIVERGED),
                          ('losses', losses, numerics.TARGET_DIVERGED)], indices, 'pool samples',
                         during)
  return losses


def evaluate(experiment: Experiment, train_state: train.State, chunk: int = 512,
             during: str = '') -> Dict[str, Any]:
  """The task's test metric and, with a predictor, Spearman's rho of predicted vs true per-sample
  test losses; predictions, losses or loss predictions with a NaN or an infinity are refused
  (``during``: as for :func:`infer`), never scored."""
  ds, task = experiment.dataset, experiment.task
  rows = np.arange(len(ds.x_test))
  decoded, truth, losses, predicted, finite = blocks.map_over_devices(
      functools.partial(_p_score, task, train.replicate(train_state)),
      lambda rows: (_read(ds.x_test, rows, 'test'), _read(ds.y_test, rows, 'test', 'y')), rows,
      chunk)
  numerics.check_outputs([('predictions', finite, numerics.TARGET_DIVERGED),
                          ('decoded predictions', decoded, numerics.TARGET_DIVERGED),
                          ('losses', losses, numerics.TARGET_DIVERGED),
                          ('loss predictions', predicted, numerics.PREDICTOR_DIVERGED)],
                         rows, 'test samples', during)
  scores = task.score(decoded, truth)
  result = {'metric': task.metric, 'value': float(scores.pop(task.metric)),
            'spearman': None, **scores}
  if predicted is not None:
    result['spearman'] = float(metrics.spearman(jnp.asarray(predicted), jnp.asarray(losses)))
  return result


def _during(al: ALState, cycle: int) -> str:
  """The run and cycle, as a refusal names them."""
  return f'{al.strategy}, seed {al.seed}, cycle {cycle}'


def _cycle_rngs(al: ALState, cycle: int) -> Tuple[jax.Array, jax.Array]:
  """The run's (training, query) keys of ``cycle``."""
  rng_train, rng_query = jax.random.split(jax.random.fold_in(al.rng, cycle))
  return rng_train, rng_query


def select(experiment: Experiment, al: ALState,
           budget: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """The strategy's ``budget`` picks for the run's next cycle, from a random subset of the
  unlabeled pool (``config.al.subset``), with the cycle's query key, and for a scoring strategy
  their scores (else None). ``true_loss`` (the diagnostic ``oracle_loss``) only where every pool
  label is known."""
  config, ds = experiment.config, experiment.dataset
  cycle = al.cycle + 1
  rng_query = _cycle_rngs(al, cycle)[1]
  subset = protocol.pool_subset(al.seed, cycle, al.unlabeled_mask(ds.pool_size), config.al.subset)
  labels_known = not data_lib.unknown_labels(ds.task, ds.y_train).any()
  during = _during(al, cycle)
  view = strategies_lib.SelectionState(
      infer=lambda idx: infer(al.train_state, ds.x_train, idx, config.eval_batch_size, 'pool',
                              during),
      labeled=al.labeled,
      inputs=lambda idx: _read(ds.x_train, np.asarray(idx), 'pool'), pool_size=ds.pool_size,
      options=config.get(al.strategy, ml_collections.ConfigDict()),
      true_loss=(lambda idx: true_losses(experiment, al.train_state, idx, during)) if labels_known
      else None,
      sample_predictions=lambda idx, passes, rng, reduce=None: sample_predictions(
          al.train_state, ds.x_train, idx, passes, rng, config.eval_batch_size, reduce, 'pool',
          during),
      prepared=experiment.prepared.get(al.strategy),
      infer_pretrained=None if experiment.backbone is None else (
          lambda idx: infer(initial_train_state(experiment, al.strategy, jax.random.PRNGKey(0)),
                            ds.x_train, idx, config.eval_batch_size, 'pool', during)))
  return strategies_lib.select(strategies_lib.get(al.strategy), view, subset, budget, rng_query)


def query(experiment: Experiment, al: ALState) -> ALState:
  """The run with its next cycle's labeled set: after cycle 0, the strategy's picks
  (:func:`select`, ``config.al.budget`` of them) appended."""
  if al.cycle + 1 == 0:
    return al
  chosen, _ = select(experiment, al, experiment.config.al.budget)
  return al._replace(labeled=np.concatenate([al.labeled, chosen.astype(al.labeled.dtype)]))


def run_cycle(experiment: Experiment, run_states: Sequence[ALState]
              ) -> Tuple[List[ALState], List[List[Dict[str, float]]]]:
  """Query (after cycle 0), reveal, train, evaluate: the next cycle of each run in
  ``run_states`` (one strategy, seeds at the same cycle; several train as one vmapped program),
  and the training histories. A record's ``wall_s`` is its own query and evaluation time plus its
  share of the training time."""
  spent = []
  queried = []
  for al in run_states:
    t0 = time.time()
    queried.append(query(experiment, al))
    spent.append(time.time() - t0)
  return train_and_evaluate(experiment, queried, spent)


def train_and_evaluate(experiment: Experiment, run_states: Sequence[ALState],
                       spent: Optional[Sequence[float]] = None
                       ) -> Tuple[List[ALState], List[List[Dict[str, float]]]]:
  """The next cycle's training of each run in ``run_states`` on its labeled set as it stands, and
  its evaluation on the test split (``value`` None without one); ``spent``: each run's query time,
  counted in its record's ``wall_s``."""
  config, ds = experiment.config, experiment.dataset
  cycle = run_states[0].cycle + 1
  spent = spent or [0.0] * len(run_states)
  rngs = [_cycle_rngs(al, cycle)[0] for al in run_states]
  t0 = time.time()
  trained, histories = cycle_lib.train_cycle(experiment, run_states, cycle, rngs)
  shared = (time.time() - t0) / len(run_states)
  out = []
  for al, m, own in zip(run_states, trained, spent):
    t0 = time.time()
    result = (evaluate(experiment, m, config.eval_batch_size, _during(al, cycle))
              if len(ds.x_test) else
              {'metric': experiment.task.metric, 'value': None, 'spearman': None})
    record = {'strategy': al.strategy, 'seed': al.seed, 'cycle': cycle,
              'num_labeled': int(len(al.labeled)), **result,
              'wall_s': round(own + shared + time.time() - t0, 2)}
    out.append(al._replace(cycle=cycle, train_state=m, results=al.results + [record]))
  return out, histories


def _al_json(al: ALState) -> Dict[str, Any]:
  return {'strategy': al.strategy, 'seed': al.seed, 'cycle': al.cycle,
          'labeled': al.labeled.tolist(), 'results': al.results}


class Run(NamedTuple):
  """A run between cycles, with where it is saved."""
  al: ALState
  manager: Any                   # its orbax CheckpointManager
  writer: Optional[Any]          # its TensorBoard writer (None on processes that do not write)


def open_run(experiment: Experiment, workdir: str, strategy: str, seed: int,
             initial: Optional[np.ndarray] = None) -> Run:
  """A (strategy, seed) run, resumed from its latest checkpoint if it has one; a new one starts
  with ``initial`` labeled (default: the seed's initial set of ``config.al.initial``)."""
  config = experiment.config
  # Keys depend on the seed only: every strategy starts from the same model.
  rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
  train_state = initial_train_state(experiment, strategy, rng_init)
  name = f'{strategy}-seed{seed}'
  # orbax writes, renames and deletes inside this folder: no link there, checked before it does.
  mgr = checkpoint.manager(workdir_lib.folder_in(workdir, 'checkpoints', name))
  restored = checkpoint.restore_latest(mgr, train_state)
  if restored is None:
    if initial is None:
      initial = protocol.initial_labeled(seed, experiment.dataset.pool_size, config.al.initial)
    al = ALState(strategy, seed, -1, np.asarray(initial, np.int64), rng, train_state, [])
  else:
    train_state, saved = restored
    al = ALState(strategy, seed, saved['cycle'], np.asarray(saved['labeled'], np.int64), rng,
                 train_state, saved['results'])
    logging.info('%s seed %d: resuming after cycle %d.', strategy, seed, al.cycle)
  writer = None
  if jax.process_index() == 0:  # several processes: the first alone writes files
    results = workdir_lib.path_in(workdir, 'results.jsonl')
    # Cycles past the restored checkpoint (a damaged one moved aside) are computed again.
    checkpoint.drop_results(results, strategy, seed, al.cycle)
    # A kill may have come between a checkpoint and its results line.
    checkpoint.append_results(results, al.results)
    # Imported here: tensorboardX loads PyTorch where it is installed (seconds), which a refused
    # command never needs.
    import tensorboardX  # pylint: disable=g-import-not-at-top
    writer = tensorboardX.SummaryWriter(workdir_lib.folder_in(workdir, 'tensorboard', name))
  return Run(al, mgr, writer)


def save_run(experiment: Experiment, workdir: str, run: Run,
             history: List[Dict[str, float]]) -> None:
  """Checkpoint, results line, TensorBoard scalars and a log line for the run's last cycle."""
  al = run.al
  # Host copies: saved once, by the primary process, whatever the process count.
  checkpoint.save(run.manager, al.cycle, jax.device_get(al.train_state), _al_json(al))
  r = al.results[-1]
  if run.writer is not None:
    checkpoint.append_results(workdir_lib.path_in(workdir, 'results.jsonl'), al.results)
    for epoch, m in enumerate(history):
      for k, v in m.items():
        run.writer.add_scalar(k, v, al.cycle * experiment.config.train.epochs + epoch)
    if r['value'] is not None:
      run.writer.add_scalar(f'eval_{r["metric"]}', r['value'], r['num_labeled'])
    if r['spearman'] is not None:
      run.writer.add_scalar('eval_spearman', r['spearman'], r['num_labeled'])
    run.writer.flush()
  score = '' if r['value'] is None else f', {r["metric"]} {r["value"]:.4f}'
  rho = '' if r['spearman'] is None else f', spearman {r["spearman"]:.3f}'
  tqdm.tqdm.write(f'{al.strategy} seed {al.seed} cycle {r["cycle"]}: {r["num_labeled"]} labels'
                  f'{score}{rho} ({r["wall_s"]:.1f} s)')


def run_seeds(experiment: Experiment, workdir: str, strategy: str,
              seeds: Sequence[int]) -> List[ALState]:
  """All cycles of ``strategy`` for each seed, resuming from their checkpoints; the seeds at the
  same cycle train together, as one vmapped program. The results are those of :func:`run_one`
  for each seed (up to floating-point rounding: a vmapped convolution sums in another order)."""
  runs = [open_run(experiment, workdir, strategy, seed) for seed in seeds]
  n_cycles = experiment.config.al.cycles
  while True:
    todo = [i for i, r in enumerate(runs) if r.al.cycle + 1 < n_cycles]
    if not todo:
      break
    # Seeds resumed at different cycles: the furthest behind catch up first.
    behind = min(runs[i].al.cycle for i in todo)
    group = [i for i in todo if runs[i].al.cycle == behind]
    run_states, histories = run_cycle(experiment, [runs[i].al for i in group])
    for i, al, history in zip(group, run_states, histories):
      runs[i] = runs[i]._replace(al=al)
      save_run(experiment, workdir, runs[i], history)
  for r in runs:
    r.manager.close()
    if r.writer is not None:
      r.writer.close()
  return [r.al for r in runs]


def run_one(experiment: Experiment, workdir: str, strategy: str, seed: int) -> ALState:
  """All cycles of one (strategy, seed), resuming from its checkpoints."""
  return run_seeds(experiment, workdir, strategy, [seed])[0]


def make_experiment(config: ml_collections.ConfigDict,
                    dataset: Optional[data_lib.Dataset] = None,
                    simulation: bool = True) -> Experiment:
  """Checks the config, loads the data (``config.data``, unless ``dataset`` is given) and the
  ranker: everything before training. ``simulation``: the pool's labels are revealed when
  queried, so all must be known (:class:`~l2r_jax.learner.ActiveLearner` builds one with False)."""
  validation.check_config(config)
  if dataset is None:
    dataset = data_lib.load(config.data)
  else:
    dataset = data_lib.check_dataset(dataset, None)
  validation.check_against_data(config, dataset, simulation)
  validation.check_model(config, dataset)
  loss_modules = [strategies_lib.get(s).loss_module for s in config.strategies]
  ranker = None
  if any(m is not None and m.ranking_loss.needs_ranker for m in loss_modules):
    ranker = sorter.get_ranker(config.predictor.sorter, config.predictor.sorter_len,
                               **config.predictor.get('sorter_kwargs', {}))
  target = (models_lib.make_target(config.model, dataset.num_outputs, bn_axis_name=train.AXIS),
            optim.make(config.train))
  backbone = None
  if config.model.get('pretrained'):
    backbone = pretrained.load_for_model(config.model.pretrained, target[0],
                                         jnp.asarray(dataset.x_train[np.arange(2)]))
    validation.check_normalisation(config, dataset, backbone)
  task = tasks_lib.Task.for_dataset(dataset)
  predictors, trainers = _make_trainers(config, task, augment_lib.make(task, config.get('augment')),
                                        ranker)
  prepared = {name: strategies_lib.get(name).prepare(config.get(name), dataset.x_train)
              for name in config.strategies if strategies_lib.get(name).prepare is not None}
  return Experiment(config, dataset, task, choose_loop(config.train.get('loop', 'auto')), target,
                    predictors, trainers, backbone, prepared)


def choose_loop(loop: str, backend: Optional[str] = None) -> str:
  """``config.train.loop`` resolved: ``'auto'`` is ``'step'`` on CPUs, whose XLA runtime runs a
  scanned epoch several times slower (benchmarks/results/speed.md, case (b)), and ``'scan'`` on
  GPUs and TPUs, where it saves a dispatch per step. By backend, not by timing: the two loops agree
  only up to rounding, and a choice made by a clock would make results depend on machine load."""
  if loop != 'auto':
    return loop
  return 'step' if (backend or jax.default_backend()) == 'cpu' else 'scan'



def run(config: ml_collections.ConfigDict, workdir: str) -> List[Dict[str, Any]]:
  """Runs (or resumes) the whole experiment; returns its result records and writes the report.

  The workdir must hold this experiment or none (``l2r_jax.workdir``: a run with a config that
  differs in a field that changes results is refused, as is a second run while one holds the
  workdir). The records and the report cover the runs of ``config`` only: strategies, seeds and
  cycles an earlier run of the same experiment added beyond it stay in ``results.jsonl``."""
  validation.check_config(config)
  workdir = validation.check_workdir(workdir)
  primary = jax.process_index() == 0
  with contextlib.ExitStack() as held:
    # An existing workdir is locked and its identity checked before any data is loaded; a new one
    # is created only once every check has passed, so a refused run leaves nothing behind.
    if primary and os.path.isdir(workdir):
      held.enter_context(workdir_lib.lock(workdir))
    ident = workdir_lib.check_identity(workdir, config)
    experiment = make_experiment(config)
    if primary:
      if not os.path.isdir(workdir):
        os.makedirs(workdir)
        held.enter_context(workdir_lib.lock(workdir))
      workdir_lib.write_identity(workdir, ident)
    for strategy in config.strategies:
      if config.get('vmap_seeds', False):
        run_seeds(experiment, workdir, strategy, config.seeds)
      else:
        for seed in config.seeds:
          run_one(experiment, workdir, strategy, seed)
    records = [r for r in checkpoint.read_results(workdir_lib.path_in(workdir, 'results.jsonl'),
                                                  required=checkpoint.RESULT_FIELDS)
               if r['strategy'] in config.strategies and r['seed'] in config.seeds
               and r['cycle'] < config.al.cycles]
    if primary:
      report.write(records, workdir)
  return records
