"""Crowd counting on ShanghaiTech Part B with the paper's schedule (Li et al. 2020, Sec. IV-D).

    python -m l2r_jax.main --config=configs/shanghaitech.py --workdir=runs/shanghaitech

ShanghaiTech needs a manual download: without it this prints where to put which files and exits.
``--config.data.synthetic=True`` runs the same experiment on the synthetic crowd stand-in at SHHB's
sizes (400 / 316 images of 768×1024), generated on demand.

The C^3 framework's ResNet-50 counter (through layer3 at stride 8, 1×1 decoder, ×8 upsampling; a
full-resolution density map, Gaussian heads, targets ×100), its backbone starting from
torchvision's ImageNet ResNet-50 (as C^3's; downloaded on first use, or put where the message
says). The target and the loss modules: Adam 1e-5 for 100 epochs (the paper's; C^3 adds weight
decay 1e-4 and a ×0.995 decay per epoch, which the paper does not state), batch 4, 576×768 random
crops and flips. Inputs normalised with ImageNet's mean and std, the weights' own (C^3 uses Part
B's, ``--config.data.normalize=shhb``). The listwise loss ranks lists of 4 with the GRU sorter, as
the paper. LL4AL with its MPII setting (no crowd experiment in LL4AL): loss weight 1e-4, the
ranking loss reaching the backbone for the first 60% of training. 20 labels, +20 per cycle from the
whole pool, up to 100; MAE of the counts. Paper, last cycle (mean of 5 runs): L2R 10.43, LL4AL
10.73, core-set 10.98, random 11.28, entropy 15.04. ``--config.model.pretrained=None`` starts from
random weights.
"""
import ml_collections

from l2r_jax import defaults


def get_config():
  c = defaults.get_config()
  c.data = dict(name='shanghaitech', synthetic=False,
                density_stride=1, sigma=4.0, density_scale=100.0,
                num_train=400, num_test=316, image_size=(768, 1024), seed=0)
  # Optional paths and caps: typed, so that they can be set on the command line.
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)     # TFDS data dir
  c.data.manual_dir = ml_collections.FieldReference(None, field_type=str)   # the downloaded files
  c.data.max_examples = ml_collections.FieldReference(None, field_type=int)  # per split; None: all
  c.data.normalize = 'imagenet'  # the ImageNet weights' input normalisation (the stand-in too)
  c.eval_batch_size = 8  # bounds inference memory at this resolution
  c.model.name = 'crowd_counter'
  c.model.pretrained = 'imagenet'
  c.augment.update(crop=(576, 768), flip=True)
  c.al.update(initial=20, budget=20, cycles=5)
  c.al.subset = None
  c.train.update(batch_size=4, epochs=100, optimizer='adam', lr=1e-5, momentum=0.0,
                 weight_decay=0.0, lr_boundaries=())
  c.loss_module.update(optimizer='adam', lr=1e-5, sorter='gru', sorter_len=4)
  c.ll4al.update(weight=defaults.LL4AL_WEIGHT['crowd'])
  return c
