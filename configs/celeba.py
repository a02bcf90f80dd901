"""CelebA gender with the paper's schedule (Li et al. 2020, Sec. IV-B): ResNet-18, 5 seeds.

    pip install -e '.[prepare]' && tfds build celeb_a --file_format=array_record   # once
    python -m l2r_jax.main --config=configs/celeba.py --workdir=runs/celeba

The ``Male`` attribute of 162,770 training and 19,962 test faces resized to 64×64 and normalised.
Start with 100 labels, +100 per cycle from a random subset of 20,000, 10 cycles; target and loss
modules SGD 0.1 → 0.01 at epoch 80 of 100; otherwise as CIFAR-10 (batch 64, momentum 0.9, weight
decay 5e-4, GRU sorter of length 64, flips; LL4AL's loss with weight 1, reaching the backbone for
the first 60% of training, through epoch 60); VAAL latent size 64. Paper, last cycle (% accuracy,
mean of 5 runs): entropy 92.25, L2R 91.76, LL4AL 91.11, core-set 91.02, random 90.67, VAAL 89.29.
"""
import ml_collections

from l2r_jax import defaults


def get_config():
  c = defaults.get_config()
  c.strategies = ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r')
  c.data = dict(name='celeba', image_size=64, stats_sample=2000)
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)     # TFDS data dir
  c.data.max_examples = ml_collections.FieldReference(None, field_type=int)  # per split
  c.augment.update(flip=True)
  c.al.update(initial=100, budget=100, cycles=10)
  c.al.subset = 20000
  c.train.update(epochs=100, lr_boundaries=(80,))
  c.loss_module.update(optimizer='sgd', lr=0.1, momentum=0.9, weight_decay=5e-4,
                       lr_boundaries=(80,))
  c.vaal.latent_dim = 64
  c.eval_batch_size = 256
  return c
