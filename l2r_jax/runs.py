"""One run's record on disk: its checkpoints, its results lines and its TensorBoard scalars.

A (strategy, seed) run is opened with :func:`open_run` (resumed from its latest checkpoint if it
has one), saved after every cycle with :func:`save_run` and closed with :func:`close_run`. Its
checkpoints are ``WORKDIR/checkpoints/<strategy>-seed<seed>``; its results lines are appended to
``WORKDIR/results.jsonl`` and its scalars written under
``WORKDIR/tensorboard/<strategy>-seed<seed>``, by the first process alone.
"""
import dataclasses
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
import jax
import numpy as np
import tqdm

from l2r_jax import checkpoint
from l2r_jax import defaults
from l2r_jax import fields
from l2r_jax import protocol
from l2r_jax import state as state_lib
from l2r_jax import train
from l2r_jax import workdir as workdir_lib


class OpenRun(NamedTuple):
  """A run between cycles, with where it is saved."""
  state: state_lib.RunState
  manager: Any                   # its orbax CheckpointManager
  tensorboard: Optional[str]     # its TensorBoard folder (None on processes that do not write)


def _state_json(run_state: state_lib.RunState) -> Dict[str, Any]:
  return {'strategy': run_state.strategy, 'seed': run_state.seed, 'cycle': run_state.cycle,
          'labeled': run_state.labeled.tolist(), 'results': run_state.results}


def _older_layouts(train_state: train.State) -> Tuple[checkpoint.OlderLayout, ...]:
  """The training state as earlier versions saved it: its fields under their old names."""
  old_name = {new: old for old, new in defaults.RENAMED.items()}
  fields = {f.name: getattr(train_state, f.name) for f in dataclasses.fields(train_state)}
  template = {old_name.get(name, name): value for name, value in fields.items()}
  def upgrade(saved: Dict[str, Any]) -> train.State:
    return train.State(**{defaults.RENAMED.get(name, name): v for name, v in saved.items()})
  return ((template, upgrade),)


def _start(experiment: state_lib.Experiment, strategy: str, seed: int
           ) -> Tuple[train.State, jax.Array]:
  """A run's initial training state and its key for the queries. Both depend on the seed only:
  every strategy starts from the same model."""
  rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
  return state_lib.initial_train_state(experiment, strategy, rng_init), rng


def _resumed(strategy: str, seed: int, rng: jax.Array, train_state: train.State,
             saved: Dict[str, Any]) -> state_lib.RunState:
  """The run's state from a checkpoint's training state and its record ``saved``."""
  return state_lib.RunState(strategy, seed, saved['cycle'], np.asarray(saved['labeled'], np.int64),
                            rng, train_state, saved['results'])


def _record_problem(saved: Any, pool_size: int) -> Optional[str]:
  """Why a checkpoint's record of its run (``al``: ``cycle``, ``labeled``, ``results``) is not
  one this pool's run could have written (a file edited by hand, say); None if it is."""
  whole = fields.is_whole
  if not isinstance(saved, dict) or not all(k in saved for k in ('cycle', 'labeled', 'results')):
    return 'lacks its cycle, labeled samples or results'
  labeled = saved['labeled']
  if not whole(saved['cycle']) or saved['cycle'] < 0:
    return f'has cycle {saved["cycle"]!r}'
  if not (isinstance(labeled, list) and all(whole(i) and 0 <= i < pool_size for i in labeled)
          and len(set(labeled)) == len(labeled)):
    return f'names labeled samples that are not {pool_size} pool samples, each once'
  if not isinstance(saved['results'], list) or not all(isinstance(r, dict)
                                                       for r in saved['results']):
    return 'has results that are not records'
  return None


def open_run(experiment: state_lib.Experiment, workdir: str, strategy: str, seed: int,
             initial: Optional[np.ndarray] = None) -> OpenRun:
  """A (strategy, seed) run, resumed from its latest checkpoint if it has one; a new one starts
  with ``initial`` labeled (default: the seed's initial set of ``config.al.initial``)."""
  config = experiment.config
  train_state, rng = _start(experiment, strategy, seed)
  name = f'{strategy}-seed{seed}'
  # orbax writes, renames and deletes inside this folder: no link there, checked before it does.
  mgr = checkpoint.manager(workdir_lib.folder_in(workdir, 'checkpoints', name))
  restored = checkpoint.restore_latest(
      mgr, train_state, older_layouts=_older_layouts(train_state),
      al_problem=lambda al: _record_problem(al, experiment.dataset.pool_size))
  if restored is None:
    if initial is None:
      initial = protocol.initial_labeled(seed, experiment.dataset.pool_size, config.al.initial)
    run_state = state_lib.RunState(strategy, seed, -1, np.asarray(initial, np.int64), rng,
                                   train_state, [])
  else:
    run_state = _resumed(strategy, seed, rng, *restored)
    logging.info('%s seed %d: resuming after cycle %d.', strategy, seed, run_state.cycle)
  tensorboard = None
  if jax.process_index() == 0:  # several processes: the first alone writes files
    results = workdir_lib.path_in(workdir, 'results.jsonl')
    # Cycles past the restored checkpoint (a damaged one moved aside) are computed again.
    checkpoint.drop_results(results, strategy, seed, run_state.cycle)
    # A kill may have come between a checkpoint and its results line.
    checkpoint.append_results(results, run_state.results)
    tensorboard = workdir_lib.folder_in(workdir, 'tensorboard', name)
  return OpenRun(run_state, mgr, tensorboard)


def read_run(experiment: state_lib.Experiment, workdir: str, strategy: str, seed: int
             ) -> Optional[state_lib.RunState]:
  """The (strategy, seed) run as its latest checkpoint left it, read without writing anything in
  ``workdir`` (for reports on a finished or running experiment); None before its first cycle."""
  template, rng = _start(experiment, strategy, seed)
  restored = checkpoint.read_latest(
      workdir_lib.path_in(workdir, 'checkpoints', f'{strategy}-seed{seed}'), template,
      older_layouts=_older_layouts(template))
  return None if restored is None else _resumed(strategy, seed, rng, *restored)


def save_run(experiment: state_lib.Experiment, workdir: str, run: OpenRun,
             history: List[Dict[str, float]]) -> None:
  """Checkpoint, results line, TensorBoard scalars and a log line for the run's last cycle."""
  run_state = run.state
  r = run_state.results[-1]
  # A link planted while the cycle ran (the folders were checked when the run opened) is refused
  # before anything is written through it.
  name = f'{run_state.strategy}-seed{run_state.seed}'
  workdir_lib.folder_in(workdir, 'checkpoints', name)
  if run.tensorboard is not None:   # on disk before the checkpoint: a kill loses no scalar
    workdir_lib.folder_in(workdir, 'tensorboard', name)
    _write_scalars(run.tensorboard, run_state.cycle, r, history, experiment.config.train.epochs)
  # Host copies: saved once, by the primary process, whatever the process count.
  checkpoint.save(run.manager, run_state.cycle, jax.device_get(run_state.train_state),
                  _state_json(run_state))
  if run.tensorboard is not None:
    checkpoint.append_results(workdir_lib.path_in(workdir, 'results.jsonl'), run_state.results)
  score = '' if r['value'] is None else f', {r["metric"]} {r["value"]:.4f}'
  rho = '' if r['spearman'] is None else f', spearman {r["spearman"]:.3f}'
  tqdm.tqdm.write(f'{run_state.strategy} seed {run_state.seed} cycle {r["cycle"]}: '
                  f'{r["num_labeled"]} labels{score}{rho} ({r["wall_s"]:.1f} s)')


def saved_cycle(run: OpenRun) -> int:
  """The last cycle saved in the run's checkpoints as they stand on disk now (another process may
  have saved since the run was opened); -1 before the first."""
  run.manager.reload()
  latest = run.manager.latest_step()
  return -1 if latest is None else latest


def _write_scalars(folder: str, cycle: int, record: Dict[str, Any],
                   history: List[Dict[str, float]], epochs: int) -> None:
  """A cycle's TensorBoard scalars (training per epoch, the test metric and rho by labels) in an
  event file of their own, closed (on disk) before it returns. tensorboardX's writer queues events
  for a thread and its ``flush`` leaves the queue alone; only ``close`` drains it. A cycle computed
  again (after a kill between its scalars and its checkpoint) replaces the cycle's earlier file,
  once the new one is on disk: TensorBoard would show both."""
  # Imported here: tensorboardX loads PyTorch where it is installed (seconds), which a refused
  # command never needs.
  import tensorboardX  # pylint: disable=g-import-not-at-top
  # Named by cycle too: the writer names its file by the second, and two cycles can end in one.
  suffix = f'.cycle{cycle:04d}'
  before = set(os.listdir(folder)) if os.path.isdir(folder) else set()
  earlier = [n for n in before if n.startswith('events.') and n.endswith(suffix)]
  writer = tensorboardX.SummaryWriter(folder, filename_suffix=suffix)
  try:
    for epoch, m in enumerate(history):
      for k, v in m.items():
        writer.add_scalar(k, v, cycle * epochs + epoch)
    if record['value'] is not None:
      writer.add_scalar(f'eval_{record["metric"]}', record['value'], record['num_labeled'])
    if record['spearman'] is not None:
      writer.add_scalar('eval_spearman', record['spearman'], record['num_labeled'])
  finally:
    writer.close()
  if set(os.listdir(folder)) - before:   # a file of its own, not the earlier written over
    for name in earlier:
      os.remove(os.path.join(folder, name))


def close_run(run: OpenRun) -> None:
  """Releases the run's checkpoint manager."""
  run.manager.close()
