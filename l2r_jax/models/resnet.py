"""ResNets (He et al. 2016) as classifiers and as backbones for dense prediction.

:class:`ResNetBackbone` is the trunk: a stem, then stages of basic or bottleneck blocks; it returns
the :class:`Features` of every stage. The stem is the CIFAR one (3×3, stride 1, no max-pool) or the
ImageNet one (7×7 stride 2, then 3×3 max-pool stride 2). :class:`ResNet` adds global average pooling
and a linear classifier.
"""
import functools
from typing import Optional, Sequence

import flax.linen as nn

from l2r_jax.models.base import Features
from l2r_jax.models.base import global_average_pool
from l2r_jax.models.base import MCDropout


def _norm(train: bool, axis_name: Optional[str], **kw):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis_name, **kw)


class BasicBlock(nn.Module):
  """Two 3×3 convolutions; ``features`` output channels."""
  features: int
  strides: int = 1
  bn_axis_name: Optional[str] = None
  expansion = 1

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(_norm, train, self.bn_axis_name)
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(y)
    y = norm()(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False, name='shortcut_conv')(x)
      x = norm(name='shortcut_bn')(x)
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  """1×1 → 3×3 (strided, as torchvision's ResNet v1.5) → 1×1; ``4 * features`` output channels."""
  features: int
  strides: int = 1
  bn_axis_name: Optional[str] = None
  expansion = 4

  @nn.compact
  def __call__(self, x, *, train: bool):
    norm = functools.partial(_norm, train, self.bn_axis_name)
    out = self.features * self.expansion
    y = nn.relu(norm()(nn.Conv(self.features, (1, 1), use_bias=False)(x)))
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False)(y)
    y = nn.relu(norm()(y))
    y = norm()(nn.Conv(out, (1, 1), use_bias=False)(y))
    if self.strides != 1 or x.shape[-1] != out:
      x = nn.Conv(out, (1, 1), self.strides, use_bias=False, name='shortcut_conv')(x)
      x = norm(name='shortcut_bn')(x)
    return nn.relu(x + y)


BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}


class ResNetBackbone(nn.Module):
  """Stem → stages; stage ``i`` has ``width * 2**i`` (× 4 for bottlenecks) channels and downsamples
  by ``stage_strides[i]`` in its first block. Returns :class:`Features` of every stage."""
  stage_sizes: Sequence[int]
  block: str = 'basic'
  width: int = 64
  stem: str = 'cifar'                      # 'cifar' (3×3, stride 1) or 'imagenet' (7×7/2, max-pool/2)
  stage_strides: Sequence[int] = (1, 2, 2, 2)
  bn_axis_name: Optional[str] = None       # the pmap axis: BatchNorm statistics over all devices

  @nn.compact
  def __call__(self, x, *, train: bool) -> Features:
    if self.stem == 'cifar':
      x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, name='stem_conv')(x)
    elif self.stem == 'imagenet':
      x = nn.Conv(self.width, (7, 7), 2, padding=3, use_bias=False, name='stem_conv')(x)
    else:
      raise ValueError(f"stem must be 'cifar' or 'imagenet', got {self.stem!r}.")
    x = nn.relu(_norm(train, self.bn_axis_name, name='stem_bn')(x))
    if self.stem == 'imagenet':
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    block = BLOCKS[self.block]
    stages = []
    for i, size in enumerate(self.stage_sizes):
      for j in range(size):
        x = block(self.width * 2**i, strides=self.stage_strides[i] if j == 0 else 1,
                  bn_axis_name=self.bn_axis_name)(x, train=train)
      stages.append(x)
    return Features(last=x, stages=tuple(stages))


class ResNet(nn.Module):
  """A :class:`ResNetBackbone` → global average pooling → dropout (``dropout`` > 0: see
  :class:`MCDropout`) → Dense (``num_outputs`` classes)."""
  stage_sizes: Sequence[int]
  num_outputs: int = 10
  block: str = 'basic'
  width: int = 64
  stem: str = 'cifar'
  bn_axis_name: Optional[str] = None
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool):
    feats = ResNetBackbone(self.stage_sizes, self.block, self.width, self.stem,
                           bn_axis_name=self.bn_axis_name, name='backbone')(x, train=train)
    pooled = MCDropout(self.dropout, self.bn_axis_name)(global_average_pool(feats.last),
                                                        train=train)
    return nn.Dense(self.num_outputs)(pooled), feats


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2))
RESNET50 = dict(stage_sizes=(3, 4, 6, 3), block='bottleneck', stem='imagenet')
