"""The features a target model exposes to loss-prediction modules and query strategies."""
from typing import NamedTuple, Tuple

import chex
import jax.numpy as jnp


class Features(NamedTuple):
  last: chex.Array              # [B, ..., C] output of the last block
  stages: Tuple[chex.Array, ...]  # every block's output, in order; stages[-1] is last


def global_average_pool(x: chex.Array) -> chex.Array:
  """``[B, ..., C] -> [B, C]``: the mean over every spatial axis."""
  chex.assert_rank(x, {2, 3, 4, 5})
  return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
