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
import math
import os
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
from flax import jax_utils
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tensorboardX
import tqdm

from l2r_jax import augment as augment_lib
from l2r_jax import checkpoint
from l2r_jax import data as data_lib
from l2r_jax import metrics
from l2r_jax import models as models_lib
from l2r_jax import optim
from l2r_jax import report
from l2r_jax import strategies as strategies_lib
from l2r_jax import tasks as tasks_lib
from l2r_jax import train
from l2r_jax import validation
from l2r_jax.data import pipeline
from l2r_jax.models.base import global_average_pool
import sorter


class ALState(NamedTuple):
  """One (strategy, seed) run between cycles. Host values, except the model states."""
  strategy: str
  seed: int
  cycle: int                  # the last finished cycle; -1 before the first
  labeled: np.ndarray         # indices into the pool, in the order they were labeled
  rng: jax.Array              # the run's key; per-cycle keys are folded in from it
  models: train.State         # target and predictor
  results: List[Dict[str, Any]]

  def unlabeled_mask(self, pool_size: int) -> np.ndarray:
    mask = np.ones(pool_size, bool)
    mask[self.labeled] = False
    return mask


# Host-side index draws: numpy generators seeded by (seed, purpose, cycle[, epoch]), so that
# strategies sharing a seed share them.
_INITIAL, _SUBSET, _EPOCH = 0, 1, 2


def initial_labeled(seed: int, pool_size: int, size: int) -> np.ndarray:
  return np.random.default_rng([seed, _INITIAL]).permutation(pool_size)[:size]


def pool_subset(seed: int, cycle: int, unlabeled: np.ndarray, size: Optional[int]) -> np.ndarray:
  """A random subset of the unlabeled pool: the unlabeled samples in an order fixed by
  (seed, cycle), first ``size`` of them (all when ``size`` is None)."""
  order = np.random.default_rng([seed, _SUBSET, cycle]).permutation(unlabeled.shape[0])
  members = order[unlabeled[order]]
  return members if size is None else members[:size]


def epoch_order(seed: int, cycle: int, epoch: int, n: int, batch_size: int) -> np.ndarray:
  """``ceil(n / batch_size)`` full batches of positions covering every sample once, the last batch
  filled from a second permutation (the ranking losses need full lists)."""
  r = np.random.default_rng([seed, _EPOCH, cycle, epoch])
  steps = math.ceil(n / batch_size)
  reps = math.ceil(steps * batch_size / n)
  return np.concatenate([r.permutation(n) for _ in range(reps)])[:steps * batch_size]


class Experiment(NamedTuple):
  """Everything about an experiment that does not change between runs of it."""
  config: ml_collections.ConfigDict
  dataset: data_lib.Dataset
  task: tasks_lib.Task                     # the task's loss, decoding and metric
  augment: Optional[augment_lib.Augment]   # on-device training augmentation, or None
  ranker: Optional[sorter.Ranker]


def make_models(config: ml_collections.ConfigDict, dataset: data_lib.Dataset, strategy: str,
                rng: jax.Array) -> train.State:
  target = models_lib.TARGETS[config.model.name](
      num_outputs=dataset.num_outputs, bn_axis_name=train.AXIS, **config.model.get('kwargs', {}))
  predictor = None
  if strategy in strategies_lib.PREDICTOR_LOSS:
    predictor = models_lib.PREDICTORS[strategy](hidden=config.predictor.hidden)
  return train.create_state(rng, target, optim.make(config.train),
                            jnp.asarray(dataset.x_train[np.arange(2)]), predictor,
                            optim.make(config.predictor))


def _apply(models: train.State, x):
  t = models.target
  prediction, feats = t.apply_fn({'params': t.params, 'batch_stats': t.batch_stats}, x,
                                 train=False)
  predicted_loss = None
  if models.predictor is not None:
    predicted_loss = models.predictor.apply_fn({'params': models.predictor.params}, feats)
  return prediction, feats, predicted_loss


@jax.jit
def _forward(models: train.State, x):
  prediction, feats, predicted_loss = _apply(models, x)
  return prediction, global_average_pool(feats.last), predicted_loss


@functools.partial(jax.jit, static_argnums=(0,))
def _score(task: tasks_lib.Task, models: train.State, x, y):
  prediction, _, predicted_loss = _apply(models, x)
  return task.decode(prediction), task.truth(y), task.loss(prediction, y), predicted_loss


def _chunks(fn, arrays, indices: np.ndarray, chunk: int):
  """``fn`` on ``[a[indices] for a in arrays]`` in chunks of a fixed size (the last one padded, so
  one compilation serves all); host outputs concatenated, None outputs kept None. Fewer indices
  than ``chunk`` shrink it to the next power of two (few shapes, little padding)."""
  if len(indices) < chunk:
    chunk = 1 << max(int(len(indices)) - 1, 0).bit_length()
  outs = []
  for i in range(0, len(indices), chunk):
    idx = indices[i:i + chunk]
    n = len(idx)
    idx = np.concatenate([idx, np.repeat(idx[:1], chunk - n)])
    out = jax.device_get(fn(*(jnp.asarray(a[idx]) for a in arrays)))
    outs.append(jax.tree.map(lambda a, n=n: a[:n], out))
  return tuple(None if outs[0][k] is None else np.concatenate([o[k] for o in outs])
               for k in range(len(outs[0])))


def infer(models: train.State, x, indices: np.ndarray,
          chunk: int = 512) -> strategies_lib.PoolOutputs:
  """The models' outputs on ``x[indices]`` (``x`` an array or array-like), chunk by chunk."""
  return strategies_lib.PoolOutputs(*_chunks(functools.partial(_forward, models), (x,),
                                             np.asarray(indices), chunk))


def true_losses(exp: Experiment, models: train.State, indices: np.ndarray) -> np.ndarray:
  """The target's per-sample task loss on pool samples ``indices``, with their labels (for the
  diagnostic ``oracle_loss`` strategy only)."""
  ds = exp.dataset
  return _chunks(functools.partial(_score, exp.task, models), (ds.x_train, ds.y_train),
                 np.asarray(indices), exp.config.eval_batch_size)[2]


def evaluate(exp: Experiment, models: train.State, chunk: int = 512) -> Dict[str, Any]:
  """The task's test metric and, with a predictor, Spearman's rho of predicted vs true per-sample
  test losses."""
  ds, task = exp.dataset, exp.task
  decoded, truth, losses, predicted = _chunks(
      functools.partial(_score, task, models), (ds.x_test, ds.y_test),
      np.arange(len(ds.x_test)), chunk)
  scores = task.score(decoded, truth)
  result = {'metric': task.metric, 'value': float(scores.pop(task.metric)),
            'spearman': None, **scores}
  if predicted is not None:
    result['spearman'] = float(metrics.spearman(jnp.asarray(predicted), jnp.asarray(losses)))
  return result


def _restart_optimisers(models: train.State) -> train.State:
  target = models.target.replace(step=0, opt_state=models.target.tx.init(models.target.params))
  predictor = models.predictor
  if predictor is not None:
    predictor = predictor.replace(step=0, opt_state=predictor.tx.init(predictor.params))
  return train.State(target=target, predictor=predictor)


def train_cycle(exp: Experiment, al: ALState, cycle: int, rng: jax.Array,
                bar_desc: str) -> Tuple[train.State, List[Dict[str, float]]]:
  """``config.train.epochs`` epochs on the labeled set: the trained (unreplicated) models and the
  training metrics of every epoch."""
  config, ds = exp.config, exp.dataset
  n_dev = jax.local_device_count()
  batch_size = config.train.batch_size
  # Several processes: each feeds its own slice of every global batch to its local devices.
  per_process = batch_size // jax.process_count()
  mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
  strategy = al.strategy
  static = dict(task_loss=exp.task.loss, augment=exp.augment,
                predictor_loss=strategies_lib.PREDICTOR_LOSS.get(strategy), ranker=exp.ranker,
                pairwise_weight=config.ll4al.weight, margin=config.ll4al.margin)
  p_steps = {detach: _p_train_step(detach_features=detach, **static) for detach in (False, True)}
  # The labeled set is read once per cycle (small by design; an array-like pool decodes here).
  x_lab, y_lab = ds.x_train[al.labeled], ds.y_train[al.labeled]
  epochs = config.train.epochs
  orders = [epoch_order(al.seed, cycle, epoch, len(al.labeled), batch_size)
            for epoch in range(epochs)]
  n_steps = orders[0].shape[0] // batch_size
  # All the cycle's batches, this process's share of each, fed ahead of the steps.
  batches = np.stack(orders).reshape(epochs * n_steps, batch_size)[:, mine]
  # Closed on the way out, also when a NaN stops the cycle: no reader thread outlives it.
  with contextlib.closing(pipeline.device_batches(x_lab, y_lab, batches,
                                                  train.device_sharding())) as feed:
    state = train.replicate(_restart_optimisers(al.models))
    bar = tqdm.trange(epochs, desc=bar_desc, leave=False, dynamic_ncols=True,
                      mininterval=1.0, disable=config.get('quiet', False))
    history = []
    for epoch in bar:
      target_opt = optim.with_learning_rate(state.target.opt_state,
                                            optim.learning_rate(config.train, epoch))
      predictor = state.predictor
      if predictor is not None:
        predictor = predictor.replace(opt_state=optim.with_learning_rate(
            predictor.opt_state, optim.learning_rate(config.predictor, epoch)))
      state = train.State(target=state.target.replace(opt_state=target_opt), predictor=predictor)
      # LL4AL stops the ranking loss's gradient into the target after `detach_epoch` (0-indexed >).
      p_step = p_steps[strategy != 'll4al' or epoch > config.ll4al.detach_epoch]
      # One key per step and device, made once per epoch rather than on the per-step path.
      keys = np.asarray(jax.random.split(jax.random.fold_in(rng, epoch), n_steps * n_dev))
      keys = keys.reshape(n_steps, n_dev, *keys.shape[1:])
      epoch_metrics = []
      for step in range(n_steps):
        state, m = p_step(state, next(feed), keys[step])
        epoch_metrics.append(m)
      m = jax.device_get(jax.tree.map(lambda *v: jnp.stack(v)[:, 0].mean(), *epoch_metrics))
      if not all(np.isfinite(v) for v in m.values()):
        raise FloatingPointError(
            f'{strategy}, seed {al.seed}, cycle {cycle}, epoch {epoch}: training produced '
            f'{m}. The run stops here; the checkpoint of cycle {cycle - 1} is kept.')
      bar.set_postfix({k.replace('train_', ''): f'{v:.4f}' for k, v in m.items()})
      history.append({k: float(v) for k, v in m.items()})
  return jax_utils.unreplicate(state), history


@functools.lru_cache(maxsize=None)
def _p_train_step(**static):
  return train.make_p_train_step(**static)


def run_cycle(exp: Experiment, al: ALState) -> Tuple[ALState, List[Dict[str, float]]]:
  """Query (after cycle 0), reveal, train, evaluate: the next cycle, and its training history."""
  config, ds = exp.config, exp.dataset
  cycle = al.cycle + 1
  t0 = time.time()
  rng_train, rng_query = jax.random.split(jax.random.fold_in(al.rng, cycle))
  labeled = al.labeled
  if cycle > 0:
    subset = pool_subset(al.seed, cycle, al.unlabeled_mask(ds.pool_size), config.al.subset)
    view = strategies_lib.SelectionState(
        infer=lambda idx: infer(al.models, ds.x_train, idx, config.eval_batch_size),
        labeled=labeled,
        inputs=lambda idx: ds.x_train[np.asarray(idx)], pool_size=ds.pool_size,
        options=config.get(al.strategy, ml_collections.ConfigDict()),
        true_loss=lambda idx: true_losses(exp, al.models, idx))
    chosen = strategies_lib.get(al.strategy)(view, subset, config.al.budget, rng_query)
    labeled = np.concatenate([labeled, np.asarray(chosen, labeled.dtype)])
  al = al._replace(labeled=labeled)
  n_cycles = config.al.cycles
  models, history = train_cycle(exp, al, cycle, rng_train,
                                f'{al.strategy} seed {al.seed} cycle {cycle + 1}/{n_cycles}')
  record = {'strategy': al.strategy, 'seed': al.seed, 'cycle': cycle,
            'num_labeled': int(len(labeled)), **evaluate(exp, models, config.eval_batch_size),
            'wall_s': round(time.time() - t0, 2)}
  return al._replace(cycle=cycle, models=models, results=al.results + [record]), history


def _al_json(al: ALState) -> Dict[str, Any]:
  return {'strategy': al.strategy, 'seed': al.seed, 'cycle': al.cycle,
          'labeled': al.labeled.tolist(), 'results': al.results}


def run_one(exp: Experiment, workdir: str, strategy: str, seed: int) -> ALState:
  """All cycles of one (strategy, seed), resuming from its checkpoints."""
  config = exp.config
  # Keys depend on the seed only: every strategy starts from the same model.
  rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
  models = make_models(config, exp.dataset, strategy, rng_init)
  mgr = checkpoint.manager(os.path.join(workdir, 'checkpoints', f'{strategy}-seed{seed}'))
  restored = checkpoint.restore_latest(mgr, models)
  if restored is None:
    al = ALState(strategy, seed, -1, initial_labeled(seed, exp.dataset.pool_size,
                                                      config.al.initial), rng, models, [])
  else:
    models, saved = restored
    al = ALState(strategy, seed, saved['cycle'], np.asarray(saved['labeled'], np.int64), rng,
                 models, saved['results'])
    logging.info('%s seed %d: resuming after cycle %d.', strategy, seed, al.cycle)
  results_path = os.path.join(workdir, 'results.jsonl')
  is_writer = jax.process_index() == 0  # several processes: the first alone writes files
  writer = None
  if is_writer:
    checkpoint.append_results(results_path, al.results)  # a kill may have come before the append
    writer = tensorboardX.SummaryWriter(
        os.path.join(workdir, 'tensorboard', f'{strategy}-seed{seed}'))
  while al.cycle + 1 < config.al.cycles:
    al, history = run_cycle(exp, al)
    # Host copies: saved once, by the primary process, whatever the process count.
    checkpoint.save(mgr, al.cycle, jax.device_get(al.models), _al_json(al))
    r = al.results[-1]
    if is_writer:
      checkpoint.append_results(results_path, al.results)
      for epoch, m in enumerate(history):
        for k, v in m.items():
          writer.add_scalar(k, v, al.cycle * config.train.epochs + epoch)
      writer.add_scalar(f'eval_{r["metric"]}', r['value'], r['num_labeled'])
      if r['spearman'] is not None:
        writer.add_scalar('eval_spearman', r['spearman'], r['num_labeled'])
      writer.flush()
    rho = '' if r['spearman'] is None else f', spearman {r["spearman"]:.3f}'
    tqdm.tqdm.write(f'{strategy} seed {seed} cycle {r["cycle"]}: {r["num_labeled"]} labels, '
                    f'{r["metric"]} {r["value"]:.4f}{rho} ({r["wall_s"]:.1f} s)')
  mgr.close()
  if writer is not None:
    writer.close()
  return al


def make_experiment(config: ml_collections.ConfigDict) -> Experiment:
  """Checks the config, loads the data and the ranker: everything before training."""
  validation.check_config(config)
  dataset = data_lib.load(config.data)
  validation.check_against_data(config, dataset)
  validation.check_model(config, dataset)
  ranker = None
  if 'l2r' in config.strategies:
    ranker = sorter.get_ranker(config.predictor.sorter, config.predictor.sorter_len,
                               **config.predictor.get('sorter_kwargs', {}))
  task = tasks_lib.Task.for_dataset(dataset)
  return Experiment(config, dataset, task, augment_lib.make(task, config.get('augment')), ranker)


def run(config: ml_collections.ConfigDict, workdir: str) -> List[Dict[str, Any]]:
  """Runs (or resumes) the whole experiment; returns all result records and writes the report."""
  workdir = validation.check_workdir(workdir)
  exp = make_experiment(config)
  for strategy in config.strategies:
    for seed in config.seeds:
      run_one(exp, workdir, strategy, seed)
  records = checkpoint.read_results(os.path.join(workdir, 'results.jsonl'))
  if jax.process_index() == 0:
    report.write(records, workdir)
  return records
