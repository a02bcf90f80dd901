"""A workdir is one experiment's record: it knows its experiment, and has one writer at a time.

**Identity.** The first run writes ``WORKDIR/experiment.json``: every config field that changes
results, and the package version. A later run on the same workdir whose config differs in any such
field is refused before anything is loaded or trained, with the fields that differ (old -> new):
resuming it would mix two experiments in one ``results.jsonl``. A field the package gained since
the workdir was made counts as unchanged while it holds its default (``l2r_jax.defaults``: a
new field's default keeps what earlier versions computed). The fields in :data:`RESUMABLE`
may change between runs; they extend an experiment or change how it runs, not what it computes.

**One writer.** A run holds ``WORKDIR/lock`` (its pid, host and start time) while it works; a
second run on the same workdir is refused at once, naming the first. A lock left by a process that
no longer runs (killed) on this host is taken over. In a multi-process run, process 0 holds it.
"""
import contextlib
import datetime
import json
import os
import socket
from typing import Any, Dict, Iterator, Optional, Tuple

import ml_collections

import l2r_jax
from l2r_jax import defaults
from l2r_jax.errors import Refusal

IDENTITY_FILE = 'experiment.json'
LOCK_FILE = 'lock'
# Fields a resumed run may change: more cycles extend every run; strategies and seeds add or
# leave out runs; the rest change how a run is shown, fed or executed, not what it computes (the
# feeds give bit-identical batches; the loops, seeds trained apart or together, and evaluation
# chunks give the same results up to floating-point rounding, as another CPU would).
RESUMABLE = ('al.cycles', 'strategies', 'seeds', 'quiet', 'eval_batch_size', 'train.feed',
             'train.loop', 'vmap_seeds')


class WorkdirError(Refusal, ValueError):
  """A run the workdir refuses: another experiment's record, or another run writing it."""


def _flat(tree: Any, prefix: str = '') -> Dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flat(v, f'{prefix}{k}.'))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: tree}


def identity(config: ml_collections.ConfigDict,
             data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """The fields of ``config`` that change results (dotted names, JSON values) and the version;
  with ``data``, a description of data the config does not name (an active learner's pool)."""
  fields = _flat(json.loads(config.to_json_best_effort(sort_keys=True)))
  out = {'version': l2r_jax.__version__,
         'fields': {k: v for k, v in sorted(fields.items()) if k not in RESUMABLE}}
  if data is not None:
    out['data'] = data
  return out


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> Tuple[str, ...]:
  out = []
  if old.get('version') != new['version']:
    out.append(f'l2r-jax version: {old.get("version")} -> {new["version"]}')
  absent = '(absent)'
  old_data, new_data = old.get('data', {}), new.get('data', {})
  for name in sorted(set(old_data) | set(new_data)):
    a, b = old_data.get(name, absent), new_data.get(name, absent)
    if a != b:
      out.append(f'data {name}: {json.dumps(a)} -> {json.dumps(b)}')
  added = _flat(json.loads(defaults.get_config().to_json_best_effort(sort_keys=True)))
  for name in sorted(set(old.get('fields', {})) | set(new['fields'])):
    a, b = old.get('fields', {}).get(name, absent), new['fields'].get(name, absent)
    if a == absent and name in added and added[name] == b:
      continue  # a field added to the package since, at its default: the experiment as it was
    if a != b:
      out.append(f'config.{name}: {json.dumps(a)} -> {json.dumps(b)}')
  return tuple(out)


def check_identity(workdir: str, config: ml_collections.ConfigDict,
                   data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Refuses ``config`` (and ``data``, see :func:`identity`) if ``workdir`` records another
  experiment; returns its identity (to be written by :func:`write_identity` once the run has
  passed every other check)."""
  new = identity(config, data)
  path = os.path.join(workdir, IDENTITY_FILE)
  if not os.path.exists(path):
    return new
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f'{path} cannot be read ({e}): it records which experiment this workdir '
                       f'holds. Restore it, or use a new --workdir.') from None
  diffs = _differences(old, new)
  if diffs:
    raise WorkdirError(
        f'--workdir={workdir} holds another experiment; resuming it with this config would mix '
        f'the two. Differences: {"; ".join(diffs)}. Run with the config it was made with, or '
        f'give a new --workdir. (May change on resume: {", ".join(RESUMABLE)}.)')
  return new


def write_identity(workdir: str, ident: Dict[str, Any]) -> None:
  path = os.path.join(workdir, IDENTITY_FILE)
  if os.path.exists(path):
    return
  with open(path + '.tmp', 'w') as f:
    json.dump(ident, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)


def _process_start(pid: int) -> Optional[str]:
  """When ``pid`` started (clock ticks since boot, Linux), or None where that cannot be read:
  tells a live lock holder from a later process that reuses its pid."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(holder: Dict[str, Any]) -> bool:
  pid = holder.get('pid')
  if not isinstance(pid, int):
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  start = _process_start(pid)
  return start is None or holder.get('process_start') in (None, start)


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds ``WORKDIR/lock`` for the duration; refuses if a live process holds it."""
  path = os.path.join(workdir, LOCK_FILE)
  me = {'pid': os.getpid(), 'host': socket.gethostname(), 'process_start': _process_start(
      os.getpid()), 'started': datetime.datetime.now().isoformat(timespec='seconds')}
  mine = f'{path}.{me["pid"]}'
  with open(mine, 'w') as f:
    json.dump(me, f)
  for _ in range(2):
    try:
      os.link(mine, path)  # atomic: the lock appears with its content, or not at all
    except FileExistsError:
      try:
        with open(path) as f:
          holder = json.load(f)
      except (OSError, ValueError):
        holder = {}
      if holder.get('host') not in (None, me['host']) or (holder and _alive(holder)):
        where = ('on this host' if holder.get('host') == me['host'] else
                 f'on host {holder.get("host")}; if it no longer runs, delete {path}')
        os.remove(mine)
        raise WorkdirError(
            f'--workdir={workdir} is in use by process {holder.get("pid")} {where}, started '
            f'{holder.get("started")}. Wait for it to finish, or give another --workdir.'
        ) from None
      os.remove(path)  # left by a process that no longer runs: taken over
      continue
    break
  os.remove(mine)
  try:
    yield
  finally:
    try:
      with open(path) as f:
        if json.load(f).get('pid') == me['pid']:
          os.remove(path)
    except (OSError, ValueError):
      pass
