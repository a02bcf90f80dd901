"""Active learning on scikit-learn's 8x8 digits (offline): all six strategies, three seeds.

    python -m l2r_jax.main --config=configs/digits.py --workdir=runs/digits

A small 2-D CNN on a pool of 1,300 images, 497 test; 64 labels at the start, +64 per cycle for
6 cycles, chosen from a random subset of 640. VAAL trains 500 iterations per cycle (the official
count, 100 epochs of the pool, would be 1,015). ``:smoke`` is a seconds-long run of every strategy.
"""
from l2r_jax import defaults


def get_config(variant: str = 'default'):
  c = defaults.get_config()
  c.seeds = (0, 1, 2)
  c.data = dict(name='digits', seed=0, num_test=497)
  c.model.name = 'cnn2d'
  c.strategies = ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r')
  c.vaal.iterations = 500
  c.al.update(initial=64, budget=64, cycles=6)
  c.al.subset = 640
  c.train.update(batch_size=64, epochs=60, lr=0.05, lr_boundaries=(45,))
  # The loss modules' updates in cycle 0 as in the paper's CIFAR-10 protocol, 2,400: 1 step per
  # epoch here, so 40 updates per step (LL4AL's module too).
  c.loss_module.updates_per_step = defaults.loss_module_updates_per_step(
      'cifar10', c.al.initial, c.train.batch_size, c.train.epochs)
  if variant == 'smoke':
    c.seeds = (0,)
    c.vaal.update(iterations=20, batch_size=32)
    c.al.update(initial=64, budget=32, cycles=2)
    c.al.subset = 128
    c.train.update(epochs=2, lr_boundaries=())
    c.quiet = True
  elif variant != 'default':
    raise ValueError(f"Unknown variant {variant!r}: use 'default' or 'smoke'.")
  return c
