"""VAAL's networks (Sinha, Ebrahimi & Darrell, ICCV 2019): the official conv VAE, an MLP VAE for
inputs too small for it, and the discriminator on the latent mean. How they follow the official
``model.py`` and where they differ: docs/vaal.md; the strategy: ``l2r_jax/strategies/vaal.py``.
"""
import functools
from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# PyTorch's ``init.kaiming_normal`` (fan-in, gain sqrt(2)), as the official ``kaiming_init``.
_HE = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
_CONV_WIDTHS = (128, 256, 512, 1024)


def reparameterize(rng: chex.PRNGKey, mu: chex.Array, logvar: chex.Array) -> chex.Array:
  """``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``: a differentiable sample of q(z|x)."""
  return mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape, mu.dtype)


class ConvVAE(nn.Module):
  """The official VAAL VAE for ``[B, H, W, C]`` images, ``H`` and ``W`` multiples of 16.

  ``__call__`` returns ``(reconstruction or None, mu, logvar)``; ``decode=False`` skips the decoder
  (scoring needs only ``mu``). Decoding draws ``z`` from the ``'reparam'`` rng stream.
  """
  latent_dim: int = 32

  @nn.compact
  def __call__(self, x, *, train: bool, decode: bool = True):
    chex.assert_rank(x, 4)
    n, h, w, c = x.shape
    if h % 16 or w % 16:
      raise ValueError(f'The conv VAE needs sides that are multiples of 16, got {h}x{w}.')
    y = x
    for width in _CONV_WIDTHS:
      y = nn.Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                  kernel_init=_HE)(y)
      y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y))
    y = y.reshape(n, -1)
    mu = nn.Dense(self.latent_dim, name='fc_mu')(y)
    logvar = nn.Dense(self.latent_dim, name='fc_logvar')(y)
    if not decode:
      return None, mu, logvar
    z = reparameterize(self.make_rng('reparam'), mu, logvar)
    y = nn.Dense(_CONV_WIDTHS[-1] * (h // 8) * (w // 8), kernel_init=_HE)(z)
    y = y.reshape(n, h // 8, w // 8, _CONV_WIDTHS[-1])
    for width in _CONV_WIDTHS[-2::-1]:
      # PyTorch's ConvTranspose2d(k=4, s=2, p=1) pads the dilated input by k - 1 - p = 2.
      y = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                           use_bias=False)(y)
      y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y))
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
  def __call__(self, x, *, train: bool, decode: bool = True):
    del train
    shape = x.shape
    y = x.reshape(shape[0], -1)
    for width in self.hidden:
      y = nn.relu(nn.Dense(width, kernel_init=_HE)(y))
    mu = nn.Dense(self.latent_dim, name='fc_mu')(y)
    logvar = nn.Dense(self.latent_dim, name='fc_logvar')(y)
    if not decode:
      return None, mu, logvar
    y = reparameterize(self.make_rng('reparam'), mu, logvar)
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


DISCRIMINATOR = Discriminator()  # the official one; one instance, so its programs compile once


def make_vae(options, input_shape: Tuple[int, ...]) -> nn.Module:
  """The VAE ``options.arch`` names for samples of ``input_shape`` (without the batch axis)."""
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
  return _model(arch, int(options.latent_dim), tuple(int(h) for h in options.hidden))


@functools.lru_cache(maxsize=None)
def _model(arch: str, latent_dim: int, hidden: Tuple[int, ...]) -> nn.Module:
  # One instance per architecture: ``apply_fn`` is a static field of the train state, so a new
  # instance every cycle would recompile the training step every cycle.
  if arch == 'conv':
    return ConvVAE(latent_dim=latent_dim)
  return MLPVAE(latent_dim=latent_dim, hidden=hidden)
