"""The features a target model exposes to loss-prediction modules and query strategies."""
from typing import NamedTuple, Optional, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


class Features(NamedTuple):
  last: chex.Array              # [B, ..., C] output of the last block
  stages: Tuple[chex.Array, ...]  # every block's output, in order; stages[-1] is last


def global_average_pool(x: chex.Array) -> chex.Array:
  """``[B, ..., C] -> [B, C]``: the mean over every spatial axis."""
  chex.assert_rank(x, {2, 3, 4, 5})
  return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))


class MCDropout(nn.Module):
  """Dropout that is on exactly when the caller gives a ``'dropout'`` rng: in training (the train
  step always gives one) and in Monte-Carlo inference (BALD's stochastic passes, BatchNorm in
  inference mode); plain inference gives none and is deterministic. In training over devices
  (``axis_name``, the pmap axis), a device's mask is its rows of one mask drawn for the global
  batch, so one device and several drop the same units of every sample."""
  rate: float
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x: chex.Array, *, train: bool) -> chex.Array:
    if self.rate == 0.0 or not self.has_rng('dropout'):
      return x
    key = self.make_rng('dropout')
    if train and self.axis_name is not None:
      n = x.shape[0]
      shape = (n * jax.lax.axis_size(self.axis_name), *x.shape[1:])
      keep = jax.lax.dynamic_slice_in_dim(jax.random.bernoulli(key, 1.0 - self.rate, shape),
                                          jax.lax.axis_index(self.axis_name) * n, n)
    else:
      keep = jax.random.bernoulli(key, 1.0 - self.rate, x.shape)
    return jnp.where(keep, x / (1.0 - self.rate), 0.0)
