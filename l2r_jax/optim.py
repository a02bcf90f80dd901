"""Optimisers whose learning rate the driver sets once per epoch (a piecewise-constant schedule in
epochs, as the paper states its schedules), without recompiling the training step."""
from typing import Sequence

import jax.numpy as jnp
import ml_collections
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


def learning_rate(config: ml_collections.ConfigDict, epoch: int) -> float:
  """``lr * lr_decay ** (number of lr_boundaries <= epoch)``; epochs count from 0."""
  boundaries: Sequence[int] = config.lr_boundaries
  return config.lr * config.lr_decay ** sum(epoch >= b for b in boundaries)


def with_learning_rate(opt_state, lr: float):
  """The same optimiser state with its injected learning rate set to ``lr`` (any leading axes)."""
  hp = dict(opt_state.hyperparams)
  hp['learning_rate'] = jnp.full_like(hp['learning_rate'], lr)
  return opt_state._replace(hyperparams=hp)
