"""Pretraining the GRU sorter on synthetic score lists.

    python -m sorter.train --config=configs/sorter.py --config.seq_len=64 --workdir=/tmp/sorter64

Default (CPU): a 2-layer bidirectional GRU (hidden 32) trained 6,000 steps of 512 fresh lists,
about 15 minutes on 2 CPU cores at L = 64; mean Spearman rho >= 0.998 on uniform, normal and
log-normal lists (see benchmarks/results/sorter_quality.md).

``--config=configs/sorter.py:sodeep`` is SoDeep's own recipe, for an accelerator: 6 layers,
batch 256, 400 epochs of 400k lists (625k steps), learning rate halved every 70 epochs.
``--config=configs/sorter.py:smoke`` is a seconds-long run for tests.
"""
import ml_collections


def get_config(variant: str = 'cpu') -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seq_len = 64            # list length the sorter ranks: 64 (classification), 32 (MPII), 4 (SHHB)
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(hidden=32, num_layers=2))
  # 0: train on exact ranks (SoDeep). > 0: on the expected ranks under Gaussian noise of this
  # standard deviation on the robust-standardised scores (sorter.ranking.expected_ranks), which
  # gives a short list's sorter a gradient that teaches (benchmarks/results/sorter_smoothing.md).
  c.target_smoothing = 0.0
  c.batch_size = 512        # lists per step, each drawn fresh
  c.num_steps = 6000
  c.learning_rate = 1e-3    # Adam, as SoDeep
  c.decay_every_steps = 2000  # step decay: lr *= decay_rate every this many steps
  c.decay_rate = 0.5
  c.num_val_lists = 10000   # held-out lists, fixed by the seed; best checkpoint by validation L1
  c.eval_every_steps = 500
  c.log_every_steps = 50

  if variant == 'cpu':
    pass
  elif variant == 'sodeep':
    steps_per_epoch = 400_000 // 256
    c.model.num_layers = 6
    c.batch_size = 256
    c.num_steps = 400 * steps_per_epoch
    c.decay_every_steps = 70 * steps_per_epoch
    c.eval_every_steps = steps_per_epoch
  elif variant == 'smoke':
    c.model = ml_collections.ConfigDict(dict(hidden=8, num_layers=1))
    c.seq_len = 8
    c.batch_size = 32
    c.num_steps = 20
    c.decay_every_steps = 10
    c.num_val_lists = 64
    c.eval_every_steps = 10
    c.log_every_steps = 5
  else:
    raise ValueError(f"Unknown sorter config variant {variant!r}: use 'cpu', 'sodeep' or 'smoke'.")
  return c
