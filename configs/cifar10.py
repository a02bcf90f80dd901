"""CIFAR-10 with the paper's schedule (Li et al. 2020, Sec. IV-A): ResNet-18, 5 seeds.

    pip install -e '.[prepare]' && tfds build cifar10 --file_format=array_record   # once
    python -m l2r_jax.main --config=configs/cifar10.py --workdir=runs/cifar10

Start with 1,000 labels, +1,000 per cycle from a random subset of 10,000, 10 cycles; batch 64,
SGD 0.1 → 0.01 at epoch 120 of 150, momentum 0.9, weight decay 5e-4; loss modules (L2R-AL's and
LL4AL's, as the paper) Adam 1e-3 (LL4AL's own code trains its module with the target's SGD);
GRU sorter of length 64; LL4AL's ranking loss with weight 1 reaching the backbone for the first 60%
of training (through epoch 90; its code: through 120 of 200, the paper does not say); random 32×32 crops of the image zero-padded to 36×36 and flips; per-channel
normalisation with the training set's statistics. VAAL with latent size 32. Paper, last cycle:
L2R 90.95, entropy 90.64, LL4AL 90.45, core-set 89.47, random 87.72 (% accuracy, mean of 5 runs).
A GPU/TPU job: hours per strategy and seed.

``:random`` swaps the data for random CIFAR-shaped arrays, to exercise the model and the steps.
"""
import ml_collections

from l2r_jax import defaults


def get_config(variant: str = 'paper'):
  c = defaults.get_config()  # the defaults are this paper's CIFAR-10 values
  c.strategies = ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r')
  c.data = dict(name='cifar10')
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)     # TFDS data dir
  c.data.max_examples = ml_collections.FieldReference(None, field_type=int)  # per split
  c.augment.update(pad=2, flip=True)
  c.vaal.latent_dim = 32
  if variant == 'random':
    c.strategies = ('random', 'entropy', 'coreset', 'll4al', 'l2r')
    c.data = dict(name='random_images', num_samples=256, num_test=64, shape=(32, 32, 3))
    c.al.update(initial=64, budget=64, cycles=2)
    c.al.subset = 128
    c.train.update(epochs=1, lr_boundaries=())
    c.seeds = (0,)
    c.quiet = True
  elif variant != 'paper':
    raise ValueError(f"Unknown variant {variant!r}: use 'paper' or 'random'.")
  return c
