"""VAAL's networks (Sinha, Ebrahimi & Darrell, ICCV 2019): the official conv VAE, an MLP VAE for
inputs too small for it, and the discriminator on the latent mean. How they follow the official
``model.py`` and where they differ: docs/vaal.md; the strategy: ``l2r_jax/strategies/vaal.py``.
"""
from typing import Optional, Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# PyTorch's ``init.kaiming_normal`` (fan-in, gain sqrt(2)), as the official ``kaiming_init``.
_HE = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
_CONV_WIDTHS = (128, 256, 512, 1024)


def reparameterize(module: nn.Module, mu: chex.Array, logvar: chex.Array,
                   noise: Optional[chex.Array]) -> chex.Array:
  """``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``: a differentiable sample of q(z|x).
  ``eps`` is ``noise`` if given (``[B, latent]``), else drawn from ``module``'s ``'reparam'``
  rng stream."""
  if noise is None:
    noise = jax.random.normal(module.make_rng('reparam'), mu.shape, mu.dtype)
  chex.assert_equal_shape((mu, noise))
  return mu + jnp.exp(0.5 * logvar) * noise


class ConvVAE(nn.Module):
  """The official VAAL VAE for ``[B, H, W, C]`` images, ``H`` and ``W`` multiples of 16.

  ``__call__`` returns ``(reconstruction or None, mu, logvar)``; ``decode=False`` skips the decoder
  (scoring needs only ``mu``). Decoding samples ``z`` with :func:`reparameterize` (``noise`` or
  the ``'reparam'`` rng stream). Training-mode BatchNorm averages over ``bn_axis_name`` too, when
  the batch is split over devices.
  """
  latent_dim: int = 32
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool, decode: bool = True, noise=None):
    chex.assert_rank(x, 4)
    n, h, w, c = x.shape
    if h % 16 or w % 16:
      raise ValueError(f'The conv VAE needs sides that are multiples of 16, got {h}x{w}.')
    y = x
    for width in _CONV_WIDTHS:
      y = nn.Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                  kernel_init=_HE)(y)
      y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                               axis_name=self.bn_axis_name)(y))
    y = y.reshape(n, -1)
    mu = nn.Dense(self.latent_dim, name='fc_mu')(y)
    logvar = nn.Dense(self.latent_dim, name='fc_logvar')(y)
    if not decode:
      return None, mu, logvar
    z = reparameterize(self, mu, logvar, noise)
    y = nn.Dense(_CONV_WIDTHS[-1] * (h // 8) * (w // 8), kernel_init=_HE)(z)
    y = y.reshape(n, h // 8, w // 8, _CONV_WIDTHS[-1])
    for width in _CONV_WIDTHS[-2::-1]:
      # PyTorch's ConvTranspose2d(k=4, s=2, p=1) pads the dilated input by k - 1 - p = 2.
      y = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                           use_bias=False)(y)
      y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                               axis_name=self.bn_axis_name)(y))
    return nn.Conv(c, (1, 1))(y), mu, logvar


class MLPVAE(nn.Module):
  """A fully connected VAE for inputs too small for the conv VAE (sequences, 8×8 images).

  Any input shape ``[B, ...]``: flattened, ``hidden`` Dense+ReLU layers, ``fc_mu``/``fc_logvar``;
  the decoder mirrors the widths and reshapes back. ``train`` is accepted for a uniform interface
  (there is no BatchNorm). Same return value as :class:`ConvVAE`.
  """
  latent_dim: int = 32
  hidden: Sequence[int] = (512, 256)

  @nn.compact
  def __call__(self, x, *, train: bool, decode: bool = True, noise=None):
    del train
    shape = x.shape
    y = x.reshape(shape[0], -1)
    for width in self.hidden:
      y = nn.relu(nn.Dense(width, kernel_init=_HE)(y))
    mu = nn.Dense(self.latent_dim, name='fc_mu')(y)
    logvar = nn.Dense(self.latent_dim, name='fc_logvar')(y)
    if not decode:
      return None, mu, logvar
    y = reparameterize(self, mu, logvar, noise)
    for width in reversed(tuple(self.hidden)):
      y = nn.relu(nn.Dense(width, kernel_init=_HE)(y))
    return nn.Dense(int(np.prod(shape[1:])))(y).reshape(shape), mu, logvar


class Discriminator(nn.Module):
  """``[B, latent] -> [B]`` logits of "labeled"; ``sigmoid`` of them is the official output."""
  hidden: Sequence[int] = (512, 512, 512, 512)

  @nn.compact
  def __call__(self, z):
    for width in self.hidden:
      z = nn.relu(nn.Dense(width, kernel_init=_HE)(z))
    return nn.Dense(1, kernel_init=_HE)(z)[:, 0]


def make_vae(options, input_shape: Tuple[int, ...], bn_axis_name: Optional[str] = None
             ) -> nn.Module:
  """The VAE ``options.arch`` names for samples of ``input_shape`` (without the batch axis);
  ``bn_axis_name`` for the conv VAE's BatchNorm (the MLP VAE has none)."""
  square = len(input_shape) == 3 and input_shape[0] == input_shape[1]
  conv_ok = square and input_shape[0] >= 32 and input_shape[0] % 16 == 0
  arch = options.arch
  if arch == 'auto':
    arch = 'conv' if conv_ok else 'mlp'
  if arch == 'conv' and not conv_ok:
    raise ValueError(f"config.vaal.arch='conv' needs square [H, W, C] images, H >= 32 and a "
                     f"multiple of 16; the inputs are {input_shape}. Use 'mlp' or 'auto'.")
  if arch not in ('conv', 'mlp'):
    raise ValueError(f"config.vaal.arch must be 'auto', 'conv' or 'mlp', got {arch!r}.")
  if arch == 'conv':
    return ConvVAE(latent_dim=int(options.latent_dim), bn_axis_name=bn_axis_name)
  return MLPVAE(latent_dim=int(options.latent_dim), hidden=tuple(int(h) for h in options.hidden))
