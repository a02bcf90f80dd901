"""Human pose on MPII with the paper's schedule (Li et al. 2020, Sec. IV-C): SimpleBaseline.

    python -m l2r_jax.main --config=configs/mpii.py --workdir=runs/mpii

MPII Human Pose needs a manual download: without it this prints where to put which files and
exits. ``--config.data.synthetic=True`` runs the same experiment on the synthetic stand-in at
MPII's sizes (22,246 / 2,958 poses, 256×256 crops, 64×64 heatmaps), generated on demand.

SimpleBaseline (ResNet-50 + 3 deconvolutions of 256 channels; 256×256 input, 64×64 heatmaps,
Gaussian targets of sigma 2), its backbone starting from torchvision's ImageNet ResNet-50 (the
weights SimpleBaseline loads, resnet50-19c8e357.pth; downloaded on first use, or put where the
message says) and its inputs normalised with ImageNet's mean and std, as SimpleBaseline's. Trained
with SimpleBaseline's default optimiser: Adam 1e-3 for 140 epochs (its official config divides the
rate by 10 at epochs 90 and 120; the paper states no decay), batch 32, scale ±25%, rotation ±30°
and flip augmentation. Loss modules: SGD 5e-2 → 5e-3 at epoch 110 (the paper's; momentum 0.9 and
weight decay 5e-4 are not stated there, they are its CIFAR-10 values); GRU sorter of length 32;
features from before the deconvolutions. LL4AL as its authors ran it on MPII: loss weight 1e-4,
the ranking loss reaching the backbone for the first 60% of training (epochs 0-84); its module on
every ResNet stage (LL4AL used a stacked hourglass). 200 labels, +200 per cycle from a random subset
of 5,000, up to 1,000; PCKh@0.5. Paper, last cycle (mean of 5 runs): L2R 69.37, core-set 68.53,
LL4AL 68.27, random 67.41, entropy 67.08. ``--config.model.pretrained=None`` starts from random
weights.
"""
import ml_collections

from l2r_jax import defaults


def get_config():
  c = defaults.get_config()
  c.data = dict(name='mpii', synthetic=False, image_size=256, heatmap_size=64, sigma=2.0,
                num_train=22246, num_test=2958, seed=0)  # the last three: the synthetic stand-in
  # Optional paths and caps: typed, so that they can be set on the command line.
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)     # TFDS data dir
  c.data.manual_dir = ml_collections.FieldReference(None, field_type=str)   # the downloaded files
  c.data.max_examples = ml_collections.FieldReference(None, field_type=int)  # per split; None: all
  c.data.normalize = 'imagenet'  # the ImageNet weights' input normalisation (the stand-in too)
  c.eval_batch_size = 64  # bounds inference memory at this resolution
  c.model.name = 'simple_baseline'
  c.model.pretrained = 'imagenet'
  c.augment.update(scale=0.25, rotation=30.0, flip=True)
  c.al.update(initial=200, budget=200, cycles=5)
  c.al.subset = 5000
  c.train.update(batch_size=32, epochs=140, optimizer='adam', lr=1e-3, momentum=0.0,
                 weight_decay=0.0, lr_boundaries=(90, 120), lr_decay=0.1)
  c.loss_module.update(optimizer='sgd', lr=5e-2, momentum=0.9, weight_decay=5e-4,
                       lr_boundaries=(110,), lr_decay=0.1, sorter='gru', sorter_len=32)
  c.ll4al.update(weight=defaults.LL4AL_WEIGHT['pose'])
  return c
