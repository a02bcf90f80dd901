"""The project's refusals: bad input named, with its fix, in one message.

``python -m l2r_jax.main`` prints a :class:`Refusal`'s message on stderr and exits with status 2,
without a traceback; any other exception is a bug and keeps its traceback. Each refusal is also a
built-in error of its kind (``ValueError``, ``FileNotFoundError``), for callers of the library.
"""


class Refusal(Exception):
  """Input the project refuses before it trains, with a message that says what to change."""


class ConfigError(Refusal, ValueError):
  """A config field that cannot work: the message names it and the fix."""


class NumericsError(Refusal, FloatingPointError):
  """A NaN or an infinity where a number must be: in a dataset's inputs or labels (the message
  names the field and the samples), or in a model's outputs, its training diverged (the run and
  cycle, and how many samples). Checked where the numbers enter (:mod:`l2r_jax.numerics`), so no
  pick, metric or table is ever computed from them."""


def qualified_name(obj) -> str:
  """``module.qualname`` of a class or function (what a registration records)."""
  return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", type(obj).__name__)}'


def check_replacement(what: str, name: str, old, new) -> None:
  """Refuses registering ``new`` under ``name`` where another object (by qualified name) holds it;
  the same one again (a notebook cell run twice) replaces it."""
  if old is not None and qualified_name(old) != qualified_name(new):
    raise ConfigError(f'{what}: {name!r} is registered already, as {qualified_name(old)}; choose '
                      'another name.')
