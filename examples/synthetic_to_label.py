r"""Pose and crowd queries to answer by hand: the synthetic stand-ins, their pool's labels hidden.

    C=examples/synthetic_to_label.py
    python -m l2r_jax.label serve --config=$C:pose  --workdir=runs/pose-labels
    python -m l2r_jax.label serve --config=$C:crowd --workdir=runs/crowd-labels

The pool of ``configs/synthetic_pose.py`` or ``configs/synthetic_crowd.py`` (16-joint figures,
crowds of heads; 64x64 inputs) with every label unknown, and their test splits labeled, so each
round is scored: a person places the joints, or the heads, on the labeling page (or in Label
Studio, ``label query --format=label-studio``), and the learner trains on them. ``:pose_smoke`` and
``:crowd_smoke`` are seconds-long rounds on 32x32 inputs.
"""
import importlib.util
import os

import numpy as np

import l2r_jax
from l2r_jax import data as data_lib
from l2r_jax import defaults

HERE = os.path.dirname(os.path.abspath(__file__))


def load_hidden(data):
  """The stand-in ``data.stand_in`` names, its pool's labels unknown (NaN); for crowds, the
  Gaussian per head the loader draws (``density_sigma``, map pixels), so that placed heads make
  the maps it makes."""
  ds = data_lib.LOADERS[data.stand_in](data)
  params = dict(ds.task_params)
  if ds.task == 'crowd':
    params['density_sigma'] = float(data.get('sigma', 1.0))
  hidden = np.full(np.shape(ds.y_train), np.nan, np.float32)
  return ds._replace(y_train=hidden, task_params=params)


l2r_jax.register_dataset('synthetic_hidden_labels', load_hidden)


def _shipped(name: str, variant: str):
  spec = importlib.util.spec_from_file_location(
      f'configs_{name}', os.path.join(HERE, os.pardir, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def get_config(variant: str = 'pose'):
  task, _, size = variant.partition('_')
  if task not in ('pose', 'crowd') or size not in ('', 'smoke'):
    raise ValueError(f"Unknown variant {variant!r}: use 'pose', 'crowd', 'pose_smoke' or "
                     "'crowd_smoke'.")
  c = _shipped(f'synthetic_{task}', 'smoke' if size else 'default')
  c.data.stand_in = c.data.name
  c.data.name = 'synthetic_hidden_labels'
  c.seeds = (0,)
  c.strategies = ('l2r',)
  c.al.cycles = 1
  if task == 'pose':
    c.data.update(num_train=300 if not size else 96, num_test=100 if not size else 32)
    c.al.update(initial=32, budget=32)
    c.train.epochs = 10 if not size else 1
  else:
    c.data.update(num_train=120 if not size else 48, num_test=40 if not size else 16)
    c.al.update(initial=8, budget=8)
    c.train.epochs = 20 if not size else 1
  c.al.subset = None
  c.train.lr_boundaries = ()
  c.loss_module.lr_boundaries = ()
  return c
