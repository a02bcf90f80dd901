"""Optimisers whose learning rate the training step sets from a schedule of the epoch (piecewise
constant in epochs, as the paper states its schedules), without recompiling the step."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax


def _sgd(learning_rate, momentum, weight_decay):
  # PyTorch's SGD weight decay: wd * param added to the gradient before momentum.
  return optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(learning_rate, momentum=momentum or None))


def _adam(learning_rate, weight_decay):
  return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))


OPTIMIZERS = ('sgd', 'adam')


def make(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """``config``: ``optimizer`` ('sgd' | 'adam'), ``lr``, ``momentum`` (sgd), ``weight_decay``."""
  if config.optimizer == 'sgd':
    return optax.inject_hyperparams(_sgd, static_args=('momentum', 'weight_decay'))(
        learning_rate=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
  if config.optimizer == 'adam':
    return optax.inject_hyperparams(_adam, static_args=('weight_decay',))(
        learning_rate=config.lr, weight_decay=config.weight_decay)
  raise ValueError(f"optimizer must be 'sgd' or 'adam', got {config.optimizer!r}.")


def schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """``lr * lr_decay ** (number of lr_boundaries <= epoch)`` as an optax schedule of the epoch
  (0-indexed). Each piece's rate is computed in float64 and rounded once to float32, the
  optimiser's own type, rather than multiplied up in float32."""
  boundaries = sorted(config.lr_boundaries)
  rates = [np.float32(config.lr * config.lr_decay ** k) for k in range(len(boundaries) + 1)]
  return optax.join_schedules([optax.constant_schedule(r) for r in rates], boundaries)


def with_learning_rate(opt_state, lr: float):
  """The same optimiser state with its injected learning rate set to ``lr`` (any leading axes)."""
  hp = dict(opt_state.hyperparams)
  hp['learning_rate'] = jnp.full_like(hp['learning_rate'], lr)
  return opt_state._replace(hyperparams=hp)
