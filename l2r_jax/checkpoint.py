"""Saving and restoring an active-learning run after every cycle, and its results file.

A run's folder holds one orbax checkpoint per finished cycle (the last two kept): the model states
and, as JSON, the labeled set and the results so far. orbax writes to a temporary folder and
renames it when complete, so a kill during a save leaves the previous checkpoint as the latest.
``results.jsonl`` is derived from the checkpoints: after every save the records it lacks are
appended, so a kill between the two never loses or duplicates a line.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import orbax.checkpoint as ocp


def manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
      item_names=('models', 'al'))


def save(mgr: ocp.CheckpointManager, cycle: int, models: Any, al: Dict[str, Any]) -> None:
  mgr.save(cycle, args=ocp.args.Composite(models=ocp.args.StandardSave(models),
                                          al=ocp.args.JsonSave(al)))
  mgr.wait_until_finished()


def restore_latest(mgr: ocp.CheckpointManager,
                   models_template: Any) -> Optional[Tuple[Any, Dict[str, Any]]]:
  """``(models, al)`` of the latest finished cycle, or None for a fresh run."""
  step = mgr.latest_step()
  if step is None:
    return None
  out = mgr.restore(step, args=ocp.args.Composite(
      models=ocp.args.StandardRestore(models_template), al=ocp.args.JsonRestore()))
  return out.models, out.al


RESULT_KEY = ('strategy', 'seed', 'cycle')


def read_results(path: str) -> List[Dict[str, Any]]:
  """The records in ``path``; a last line cut off by a kill is dropped from the file."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split('\n')
  records, good = [], []
  for line in lines:
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
      good.append(line)
    except json.JSONDecodeError:
      break
  if len(good) != len([l for l in lines if l.strip()]):
    with open(path, 'w') as f:
      f.write(''.join(l + '\n' for l in good))
  return records


def append_results(path: str, records: List[Dict[str, Any]]) -> None:
  """Appends the records whose (strategy, seed, cycle) ``path`` does not hold yet."""
  have = {tuple(r[k] for k in RESULT_KEY) for r in read_results(path)}
  new = [r for r in records if tuple(r[k] for k in RESULT_KEY) not in have]
  if new:
    with open(path, 'a') as f:
      for r in new:
        f.write(json.dumps(r) + '\n')
      f.flush()
      os.fsync(f.fileno())
