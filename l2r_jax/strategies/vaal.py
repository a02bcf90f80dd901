"""Variational Adversarial Active Learning (VAAL; Sinha, Ebrahimi & Darrell, ICCV 2019): the
strategy, its losses and its training; the networks are ``l2r_jax/models/vaal.py``.

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

The official recipe field by field (``config.vaal``, defaults in ``l2r_jax/defaults.py``), the
architectures, the losses, behaviour worth knowing and where this differs from the official code:
docs/vaal.md. Deterministic given ``rng``: parameter initialisation, batch order and the
reparameterisation noise all come from it.
"""
import functools
import time
from typing import Any, Callable, Dict, Iterator, NamedTuple, Tuple

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

from l2r_jax import devices as devices_lib
from l2r_jax import fields
from l2r_jax.errors import ConfigError
from l2r_jax.models.vaal import Discriminator
from l2r_jax.models.vaal import make_vae
from l2r_jax.strategies import base

_SCORE_CHUNK = 512


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
             beta: float, mean: Callable[[chex.Array], chex.Array] = jnp.mean) -> chex.Array:
  """The official ``Solver.vae_loss``: ``mean((recon - x)^2) + beta * KL`` (KL summed).

  Args:
    x, recon: ``[B, ...]`` inputs and their reconstructions.
    mu, logvar: ``[B, latent]`` the encoder's Gaussian.
    beta: weight of the KL term (beta-VAE).
    mean: the batch mean (a device's share of it when the batch is split over devices).
  """
  chex.assert_equal_shape((x, recon))
  return mean((recon - x)**2) + beta * kl_divergence(mu, logvar)


def _bce(logits: chex.Array, target: float, mean) -> chex.Array:
  """``nn.BCELoss()(sigmoid(logits), target)``, computed stably from the logits."""
  return mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def discriminator_loss(labeled_logits: chex.Array, unlabeled_logits: chex.Array,
                       mean=jnp.mean) -> chex.Array:
  """The discriminator's objective: labeled samples are 1, unlabeled ones 0 (two mean BCEs;
  ``mean`` as in :func:`vae_loss`)."""
  return _bce(labeled_logits, 1.0, mean) + _bce(unlabeled_logits, 0.0, mean)


def adversarial_loss(labeled_logits: chex.Array, unlabeled_logits: chex.Array,
                     mean=jnp.mean) -> chex.Array:
  """The VAE's adversarial term: it wins when the discriminator calls *every* sample labeled."""
  return _bce(labeled_logits, 1.0, mean) + _bce(unlabeled_logits, 1.0, mean)


# ----------------------------------------------------------------------------------------------
# Training, over every device: each VAE and discriminator batch is split into one block per device
# (the order of ``l2r_jax.devices``); every loss is written as this device's share of the global
# batch's loss (sums divided by the global batch), and the shares' gradients are summed across
# devices, so the update is the one a single device computes on the whole batch.

class VAEState(train_state.TrainState):
  batch_stats: Any = None


class VAALState(struct.PyTreeNode):
  """A VAE and its discriminator, each with its own Adam."""
  vae: VAEState
  discriminator: train_state.TrainState


class VAALTrainer(NamedTuple):
  """VAAL's networks, optimiser and compiled programs, built once per experiment by
  :func:`make_trainer` and shared by its runs and cycles (a fresh state is trained every cycle)."""
  options: ml_collections.ConfigDict          # config.vaal, every field
  vae: nn.Module
  discriminator: nn.Module
  tx: optax.GradientTransformation
  step: Callable     # pmapped train_step(state, labeled, unlabeled, rng), the options bound
  score: Callable    # pmapped _scores(state, x)


def make_trainer(options, pool_inputs) -> VAALTrainer:
  """VAAL's trainer for ``config.vaal`` (``options``, missing fields from the defaults) and a pool
  whose inputs are ``pool_inputs`` (an array or array-like; its first sample sets the VAE)."""
  options = options_with_defaults(options)
  sample_shape = _prepare(np.asarray(pool_inputs[np.arange(1)])).shape[1:]
  step = functools.partial(train_step, latent_dim=int(options.latent_dim),
                           beta=float(options.beta),
                           adversary_weight=float(options.adversary_weight),
                           vae_steps=int(options.vae_steps),
                           adversary_steps=int(options.adversary_steps))
  return VAALTrainer(
      options, make_vae(options, sample_shape, bn_axis_name=devices_lib.AXIS), Discriminator(),
      optax.adam(float(options.lr)),
      jax.pmap(step, axis_name=devices_lib.AXIS, in_axes=(0, 0, 0, None), donate_argnums=(0,)),
      jax.pmap(_scores, axis_name=devices_lib.AXIS))


def create_state(rng: chex.PRNGKey, trainer: VAALTrainer, sample_input: chex.Array) -> VAALState:
  """Fresh VAE and discriminator (initialised from ``rng``), the trainer's Adam for each."""
  rng_vae, rng_reparam, rng_disc = jax.random.split(rng, 3)
  variables = trainer.vae.init({'params': rng_vae, 'reparam': rng_reparam}, sample_input,
                               train=False)
  vae = VAEState.create(apply_fn=trainer.vae.apply, params=variables['params'],
                        batch_stats=variables.get('batch_stats', {}), tx=trainer.tx)
  _, mu, _ = trainer.vae.apply(variables, sample_input, train=False, decode=False)
  disc = train_state.TrainState.create(
      apply_fn=trainer.discriminator.apply,
      params=trainer.discriminator.init(rng_disc, mu)['params'], tx=trainer.tx)
  return VAALState(vae=vae, discriminator=disc)


def _vae_forward(vae: VAEState, params, batch_stats, x, noise=None, decode=True):
  """Training-mode forward pass; returns ``(recon, mu, logvar)`` and the new BatchNorm stats."""
  (recon, mu, logvar), updates = vae.apply_fn(
      {'params': params, 'batch_stats': batch_stats}, x, train=True, decode=decode, noise=noise,
      mutable=['batch_stats'])
  return (recon, mu, logvar), updates.get('batch_stats', batch_stats)


def _block_noise(rng: chex.PRNGKey, block: int, latent_dim: int) -> chex.Array:
  """This device's rows of the global batch's reparameterisation noise ``N(0, I)``: the same
  noise per sample however many devices share the batch."""
  devices = jax.lax.axis_size(devices_lib.AXIS)
  noise = jax.random.normal(rng, (block * devices, latent_dim), jnp.float32)
  return jax.lax.dynamic_slice_in_dim(noise, jax.lax.axis_index(devices_lib.AXIS) * block, block)


def _mean_share(values: chex.Array) -> chex.Array:
  """This device's share of the mean over the global batch, of which ``values`` is its block."""
  return jnp.sum(values) / (values.size * jax.lax.axis_size(devices_lib.AXIS))


def train_step(state: VAALState, labeled_batch: chex.Array, unlabeled_batch: chex.Array,
               rng: chex.PRNGKey, *, latent_dim: int, beta: float = 1.0,
               adversary_weight: float = 1.0, vae_steps: int = 2, adversary_steps: int = 1
               ) -> Tuple[VAALState, Dict[str, chex.Array]]:
  """One official VAAL iteration, ``vae_steps`` VAE updates then ``adversary_steps``
  discriminator updates, on this device's block of each batch (under ``pmap`` over
  ``devices.AXIS``).

  Args:
    state: the VAE and the discriminator (the same on every device).
    labeled_batch, unlabeled_batch: ``[vae_steps + adversary_steps - 1, B / devices, ...]``: VAE
      step ``k`` uses batch ``k``; discriminator step ``k`` uses batch ``vae_steps - 1 + k`` (the
      official solver draws a new pair for every VAE step and lets the first discriminator step
      reuse the last one).
    rng: reparameterisation noise, folded in per step (the same on every device).
    latent_dim: the VAE's latent size (the noise's width).

  Returns:
    The new state and the last steps' ``train_vae_loss`` (total), ``train_reconstruction``,
    ``train_kl``, ``train_adversarial`` and ``train_discriminator_loss``, of the global batch.
  """
  n_batches = vae_steps + adversary_steps - 1
  chex.assert_equal_shape((labeled_batch, unlabeled_batch))
  chex.assert_axis_dimension(labeled_batch, 0, n_batches)
  block = labeled_batch.shape[1]
  vae, disc = state.vae, state.discriminator
  metrics = {}
  for k in range(vae_steps):
    x_l, x_u = labeled_batch[k], unlabeled_batch[k]
    noise_l, noise_u = (_block_noise(r, block, latent_dim)
                        for r in jax.random.split(jax.random.fold_in(rng, k)))

    def loss_fn(params, x_l=x_l, x_u=x_u, noise_l=noise_l, noise_u=noise_u):
      # Labeled and unlabeled batches go through separately, as in the official solver (so each
      # is BatchNorm-normalised by its own statistics).
      (rec_l, mu_l, lv_l), stats = _vae_forward(vae, params, vae.batch_stats, x_l, noise_l)
      (rec_u, mu_u, lv_u), stats = _vae_forward(vae, params, stats, x_u, noise_u)
      unsup = vae_loss(x_l, rec_l, mu_l, lv_l, beta, _mean_share)
      transductive = vae_loss(x_u, rec_u, mu_u, lv_u, beta, _mean_share)
      adv = adversarial_loss(disc.apply_fn({'params': disc.params}, mu_l),
                             disc.apply_fn({'params': disc.params}, mu_u), _mean_share)
      total = unsup + transductive + adversary_weight * adv
      aux = {'batch_stats': stats, 'train_vae_loss': total,
             'train_reconstruction': 0.5 * (_mean_share((rec_l - x_l)**2) +
                                            _mean_share((rec_u - x_u)**2)),
             'train_kl': 0.5 * (kl_divergence(mu_l, lv_l) + kl_divergence(mu_u, lv_u)),
             'train_adversarial': adv}
      return total, aux

    grads, aux = jax.grad(loss_fn, has_aux=True)(vae.params)
    vae = vae.apply_gradients(grads=jax.lax.psum(grads, devices_lib.AXIS),
                              batch_stats=aux.pop('batch_stats'))
    metrics.update(jax.lax.psum(aux, devices_lib.AXIS))
  for k in range(adversary_steps):
    x_l, x_u = labeled_batch[vae_steps - 1 + k], unlabeled_batch[vae_steps - 1 + k]
    # The official step runs the whole VAE in training mode under no_grad, updating BatchNorm's
    # running statistics; the decoder's are never used to score, so only the encoder runs here.
    (_, mu_l, _), stats = _vae_forward(vae, vae.params, vae.batch_stats, x_l, decode=False)
    (_, mu_u, _), stats = _vae_forward(vae, vae.params, stats, x_u, decode=False)
    mu_l, mu_u = jax.lax.stop_gradient(mu_l), jax.lax.stop_gradient(mu_u)

    def disc_loss_fn(params, mu_l=mu_l, mu_u=mu_u):
      return discriminator_loss(disc.apply_fn({'params': params}, mu_l),
                                disc.apply_fn({'params': params}, mu_u), _mean_share)

    loss, grads = jax.value_and_grad(disc_loss_fn)(disc.params)
    disc = disc.apply_gradients(grads=jax.lax.psum(grads, devices_lib.AXIS))
    vae = vae.replace(batch_stats=stats)
    metrics['train_discriminator_loss'] = jax.lax.psum(loss, devices_lib.AXIS)
  return VAALState(vae=vae, discriminator=disc), metrics


def _scores(state: VAALState, x: chex.Array) -> chex.Array:
  """``D(mu(x))`` in ``[0, 1]``: how sure the discriminator is that each sample is labeled."""
  vae = state.vae
  _, mu, _ = vae.apply_fn({'params': vae.params, 'batch_stats': vae.batch_stats}, x, train=False,
                          decode=False)
  return jax.nn.sigmoid(state.discriminator.apply_fn({'params': state.discriminator.params}, mu))


def scores(trainer: VAALTrainer, state: VAALState, inputs: Callable[[np.ndarray], np.ndarray],
           indices: np.ndarray, chunk: int = _SCORE_CHUNK) -> np.ndarray:
  """Discriminator scores of the pool samples ``indices``, over every device of every process
  (``state`` one copy per local device, as :func:`train_vaal` returns it)."""
  if not len(indices):
    return np.zeros((0,), np.float32)
  return devices_lib.map_over_devices(lambda x: (trainer.score(state, x),),
                                      lambda rows: (_prepare(inputs(rows)),), indices, chunk)[0]


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
  return base.options_with_defaults('vaal', options)


def num_iterations(options, pool_size: int) -> int:
  """``options.iterations`` if positive, else the official ``pool_size * epochs // batch_size``."""
  if options.iterations > 0:
    return int(options.iterations)
  return max(1, pool_size * options.epochs // options.batch_size)


def check_options(config) -> None:
  """Refuses a ``config.vaal`` VAAL cannot run with, naming the field."""
  for name in ('latent_dim', 'batch_size', 'vae_steps', 'adversary_steps', 'epochs'):
    fields.positive_int(config, f'vaal.{name}')
  if config.vaal.batch_size % jax.device_count():
    raise ConfigError(f'config.vaal.batch_size={config.vaal.batch_size} must be a multiple of the '
                      f'{jax.device_count()} devices it is split over.')
  iterations = config.vaal.iterations
  if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
    raise ConfigError(f'config.vaal.iterations must be a whole number >= 0 (0: the official '
                      f'count, 100 epochs of the pool), got {iterations!r}.')
  for name in ('beta', 'adversary_weight', 'lr'):
    fields.number(config, f'vaal.{name}')
  fields.one_of(config, 'vaal.arch', ('auto', 'conv', 'mlp'))
  hidden = config.vaal.hidden
  if not (isinstance(hidden, (tuple, list)) and hidden and
          all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)):
    raise ConfigError(f'config.vaal.hidden must be widths, positive integers, got {hidden!r}.')


def train_vaal(trainer: VAALTrainer, inputs: Callable[[np.ndarray], np.ndarray],
               labeled: np.ndarray, unlabeled: np.ndarray, rng: chex.PRNGKey, *,
               iterations: int) -> Tuple[VAALState, Dict[str, float]]:
  """A fresh VAE and discriminator trained for ``iterations`` official iterations, every batch
  split over every device of every process (each process reads only its devices' samples).

  Args:
    trainer: the experiment's :class:`VAALTrainer`.
    inputs: ``inputs(indices) -> [n, ...]`` pool inputs.
    labeled, unlabeled: pool indices of the two sets (both non-empty).
    rng: initialisation, batch order and reparameterisation noise.
    iterations: how many :func:`train_step` calls.

  Returns:
    The trained state, one copy per local device, and the last step's metrics.
  """
  rng_init, rng_order, rng_steps = jax.random.split(rng, 3)
  order = np.random.default_rng(int(jax.random.randint(rng_order, (), 0, 2**31 - 1)))
  options = trainer.options
  b, n_batches = options.batch_size, options.vae_steps + options.adversary_steps - 1
  sample = _prepare(inputs(np.asarray(labeled[:1])))
  state = devices_lib.replicate(create_state(rng_init, trainer, jnp.asarray(sample)))
  block = b // jax.device_count()
  n_local = jax.local_device_count()
  mine = slice(jax.process_index() * n_local * block, (jax.process_index() + 1) * n_local * block)
  lab_stream = _index_batches(np.asarray(labeled), b, order)
  unl_stream = _index_batches(np.asarray(unlabeled), b, order)

  def local_blocks(batches):   # [n_batches, b] -> [local devices, n_batches, block, ...]
    x = _prepare(inputs(np.stack(batches)[:, mine].reshape(-1)))
    return x.reshape(n_batches, n_local, block, *x.shape[1:]).swapaxes(0, 1)

  # One key per iteration, made at once on the host (a dispatch per iteration costs more than a
  # small step).
  step_keys = np.asarray(jax.random.split(rng_steps, iterations))
  metrics = {}
  for it in range(iterations):
    x_l = local_blocks([next(lab_stream) for _ in range(n_batches)])
    x_u = local_blocks([next(unl_stream) for _ in range(n_batches)])
    state, metrics = trainer.step(state, x_l, x_u, step_keys[it])
    # One iteration in flight: XLA:CPU's in-process all-reduce, with many pmapped steps queued on
    # starved cores, aborted the process (tests under load); waiting here costs a sync a step.
    jax.block_until_ready(state)
  return state, {k: float(v.addressable_shards[0].data[0]) for k, v in metrics.items()}


@base.register('vaal', prepare=make_trainer, check=check_options)
def select_vaal(state, pool_subset, budget, rng):
  """Train a fresh VAAL on the labeled and all unlabeled pool inputs, then query the ``budget``
  members of ``pool_subset`` the discriminator scores lowest (least likely labeled)."""
  pool_subset = np.asarray(pool_subset)
  if state.inputs is None or state.pool_size is None:
    raise ValueError('VAAL learns from the pool inputs: the SelectionState needs `inputs` and '
                     '`pool_size`.')
  trainer = state.prepared or make_trainer(state.options, state.inputs(np.arange(1)))
  labeled = np.asarray(state.labeled, np.int64)
  if not len(labeled):
    return pool_subset[np.asarray(jax.random.permutation(rng, len(pool_subset)))[:budget]]
  unlabeled = np.setdiff1d(np.arange(state.pool_size), labeled)
  iterations = num_iterations(trainer.options, state.pool_size)
  t0 = time.time()
  vaal_state, metrics = train_vaal(trainer, state.inputs, labeled, unlabeled, rng,
                                   iterations=iterations)
  s = scores(trainer, vaal_state, state.inputs, pool_subset)
  logging.info('VAAL: %d iterations in %.1fs; last step %s.', iterations, time.time() - t0,
               {k: round(v, 4) for k, v in metrics.items()})
  return pool_subset[np.argsort(s, kind='stable')[:budget]]
