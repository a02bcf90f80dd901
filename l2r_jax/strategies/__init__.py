"""Query strategies, found by name: ``select(state, pool_subset, budget, rng) -> indices``.

Each returns ``budget`` distinct indices drawn from ``pool_subset``. Adding one is one module that
decorates its ``select`` with ``@base.register('name')`` and one import line here.
"""
from typing import NamedTuple

from l2r_jax.strategies import coreset
from l2r_jax.strategies import simple
from l2r_jax.strategies import vaal
from l2r_jax.strategies.base import PoolOutputs
from l2r_jax.strategies.base import REGISTRY
from l2r_jax.strategies.base import SelectionState


class LossModule(NamedTuple):
  """What a strategy that queries by predicted loss trains beside the target."""
  module: str      # its architecture, a key of models.PREDICTORS: 'l2r' (last block), 'll4al' (all)
  loss: str        # its ranking loss: 'listwise' (L2R-AL, through a sorter) or 'pairwise' (LL4AL)
  isolated: bool   # True: stop_gradient, the ranking loss never reaches the target (L2R-AL);
                   # False: it does, weighted by config.ll4al.weight, until config.ll4al.detach_epoch


LOSS_MODULES = {
    'l2r': LossModule('l2r', 'listwise', isolated=True),
    'll4al': LossModule('ll4al', 'pairwise', isolated=False),
    # The paper's Fig. 5 ablation, 'Rank-all-features': LL4AL's module on every stage's features,
    # trained by L2R-AL's listwise loss and isolated as L2R-AL's.
    'l2r_all_features': LossModule('ll4al', 'listwise', isolated=True),
}


def get(name: str):
  if name not in REGISTRY:
    raise ValueError(f'Unknown strategy {name!r}: choose from {sorted(REGISTRY)}.')
  return REGISTRY[name]


__all__ = ['LOSS_MODULES', 'LossModule', 'PoolOutputs', 'REGISTRY', 'SelectionState', 'coreset', 'get',
           'simple', 'vaal']
