"""Cycle 0 of one run of an augmented task, trained by the driver's ``cycle.train_cycle``; saves the
target's starting and trained variables (see test_experiment.py: the same on 1 and 2 devices, and
on 1 and 2 processes).

    python tests/augmented_worker.py TASK OUT.npz [PORT PROCESS_ID]

TASK: ``cifar_shaped`` (32×32×3 random images, a small 2-D CNN, crop and flip) or ``pose`` (the
pose stand-in's smoke config: scale, rotation and flip with joint swaps). With PORT and PROCESS_ID,
one of two processes on localhost; process 0 writes OUT.
"""
import sys

import jax
import numpy as np

from configs import cifar10
from configs import synthetic_pose
from l2r_jax import cycle
from l2r_jax import experiment
from l2r_jax import protocol
from l2r_jax import state as state_lib


def config_for(task: str):
  if task == 'cifar_shaped':
    config = cifar10.get_config('random')
    config.model.name = 'cnn2d'
    config.model.kwargs = dict(widths=(8, 16, 16))
    config.train.batch_size = 32
  else:
    config = synthetic_pose.get_config('smoke')
    config.train.batch_size = 16
    # SGD, not the config's Adam: Adam scales a rounding-level gradient up to a full step
    # (tests/tolerances.py), and 1 and 2 devices differ by rounding.
    config.train.update(optimizer='sgd', lr=0.05, momentum=0.9)
  config.strategies = ('random',)
  config.train.epochs = 2
  config.train.loop = 'step'
  return config


def train_cycle_zero(task: str):
  """The run's (starting, trained) target variables after cycle 0, as flat host arrays."""
  config = config_for(task)
  exp = experiment.make_experiment(config)
  rng_init, rng = jax.random.split(jax.random.PRNGKey(0))
  models = state_lib.initial_train_state(exp, 'random', rng_init)
  labeled = protocol.initial_labeled(0, exp.dataset.pool_size, config.al.initial)
  al = state_lib.RunState('random', 0, -1, labeled, rng, models, [])
  rng_train = experiment._cycle_rngs(al, 0)[0]  # pylint: disable=protected-access
  (trained,), _ = cycle.train_cycle(exp, [al], 0, [rng_train])

  def variables(state):
    return {'params': state.target.params, 'batch_stats': state.target.batch_stats}

  return jax.device_get(variables(models)), jax.device_get(variables(trained))


def flat(start, trained):
  """Both trees as one dict of arrays, keyed 'start…' and 'trained…' by their paths."""
  return {prefix + jax.tree_util.keystr(path): np.asarray(v)
          for prefix, tree in (('start', start), ('trained', trained))
          for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def main(task, out, port=None, process_id=None):
  if port is not None:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(f'localhost:{port}', num_processes=2, process_id=int(process_id))
  variables = flat(*train_cycle_zero(task))
  if jax.process_index() == 0:
    np.savez(out, **variables)


if __name__ == '__main__':
  main(*sys.argv[1:])
