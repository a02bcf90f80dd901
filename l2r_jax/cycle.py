"""One training cycle, in parts that each read alone.

* :func:`make_plan`: what every step of the cycle reads, as host arrays: its rows of the labeled
  sets and its key, with a runs (seeds) axis always present. Made from the seeds and keys alone,
  before any device is touched.
* :class:`DeviceFeed` and :class:`HostFeed` (:func:`make_feed` picks one): how a step's batch
  reaches the devices, behind one interface (a step's inputs, or an epoch's stacked for a scan).
* :class:`StepLoop` and :class:`ScanLoop`: an epoch step by step or as one ``lax.scan``, each
  compiling its program and running an epoch with metrics of one shape; chosen once per experiment
  (``Experiment.loop``, :data:`LOOPS`).
* :data:`ONE_RUN` and :data:`RUNS_TOGETHER`: one run trains alone, or several (seeds) as one
  vmapped program; how the states, the plan and the metrics carry the runs axis.
* :func:`train_cycle`: the parts strung together for the runs of one strategy.

The learning rates and LL4AL's detachment are the step's own (``train.train_step`` reads the
epoch).
"""
import contextlib
import functools
import math
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import chex
from flax import jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from l2r_jax import devices as devices_lib
from l2r_jax import errors
from l2r_jax import numerics
from l2r_jax import protocol
from l2r_jax import train
from l2r_jax.data import pipeline

Metrics = Dict[str, Any]


class Plan(NamedTuple):
  """Every step of a cycle, for the runs of one strategy trained together (host arrays)."""
  rows: np.ndarray   # int [epochs, steps, runs, b]: this process's share of each global batch, as
                     # positions in the runs' labeled sets laid end to end (run r's at r * n)
  keys: np.ndarray   # uint32 [epochs, steps, runs, *key]: each step's key, the same on every device

  @property
  def epochs(self) -> int:
    return self.rows.shape[0]

  @property
  def steps(self) -> int:
    return self.rows.shape[1]

  def for_devices(self, n_dev: int, seed_axis: bool) -> Tuple[np.ndarray, np.ndarray]:
    """``rows`` and ``keys [epochs, steps, n_dev, ...]`` (every device the step's key), without
    the runs axis unless ``seed_axis`` (one run trains in a program without it)."""
    keys = np.broadcast_to(self.keys[:, :, None],
                           (self.epochs, self.steps, n_dev, *self.keys.shape[2:]))
    if seed_axis:
      return self.rows, keys
    return self.rows[:, :, 0], keys[:, :, :, 0]


def make_plan(seeds: Sequence[int], rngs: Sequence[jax.Array], cycle: int, n: int, epochs: int,
              batch_size: int, process_index: int = 0, process_count: int = 1) -> Plan:
  """The plan of ``epochs`` epochs over ``n`` labeled samples per run, ``batch_size`` per step.

  Run r's epoch e visits its samples in ``protocol.epoch_order(seeds[r], cycle, e, ...)``; its step
  s of epoch e gets ``split(fold_in(rngs[r], e), steps)[s]``. Of every global batch, process p
  feeds the p-th of ``process_count`` equal slices to its local devices."""
  steps = math.ceil(n / batch_size)
  per_process = batch_size // process_count
  share = slice(process_index * per_process, (process_index + 1) * per_process)
  rows = np.stack([np.stack([protocol.epoch_order(seed, cycle, epoch, n, batch_size) + r * n
                             for epoch in range(epochs)]).reshape(epochs, steps, batch_size)
                   for r, seed in enumerate(seeds)], 2)[..., share]
  keys = np.stack([_cycle_keys(rng, epochs, steps) for rng in rngs], 2)
  return Plan(rows, keys)


def _cycle_keys(rng: jax.Array, epochs: int, per_epoch: int) -> np.ndarray:
  """``[epochs, per_epoch, ...]``: row e is ``split(fold_in(rng, e), per_epoch)``.

  Under partitionable threefry (JAX's default) a split's keys do not depend on how many are
  made, so ``per_epoch`` is rounded up to a power of two and the rows cut: a cycle whose
  labeled set grows compiles this again only when the power of two does."""
  made = per_epoch
  if jax.config.jax_threefry_partitionable and jax.config.jax_default_prng_impl == 'threefry2x32':
    made = 1 << (per_epoch - 1).bit_length()
  return np.asarray(_split_per_epoch(rng, epochs, made))[:, :per_epoch]


@functools.partial(jax.jit, static_argnums=(1, 2))
def _split_per_epoch(rng: jax.Array, epochs: int, per_epoch: int) -> jax.Array:
  return jax.vmap(lambda e: jax.random.split(jax.random.fold_in(rng, e), per_epoch))(
      jnp.arange(epochs))


class DeviceFeed:
  """The runs' labeled sets on every device, padded to ``size`` rows so that one compiled step
  serves every cycle; a step is sent only its row indices (``train.on_rows``)."""
  layouts = (train.on_rows,)

  def __init__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, size: int, n_dev: int):
    def pad(v):
      return np.concatenate([v, np.zeros((size - len(v), *v.shape[1:]), v.dtype)])

    self._data = devices_lib.replicate({'x': pad(x), 'y': pad(y)})
    epochs, steps = rows.shape[:2]
    self._rows = pipeline.device_rows(rows.reshape(epochs * steps, *rows.shape[2:]), n_dev)
    self._rows = self._rows.reshape(epochs, steps, *self._rows.shape[1:])

  def step(self, epoch: int, i: int) -> Tuple[Any, ...]:
    """Step ``i`` of ``epoch``'s inputs before its key: ``(data, rows [n_dev, ...])``."""
    return self._data, self._rows[epoch, i]

  def epoch(self, epoch: int) -> Tuple[Any, ...]:
    """The epoch's inputs, a steps axis after the device axis."""
    return self._data, np.swapaxes(self._rows[epoch], 0, 1)

  def close(self) -> None:
    pass


class HostFeed:
  """Batches gathered on the host by background threads and put on the devices ahead of their
  steps (``pipeline.device_batches``); they come in the plan's order, each read once."""
  layouts = ()

  def __init__(self, x: Any, y: np.ndarray, rows: np.ndarray):
    self._steps = rows.shape[1]
    self._batches = pipeline.device_batches(x, y, rows.reshape(-1, *rows.shape[2:]),
                                            devices_lib.device_sharding())

  def step(self, epoch: int, i: int) -> Tuple[Any, ...]:
    del epoch, i  # the next in the plan's order
    return (next(self._batches),)

  def epoch(self, epoch: int) -> Tuple[Any, ...]:
    batches = [self.step(epoch, i)[0] for i in range(self._steps)]
    return (jax.tree.map(lambda *b: jnp.stack(b, 1), *batches),)

  def close(self) -> None:
    self._batches.close()


class StepLoop:
  """An epoch step by step: one compiled step per dispatch."""
  name = 'step'

  def compile(self, step: Callable, devices=None) -> Callable:
    return train.pmapped(step, devices)

  def run_epoch(self, program: Callable, state: train.State, feed, epoch: int,
                keys: np.ndarray) -> Tuple[train.State, Metrics]:
    """One epoch of ``program`` on ``feed``'s batches with ``keys`` (``[steps, n_dev, ...]``):
    the new state and every step's metrics, device arrays ``[n_dev, steps, ...]``. Nothing waits
    for the devices."""
    epochs = np.full(keys.shape[1], epoch, np.int32)
    metrics = []
    for i in range(keys.shape[0]):
      state, m = program(state, *feed.step(epoch, i), keys[i], epochs)
      metrics.append(m)
    return state, jax.tree.map(lambda *m: jnp.stack(m, 1), *metrics)


class ScanLoop:
  """An epoch as one compiled ``lax.scan`` over its steps, its batches all on the devices."""
  name = 'scan'

  def compile(self, step: Callable, devices=None) -> Callable:
    """``step`` scanned over ``batches`` (or rows), ``keys`` and ``epochs`` with a steps axis after
    the device axis (``[n_dev, steps, ...]``), the inputs before them (``data``) the same for every
    step; pmapped as :func:`train.pmapped`. Returns the new state and every step's metrics."""
    def epoch(state, *inputs):
      *fixed, per_step, keys, epochs = inputs  # ([data,] batches or rows, keys, epochs)
      return jax.lax.scan(lambda s, xs: step(s, *fixed, *xs), state, (per_step, keys, epochs))

    return train.pmapped(epoch, devices)

  def run_epoch(self, program: Callable, state: train.State, feed, epoch: int,
                keys: np.ndarray) -> Tuple[train.State, Metrics]:
    """As :meth:`StepLoop.run_epoch`, in one dispatch."""
    epochs = np.full((keys.shape[1], keys.shape[0]), epoch, np.int32)
    return program(state, *feed.epoch(epoch), np.swapaxes(keys, 0, 1), epochs)


LOOPS = {'step': StepLoop(), 'scan': ScanLoop()}


class OneRun:
  """One run trains alone: no runs axis in its program, its plan or its metrics."""
  layouts = ()

  def for_devices(self, plan: Plan, n_dev: int) -> Tuple[np.ndarray, np.ndarray]:
    return plan.for_devices(n_dev, seed_axis=False)

  def pack(self, states: Sequence[train.State]) -> train.State:
    return states[0]

  def unpack(self, state: train.State, runs: int) -> List[train.State]:
    del runs
    return [state]

  def of_run(self, value: np.ndarray, run: int) -> np.ndarray:
    """Device 0's copy of a metric's steps (metrics are pmeaned)."""
    del run
    return value[0]


class RunsTogether(OneRun):
  """Several runs (seeds) train as one vmapped program (``train.over_seeds``), a runs axis after
  the device axis of the states, the plan's rows and keys, and the metrics."""
  layouts = (train.over_seeds,)

  def for_devices(self, plan: Plan, n_dev: int) -> Tuple[np.ndarray, np.ndarray]:
    return plan.for_devices(n_dev, seed_axis=True)

  def pack(self, states: Sequence[train.State]) -> train.State:
    return _stack(states)

  def unpack(self, state: train.State, runs: int) -> List[train.State]:
    return _unstack(state, runs)

  def of_run(self, value: np.ndarray, run: int) -> np.ndarray:
    return value[0, :, run]


ONE_RUN, RUNS_TOGETHER = OneRun(), RunsTogether()


def train_cycle(experiment, run_states: Sequence[Any], cycle: int, rngs: Sequence[jax.Array]
                ) -> Tuple[List[train.State], List[List[Dict[str, float]]]]:
  """``config.train.epochs`` epochs on the labeled set of each run in ``run_states`` (``RunState``s
  of one strategy, several seeds, equal label counts) with the training keys ``rngs``: per run, the
  trained (unreplicated) training state and the mean training metrics of every epoch. Several runs
  train as one vmapped program (``config.vmap_seeds``), each with its own batches, keys and state,
  so each gets the result it would get alone."""
  config, strategy, runs = experiment.config, run_states[0].strategy, len(run_states)
  chex.assert_equal(len({(r.strategy, len(r.labeled)) for r in run_states}), 1)
  together = RUNS_TOGETHER if runs > 1 else ONE_RUN
  plan = make_plan([r.seed for r in run_states], rngs, cycle, len(run_states[0].labeled),
                   config.train.epochs, config.train.batch_size, jax.process_index(),
                   jax.process_count())
  rows, keys = together.for_devices(plan, jax.local_device_count())
  state = devices_lib.replicate(together.pack([_restart_optimisers(r.train_state)
                                               for r in run_states]))
  # Numbered as the result lines number cycles (from 0: the initial labeled set's).
  progress = (f'{strategy} seed{"s" * (runs > 1)} {",".join(str(r.seed) for r in run_states)} '
              f'cycle {cycle}')
  epoch_metrics = []
  # Closed on the way out, also when a NaN stops the cycle: no reader thread outlives it.
  with contextlib.closing(make_feed(experiment, run_states, rows)) as feed:
    loop = experiment.loop
    program = experiment.trainers[strategy].program(loop, *together.layouts, *feed.layouts)
    for epoch in tqdm.trange(plan.epochs, desc=progress, leave=False, dynamic_ncols=True,
                             mininterval=1.0, disable=config.get('quiet', False)):
      state, m = loop.run_epoch(program, state, feed, epoch, keys[epoch])
      epoch_metrics.append(m)
    # The one host synchronisation of the cycle: every step's metrics, read at its end.
    epoch_metrics = jax.device_get(epoch_metrics)
  histories = [_epoch_means(epoch_metrics, functools.partial(together.of_run, run=r))
               for r in range(runs)]
  _check_finite(run_states, cycle, histories)
  return together.unpack(jax_utils.unreplicate(state), runs), histories


def make_feed(experiment, run_states: Sequence[Any], rows: np.ndarray):
  """The feed of a cycle's batches (``config.train.feed``: ``'auto'`` puts labeled sets up to
  ``pipeline.DEVICE_FEED_MAX_BYTES`` on the devices). The labeled sets are read here, once per
  cycle (small by design; an array-like pool decodes here)."""
  config, ds = experiment.config, experiment.dataset
  labeled = np.concatenate([al.labeled for al in run_states])
  x, y = ds.x_train[labeled], ds.y_train[labeled]
  if not isinstance(ds.x_train, np.ndarray):   # arrays were checked at load; files are read here
    numerics.checked_batch(x, labeled, 'Dataset.x_train')
  # The device feed pads to the experiment's last size: one compiled step for every cycle.
  last = config.al.initial + config.al.budget * (config.al.cycles - 1)
  size = max(len(labeled), len(run_states) * last)
  kind = pipeline.choose_feed(config.train.get('feed', 'auto'),
                              (x.nbytes + y.nbytes) // len(labeled) * size)
  if kind == 'device':
    return DeviceFeed(x, y, rows, size, jax.local_device_count())
  return HostFeed(x, y, rows)


def _check_finite(run_states: Sequence[Any], cycle: int,
                  histories: List[List[Dict[str, float]]]) -> None:
  """A NaN or infinite training metric stops the run, the last cycle's checkpoint kept."""
  for al, history in zip(run_states, histories):
    for epoch, m in enumerate(history):
      if not all(np.isfinite(v) for v in m.values()):
        kept = (f'the checkpoint of cycle {cycle - 1} is kept' if cycle > 0 else
                'nothing of it was saved')
        fix = ('Lower config.train.lr (or config.loss_module.lr if only the loss module\'s '
               'metrics diverged).')
        if cycle == 0 and epoch == 0:   # before any divergence could build up
          fix = ('In its first epoch, the cause is more often the model\'s own arithmetic (a log, '
                 'a division or an exp that can overflow) or inputs of a scale it cannot take '
                 '(normalise them) than its learning rate: look there first; else ' + fix[0].lower()
                 + fix[1:])
        raise errors.NumericsError(
            f'{al.strategy}, seed {al.seed}, cycle {cycle}, epoch {epoch}: training produced '
            f'{m}. The run stops here; {kept}. {fix}')


def _epoch_means(epoch_metrics: List[Metrics], pick: Callable) -> List[Dict[str, float]]:
  """Per epoch, the mean over its steps of each metric, of one run's steps (``pick``)."""
  return [{k: float(np.mean(pick(v))) for k, v in m.items()}
          for m in epoch_metrics]


def _restart_optimisers(train_state: train.State) -> train.State:
  """The optimisers of a cycle start afresh: step 0 and their initial states."""
  target = train_state.target
  target = target.replace(step=0, opt_state=target.tx.init(target.params))
  loss_module = train_state.loss_module
  if loss_module is not None:
    loss_module = loss_module.replace(step=0, opt_state=loss_module.tx.init(loss_module.params))
  return train.State(target=target, loss_module=loss_module)


def _stack(trees: Sequence[Any]) -> Any:
  """Trees of equal structure stacked leaf by leaf on a new leading (seed) axis."""
  treedef = jax.tree.structure(trees[0])
  return treedef.unflatten([np.stack(leaves) for leaves in zip(*map(jax.tree.leaves, trees))])


def _unstack(tree: Any, n: int) -> List[Any]:
  leaves, treedef = jax.tree.flatten(tree)
  return [treedef.unflatten([leaf[i] for leaf in leaves]) for i in range(n)]
