"""Checks of one config field each, shared by the config's checks (:mod:`l2r_jax.validation`) and
the components that check their own options (strategies, loss modules, ranking losses).

Each refuses with :class:`~l2r_jax.errors.ConfigError`, naming the field (``name``, dotted, under
``config``) and what it must be.
"""
import math

from l2r_jax.errors import ConfigError


def is_whole(value) -> bool:
  """Whether ``value`` is a whole number (an int, not a bool)."""
  return isinstance(value, int) and not isinstance(value, bool)


def get(config, name):
  """``config``'s field ``name`` (dotted: ``'train.lr'``); a field that is not there is refused,
  naming it."""
  for k, part in enumerate(name.split('.')):
    try:
      config = config[part]
    except (KeyError, TypeError, AttributeError):
      where = '.'.join(name.split('.')[:k + 1])
      raise ConfigError(f'config.{where} is not set, and config.{name} is needed: set it in the '
                        'config file.') from None
  return config


def positive_int(config, name, allow_none=False):
  value = get(config, name)
  if value is None and allow_none:
    return
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ConfigError(f'config.{name} must be a positive integer, got {value!r} '
                      f'({type(value).__name__}).')


def non_negative_int(config, name):
  value = get(config, name)
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise ConfigError(f'config.{name} must be a non-negative integer, got {value!r} '
                      f'({type(value).__name__}).')


def positive_number(config, name):
  value = get(config, name)
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
      or value <= 0):
    raise ConfigError(f'config.{name} must be a finite positive number, got {value!r}.')


def size(config, name):
  """An image size: a positive integer, or a pair ``(height, width)`` of them."""
  value = get(config, name)
  values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
  if len(values) not in (1, 2) or not all(
      isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
    raise ConfigError(f'config.{name} must be a positive integer or a pair (height, width) of '
                      f'them, got {value!r}.')


def number(config, name):
  value = get(config, name)
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
      or value < 0):
    raise ConfigError(f'config.{name} must be a finite non-negative number, got {value!r}.')


def epochs_within(config, name, epochs, what):
  """Epoch numbers (an int or a sequence) within ``[0, epochs]``."""
  value = get(config, name)
  values = value if isinstance(value, (tuple, list)) else (value,)
  if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= epochs
             for v in values):
    raise ConfigError(f'config.{name}={value!r}: {what} must be whole epochs within [0, '
                      f'{epochs}] (config.train.epochs).')


def one_of(config, name, choices):
  if get(config, name) not in choices:
    raise ConfigError(f'config.{name}={get(config, name)!r}: choose one of {choices}.')
