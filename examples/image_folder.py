r"""A folder of your own images, labeled in rounds: a small CNN and a schedule for tens to hundreds
of labels.

    python -m l2r_jax.label query  --config=examples/image_folder.py --config.data.root=MY_IMAGES --workdir=runs/mine
    python -m l2r_jax.label answer --config=examples/image_folder.py --config.data.root=MY_IMAGES --workdir=runs/mine --answers=runs/mine/query/query.csv

``MY_IMAGES`` holds ``labeled/<class>/`` (may be empty), ``unlabeled/`` and optionally
``test/<class>/`` (docs/your_data.md). Images are read at 32x32 RGB (``--config.data.image_size``
for more detail, at a cost), normalised by the pool's statistics; files that cannot be read are
refused at load, listed (``--config.data.skip_unreadable=True`` leaves them out instead). The
target is the package's ``cnn2d`` widened to three pooled 3x3 blocks (32, 64, 128 channels);
each round trains it 30 epochs at batch 32 from the weights of the round before (SGD 0.05,
momentum 0.9), and the L2R-AL loss module ranks lists of 32 with the shipped sorter, 20 updates
per step. Each query asks 20 of the whole unlabeled pool (with no label known yet, 20 at
random). ``benchmarks/labeling_round.py`` times a round and compares its accuracy with the
paper's CIFAR-10 schedule on ResNet-18 (the package's defaults).

``python examples/digits_folder.py DIR`` writes such a folder from scikit-learn's 1,797 digits
(32x32 PNGs: 20 labeled, 1,280 unlabeled, 497 test) to try it on. ``:smoke``: a seconds-long
round.

``:pose`` and ``:crowd``: pictures under ``MY_IMAGES/unlabeled/`` whose joints (MPII's 16 by
default: ``--config.data.joints``) or heads are marked on the labeling page
(``python -m l2r_jax.label serve``), in Label Studio or in a file, at 64x64: the pose stand-in's
SimpleBaseline (heatmaps of 16x16, flips that swap left and right) and the crowd stand-in's C^3
counter (density maps of 8x8), from random init, with their schedules (``configs/synthetic_pose.py``,
``configs/synthetic_crowd.py``); no test split, so rounds are not scored: the stopping signals are
the learner's. ``:pose_smoke``, ``:crowd_smoke``: seconds-long rounds.
"""
import ml_collections

from l2r_jax import defaults


def get_config(variant: str = 'default') -> ml_collections.ConfigDict:
  c = defaults.get_config()
  c.seeds = (0,)
  c.strategies = ('l2r',)
  c.data = ml_collections.ConfigDict(dict(name='image_folder', image_size=(32, 32), channels=3,
                                          normalize='train_statistics', skip_unreadable=False))
  c.data.root = ml_collections.FieldReference(None, field_type=str)
  # The classes in their order (--config.data.classes="('cat','dog')"); None: the class folders'.
  c.data.classes = ml_collections.FieldReference(None, field_type=tuple)
  c.model.name = 'cnn2d'
  c.model.kwargs = dict(widths=(32, 64, 128), pool_after=(True, True, True))
  c.al.update(initial=20, budget=20)
  c.al.subset = None
  c.train.update(batch_size=32, epochs=30, lr=0.05, lr_boundaries=(), weight_decay=5e-4)
  c.loss_module.sorter_len = 32
  # 20 loss-module updates per step: a round at 100 labels (4 steps an epoch) gives the module
  # the 2,400 updates of the paper's first CIFAR-10 cycle (l2r_jax/defaults.py), at a quarter of
  # the cost of reaching that count at 20 labels already (80 per step).
  c.loss_module.updates_per_step = 20
  c.eval_batch_size = 256
  task, _, size = variant.partition('_')
  if task in ('pose', 'crowd') and size in ('', 'smoke'):
    return _to_mark(c, task, smoke=bool(size))
  if variant == 'smoke':
    c.train.update(epochs=2)
    c.quiet = True
  elif variant != 'default':
    raise ValueError(f"Unknown variant {variant!r}: use 'default', 'smoke', 'pose', 'crowd', "
                     "'pose_smoke' or 'crowd_smoke'.")
  return c


def _to_mark(c: ml_collections.ConfigDict, task: str, smoke: bool) -> ml_collections.ConfigDict:
  """A folder whose pictures' joints or heads are marked: the stand-in's model and schedule."""
  c.data.update(task=task, image_size=(64, 64), sigma=1.0)
  c.model.name = 'simple_baseline' if task == 'pose' else 'crowd_counter'
  if task == 'pose':
    c.data.heatmap_stride = 4
    c.model.kwargs = dict(stage_sizes=(1, 1, 1, 1), block='basic', width=16, stem='imagenet',
                          stage_strides=(1, 2, 2, 1), num_deconv=2, deconv_width=32)
    c.augment.update(scale=0.25, rotation=30.0, flip=True)
    c.train.update(batch_size=32, epochs=20, optimizer='adam', lr=3e-3, momentum=0.0,
                   weight_decay=0.0, lr_boundaries=())
    c.loss_module.update(optimizer='sgd', lr=5e-2, momentum=0.9, weight_decay=5e-4, sorter_len=32)
    c.ll4al.weight = defaults.LL4AL_WEIGHT['pose']
    c.al.update(initial=32, budget=32)
  else:
    c.data.update(density_stride=8, density_scale=100.0)
    c.model.kwargs = dict(stage_sizes=(1, 1, 1), block='basic', width=16, stem='imagenet',
                          stage_strides=(1, 1, 2), decoder_width=64, upsample=1)
    c.augment.update(crop=(48, 48), flip=True)
    c.train.update(batch_size=4, epochs=50, optimizer='adam', lr=1e-3, momentum=0.0,
                   weight_decay=0.0, lr_boundaries=())
    c.loss_module.sorter_len = 4
    c.ll4al.weight = defaults.LL4AL_WEIGHT['crowd']
    c.al.update(initial=8, budget=8)
  c.loss_module.updates_per_step = 1
  if smoke:
    c.data.image_size = (32, 32)
    if task == 'crowd':
      c.augment.crop = (24, 24)
    c.model.kwargs.update(width=8)
    c.train.epochs = 1
    c.al.update(initial=4, budget=4)
    c.train.batch_size = 4
    c.loss_module.sorter_len = 4
    c.quiet = True
  return c
