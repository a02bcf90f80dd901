"""Loss-prediction modules: map a target model's features to one predicted loss per sample."""
import flax.linen as nn
import jax.numpy as jnp

from l2r_jax.models.base import Features
from l2r_jax.models.base import global_average_pool


class L2RLossModule(nn.Module):
  """L2R-AL's module (Li et al. 2020, Fig. 1): last block → GAP → Dense → LeakyReLU(0.01) → Dense(1).

  The caller passes ``stop_gradient``-ed features: the module never trains the target model.
  """
  hidden: int = 128

  @nn.compact
  def __call__(self, features: Features):
    x = nn.Dense(self.hidden)(global_average_pool(features.last))
    return nn.Dense(1)(nn.leaky_relu(x, negative_slope=0.01))[:, 0]


class LL4ALLossModule(nn.Module):
  """LL4AL's module (Yoo & Kweon 2019): every stage → GAP → Dense → ReLU; concatenated → Dense(1)."""
  hidden: int = 128

  @nn.compact
  def __call__(self, features: Features):
    per_stage = [nn.relu(nn.Dense(self.hidden)(global_average_pool(f))) for f in features.stages]
    return nn.Dense(1)(jnp.concatenate(per_stage, axis=-1))[:, 0]
