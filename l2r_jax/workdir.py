"""A workdir is one experiment's record: it knows its experiment, and has one writer at a time.

**Identity.** The first run writes ``WORKDIR/experiment.json``: every config field that changes
results, and the package version. A later run on the same workdir whose config differs in any such
field is refused before anything is loaded or trained, with the fields that differ (old -> new):
resuming it would mix two experiments in one ``results.jsonl``. A field the package gained since
the workdir was made counts as unchanged while it holds its default (``l2r_jax.defaults``: a
new field's default keeps what earlier versions computed); a section renamed since is compared
under its new name (``defaults.RENAMED``). The fields in :data:`RESUMABLE`
may change between runs; they extend an experiment or change how it runs, not what it computes.

**One writer.** A run holds ``WORKDIR/lock`` while it works: an ``flock`` on the open file, which
the kernel drops when the process ends however it ends, so a lock left by a killed process is taken
over atomically, by exactly one of the processes that try. The file records the holder's pid, host
and start time for the message that refuses a second run. A lock file that names another host is
refused (a lock on a shared file system may not reach across hosts), saying how to clear it. In a
multi-process run, process 0 holds it.

**Nothing through a link.** Every file the project writes in a workdir is named by
:func:`path_in`, which refuses a path that is a symbolic link, passes through one, or resolves
outside the workdir; files are opened without following links, rewritten by
:func:`write_atomic` (a temporary file, fsync, rename) and appended to by :func:`append_synced`.
"""
import ast
import contextlib
import datetime
import errno
import fcntl
import hashlib
import inspect
import json
import linecache
import os
import re
import socket
import stat
import sys
import textwrap
import time
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import ml_collections

import l2r_jax
from l2r_jax import defaults
from l2r_jax.errors import WorkdirError
from l2r_jax.errors import WorkdirInUse

IDENTITY_FILE = 'experiment.json'
LOCK_FILE = 'lock'
# Fields a resumed run may change: more cycles extend every run; strategies and seeds add or
# leave out runs; the rest change how a run is shown, fed or executed, not what it computes (the
# feeds give bit-identical batches; the loops, seeds trained apart or together, and evaluation
# chunks give the same results up to floating-point rounding, as another CPU would).
RESUMABLE = ('al.cycles', 'strategies', 'seeds', 'quiet', 'eval_batch_size', 'train.feed',
             'train.loop', 'vmap_seeds')


# Fields that say where the data lies, not what it is: a workdir that records its data (its
# description, compared once the data is loaded) resumes with them changed (the folder moved, or
# named with a trailing slash or from another folder).
LOCATIONS = ('data.root', 'data.data_dir', 'data.manual_dir')


def _flat(tree: Any, prefix: str = '') -> Dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flat(v, f'{prefix}{k}.'))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: tree}


def identity(config: ml_collections.ConfigDict, data: Optional[Dict[str, Any]] = None,
             code: Optional[Dict[str, Optional[str]]] = None,
             devices: Optional[int] = None) -> Dict[str, Any]:
  """The fields of ``config`` that change results (dotted names, JSON values) and the version;
  with ``data``, a description of the data (:func:`l2r_jax.data.describe`; an active learner's
  also names its strategy and seed), which the config names but does not hold; with ``code``, the
  :func:`code_fingerprint` of each model and strategy of the user's own the config names (the
  package's own are its version's); with ``devices``, the device count the runs train on (its
  rounding differences can grow in training: a run resumes on the count it began on)."""
  fields = _flat(json.loads(config.to_json_best_effort(sort_keys=True)))
  out = {'version': l2r_jax.__version__,
         'fields': {k: v for k, v in sorted(fields.items()) if k not in RESUMABLE}}
  if data is not None:
    out['data'] = data
  if code:
    out['code'] = dict(sorted(code.items()))
  if devices is not None:
    out['devices'] = int(devices)
  return out


def code_fingerprint(code: Any) -> Optional[str]:
  """A fingerprint of the syntax of ``code`` (a class or function defined in a file or a
  notebook's cell): its source parsed, so comments, docstrings and layout do not count, an edit
  of what it does does. The functions and classes of its own module that it names (a helper, a
  block, a base class), theirs in turn, and the plain constants it names (``WIDTH = 64``) count
  too; code it reaches otherwise (another module of yours, an attribute) is not read. None where
  its source cannot be read (made at run time)."""
  home = _file(code)
  root = _syntax(code, home)
  if root is None:
    return None
  scope, parts, seen, todo = _scope(code), [], set(), [root]
  while todo:
    tree = todo.pop()   # the globals it reads: names loaded, never bound in it (locals, args)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(
        n.ctx, ast.Load)} | {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - bound):
      value = scope.get(name)
      if name in seen or value is None or value is code:
        continue
      seen.add(name)
      if _constant(value):
        parts.append(f'{name} = {value!r}')
      elif ((inspect.isfunction(value) or isinstance(value, type))
            and getattr(value, '__module__', None) == getattr(code, '__module__', None)):
        helper = _syntax(value, home)
        if helper is not None:
          parts.append(f'{name}: {ast.dump(helper)}')
          todo.append(helper)
  text = ast.dump(root) + ''.join(f'\n{part}' for part in sorted(parts))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _syntax(code: Any, home: Optional[str] = None) -> Optional[ast.Module]:
  """The parsed source of ``code`` (a class found in the file ``home`` where Python cannot say
  its file), docstrings left out; None where there is no source."""
  try:
    tree = ast.parse(textwrap.dedent(_source(code, home)))
  except (OSError, TypeError, SyntaxError, ValueError):
    return None
  for node in ast.walk(tree):
    body = getattr(node, 'body', None)
    if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)):
      node.body = body[1:] or [ast.Pass()]   # a docstring says, it does not do
  return tree


def _constant(value: Any) -> bool:
  """Whether ``value`` is a plain constant (a number, text, or a tuple of them)."""
  if isinstance(value, tuple):
    return all(_constant(v) for v in value)
  return isinstance(value, (bool, int, float, complex, str, bytes))


def _todays_names(fields: Dict[str, Any]) -> Dict[str, Any]:
  """Recorded fields under today's names (a section renamed since: ``defaults.RENAMED``)."""
  out = {}
  for name, value in fields.items():
    section = name.split('.', 1)[0]
    today = defaults.RENAMED.get(section, section) + name[len(section):]
    if today != name and today in fields:
      continue  # recorded under both names: today's holds
    out[today] = value
  return out


def _scope(code: Any) -> Dict[str, Any]:
  """The global names ``code`` sees: its module's (a class's, through a method where its module
  was loaded by path)."""
  if inspect.isfunction(code):
    return inspect.unwrap(code).__globals__
  module = sys.modules.get(getattr(code, '__module__', None) or '')
  if module is not None:
    return vars(module)
  functions = [f for f in vars(code).values() if inspect.isfunction(f)] if isinstance(
      code, type) else []
  return inspect.unwrap(functions[0]).__globals__ if functions else {}


def _file(code: Any) -> Optional[str]:
  """The file that defines ``code`` (a function, or a class by its methods), if one does."""
  functions = [code] if inspect.isfunction(code) else [
      f for f in vars(code).values() if inspect.isfunction(f)] if isinstance(code, type) else []
  files = {inspect.unwrap(f).__code__.co_filename for f in functions} - {'<string>'}
  return files.pop() if len(files) == 1 else None


def _source(code: Any, home: Optional[str] = None) -> str:
  """The source of ``code``; of a class whose module is not in ``sys.modules`` (a file loaded by
  path), found in the file of its methods, or in ``home`` where it has none. Raises OSError or
  TypeError where there is none."""
  try:
    return inspect.getsource(code)
  except (OSError, TypeError):
    if not isinstance(code, type):
      raise
  path = _file(code) or home
  if path is None:
    raise OSError(f'no one file holds {code.__qualname__}')
  linecache.checkcache(path)
  text = ''.join(linecache.getlines(path))
  found = [node for node in ast.walk(ast.parse(text))
           if isinstance(node, ast.ClassDef) and node.name == code.__name__]
  if len(found) != 1:
    raise OSError(f'{code.__qualname__} is not one class of its file')
  return ast.get_source_segment(text, found[0])


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> Tuple[str, ...]:
  """What differs between two identities (:func:`identity`), one line each, old -> new; none for
  a field added to the package since ``old`` that ``new`` has at its default, or one on one side
  only that is None (unset) there; none for the data unless both record it, nor for the data's
  location (:data:`LOCATIONS`) where ``old`` records the data."""
  out = []
  if old.get('version') != new['version']:
    out.append(f'l2r-jax version: {old.get("version")} -> {new["version"]}')
  absent = '(absent)'
  # Data recorded on one side only (a workdir of a version that recorded none for a simulation;
  # a check before the data is loaded): the config alone is compared.
  both = 'data' in old and 'data' in new
  old_data, new_data = (old['data'], new['data']) if both else ({}, {})
  for name in sorted(set(old_data) | set(new_data)):
    a, b = old_data.get(name, absent), new_data.get(name, absent)
    if a != b:
      out.append(f'data {name}: {json.dumps(a)} -> {json.dumps(b)}')
  if None not in (old.get('devices'), new.get('devices')) and old['devices'] != new['devices']:
    out.append(f'devices: {old["devices"]} -> {new["devices"]} (one device and several compute '
               'the same steps up to rounding, which training can amplify: resume on '
               f'{old["devices"]})')
  # The user's own code: an edit since (a model, a strategy named on both sides, whose source
  # could be read both times).
  old_code, new_code = old.get('code', {}), new.get('code', {})
  for name in sorted(set(old_code) & set(new_code)):
    a, b = old_code[name], new_code[name]
    if None not in (a, b) and a != b:
      out.append(f'the code of {name} changed since ({a} -> {b}): its runs would mix two '
                 'versions of it')
  added = _flat(json.loads(defaults.get_config().to_json_best_effort(sort_keys=True)))
  old_fields = _todays_names(old.get('fields', {}))
  moved = LOCATIONS if 'data' in old else ()
  for name in sorted(set(old_fields) | set(new['fields'])):
    if name in moved:
      continue
    a, b = old_fields.get(name, absent), new['fields'].get(name, absent)
    if a == absent and name in added and added[name] == b:
      continue  # a field added to the package since, at its default: the experiment as it was
    if absent in (a, b) and None in (a, b):
      continue  # a field a config file added (or left out) unset: the experiment as it was
    if a != b:
      out.append(f'config.{name}: {json.dumps(a)} -> {json.dumps(b)}')
  return tuple(out)


def check_identity(workdir: str, config: ml_collections.ConfigDict,
                   data: Optional[Dict[str, Any]] = None, pool_changed: str = '',
                   code: Optional[Dict[str, Optional[str]]] = None,
                   devices: Optional[int] = None) -> Dict[str, Any]:
  """Refuses ``config`` (and ``data``, ``code`` and ``devices``, see :func:`identity`) if
  ``workdir`` records another experiment; returns its identity (to be written by
  :func:`write_identity` once the run has passed every other check). ``pool_changed``: what the
  refusal adds where the data's pool (``pool_*``: its size, inputs or ids) is among the
  differences."""
  new = identity(config, data, code, devices)
  path = path_in(workdir, IDENTITY_FILE) if os.path.isdir(workdir) else os.path.join(
      workdir, IDENTITY_FILE)
  if not os.path.exists(path):
    ran = [name for name in ('checkpoints', 'results.jsonl')
           if os.path.lexists(os.path.join(workdir, name))]
    if ran:
      raise WorkdirError(
          f'--workdir={workdir} holds {" and ".join(ran)} but not {IDENTITY_FILE}, the record of '
          'the experiment they belong to: restore it (resuming them with another config would '
          'mix two experiments), or give a new --workdir.')
    return new
  try:
    old = json.loads(read_text(path))
    if not isinstance(old, dict) or not all(isinstance(old.get(k, {}), dict)
                                            for k in ('data', 'fields', 'code')):
      raise ValueError('not the JSON object it writes')
  except WorkdirError:   # a link, a FIFO: refused as such by read_text
    raise
  except (OSError, ValueError) as e:
    raise WorkdirError(f'{path} cannot be read ({e}): it records which experiment this workdir '
                       f'holds. Restore it, or use a new --workdir.') from None
  diffs = differences(old, new)
  if diffs:
    raise WorkdirError(
        f'--workdir={workdir} holds another experiment; resuming it with this config would mix '
        f'the two. Differences: {"; ".join(diffs)}. Run with the config it was made with, or '
        f'give a new --workdir. (May change on resume: {", ".join(RESUMABLE)}.)'
        + (f' {pool_changed}' if pool_changed and any(
            d.startswith('data pool_') for d in diffs) else ''))
  return new


def write_identity(workdir: str, ident: Dict[str, Any]) -> None:
  path = path_in(workdir, IDENTITY_FILE)
  if os.path.exists(path):
    return
  write_atomic(path, json.dumps(ident, indent=1, sort_keys=True))


# -- files inside a workdir -----------------------------------------------------------------------


def path_in(workdir: str, *parts: str) -> str:
  """``workdir/parts...``, refused (:class:`WorkdirError`) if it, or a folder between it and the
  workdir, is a symbolic link, or if it resolves outside the workdir: the project writes only
  inside its workdir, never through a link someone left there. The workdir itself may be reached
  through links (it is the folder the user named)."""
  root = os.path.realpath(workdir)
  path = os.path.normpath(os.path.join(root, *parts))
  relative = os.path.relpath(path, root)
  if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
    raise WorkdirError(f'{path}: outside the workdir {root}; the project writes only inside it.')
  current = root
  for part in ([] if relative == os.curdir else relative.split(os.sep)):
    current = os.path.join(current, part)
    if os.path.islink(current):
      raise _link_error(current)
  return path


def folder_in(workdir: str, *parts: str) -> str:
  """``workdir/parts...`` (:func:`path_in`), a folder whose entries the project writes, moves and
  deletes (checkpoints, TensorBoard logs): refused if it is not a folder, or if anything inside it
  is a symbolic link, which a library writing or deleting there would follow."""
  path = path_in(workdir, *parts)
  if os.path.lexists(path) and not os.path.isdir(path):
    raise WorkdirError(f'{path} is a file; the project keeps a folder there. Move the file away '
                       '(or give a new --workdir).')
  for folder, subfolders, files in os.walk(path):
    for name in sorted(subfolders + files):
      if os.path.islink(os.path.join(folder, name)):
        raise _link_error(os.path.join(folder, name))
  return path


# What the project writes at the top of a workdir: files it rewrites or appends to, and folders
# whose entries it writes, moves and deletes.
FILES = (IDENTITY_FILE, LOCK_FILE, 'results.jsonl', 'summary.md', 'curves.png',
         'answers.jsonl', 'answers.cut_off.txt', 'query.json')   # the last three: a learner's
FOLDERS = ('checkpoints', 'tensorboard', 'damaged', 'query')


def check_no_links(workdir: str) -> None:
  """Refuses (:class:`WorkdirError`, one line) a workdir where a file or folder the project
  writes (:data:`FILES`, :data:`FOLDERS` and everything inside those folders) is a symbolic link,
  or a folder stands where a file belongs (or the reverse): checked before a run loads or trains
  anything, and again where each is written."""
  for name in FILES:
    if os.path.isdir(path_in(workdir, name)):
      raise _folder_error(path_in(workdir, name))
  for name in FOLDERS:
    folder_in(workdir, name)


def _link_error(path: str) -> WorkdirError:
  try:
    target = f' (to {os.readlink(path)})'
  except OSError:
    target = ''
  return WorkdirError(f'{path} is a symbolic link{target}; the project never writes through a '
                      'link in its workdir. Remove the link (or give a new --workdir).')


_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)


def open_refusing_links(path: str, flags: int, mode: int = 0o644) -> int:
  """``os.open`` of a :func:`path_in` path that refuses, in one line, a link put there since, a
  folder or anything but a file where a file belongs (a FIFO would block the process for good),
  and, to be written, a file with hard links elsewhere (the write would reach them)."""
  try:
    fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, mode)
  except OSError as e:
    if e.errno == errno.ELOOP:   # a link put there since path_in looked
      raise _link_error(path) from None
    if e.errno == errno.EISDIR:
      raise _folder_error(path) from None
    if e.errno == errno.ENXIO:   # a FIFO opened to write, nobody reading
      raise _not_a_file_error(path) from None
    raise
  st = os.fstat(fd)
  problem = (_folder_error(path) if stat.S_ISDIR(st.st_mode) else
             _not_a_file_error(path) if not stat.S_ISREG(st.st_mode) else
             _hard_link_error(path, st.st_nlink) if st.st_nlink > 1 and flags & (
                 os.O_WRONLY | os.O_RDWR) else None)
  if problem is not None:
    os.close(fd)
    raise problem
  return fd


def _not_a_file_error(path: str) -> WorkdirError:
  return WorkdirError(f'{path} is not a file (a FIFO, a socket or a device); the project keeps a '
                      'file there. Move it away (or give a new --workdir).')


def _hard_link_error(path: str, links: int) -> WorkdirError:
  return WorkdirError(f'{path} has {links} hard links: writing it would change the file under its '
                      'other names, outside the workdir too. Replace it by a copy (cp FILE '
                      'COPY && mv COPY FILE), or give a new --workdir.')


def _folder_error(path: str) -> WorkdirError:
  return WorkdirError(f'{path} is a folder; the project keeps a file there. Move the folder away '
                      '(or give a new --workdir).')


def _write_all(fd: int, data: bytes) -> None:
  written = 0
  while written < len(data):
    written += os.write(fd, data[written:])


def _sync_folder(folder: str) -> None:
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def write_atomic(path: str, content: Union[str, bytes]) -> None:
  """Replaces the file at ``path`` (a :func:`path_in` path) with ``content``: written to a
  temporary file beside it, synced, renamed over it. A kill at any moment leaves the old content
  or the new, never less; a full disk leaves the old (the temporary file is removed)."""
  data = content.encode() if isinstance(content, str) else content
  if os.path.isdir(path) and not os.path.islink(path):
    raise _folder_error(path)
  tmp = f'{path}.tmp-{os.getpid()}'
  fd = open_refusing_links(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
  try:
    try:
      _write_all(fd, data)
      os.fsync(fd)
    finally:
      os.close(fd)
    os.replace(tmp, path)
  except BaseException:
    try:
      os.remove(tmp)
    except OSError:
      pass
    raise
  _sync_folder(os.path.dirname(path))


def _remove_dead_temporaries(workdir: str) -> None:
  """Removes the temporary files :func:`write_atomic` left in the workdir and its ``query/``
  folder when its process was killed between writing and renaming (``NAME.tmp-PID``, the process
  gone): never the file they were to replace."""
  for folder in (workdir, os.path.join(workdir, 'query')):
    if not os.path.isdir(folder) or os.path.islink(folder):
      continue
    for entry in os.scandir(folder):
      found = re.fullmatch(r'.+\.tmp-(\d+)', entry.name)
      if found and entry.is_file(follow_symlinks=False) and not _running(int(found.group(1))):
        try:
          os.remove(entry.path)
        except OSError:
          pass


def append_synced(path: str, text: str) -> None:
  """Appends ``text`` to the file at ``path`` (a :func:`path_in` path; created if absent) and
  syncs it before returning. On a write error (a full disk) the file is cut back to its former
  length, so an append is whole or absent."""
  fd = open_refusing_links(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
  try:
    ends = os.fstat(fd).st_size
    try:
      _write_all(fd, text.encode())
      os.fsync(fd)
    except BaseException:
      os.ftruncate(fd, ends)
      os.fsync(fd)
      raise
  finally:
    os.close(fd)


def read_bytes(path: str) -> bytes:
  """The file at ``path`` (a :func:`path_in` path), opened without following a link."""
  fd = open_refusing_links(path, os.O_RDONLY)
  if stat.S_ISDIR(os.fstat(fd).st_mode):
    os.close(fd)
    raise _folder_error(path)
  with os.fdopen(fd, 'rb') as f:
    return f.read()


def read_text(path: str) -> str:
  """The file at ``path`` (a :func:`path_in` path) as UTF-8 text, opened without following a
  link."""
  return read_bytes(path).decode('utf-8')


# -- one writer --------------------------------------------------------------------------------


def _holder(fd: int) -> Dict[str, Any]:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    holder = json.loads(os.read(fd, 4096).decode() or '{}')
  except (OSError, ValueError, UnicodeDecodeError):
    return {}
  return holder if isinstance(holder, dict) else {}    # damaged by hand: no one named


def _running(pid: Any) -> bool:
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except (ProcessLookupError, OverflowError):   # gone, or a number no process has
    return False
  except PermissionError:
    return True
  return True


def _new_holder(fd: int) -> Dict[str, Any]:
  """The record of the process that holds the lock on ``fd``: one that has just taken it over
  may not have replaced its dead predecessor's record yet, so that one is read again, briefly."""
  for _ in range(50):
    holder = _holder(fd)
    if holder.get('host') not in (None, socket.gethostname()) or _running(holder.get('pid')):
      return holder
    time.sleep(0.01)
  return {}


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds ``WORKDIR/lock`` for the duration; refuses (:class:`WorkdirError`) if another process
  holds it, naming it. Exactly one of several processes taking over a dead holder's lock gets it:
  the kernel's ``flock`` decides, and the file is unlinked only by its holder, before it lets go
  (a process that locked a file since unlinked tries again)."""
  path = path_in(workdir, LOCK_FILE)
  if os.path.isdir(path):
    raise WorkdirError(f'{path} is a folder; the workdir\'s lock is a file the project makes. '
                       'Remove the folder (or give a new --workdir).')
  me = {'pid': os.getpid(), 'host': socket.gethostname(),
        'started': datetime.datetime.now().isoformat(timespec='seconds')}
  while True:
    fd = open_refusing_links(path, os.O_RDWR | os.O_CREAT)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _new_holder(fd)
      os.close(fd)
      raise WorkdirInUse(
          f'--workdir={workdir} is in use by process {holder.get("pid", "(starting)")} on '
          f'{"this host" if holder.get("host", me["host"]) == me["host"] else holder["host"]}, '
          f'started {holder.get("started", "just now")}. Wait for it to finish, or give another '
          '--workdir.') from None
    try:
      now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
      now = None
    held = os.fstat(fd)
    if now is None or (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev):
      os.close(fd)   # its holder removed it as we opened it: try the one there now
      continue
    break
  holder = _holder(fd)
  if holder.get('host') not in (None, me['host']):
    os.close(fd)
    raise WorkdirInUse(
        f'--workdir={workdir} is in use by process {holder.get("pid")} on host {holder["host"]}; '
        f'if it no longer runs, delete {path}. (It started '
        f'{holder.get("started", "at a time the lock does not record")}.)')
  os.ftruncate(fd, 0)
  os.lseek(fd, 0, os.SEEK_SET)
  os.write(fd, json.dumps(me).encode())
  os.fsync(fd)
  _remove_dead_temporaries(workdir)
  try:
    yield
  finally:
    try:
      os.remove(path)   # while held: no other process can hold this file now
    except OSError:
      pass
    os.close(fd)
