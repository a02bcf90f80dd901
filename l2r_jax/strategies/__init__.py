"""Query strategies, found by name: ``select(state, pool_subset, budget, rng) -> indices``.

Each returns ``budget`` distinct indices drawn from ``pool_subset``. Adding one is one module that
decorates its ``select`` with ``@base.register('name')`` and one import line here.
"""
from l2r_jax.strategies import coreset
from l2r_jax.strategies import simple
from l2r_jax.strategies import vaal
from l2r_jax.strategies.base import PoolOutputs
from l2r_jax.strategies.base import REGISTRY
from l2r_jax.strategies.base import SelectionState

# Strategies that train a loss-prediction module, and with which ranking loss.
PREDICTOR_LOSS = {'l2r': 'listwise', 'll4al': 'pairwise'}


def get(name: str):
  if name not in REGISTRY:
    raise ValueError(f'Unknown strategy {name!r}: choose from {sorted(REGISTRY)}.')
  return REGISTRY[name]


__all__ = ['PREDICTOR_LOSS', 'PoolOutputs', 'REGISTRY', 'SelectionState', 'coreset', 'get',
           'simple', 'vaal']
