"""Small convolutional target models for the offline tasks (mnist1d, scikit-learn digits)."""
from typing import Optional, Sequence, Tuple

import flax.linen as nn

from l2r_jax.models.base import Features
from l2r_jax.models.base import global_average_pool
from l2r_jax.models.base import MCDropout


class _ConvNet(nn.Module):
  """Blocks of conv → BatchNorm → ReLU, global average pooling, dropout (``dropout`` > 0: see
  :class:`MCDropout`), a linear classifier."""
  num_outputs: int
  widths: Sequence[int]
  kernel: Tuple[int, ...]
  pool_after: Sequence[bool]
  bn_axis_name: Optional[str] = None  # the pmap axis: BatchNorm statistics over all devices
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool):
    stages = []
    for width, pool in zip(self.widths, self.pool_after):
      x = nn.Conv(width, self.kernel, padding='SAME', use_bias=False)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       axis_name=self.bn_axis_name)(x)
      x = nn.relu(x)
      if pool:
        window = (2,) * len(self.kernel)
        x = nn.max_pool(x, window, strides=window)
      stages.append(x)
    pooled = MCDropout(self.dropout, self.bn_axis_name)(global_average_pool(x), train=train)
    logits = nn.Dense(self.num_outputs)(pooled)
    return logits, Features(last=x, stages=tuple(stages))


class CNN1D(_ConvNet):
  """For mnist1d: ``[B, 40, 1]`` sequences, three 1-D conv blocks of 32 channels."""
  num_outputs: int = 10
  widths: Sequence[int] = (32, 32, 32)
  kernel: Tuple[int, ...] = (5,)
  pool_after: Sequence[bool] = (False, True, True)

  def __call__(self, x, *, train: bool):
    if x.ndim == 2:  # [B, L] sequences without a channel axis
      x = x[..., None]
    return super().__call__(x, train=train)


class CNN2D(_ConvNet):
  """For 8×8 digits: ``[B, 8, 8, 1]`` images, three 3×3 conv blocks."""
  num_outputs: int = 10
  widths: Sequence[int] = (32, 64, 64)
  kernel: Tuple[int, ...] = (3, 3)
  pool_after: Sequence[bool] = (False, True, False)

  def __call__(self, x, *, train: bool):
    if x.ndim == 3:
      x = x[..., None]
    return super().__call__(x, train=train)

