"""The state types of an experiment and of its runs, below everything that reads them.

An :class:`Experiment` is what does not change between the runs of an experiment, built once by
``experiment.make_experiment``; a :class:`RunState` is one (strategy, seed) run between cycles.
:func:`initial_train_state` gives a run its models as they start.
"""
import types
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from l2r_jax import data as data_lib
from l2r_jax import tasks as tasks_lib
from l2r_jax import train
from l2r_jax.models import pretrained


class RunState(NamedTuple):
  """One (strategy, seed) run between cycles. Host values, except the model states."""
  strategy: str
  seed: int
  cycle: int                  # the last finished cycle; -1 before the first
  labeled: np.ndarray         # indices into the pool, in the order they were labeled
  rng: jax.Array              # the run's key; per-cycle keys are folded in from it
  train_state: train.State    # the target's and the loss module's
  results: List[Dict[str, Any]]

  def unlabeled_mask(self, pool_size: int) -> np.ndarray:
    mask = np.ones(pool_size, bool)
    mask[self.labeled] = False
    return mask


class Experiment(NamedTuple):
  """Everything about an experiment that does not change between runs of it: the target module
  and its optimiser are one pair of objects, and so are each strategy's loss module and its
  trainer (shared by the strategies that train the same loss module), so every (strategy, seed) of
  the experiment shares the compiled evaluation and, where they train alike, the compiled training
  programs."""
  config: ml_collections.ConfigDict
  dataset: data_lib.Dataset
  task: tasks_lib.Task                     # the task's loss, decoding and metric
  loop: Any                                # how an epoch runs: a cycle.StepLoop or ScanLoop
  target: Tuple[nn.Module, optax.GradientTransformation]
  # By strategy: its loss module and that module's optimiser (None for strategies without one),
  # and the trainer of its runs.
  loss_modules: Dict[str, Optional[Tuple[nn.Module, optax.GradientTransformation]]]
  trainers: Dict[str, train.Trainer]
  backbone: Optional[pretrained.Backbone] = None  # config.model.pretrained's weights, loaded once
  # By strategy with a ``prepare``: what it built for this experiment (VAAL's trainer).
  prepared: Mapping[str, Any] = types.MappingProxyType({})


def initial_train_state(experiment: Experiment, strategy: str, rng: jax.Array) -> train.State:
  """A run's initial target and loss module; the target's backbone from ``experiment.backbone``
  if set."""
  module, module_tx = experiment.loss_modules[strategy] or (None, None)
  sample = jnp.asarray(experiment.dataset.x_train[np.arange(2)])
  return train.create_state(rng, *experiment.target, sample, module, module_tx,
                            experiment.backbone)
