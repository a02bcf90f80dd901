"""The project's refusals: bad input named, with its fix, in one message.

``python -m l2r_jax.main`` prints a :class:`Refusal`'s message on stderr and exits with status 2,
without a traceback; any other exception is a bug and keeps its traceback. Each refusal is also a
built-in error of its kind (``ValueError``, ``FileNotFoundError``), for callers of the library.
"""


class Refusal(Exception):
  """Input the project refuses before it trains, with a message that says what to change."""


class ConfigError(Refusal, ValueError):
  """A config field that cannot work: the message names it and the fix."""
