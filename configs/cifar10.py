"""CIFAR-10 with the paper's schedule (Li et al. 2020, Sec. IV-A): ResNet-18, 5 seeds.

    python -m l2r_jax.main --config=configs/cifar10.py --workdir=runs/cifar10

Start with 1,000 labels, +1,000 per cycle from a random subset of 10,000, 10 cycles; batch 64,
SGD 0.1 → 0.01 at epoch 120 of 150, momentum 0.9, weight decay 5e-4; loss module Adam 1e-3;
GRU sorter of length 64. Paper, last cycle: L2R 90.95, entropy 90.64, LL4AL 90.45, core-set
89.47, random 87.72 (% accuracy, mean of 5 runs). A GPU/TPU job: hours per strategy and seed.
It needs a CIFAR-10 reader, which this version does not have yet (``data.name='cifar10'`` is
refused with the list of available datasets).

``:random`` swaps the data for random CIFAR-shaped arrays, to exercise the model and the steps.
"""
from l2r_jax import defaults


def get_config(variant: str = 'paper'):
  c = defaults.get_config()  # the defaults are this paper's CIFAR-10 values
  if variant == 'random':
    c.data = dict(name='random_images', num_samples=256, num_test=64, shape=(32, 32, 3))
    c.al.update(initial=64, budget=64, cycles=2)
    c.al.subset = 128
    c.train.epochs = 1
    c.seeds = (0,)
    c.quiet = True
  elif variant != 'paper':
    raise ValueError(f"Unknown variant {variant!r}: use 'paper' or 'random'.")
  return c
