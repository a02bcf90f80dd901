"""Variational Adversarial Active Learning (VAAL; Sinha, Ebrahimi & Darrell, ICCV 2019).

VAAL never looks at the task model. It learns, from the pool's inputs alone, a latent space in
which a discriminator tries to tell labeled from unlabeled samples, while a variational
autoencoder (VAE) that embeds both tries to make them indistinguishable:

* the VAE (encoder q(z|x), decoder p(x|z)) is trained transductively on a labeled and an unlabeled
  mini-batch, each with ``MSE(x̂, x) + beta * KL(q(z|x) || N(0, I))``, plus ``adversary_weight``
  times an adversarial term that asks the discriminator to call *both* batches "labeled"
  (``BCE(D(mu_L), 1) + BCE(D(mu_U), 1)``, eq. 5 of the paper);
* the discriminator D (an MLP on the latent mean ``mu``, sigmoid output) is trained with
  ``BCE(D(mu_L), 1) + BCE(D(mu_U), 0)`` on the VAE's (frozen) means;
* the query: the ``budget`` unlabeled candidates with the lowest ``D(mu)``, the samples the
  discriminator is most sure are *not* like the labeled set, i.e. least represented by it.

A fresh VAE and discriminator are trained every cycle (``main.py`` creates ``model.VAE`` and
``model.Discriminator`` inside its loop over splits).

The official recipe (github.com/sinhasam/vaal, the code the L2R-AL paper ran "with its default
hyperparameters"), field by field as ``config.vaal`` (defaults in ``l2r_jax/defaults.py``):

* ``latent_dim`` 32: ``arguments.py --latent_dim``; the L2R-AL paper uses 64 for CelebA.
* ``beta`` 1.0: ``arguments.py --beta``, the KL weight.
* ``adversary_weight`` 1.0: ``arguments.py --adversary_param`` (lambda2 of the paper).
* ``lr`` 5e-4: ``--lr_vae`` and ``--lr_dis``, Adam for both (``solver.py``); optax's Adam has
  PyTorch's default betas and eps.
* ``batch_size`` 128: ``arguments.py --batch_size``; every step sees a labeled and an unlabeled
  batch of this size.
* ``vae_steps`` 2 and ``adversary_steps`` 1: ``--num_vae_steps``, ``--num_adv_steps``; each VAE
  step draws a fresh pair of batches, the discriminator step reuses the last pair (``solver.py``).
* ``epochs`` 100 and ``iterations`` 0: ``solver.py`` runs ``num_images * train_epochs //
  batch_size`` iterations, ``num_images`` the whole training set (``main.py``: 50,000 for
  CIFAR-10, so 39,062). ``iterations=0`` applies the same formula to the pool size; a positive
  value is used as is.
* ``arch`` ``'auto'`` and ``hidden`` (512, 256): see the first difference below.

Architectures (``model.py``). Conv VAE encoder: four 4×4 stride-2 convolutions (padding 1, no
bias) of 128, 256, 512, 1024 channels, each followed by BatchNorm and ReLU, flattened, then linear
``fc_mu`` and ``fc_logvar``. Decoder: linear ``z -> 1024 x (H/8) x (W/8)``, three 4×4 stride-2
transposed convolutions of 512, 256, 128 channels with BatchNorm and ReLU, and a 1×1 output
convolution back to the input's channels (no output nonlinearity). Discriminator on ``mu``:
``z -> 512 -> 512 -> 512 -> 512 -> 1``, ReLU between, sigmoid at the end (the official model has
four hidden layers of 512). He-normal initialisation where the official ``kaiming_init`` reaches
(encoder and decoder Conv/Linear layers, discriminator); library defaults elsewhere.

The losses are the official ``Solver.vae_loss``: ``nn.MSELoss()`` (the mean over every element)
plus ``beta`` times the KL divergence *summed* over the batch and the latent dimensions. Per
sample, the KL term therefore weighs (batch size × input size) times more than the summed squared
error, and the latent means keep little information about their input (close to posterior
collapse); kept as is, because that is the method the paper compares. The VAE's adversarial
targets are 1 for both batches, as in ``solver.py``'s latest version (an earlier commit gave the
unlabeled batch the discriminator's target, 0).

Behaviour worth knowing: with a small labeled set the discriminator (four 512-wide layers) learns
to recognise the individual labeled samples within a few hundred iterations; from then on every
unlabeled sample scores near 0 and their order carries less and less information. In the
two-cluster test of ``tests/test_vaal.py`` (256 labeled samples of one cluster; candidates half
from it, half from a shifted one) 94% of the queries come from the missing cluster after 50
iterations, about 75% after 100 and 65% (one seed in five: 34%) after 300, against 50% by chance.

Where this differs from the official code, and why:

* **Inputs that are not square images >= 32 px** (mnist1d's 40-long sequences, 8×8 digits) have no
  room for four stride-2 convolutions; they get an MLP VAE (flatten, ``hidden`` Dense+ReLU layers,
  ``fc_mu``/``fc_logvar``, the mirror image back to the input's shape), with the same losses,
  discriminator and optimisers. The conv decoder starts at ``H/8`` rather than the official fixed
  4×4, so 64×64 CelebA images reconstruct at 64×64 (the official ``model.py`` is written for 32 px).
* **Iterations** are a config field. The official count is tied to the training set: 100 epochs
  of the *whole* pool (labeled + unlabeled) at batch 128, i.e. ``pool_size * 100 // 128``.
  ``iterations=0`` reproduces that; a positive value caps the cost on small machines.
* **The task model** is trained in the same loop in the official code (one SGD step per
  iteration); here the driver trains it and VAAL only selects, as for every strategy.
* **Scoring** uses BatchNorm's running statistics (the official sampler leaves the VAE in training
  mode, so a sample's score depends on the batch it lands in); training, like the official code,
  normalises the labeled and the unlabeled batch each by its own statistics.
* **Mini-batches** cycle through fresh random orders of the labeled and the unlabeled indices and
  always hold ``batch_size`` samples (a set smaller than a batch is repeated), so shapes are static.
  Inputs are fetched by index, one batch at a time: a large pool is never loaded whole.
* **No labeled sample** (not an official case): there is nothing to contrast the pool with; the
  selection is uniformly random.

Deterministic given ``rng``: parameter initialisation, batch order and the reparameterisation noise
all come from it.
"""
import functools
import time
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from absl import logging
import chex
from flax import struct
import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from l2r_jax import defaults
from l2r_jax.strategies import base

# PyTorch's ``init.kaiming_normal`` (fan-in, gain sqrt(2)), as the official ``kaiming_init``.
_HE = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
_CONV_WIDTHS = (128, 256, 512, 1024)
_SCORE_CHUNK = 512


# ----------------------------------------------------------------------------------------------
# Models.

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


_DISCRIMINATOR = Discriminator()


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


# ----------------------------------------------------------------------------------------------
# Losses.

def kl_divergence(mu: chex.Array, logvar: chex.Array) -> chex.Array:
  """``KL(N(mu, exp(logvar)) || N(0, I))`` *summed* over the batch and the latent dimensions.

  ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar))``, the closed form for diagonal Gaussians
  (Kingma & Welling 2014, appendix B); summed over the batch as the official ``vae_loss`` does.
  """
  chex.assert_equal_shape((mu, logvar))
  return -0.5 * jnp.sum(1.0 + logvar - mu**2 - jnp.exp(logvar))


def vae_loss(x: chex.Array, recon: chex.Array, mu: chex.Array, logvar: chex.Array,
             beta: float) -> chex.Array:
  """The official ``Solver.vae_loss``: ``mean((recon - x)^2) + beta * KL`` (KL summed).

  Args:
    x, recon: ``[B, ...]`` inputs and their reconstructions.
    mu, logvar: ``[B, latent]`` the encoder's Gaussian.
    beta: weight of the KL term (beta-VAE).
  """
  chex.assert_equal_shape((x, recon))
  return jnp.mean((recon - x)**2) + beta * kl_divergence(mu, logvar)


def _bce(logits: chex.Array, target: float) -> chex.Array:
  """``nn.BCELoss()(sigmoid(logits), target)``, computed stably from the logits."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def discriminator_loss(labeled_logits: chex.Array, unlabeled_logits: chex.Array) -> chex.Array:
  """The discriminator's objective: labeled samples are 1, unlabeled ones 0 (two mean BCEs)."""
  return _bce(labeled_logits, 1.0) + _bce(unlabeled_logits, 0.0)


def adversarial_loss(labeled_logits: chex.Array, unlabeled_logits: chex.Array) -> chex.Array:
  """The VAE's adversarial term: it wins when the discriminator calls *every* sample labeled."""
  return _bce(labeled_logits, 1.0) + _bce(unlabeled_logits, 1.0)


# ----------------------------------------------------------------------------------------------
# Training.

class VAEState(train_state.TrainState):
  batch_stats: Any = None


class VAALState(struct.PyTreeNode):
  """A VAE and its discriminator, each with its own Adam."""
  vae: VAEState
  discriminator: train_state.TrainState


@functools.lru_cache(maxsize=None)
def _adam(lr: float) -> optax.GradientTransformation:
  return optax.adam(lr)  # one instance per learning rate, as for the models


def create_state(rng: chex.PRNGKey, vae_model: nn.Module, sample_input: chex.Array,
                 lr: float, discriminator_model: Optional[nn.Module] = None) -> VAALState:
  """Fresh VAE and discriminator (initialised from ``rng``), Adam(``lr``) for each."""
  rng_vae, rng_reparam, rng_disc = jax.random.split(rng, 3)
  discriminator_model = discriminator_model or _DISCRIMINATOR
  tx = _adam(float(lr))
  variables = vae_model.init({'params': rng_vae, 'reparam': rng_reparam}, sample_input,
                             train=False)
  vae = VAEState.create(apply_fn=vae_model.apply, params=variables['params'],
                        batch_stats=variables.get('batch_stats', {}), tx=tx)
  _, mu, _ = vae_model.apply(variables, sample_input, train=False, decode=False)
  disc = train_state.TrainState.create(
      apply_fn=discriminator_model.apply, params=discriminator_model.init(rng_disc, mu)['params'],
      tx=tx)
  return VAALState(vae=vae, discriminator=disc)


def _vae_forward(vae: VAEState, params, batch_stats, x, rng, decode=True):
  """Training-mode forward pass; returns ``(recon, mu, logvar)`` and the new BatchNorm stats."""
  (recon, mu, logvar), updates = vae.apply_fn(
      {'params': params, 'batch_stats': batch_stats}, x, train=True, decode=decode,
      rngs={'reparam': rng}, mutable=['batch_stats'])
  return (recon, mu, logvar), updates.get('batch_stats', batch_stats)


def train_step(state: VAALState, labeled_batch: chex.Array, unlabeled_batch: chex.Array,
               rng: chex.PRNGKey, *, beta: float = 1.0, adversary_weight: float = 1.0,
               vae_steps: int = 2, adversary_steps: int = 1) -> Tuple[VAALState,
                                                                       Dict[str, chex.Array]]:
  """One official VAAL iteration: ``vae_steps`` VAE updates, then ``adversary_steps``
  discriminator updates.

  Args:
    state: the VAE and the discriminator.
    labeled_batch, unlabeled_batch: ``[vae_steps + adversary_steps - 1, B, ...]``: VAE step ``k``
      uses batch ``k``; discriminator step ``k`` uses batch ``vae_steps - 1 + k`` (the official
      solver draws a new pair for every VAE step and lets the first discriminator step reuse the
      last one).
    rng: reparameterisation noise, folded in per step.

  Returns:
    The new state and the last steps' ``train_vae_loss`` (total), ``train_reconstruction``,
    ``train_kl``, ``train_adversarial`` and ``train_discriminator_loss``.
  """
  n_batches = vae_steps + adversary_steps - 1
  chex.assert_equal_shape((labeled_batch, unlabeled_batch))
  chex.assert_axis_dimension(labeled_batch, 0, n_batches)
  vae, disc = state.vae, state.discriminator
  metrics = {}
  for k in range(vae_steps):
    x_l, x_u = labeled_batch[k], unlabeled_batch[k]
    rng_l, rng_u = jax.random.split(jax.random.fold_in(rng, k))

    def loss_fn(params, x_l=x_l, x_u=x_u, rng_l=rng_l, rng_u=rng_u):
      # Labeled and unlabeled batches go through separately, as in the official solver (so each
      # is BatchNorm-normalised by its own statistics).
      (rec_l, mu_l, lv_l), stats = _vae_forward(vae, params, vae.batch_stats, x_l, rng_l)
      (rec_u, mu_u, lv_u), stats = _vae_forward(vae, params, stats, x_u, rng_u)
      unsup = vae_loss(x_l, rec_l, mu_l, lv_l, beta)
      transductive = vae_loss(x_u, rec_u, mu_u, lv_u, beta)
      adv = adversarial_loss(disc.apply_fn({'params': disc.params}, mu_l),
                             disc.apply_fn({'params': disc.params}, mu_u))
      total = unsup + transductive + adversary_weight * adv
      aux = {'batch_stats': stats, 'train_vae_loss': total,
             'train_reconstruction': 0.5 * (jnp.mean((rec_l - x_l)**2) +
                                            jnp.mean((rec_u - x_u)**2)),
             'train_kl': 0.5 * (kl_divergence(mu_l, lv_l) + kl_divergence(mu_u, lv_u)),
             'train_adversarial': adv}
      return total, aux

    grads, aux = jax.grad(loss_fn, has_aux=True)(vae.params)
    vae = vae.apply_gradients(grads=grads, batch_stats=aux.pop('batch_stats'))
    metrics.update(aux)
  for k in range(adversary_steps):
    x_l, x_u = labeled_batch[vae_steps - 1 + k], unlabeled_batch[vae_steps - 1 + k]
    # The official step runs the whole VAE in training mode under no_grad, updating BatchNorm's
    # running statistics; the decoder's are never used to score, so only the encoder runs here.
    (_, mu_l, _), stats = _vae_forward(vae, vae.params, vae.batch_stats, x_l, rng, decode=False)
    (_, mu_u, _), stats = _vae_forward(vae, vae.params, stats, x_u, rng, decode=False)
    mu_l, mu_u = jax.lax.stop_gradient(mu_l), jax.lax.stop_gradient(mu_u)

    def disc_loss_fn(params, mu_l=mu_l, mu_u=mu_u):
      return discriminator_loss(disc.apply_fn({'params': params}, mu_l),
                                disc.apply_fn({'params': params}, mu_u))

    loss, grads = jax.value_and_grad(disc_loss_fn)(disc.params)
    disc = disc.apply_gradients(grads=grads)
    vae = vae.replace(batch_stats=stats)
    metrics['train_discriminator_loss'] = loss
  return VAALState(vae=vae, discriminator=disc), metrics


_STATIC = ('beta', 'adversary_weight', 'vae_steps', 'adversary_steps')
jit_train_step = jax.jit(train_step, static_argnames=_STATIC, donate_argnums=(0,))


@jax.jit
def _scores(state: VAALState, x: chex.Array) -> chex.Array:
  """``D(mu(x))`` in ``[0, 1]``: how sure the discriminator is that each sample is labeled."""
  vae = state.vae
  _, mu, _ = vae.apply_fn({'params': vae.params, 'batch_stats': vae.batch_stats}, x, train=False,
                          decode=False)
  return jax.nn.sigmoid(state.discriminator.apply_fn({'params': state.discriminator.params}, mu))


def scores(state: VAALState, inputs: Callable[[np.ndarray], np.ndarray],
           indices: np.ndarray, chunk: int = _SCORE_CHUNK) -> np.ndarray:
  """Discriminator scores of the pool samples ``indices``, fetched ``chunk`` at a time (the last
  chunk padded, so one compiled program serves all)."""
  indices = np.asarray(indices)
  out = []
  for start in range(0, len(indices), chunk):
    idx = indices[start:start + chunk]
    padded = np.concatenate([idx, np.repeat(idx[-1:], chunk - len(idx))])
    out.append(np.asarray(_scores(state, jnp.asarray(_prepare(inputs(padded)))))[:len(idx)])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)


def _prepare(x: np.ndarray) -> np.ndarray:
  """float32, and a channel axis for ``[N, H, W]`` images large enough for the conv VAE."""
  x = np.asarray(x, np.float32)
  if x.ndim == 3 and x.shape[1] == x.shape[2] and x.shape[1] >= 32:
    x = x[..., None]
  return x


def _index_batches(indices: np.ndarray, batch_size: int,
                   rng: np.random.Generator) -> Iterator[np.ndarray]:
  """Endless ``batch_size`` batches of ``indices``: successive random orders, concatenated."""
  buffer = np.zeros((0,), np.int64)
  while True:
    while len(buffer) < batch_size:
      buffer = np.concatenate([buffer, rng.permutation(indices)])
    yield buffer[:batch_size]
    buffer = buffer[batch_size:]


def options_with_defaults(options) -> ml_collections.ConfigDict:
  """``config.vaal`` with any missing field taken from :mod:`l2r_jax.defaults`."""
  merged = defaults.get_config().vaal
  for key, value in dict(options or {}).items():
    if key not in merged:
      raise ValueError(f'config.vaal has no field {key!r}: choose from {sorted(merged)}.')
    merged[key] = value
  return merged


def num_iterations(options, pool_size: int) -> int:
  """``options.iterations`` if positive, else the official ``pool_size * epochs // batch_size``."""
  if options.iterations > 0:
    return int(options.iterations)
  return max(1, pool_size * options.epochs // options.batch_size)


def train_vaal(inputs: Callable[[np.ndarray], np.ndarray], labeled: np.ndarray,
               unlabeled: np.ndarray, options, rng: chex.PRNGKey, *,
               iterations: int) -> Tuple[VAALState, Dict[str, float]]:
  """A fresh VAE and discriminator trained for ``iterations`` official iterations.

  Args:
    inputs: ``inputs(indices) -> [n, ...]`` pool inputs.
    labeled, unlabeled: pool indices of the two sets (both non-empty).
    options: ``config.vaal`` (all fields).
    rng: initialisation, batch order and reparameterisation noise.
    iterations: how many :func:`train_step` calls.

  Returns:
    The trained state and the last step's metrics.
  """
  rng_init, rng_order, rng_steps = jax.random.split(rng, 3)
  order = np.random.default_rng(int(jax.random.randint(rng_order, (), 0, 2**31 - 1)))
  b, n_batches = options.batch_size, options.vae_steps + options.adversary_steps - 1
  sample = _prepare(inputs(np.asarray(labeled[:1])))
  vae_model = make_vae(options, sample.shape[1:])
  state = create_state(rng_init, vae_model, jnp.asarray(sample), options.lr)
  lab_stream = _index_batches(np.asarray(labeled), b, order)
  unl_stream = _index_batches(np.asarray(unlabeled), b, order)
  step = functools.partial(jit_train_step, beta=float(options.beta),
                           adversary_weight=float(options.adversary_weight),
                           vae_steps=int(options.vae_steps),
                           adversary_steps=int(options.adversary_steps))
  # One key per iteration, made at once on the host (a dispatch per iteration costs more than a
  # small step).
  step_keys = np.asarray(jax.random.split(rng_steps, iterations))
  metrics = {}
  for it in range(iterations):
    idx_l = np.concatenate([next(lab_stream) for _ in range(n_batches)])
    idx_u = np.concatenate([next(unl_stream) for _ in range(n_batches)])
    x_l = _prepare(inputs(idx_l)).reshape(n_batches, b, *sample.shape[1:])
    x_u = _prepare(inputs(idx_u)).reshape(n_batches, b, *sample.shape[1:])
    state, metrics = step(state, x_l, x_u, step_keys[it])
  return state, {k: float(v) for k, v in metrics.items()}


@base.register('vaal')
def select_vaal(state, pool_subset, budget, rng):
  """Train a fresh VAAL on the labeled and all unlabeled pool inputs, then query the ``budget``
  members of ``pool_subset`` the discriminator scores lowest (least likely labeled)."""
  pool_subset = np.asarray(pool_subset)
  if state.inputs is None or state.pool_size is None:
    raise ValueError('VAAL learns from the pool inputs: the SelectionState needs `inputs` and '
                     '`pool_size`.')
  options = options_with_defaults(state.options)
  labeled = np.asarray(state.labeled, np.int64)
  if not len(labeled):
    return pool_subset[np.asarray(jax.random.permutation(rng, len(pool_subset)))[:budget]]
  unlabeled = np.setdiff1d(np.arange(state.pool_size), labeled)
  iterations = num_iterations(options, state.pool_size)
  t0 = time.time()
  vaal_state, metrics = train_vaal(state.inputs, labeled, unlabeled, options, rng,
                                   iterations=iterations)
  s = scores(vaal_state, state.inputs, pool_subset)
  logging.info('VAAL: %d iterations in %.1fs; last step %s.', iterations, time.time() - t0,
               {k: round(v, 4) for k, v in metrics.items()})
  return pool_subset[np.argsort(s, kind='stable')[:budget]]
