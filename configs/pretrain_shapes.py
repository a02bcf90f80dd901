"""The offline stand-ins' ImageNet: a backbone pretrained on the generated shapes task.

    python -m l2r_jax.pretrain --config=configs/pretrain_shapes.py --workdir=runs/shapes

The pose stand-in's backbone (``configs/synthetic_pose.py``: ImageNet stem, one basic block per
stage, 16 to 128 channels; the crowd stand-in's is its first three stages) as a ten-way classifier
of generated shapes (``l2r_jax/data/shapes.py``): 20,000 training images, 2,000 held out, 64×64;
each batch randomly rotated, reflected and shifted (a shape keeps its class); AdamW 2e-3 with a
cosine decay, weight decay 1e-4, batch 128, 12 epochs (1,872 steps): 81% validation accuracy
(chance 10%), 12 minutes on 2 CPU cores shared with another job. The shipped ``l2r_jax/models/pretrained_weights/synthetic_shapes`` is
this command's export (its ``backbone.json`` records the run); ``configs/synthetic_pose.py:pretrained``
and ``configs/synthetic_crowd.py:pretrained`` start from it. ``:smoke`` runs in seconds, for tests.

``:keypoints`` trains the same backbone on a localisation task of the same images instead: under
SimpleBaseline's head as ``configs/synthetic_pose.py:paper_regime`` has it (two ×2 upsamplings by
resizing and 3×3 convolutions, 32 channels, 16×16 heatmaps), one heatmap of every shape's stroke
ends and corners (1 to 6 per shape, Gaussians of sigma 1 heatmap pixel), mean squared error; the
rest as above. It explains 52 % of the validation heatmaps' variance around zero (1 - MSE / MSE of
the all-zero map: 0.27 after the first epoch, 0.52 after the twelfth), 55 minutes on 2 CPU cores
shared with other jobs (Intel Xeon @ 2.80GHz). The features of a task where something must be
found, not only named, in a source with no figure in it. ``:keypoints_smoke`` runs in seconds.

``:figures`` is the same localisation task on the pose stand-in's own figures (``source='figures'``:
20,000 and 2,000 more rendered from a stream disjoint from the stand-in's pool and test set, every
joint in one heatmap whichever joint it is): the closest source to the pool short of its labels.
With ``--config.epochs=8`` it explains 80 % of the validation heatmaps' variance (71 % after the
first epoch), 820 s on 2 CPU cores shared with another job (Intel Xeon @ 2.80GHz). As the pose
stand-in's starting backbone it does no better than the shapes classifier's (docs/results.md,
"Calibrating the stand-ins"). ``:figures_smoke`` runs in seconds.
"""
import ml_collections


def get_config(variant: str = 'default') -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_train = 20000
  c.num_val = 2000
  c.image_size = 64
  c.model = ml_collections.ConfigDict(dict(stage_sizes=(1, 1, 1, 1), block='basic', width=16,
                                           stem='imagenet'))
  c.batch_size = 128
  c.epochs = 12
  c.lr = 2e-3
  c.weight_decay = 1e-4
  c.source = 'shapes'
  c.source_task = 'classification'
  if variant.startswith('figures'):
    # The localisation task on the pose stand-in's figures, from their own stream.
    c.source = 'figures'
    variant = 'keypoints' + variant[len('figures'):]
  if variant.startswith('keypoints'):
    # SimpleBaseline's head as the pose stand-in's ``:paper_regime`` has it, at 16×16.
    c.source_task = 'keypoints'
    c.head = ml_collections.ConfigDict(dict(stage_strides=(1, 2, 2, 1), num_deconv=2,
                                            deconv_width=32, upsample='resize', sigma=1.0))
    variant = variant[len('keypoints'):].strip('_') or 'default'
  if variant == 'smoke':
    c.update(num_train=64, num_val=32, image_size=32, batch_size=32, epochs=2)
  elif variant != 'default':
    raise ValueError(f"Unknown variant {variant!r}: use 'default', 'smoke', 'keypoints', "
                     "'keypoints_smoke', 'figures' or 'figures_smoke'.")
  return c
