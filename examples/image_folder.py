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
  if variant == 'smoke':
    c.train.update(epochs=2)
    c.quiet = True
  elif variant != 'default':
    raise ValueError(f"Unknown variant {variant!r}: use 'default' or 'smoke'.")
  return c
