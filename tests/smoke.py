"""Small configs for tests: a task's ``:smoke`` variant with dotted-name overrides."""
from configs import mnist1d as mnist1d_config


def override(config, **overrides):
  """``config`` with ``overrides`` (``{'al.budget': 16}``) set in place; returns it."""
  for k, v in overrides.items():
    node = config
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return config


def mnist1d(**overrides):
  """``configs/mnist1d.py:smoke`` (every strategy, a seconds-long run) with ``overrides``."""
  return override(mnist1d_config.get_config('smoke'), **overrides)
