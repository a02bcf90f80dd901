"""Saving and restoring an active-learning run after every cycle, and its results file.

A run's folder holds one orbax checkpoint per finished cycle (the last two kept): the model states
and, as JSON, the labeled set and the results so far. orbax writes to a temporary folder and
renames it when complete, so a kill during a save leaves the previous checkpoint as the latest.
``results.jsonl`` is derived from the checkpoints: after every save the records it lacks are
appended, so a kill between the two never loses or duplicates a line.

Damage is survived, never hidden: a checkpoint that cannot be restored (a truncated data file, a
missing manifest or JSON part) is reported in one line and moved to ``WORKDIR/damaged/``, and the
run resumes from the previous one; a results line that cannot be parsed is reported, the file's
damaged copy kept beside it, and the record comes back from its run's checkpoint. A checkpoint
whose arrays, as its metadata lists them, are not those of the model the config builds (the
model's code changed since) is not damage: the run is refused in one line, nothing moved.
"""
import contextlib
import datetime
import gc
import json
import logging as std_logging
import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp

from l2r_jax import report as report_lib
from l2r_jax.errors import WorkdirError
from l2r_jax import workdir as workdir_lib


def manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
      item_names=('models', 'al'))


def save(mgr: ocp.CheckpointManager, cycle: int, models: Any, al: Dict[str, Any]) -> None:
  mgr.save(cycle, args=ocp.args.Composite(models=ocp.args.StandardSave(models),
                                          al=ocp.args.JsonSave(al)))
  mgr.wait_until_finished()


# A way the models were saved by an earlier version (fields since renamed): the tree to restore
# into, and the function that gives today's models from what it restores.
OlderLayout = Tuple[Any, Callable[[Any], Any]]


def restore_latest(mgr: ocp.CheckpointManager, models_template: Any,
                   report: Optional[Callable[[str], None]] = None,
                   older_layouts: Sequence[OlderLayout] = (),
                   al_problem: Callable[[Any], Optional[str]] = lambda al: None
                   ) -> Optional[Tuple[Any, Dict[str, Any]]]:
  """``(models, al)`` of the latest cycle whose checkpoint can be restored, or None for a fresh run.

  A checkpoint that does not restore into ``models_template`` is tried in each of
  ``older_layouts``. One that cannot be restored in any, or whose ``al`` record is not one
  (``al_problem(al)`` says why), is moved aside (:func:`move_aside`) and ``report``-ed in one
  line (default: a logged warning), and the one before it is tried."""
  report = report or logging.warning
  for step in sorted(mgr.all_steps(), reverse=True):
    # Before a restore is tried: a failed one leaves orbax's abandoned reads to print at length.
    _refuse_another_model(str(mgr.directory), step, models_template, older_layouts)
    try:
      models, al = _restore(mgr, step, models_template, older_layouts)
      problem = al_problem(al)
      if problem:
        raise ValueError(f'its record of the run {problem}')
    except Exception as e:  # pylint: disable=broad-except  (whatever makes it unreadable)
      aside = move_aside(str(mgr.directory), step)
      reason = str(e).strip().split('\n')[0][:200]
      report(f'{mgr.directory}: the checkpoint of cycle {step} cannot be restored '
             f'({type(e).__name__}: {reason}); moved to {aside}, resuming from the one before.')
      mgr.reload()
      continue
    return models, al
  return None


def read_latest(directory: str, models_template: Any,
                older_layouts: Sequence[OlderLayout] = ()
                ) -> Optional[Tuple[Any, Dict[str, Any]]]:
  """``(models, al)`` of the latest checkpoint in ``directory``, read only: nothing is
  created, moved or deleted, and one that cannot be restored raises (None where there is none).
  For reading a run another command made; a run that goes on uses :func:`restore_latest`."""
  if not os.path.isdir(directory):
    return None
  mgr = ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(create=False, read_only=True),
      item_names=('models', 'al'))
  try:
    step = mgr.latest_step()
    if step is None:
      return None
    _refuse_another_model(directory, step, models_template, older_layouts)
    return _restore(mgr, step, models_template, older_layouts)
  finally:
    mgr.close()


def array_shapes(tree: Any) -> Dict[str, Tuple[int, ...]]:
  """``{path: shape}`` of a tree of arrays (or of orbax's metadata of one), its path the keys and
  field names joined by dots, as orbax names a saved array."""
  def name(key):
    return str(next(getattr(key, a) for a in ('key', 'name', 'idx') if hasattr(key, a)))
  return {'.'.join(map(name, path)): tuple(getattr(leaf, 'shape', ()))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _refuse_another_model(directory: str, step: int, models_template: Any,
                          older_layouts: Sequence[OlderLayout]) -> None:
  """Refuses (:class:`l2r_jax.errors.WorkdirError`) a checkpoint whose metadata can be read and
  lists other arrays than the models of ``models_template`` and of every older layout have: not
  damage, but a model built otherwise since it was saved. Returns where the metadata cannot be
  read (damage) or fits."""
  try:
    saved = array_shapes(ocp.StandardCheckpointHandler().metadata(
        epath.Path(directory) / str(step) / 'models'))
  except Exception:  # pylint: disable=broad-except  (unreadable: damage, handled as such)
    return
  templates = [models_template, *(template for template, _ in older_layouts)]
  if not saved or any(array_shapes(t) == saved for t in templates):
    return
  detail = shape_difference(saved, array_shapes(models_template))
  if detail is None:
    return
  raise WorkdirError(
      f'{directory}: the checkpoint of cycle {step} holds another model than the config builds '
      f'now ({detail}): the model\'s code, or a default of its fields, changed since the run '
      'was saved. Run the model as it is now in a new --workdir (this one keeps the runs of the '
      'model it was made with), or restore the model\'s code as it was; nothing was moved.')


def shape_difference(saved: Dict[str, Tuple[int, ...]], now: Dict[str, Tuple[int, ...]]
                     ) -> Optional[str]:
  """How arrays saved differ from a model's now (:func:`array_shapes` of each), a weight's first:
  ``'path: (a,) saved, (b,) now; N more'``; None where they do not."""
  differs = sorted(set(saved) ^ set(now)) or sorted(k for k in saved if saved[k] != now[k])
  if not differs:
    return None
  first = next((k for k in differs if 'params.' in k), differs[0])   # a weight, not its moments
  detail = (f'{first}: {saved[first]} saved, {now[first]} now' if first in saved and first in now
            else f'{first}: saved, not in the model now' if first in saved else
            f'{first}: in the model now, not saved')
  return detail + (f'; {len(differs) - 1} more' if len(differs) > 1 else '')


def _restore(mgr: ocp.CheckpointManager, step: int, models_template: Any,
             older_layouts: Sequence[OlderLayout]) -> Tuple[Any, Dict[str, Any]]:
  """The checkpoint of ``step`` in today's layout or the first older one it restores into. If
  none, the error that says why: the first that is not a layout's mismatch of tree structure (a
  damaged checkpoint of an older layout fails today's layout on its structure first)."""
  errors = []
  for template, upgrade in ((models_template, lambda models: models), *older_layouts):
    try:
      with _quiet_asyncio():
        out = mgr.restore(step, args=ocp.args.Composite(
            models=ocp.args.StandardRestore(template), al=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except  (whatever makes it unreadable)
      _drop_abandoned_reads_noise()
      errors.append(e)
      continue
    return upgrade(out.models), out.al
  raise next((e for e in errors if 'tree structures do not match' not in str(e)), errors[0])


@contextlib.contextmanager
def _quiet_asyncio():
  """A failed restore leaves orbax's other reads as futures whose errors nobody retrieves; asyncio
  would log each, at length, when they are collected. The restore's own error is reported."""
  log = std_logging.getLogger('asyncio')
  level = log.level
  log.setLevel(std_logging.CRITICAL)
  try:
    yield
  finally:
    gc.collect()
    log.setLevel(level)


def _drop_abandoned_reads_noise() -> None:
  """A failed restore abandons its other tensorstore reads; as each completes, it tries to wake
  orbax's event loop, already closed, and Python prints a traceback per read through
  ``sys.unraisablehook`` (30 of them for a checkpoint without its OCDBT manifest), possibly after
  the restore has returned. From the first failed restore on, those alone are not printed."""
  previous = sys.unraisablehook
  if getattr(previous, 'drops_abandoned_reads', False):
    return

  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == 'Event loop is closed'):
      previous(unraisable)

  hook.drops_abandoned_reads = True
  sys.unraisablehook = hook


def move_aside(directory: str, step: int) -> str:
  """Moves a run's checkpoint of ``step`` to ``WORKDIR/damaged/<run>-cycle<step>-<time>`` (out of
  the manager's sight, kept for inspection); returns where."""
  workdir = os.path.dirname(os.path.dirname(directory))
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
  workdir_lib.folder_in(workdir, 'damaged')
  aside = workdir_lib.path_in(workdir, 'damaged',
                              f'{os.path.basename(directory)}-cycle{step}-{stamp}')
  os.makedirs(os.path.dirname(aside), exist_ok=True)
  shutil.move(workdir_lib.path_in(workdir, os.path.relpath(directory, workdir), str(step)), aside)
  return aside


RESULT_KEY = ('strategy', 'seed', 'cycle')
# What the driver and the report read of a results record.
RESULT_FIELDS = RESULT_KEY + ('num_labeled', 'metric', 'value')


def read_results(path: str, report: Optional[Callable[[str], None]] = None,
                 restored_by: Optional[str] = "The runs' checkpoints restore their records.",
                 required: Sequence[str] = ()) -> List[Dict[str, Any]]:
  """The records in ``path`` (any JSON-lines file; refused if it is a symbolic link). A last line
  cut off by a kill (no newline after it) is dropped from the file. Any other line that cannot be
  parsed (not UTF-8, not JSON, or not an object with the fields ``required``, each of its kind)
  is ``report``-ed and left out, the damaged file kept as ``path.damaged-<time>``; ``restored_by``
  says what brings its record back (for results: the run's checkpoint, :func:`append_results`).
  The file is rewritten atomically (:func:`l2r_jax.workdir.write_atomic`): a kill leaves it as it
  was or cleaned up, never less."""
  report = report or logging.warning
  if not os.path.lexists(path):
    return []
  content = workdir_lib.read_bytes(path)
  lines = content.split(b'\n')
  records, good, bad = [], [], []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError):
      bad.append((number, line))
      continue
    if required and not report_lib.is_record(record, required):
      bad.append((number, line))
      continue
    records.append(record)
    good.append(line)
  if bad:
    cut_off = len(bad) == 1 and bad[0][0] == len(lines) and not content.endswith(b'\n')
    if not cut_off:
      folder, name = os.path.split(path)
      copy = workdir_lib.path_in(
          folder, f'{name}.damaged-{datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")}')
      workdir_lib.write_atomic(copy, content)
      shown = bad[0][1][:60].decode('utf-8', 'backslashreplace')
      report(f'{path}: line{"s" * (len(bad) > 1)} {", ".join(str(n) for n, _ in bad)} cannot be '
             f'parsed as a record ({shown!r}); left out, the file as it was kept as {copy}.'
             + (f' {restored_by}' if restored_by else ''))
    workdir_lib.write_atomic(path, b''.join(line + b'\n' for line in good))
  return records


def drop_results(path: str, strategy: str, seed: int, after_cycle: int) -> None:
  """Removes the records of (``strategy``, ``seed``) past ``after_cycle``: cycles whose checkpoint
  is gone (damaged), to be computed again."""
  records = read_results(path, required=RESULT_FIELDS)
  keep = [r for r in records
          if not (r['strategy'] == strategy and r['seed'] == seed and r['cycle'] > after_cycle)]
  if len(keep) != len(records):
    workdir_lib.write_atomic(path, ''.join(json.dumps(r) + '\n' for r in keep))


def append_results(path: str, records: List[Dict[str, Any]]) -> None:
  """Appends the records whose (strategy, seed, cycle) ``path`` does not hold yet, synced, whole
  or not at all (:func:`l2r_jax.workdir.append_synced`)."""
  have = {tuple(r[k] for k in RESULT_KEY) for r in read_results(path, required=RESULT_FIELDS)}
  new = [r for r in records if tuple(r[k] for k in RESULT_KEY) not in have]
  if new:
    workdir_lib.append_synced(path, ''.join(json.dumps(r) + '\n' for r in new))
