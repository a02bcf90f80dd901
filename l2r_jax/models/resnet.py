"""ResNet for 32×32 inputs (the CIFAR variant of He et al.: 3×3 stem, no max-pool)."""
import functools
from typing import Optional, Sequence

import flax.linen as nn

from l2r_jax.models.base import Features
from l2r_jax.models.base import global_average_pool


class BasicBlock(nn.Module):
  features: int
  strides: int = 1
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             axis_name=self.bn_axis_name)
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(y)
    y = norm()(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False, name='shortcut_conv')(x)
      x = norm(name='shortcut_bn')(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """Stem conv 3×3 → stages of basic blocks (64, 128, 256, 512 channels) → GAP → Dense."""
  stage_sizes: Sequence[int]
  num_classes: int = 10
  width: int = 64
  bn_axis_name: Optional[str] = None  # the pmap axis: BatchNorm statistics over all devices

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, name='stem_conv')(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                 axis_name=self.bn_axis_name, name='stem_bn')(x))
    stages = []
    for i, size in enumerate(self.stage_sizes):
      for j in range(size):
        x = BasicBlock(self.width * 2**i, strides=2 if i > 0 and j == 0 else 1,
                       bn_axis_name=self.bn_axis_name)(x, train=train)
      stages.append(x)
    logits = nn.Dense(self.num_classes)(global_average_pool(x))
    return logits, Features(last=x, stages=tuple(stages))


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2))
