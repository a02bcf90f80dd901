"""Query strategies, found by name: each a :class:`Strategy` whose
``select(state, pool_subset, budget, rng)`` returns ``budget`` distinct indices drawn from
``pool_subset`` and, for one that queries by predicted loss, the :class:`LossModule` it trains
beside the target. Adding one is one function decorated with ``@base.register('name', ...)``, or, for a
strategy that queries the highest scores, its score function decorated with
``@base.register_scores('name', ...)``, in a module imported here (or in the user's code).
"""
from l2r_jax.strategies import badge
from l2r_jax.strategies import bayesian
from l2r_jax.strategies import coreset
from l2r_jax.strategies import geometry
from l2r_jax.strategies import simple
from l2r_jax.strategies import typicality
from l2r_jax.strategies import vaal
from l2r_jax.strategies.base import check_task
from l2r_jax.strategies.base import get
from l2r_jax.strategies.base import LossModule
from l2r_jax.strategies.base import PoolOutputs
from l2r_jax.strategies.base import REGISTRY
from l2r_jax.strategies.base import select
from l2r_jax.strategies.base import SelectionState
from l2r_jax.strategies.base import Strategy

__all__ = ['LossModule', 'PoolOutputs', 'REGISTRY', 'SelectionState', 'Strategy', 'badge',
           'bayesian', 'check_task', 'coreset', 'geometry', 'get', 'select', 'simple',
           'typicality', 'vaal']
