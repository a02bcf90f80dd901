"""The project's refusals: bad input named, with its fix, in one message.

``python -m l2r_jax.main`` prints a :class:`Refusal`'s message on stderr and exits with status 2,
without a traceback; any other exception is a bug and keeps its traceback. Each refusal is also a
built-in error of its kind (``ValueError``, ``FileNotFoundError``), for callers of the library.
Every error class of the project is defined here, one per kind of input refused.
"""
import errno
import inspect
import os
from typing import Optional


class Refusal(Exception):
  """Input the project refuses before it trains, with a message that says what to change."""


class ConfigError(Refusal, ValueError):
  """A config field that cannot work: the message names it and the fix."""


class NumericsError(Refusal, FloatingPointError):
  """A NaN or an infinity where a number must be: in a dataset's inputs or labels (the message
  names the field and the samples), or in a model's outputs, its training diverged (the run and
  cycle, and how many samples). Checked where the numbers enter (:mod:`l2r_jax.numerics`), so no
  pick, metric or table is ever computed from them."""


class InputError(ConfigError):
  """Inputs for a prediction that the model cannot take as given: the message says what to give."""


class StrategyError(Refusal, ValueError):
  """A strategy whose picks or scores break its contract (``select`` returns ``budget`` distinct
  members of the pool subset; ``score`` one number per member): the message names the strategy
  and what it returned."""


class WorkdirError(Refusal, ValueError):
  """A run the workdir refuses: another experiment's record, or another run writing it."""


class WorkdirInUse(WorkdirError):
  """Another process holds the workdir's lock: the message names it."""


class ReportError(WorkdirError):
  """Workdirs that cannot be put in one report: the message says why."""


class DataNotFoundError(Refusal, FileNotFoundError):
  """A dataset that needs files the user must provide; the message says which, and where."""


class ImageFolderError(Refusal, ValueError):
  """Files under ``config.data.root`` that cannot be read as the loader needs; the message names
  them, why, and what to do."""


class WeightsNotFoundError(Refusal, FileNotFoundError):
  """Pretrained weights that are not on this machine and cannot be downloaded; the message says
  which file to put where."""


class LabelError(Refusal, ValueError):
  """Answers that cannot be taught: one line per problem; nothing of them is taught."""


class ExportError(Refusal, ValueError):
  """A model folder that cannot be written or read: the message names the part and the fix."""


class ServeError(Refusal, OSError):
  """The labeling page cannot be served as asked (a port taken, an address that cannot be bound);
  the message says what to give instead."""


class RequestRefused(Exception):
  """A request to the labeling page refused: its HTTP status and the message the page shows
  (answered to the browser, never raised past the page's handler)."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def qualified_name(obj) -> str:
  """``module.qualname`` of a class or function (what a registration records)."""
  return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", type(obj).__name__)}'


def check_name(what: str, name) -> None:
  """Refuses a registration's ``name`` that a config could not give: not text, or empty."""
  if not isinstance(name, str) or not name.strip():
    raise ConfigError(f'{what}: the name must be non-empty text (what config sets to choose '
                      f'it), got {name!r}.')


def _defined_in(obj) -> Optional[str]:
  """The file that defines ``obj`` (a class or function), or None where none can be told."""
  try:
    path = inspect.getsourcefile(obj)
  except TypeError:   # a class whose module is not in sys.modules (a file loaded by path)
    methods = [inspect.unwrap(v) for v in vars(obj).values() if callable(v)] if isinstance(
        obj, type) else []   # unwrapped: a library's decorator is defined elsewhere
    code = [m.__code__ for m in methods if hasattr(m, '__code__')
            and not m.__code__.co_filename.startswith('<')]   # not a generated __init__
    path = code[0].co_filename if code else None
  return None if path is None else os.path.realpath(path)


def check_replacement(what: str, name: str, old, new) -> None:
  """Refuses registering ``new`` under ``name`` where another object holds it; the same one again
  (by qualified name: a notebook cell run twice; or by name and defining file: one file imported
  under two module names, as a config file loaded by path and by import) replaces it."""
  if old is None or qualified_name(old) == qualified_name(new):
    return
  same_file = _defined_in(old) is not None and _defined_in(old) == _defined_in(new)
  if not (same_file and getattr(old, '__qualname__', None) == getattr(new, '__qualname__', '')):
    raise ConfigError(f'{what}: {name!r} is registered already, as {qualified_name(old)}; choose '
                      'another name.')


def out_of_space(error: BaseException) -> Optional[str]:
  """The one line a command prints for ``error`` if it (or an error that caused it) is a full disk
  or an exceeded quota, wherever it was met (a results line, a checkpoint, the report); None for
  any other error. A full disk loses nothing: every write is whole or absent."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    full = (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        text in str(error) for text in ('No space left on device', 'Disk quota exceeded'))
    if full:
      where = getattr(error, 'filename', None)
      return (f'the disk is full{f" (writing {where})" if where else ""}: nothing written is '
              'lost, every write is whole or absent. Free some space, then run the same '
              'command again: it resumes where it stopped.')
    error = error.__cause__ or error.__context__
  return None
