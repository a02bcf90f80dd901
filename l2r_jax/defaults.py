"""The fields every experiment config has, with the paper's CIFAR-10 values as defaults.

Task configs in ``configs/`` start from :func:`get_config` and override what differs.
"""
import math
from typing import Union

import ml_collections

# Names changed since earlier versions, old -> new: a config section, and the field of the
# checkpointed training state (``train.State``) that holds the same concept. A workdir written under
# the old name resumes (``workdir.check_identity``, ``runs.open_run``); an override or config file
# that uses it is told the new one (``cli``).
RENAMED = {'predictor': 'loss_module'}

# Sections whose fields belong to what they configure (a dataset's loader, a model's constructor,
# a soft sorter), not to this module: a config file sets any field in them.
OPEN_SECTIONS = ('data', 'model.kwargs', 'loss_module.sorter_kwargs')


def renamed_section(given: str, old: str) -> str:
  """The refusal of ``given`` (an override or a config file's field) naming the section ``old``
  by its name before :data:`RENAMED`."""
  return f'{given}: it is now config.{RENAMED[old]}, with the same fields; use that name.'

# The loss module's updates in the first cycle of each of the paper's tasks: steps per epoch on the
# initial labeled set times epochs (MISSION's protocol table).
PAPER_FIRST_CYCLE_LOSS_MODULE_UPDATES = {
    'cifar10': math.ceil(1000 / 64) * 150,     # 2,400
    'celeba': math.ceil(100 / 64) * 100,       # 200
    'mpii': math.ceil(200 / 32) * 140,         # 980
    'shanghaitech': math.ceil(20 / 4) * 100,   # 500
}


# LL4AL (Yoo & Kweon 2019) as its authors ran it, per task. The weight of its ranking loss in the
# target's objective: 1 for classification (its CIFAR-10 experiment; `WEIGHT` in the reference
# code, Mephisto405/Learning-Loss-for-Active-Learning config.py); 1e-4 for human pose (its MPII
# experiment, Sec. 4.3), where heatmap losses are of order 1e-3 and a margin loss of order 1 at
# weight 1 would train the backbone on the ranking loss alone. LL4AL has no crowd experiment: crowd
# counting takes pose's weight, the other dense regression, with density-map losses as small.
LL4AL_WEIGHT = {'classification': 1.0, 'pose': 1e-4, 'crowd': 1e-4}
# LL4AL's code lets the ranking loss reach the target through epoch 120 of 200 (`epoch > 120`
# detaches), 60% of training; its pose setting 75 of 125 epochs, 60% too.
LL4AL_ATTACHED_FRACTION = 0.6


def ll4al_detach_epoch(epochs: Union[int, ml_collections.FieldReference]
                       ) -> Union[int, ml_collections.FieldReference]:
  """``config.ll4al.detach_epoch`` for ``epochs`` per cycle: LL4AL's 60% (120 of 200). Given
  ``config.train.get_ref('epochs')``, a reference that follows the epochs as they are overridden
  (``--config.train.epochs=40`` detaches at 24), until the detach epoch is set itself."""
  if isinstance(epochs, ml_collections.FieldReference):
    return (epochs * LL4AL_ATTACHED_FRACTION).to_int()
  return int(LL4AL_ATTACHED_FRACTION * epochs)


def loss_module_updates_per_step(paper_task: str, initial: int, batch_size: int,
                                 epochs: int) -> int:
  """``loss_module.updates_per_step`` that gives a first cycle of ``initial`` labels (batches of
  ``batch_size``, ``epochs`` epochs) as many loss-module updates as the paper's first cycle on
  ``paper_task``: a small offline stand-in has far fewer steps per cycle than the task it stands
  in for, too few for the loss module to learn a ranking (benchmarks/results/quality.md).
  At least 1."""
  steps = math.ceil(initial / batch_size) * epochs
  return max(1, round(PAPER_FIRST_CYCLE_LOSS_MODULE_UPDATES[paper_task] / steps))


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.strategies = ('random', 'entropy', 'coreset', 'll4al', 'l2r')
  c.seeds = (0, 1, 2, 3, 4)
  c.quiet = False                   # hide the per-epoch progress bar
  # Train the seeds of a strategy together as one vmapped program (the results of running them
  # one by one, up to rounding). It saves a dispatch per step and seed, a gain where dispatch
  # dominates (small models on a GPU or TPU); on a CPU the vmapped convolutions are slower
  # (benchmarks/results/speed.md, case (e)).
  c.vmap_seeds = False
  c.eval_batch_size = 512           # samples per forward pass when scoring the pool and testing
  c.data = ml_collections.ConfigDict(dict(name='cifar10'))
  # dropout: the rate of the dropout before the classifier's head (cnn1d, cnn2d, resnet18), off
  # at 0; BALD and BatchBALD need it above 0 (their Monte-Carlo passes).
  c.model = ml_collections.ConfigDict(dict(name='resnet18', kwargs={}, dropout=0.0))
  # Where the target's ResNet backbone starts: None (random), 'imagenet' (torchvision's
  # weights), a shipped backbone's name or a file (l2r_jax/models/pretrained.py).
  c.model.pretrained = ml_collections.FieldReference(None, field_type=str)
  # On-device training augmentation (l2r_jax.augment): empty for none; task configs fill it.
  c.augment = ml_collections.ConfigDict()
  c.al = ml_collections.ConfigDict(dict(
      initial=1000,                 # labeled samples before the first cycle
      budget=1000,                  # samples queried per cycle
      cycles=10,                    # cycles evaluated, the first on the initial set
      subset=10000,                 # random unlabeled subset scored per cycle; None: whole pool
  ))
  c.al.subset = ml_collections.FieldReference(10000, field_type=int)
  c.train = ml_collections.ConfigDict(dict(
      batch_size=64, epochs=150, optimizer='sgd', lr=0.1, momentum=0.9, weight_decay=5e-4,
      lr_boundaries=(120,), lr_decay=0.1,
      # How an epoch runs: 'step' dispatches one compiled step at a time, 'scan' runs the epoch
      # as one compiled lax.scan (its batches all on the device), 'auto' is 'step' on CPUs (XLA's
      # CPU runtime runs scanned steps slower) and 'scan' on GPUs and TPUs
      # (experiment.choose_loop).
      loop='auto',
      # How a step gets its batch: 'device' puts each cycle's labeled set on every device and
      # sends a step its row indices; 'host' gathers batches in background threads and copies
      # them to the devices ahead of their steps; 'auto' takes 'device' for a labeled set of at
      # most 1 GiB (l2r_jax/data/pipeline.py).
      feed='auto'))
  c.loss_module = ml_collections.ConfigDict(dict(
      hidden=128,                   # width of the loss module's hidden Dense layer
      optimizer='adam', lr=1e-3, momentum=0.0, weight_decay=0.0, lr_boundaries=(), lr_decay=0.1,
      sorter='gru',                 # 'gru' (pretrained SoDeep sorter) or 'soft_rank'
      sorter_len=64,                # list length the sorter ranks; batch_size is a multiple of it
      # a GRU sorter you pretrained: its export folder (None: the shipped one of sorter_len)
      sorter_path=ml_collections.FieldReference(None, field_type=str),
      sorter_kwargs={},             # soft_rank: {'regularization_strength': ...}
      # Loss-module updates per training step, each on the step's detached features and losses
      # (the target is updated once). 1 in the papers; more for labeled sets so small that a
      # cycle gives the loss module too few updates to learn a ranking.
      updates_per_step=1,
  ))
  c.ll4al = ml_collections.ConfigDict(dict(
      weight=LL4AL_WEIGHT['classification'], margin=1.0,
      # The ranking loss stops reaching the target after this epoch (LL4AL's 60% of training).
      detach_epoch=ll4al_detach_epoch(c.train.get_ref('epochs')),
  ))
  # BALD and BatchBALD (Houlsby et al. 2011, Gal et al. 2017, Kirsch et al. 2019): Monte-Carlo
  # dropout passes over the pool subset (memory: passes x subset x classes), and BatchBALD's
  # sampled label configurations of the batch chosen so far (its joint entropy's estimate).
  c.bald = ml_collections.ConfigDict(dict(passes=20))
  c.batchbald = ml_collections.ConfigDict(dict(passes=20, num_samples=1000))
  c.mc_variance = ml_collections.ConfigDict(dict(passes=20))   # its analogue for dense maps
  # TypiClust (Hacohen et al. 2022) and ProbCover (Yehuda et al. 2022), their authors' defaults:
  # l2r_jax/strategies/typicality.py. embedding: 'target' (the trained target's pooled features)
  # or 'pretrained' (those of the target's pretrained backbone, config.model.pretrained).
  c.typiclust = ml_collections.ConfigDict(dict(max_clusters=500, min_cluster_size=5,
                                               k_neighbours=20, embedding='target'))
  # radius 0: chosen per query, the largest whose balls are `purity` pure for `clusters` k-means
  # clusters (0: the model's number of outputs).
  c.probcover = ml_collections.ConfigDict(dict(radius=0.0, purity=0.95, clusters=0,
                                               embedding='target'))
  # VAAL (Sinha et al. 2019), the official code's defaults (github.com/sinhasam/vaal
  # arguments.py, solver.py); l2r_jax/strategies/vaal.py says where this implementation differs.
  c.vaal = ml_collections.ConfigDict(dict(
      latent_dim=32,                # VAE latent size: 32 for CIFAR-10, 64 for CelebA
      beta=1.0,                     # weight of the KL term
      adversary_weight=1.0,         # weight of the VAE's adversarial term (lambda2)
      lr=5e-4,                      # Adam, for the VAE and for the discriminator
      batch_size=128,               # a labeled and an unlabeled batch of this size per step
      vae_steps=2,                  # VAE updates per iteration
      adversary_steps=1,            # discriminator updates per iteration
      epochs=100,                   # iterations = pool_size * epochs // batch_size ...
      iterations=0,                 # ... unless this is positive
      arch='auto',                  # 'conv' (square images >= 32 px), 'mlp', or 'auto'
      hidden=(512, 256),            # the MLP VAE's widths (inputs too small for the conv VAE)
  ))
  return c
