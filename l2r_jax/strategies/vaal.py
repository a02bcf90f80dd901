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
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

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
from l2r_jax.models.vaal import DISCRIMINATOR
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
  discriminator_model = discriminator_model or DISCRIMINATOR
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
