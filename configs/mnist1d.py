"""Active learning on MNIST-1D (generated offline): all six strategies, one seed.

    python -m l2r_jax.main --config=configs/mnist1d.py --workdir=runs/mnist1d

A 1-D CNN (3 conv blocks of 32 channels) on a pool of 4,000 sequences, 1,000 test; 100 labels at
the start, +100 per cycle for 8 cycles, each chosen from a random subset of 2,000. VAAL trains
500 iterations per cycle (the official count, 100 epochs of the pool, would be 3,125: minutes per
cycle on a CPU).
``--config.seeds='(0,1,2,3,4)'`` for the paper's five runs; ``configs/mnist1d.py:mc_dropout`` trains
every strategy's model with dropout 0.1 before its head (what BALD and BatchBALD need).
``:quick``: three cycles (100 to 300 labels) of 30 epochs and 200 VAAL iterations, for a first
look (the quickstart notebook's); ``:smoke``: seconds, for tests (its 2 epochs learn next to
nothing).
"""
from l2r_jax import defaults


def get_config(variant: str = 'default'):
  c = defaults.get_config()
  c.seeds = (0,)
  c.data = dict(name='mnist1d', num_samples=5000, seed=42)
  c.model.name = 'cnn1d'
  c.strategies = ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r')
  c.vaal.iterations = 500
  c.al.update(initial=100, budget=100, cycles=8)
  c.al.subset = 2000
  c.train.update(batch_size=64, epochs=60, lr=0.05, lr_boundaries=(45,))
  # The loss modules' updates in cycle 0 as in the paper's CIFAR-10 protocol, 2,400: 2 steps per
  # epoch here, so 20 updates per step (LL4AL's module too).
  c.loss_module.updates_per_step = defaults.loss_module_updates_per_step(
      'cifar10', c.al.initial, c.train.batch_size, c.train.epochs)
  if variant in ('mc_dropout', 'mc_dropout_smoke'):
    # Dropout 0.1 before the classifier's head, for every strategy: what BALD and BatchBALD need.
    c.model.dropout = 0.1
    variant = variant.replace('mc_dropout', '').strip('_') or 'default'
  if variant == 'smoke':  # seconds: a run of every strategy for tests
    c.vaal.update(iterations=20, batch_size=32)
    c.data.num_samples = 600
    c.al.update(initial=64, budget=32, cycles=2)
    c.al.subset = 200
    c.train.update(epochs=2, lr_boundaries=())
    c.quiet = True
  elif variant == 'quick':  # a minute or two: the first three cycles, half the epochs each
    c.al.cycles = 3
    c.train.update(epochs=30, lr_boundaries=(22,))
    c.vaal.iterations = 200
  elif variant != 'default':
    raise ValueError(f"Unknown variant {variant!r}: use 'default', 'quick', 'smoke', "
                     "'mc_dropout' or 'mc_dropout_smoke'.")
  return c
