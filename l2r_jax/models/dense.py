"""Dense-prediction targets: SimpleBaseline for human pose, a C^3-style ResNet-50 crowd counter.

Both return ``(maps, features)``; ``features`` are the backbone's (:class:`Features`), so the
loss-prediction modules and core-set read what the papers' modules read: L2R-AL's module the last
backbone map (before the deconvolutions), LL4AL's module every ResNet stage.
"""
from typing import Optional, Sequence

import flax.linen as nn
import jax

from l2r_jax.models.base import MCDropout
from l2r_jax.models.resnet import ResNetBackbone


class SimpleBaseline(nn.Module):
  """Xiao et al. 2018: ResNet → ``num_deconv`` × (ConvTranspose 4×4 stride 2 → BatchNorm → ReLU)
  → 1×1 conv to one heatmap per joint. Defaults: ResNet-50, 3 × 256 channels; a 256×256 input gives
  64×64 heatmaps ``[B, 64, 64, num_outputs]``. ``dropout`` > 0: dropout before the 1×1 conv
  (:class:`MCDropout`).

  ``upsample='resize'`` doubles the resolution by nearest-neighbour resizing and a 3×3 convolution
  instead of each transposed convolution (same channels, BatchNorm and ReLU): the upsampling of
  Odena et al. 2016 ("Deconvolution and checkerboard artifacts"), several times cheaper to train on
  XLA's CPU backend, whose transposed-convolution gradients are slow (docs/results.md)."""
  num_outputs: int = 16
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  block: str = 'bottleneck'
  width: int = 64
  stem: str = 'imagenet'
  stage_strides: Sequence[int] = (1, 2, 2, 2)
  num_deconv: int = 3
  deconv_width: int = 256
  bn_axis_name: Optional[str] = None
  dropout: float = 0.0
  upsample: str = 'deconv'

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.upsample not in ('deconv', 'resize'):
      raise ValueError(f"upsample={self.upsample!r}: use 'deconv' or 'resize'.")
    feats = ResNetBackbone(self.stage_sizes, self.block, self.width, self.stem,
                           self.stage_strides, bn_axis_name=self.bn_axis_name,
                           name='backbone')(x, train=train)
    y = feats.last
    for _ in range(self.num_deconv):
      if self.upsample == 'deconv':
        y = nn.ConvTranspose(self.deconv_width, (4, 4), strides=(2, 2), padding='SAME',
                             use_bias=False)(y)
      else:
        b, h, w, c = y.shape
        y = jax.image.resize(y, (b, 2 * h, 2 * w, c), method='nearest')
        y = nn.Conv(self.deconv_width, (3, 3), padding='SAME', use_bias=False)(y)
      y = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       axis_name=self.bn_axis_name)(y)
      y = nn.relu(y)
    y = MCDropout(self.dropout, self.bn_axis_name)(y, train=train)
    heatmaps = nn.Conv(self.num_outputs, (1, 1), name='final_conv')(y)
    return heatmaps, feats


class CrowdCounter(nn.Module):
  """The C^3 framework's ResNet-50 counter: ImageNet ResNet-50 through layer3, layer3 kept at
  stride 1 (output stride 8, 1024 channels) → 1×1 conv (128) → ReLU → 1×1 conv (1) → ReLU →
  bilinear upsampling by ``upsample``. Returns a non-negative density map ``[B, H, W, 1]``.
  ``dropout`` > 0: dropout before the last 1×1 conv (:class:`MCDropout`)."""
  num_outputs: int = 1
  stage_sizes: Sequence[int] = (3, 4, 6)
  block: str = 'bottleneck'
  width: int = 64
  stem: str = 'imagenet'
  stage_strides: Sequence[int] = (1, 2, 1)
  decoder_width: int = 128
  upsample: int = 8
  bn_axis_name: Optional[str] = None
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool):
    feats = ResNetBackbone(self.stage_sizes, self.block, self.width, self.stem,
                           self.stage_strides, bn_axis_name=self.bn_axis_name,
                           name='backbone')(x, train=train)
    y = nn.relu(nn.Conv(self.decoder_width, (1, 1))(feats.last))
    y = MCDropout(self.dropout, self.bn_axis_name)(y, train=train)
    y = nn.relu(nn.Conv(self.num_outputs, (1, 1))(y))
    if self.upsample > 1:
      b, h, w, c = y.shape
      y = jax.image.resize(y, (b, h * self.upsample, w * self.upsample, c), 'bilinear')
    return y, feats
