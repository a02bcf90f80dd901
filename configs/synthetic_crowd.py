"""Active learning for crowd counting on the synthetic stand-in for ShanghaiTech B (offline).

    python -m l2r_jax.main --config=configs/synthetic_crowd.py --workdir=runs/synthetic_crowd

64×64 scenes with a few to about 100 person-like figures under perspective, distractors and
textured backgrounds; density maps at stride 8 (8×8, Gaussian heads, targets ×100); a pool of
400 (SHHB's size), 200 test. The C^3 counter at CPU scale: ImageNet stem and one basic block per
stage for three stages (16 → 64 channels, output stride 8 as C^3's) and the 1×1 decoder. SHHB's protocol: 20
labels, +20 per cycle from the whole pool, up to 100; batch 4; lists of 4 ranked by the GRU
sorter, as the paper; random crops of 48×48 and flips; 100 epochs per cycle, Adam 1e-3 (SHHB's 1e-5
is for a ResNet-50 pretrained on ImageNet), ÷10 at epoch 80, the loss modules likewise; LL4AL with
its MPII setting (loss weight 1e-4, reaching the backbone for the first 60% of each cycle, epochs
0-60); MAE; three seeds.

``:pretrained`` starts the backbone from the first three stages of ``synthetic_shapes``, pretrained
on generated shapes (``configs/pretrain_shapes.py``), as C^3 starts from ImageNet's ResNet-50;
everything else is the same, so the two variants differ only in the initialisation. ``:smoke`` is a
seconds-long run of every strategy, for tests; ``:pretrained_smoke`` the same from the pretrained
backbone.

``:paper_regime`` is meant to put the stand-in at ShanghaiTech-B's operating point, set with
``random`` alone (docs/results.md, "Calibrating the stand-ins at the paper's operating point"): the
same scenes rendered at 256×256 (32×32 density maps, random crops of 192×192), the backbone from
``synthetic_shapes``, the protocol above unchanged. Counts are those of the 64×64 scenes (test mean
29.9); larger renders make the far heads a few pixels wide instead of a fraction of one, and
random's MAE falls from 6.68 ± 0.53 (22 % of the mean count) at 20 labels to 3.72 ± 0.39 (12.4 %;
SHHB: 11.28 on about 123, 9 %) at 100 (seeds 0-2; Intel Xeon, 2 cores, 17-35 minutes per seed when
shared): just above the 7-11 % the comparison asks for. 320×320 renders (crops of 240×240) read
5.89 ± 0.42 and 3.60 ± 0.67 (12.0 %): lower, by under a third of a seed's spread, with a first
cycle 1.6 times the last instead of 1.8 (the target: about 2) at 1.56 times the arithmetic; 150
epochs a cycle read no lower (3.57 at 100 labels on seed 0). So the setting stays 256×256, fixed
before any other strategy ran on it. The comparison's five seeds of ``random`` read 6.99 ± 0.61
and 4.19 ± 0.68 (14.0 % of the mean count): above the band, its seeds 3 and 4 harder draws.
``:paper_regime_smoke`` is its seconds-long run.

``mc_dropout`` in a variant's name (``:mc_dropout``, ``:pretrained_mc_dropout``,
``:pretrained_mc_dropout_smoke``, ...) adds dropout 0.1 before the last 1×1 convolution, for every
strategy: what ``mc_variance`` needs.
"""
from l2r_jax import defaults


def get_config(variant: str = 'default'):
  c = defaults.get_config()
  c.seeds = (0, 1, 2)
  c.quiet = True
  c.data = dict(name='synthetic_crowd', num_train=400, num_test=200, seed=0, image_size=64,
                density_stride=8, sigma=1.0, density_scale=100.0)
  c.model.name = 'crowd_counter'
  c.model.kwargs = dict(stage_sizes=(1, 1, 1), block='basic', width=16, stem='imagenet',
                        stage_strides=(1, 1, 2), decoder_width=64, upsample=1)
  c.augment.update(crop=(48, 48), flip=True)
  c.al.update(initial=20, budget=20, cycles=5)
  c.al.subset = None
  c.train.update(batch_size=4, epochs=100, optimizer='adam', lr=1e-3, momentum=0.0,
                 weight_decay=0.0, lr_boundaries=(80,), lr_decay=0.1)
  c.loss_module.update(lr_boundaries=(80,), sorter='gru', sorter_len=4)
  c.ll4al.update(weight=defaults.LL4AL_WEIGHT['crowd'])
  # The loss modules' updates in cycle 0 as in the paper's ShanghaiTech-B protocol, 500: 5 steps
  # per epoch for 100 epochs here too, so 1 update per step.
  c.loss_module.updates_per_step = defaults.loss_module_updates_per_step(
      'shanghaitech', c.al.initial, c.train.batch_size, c.train.epochs)
  if 'mc_dropout' in variant:
    c.model.dropout = 0.1
    variant = variant.replace('mc_dropout', '').replace('__', '_').strip('_') or 'default'
  if variant in ('paper_regime', 'paper_regime_smoke'):
    return _paper_regime(c, smoke=variant == 'paper_regime_smoke')
  if variant in ('smoke', 'pretrained_smoke'):
    c.seeds = (0,)
    c.data.update(num_train=48, num_test=16, image_size=32)
    c.model.kwargs.update(width=8, decoder_width=16)
    c.augment.crop = (24, 24)
    c.al.update(initial=8, budget=8, cycles=2)
    c.train.update(epochs=1, lr_boundaries=())
    c.loss_module.update(lr_boundaries=())
  elif variant not in ('default', 'pretrained'):
    raise ValueError(f"Unknown variant {variant!r}: use 'default', 'pretrained', 'smoke', "
                     "'pretrained_smoke', 'paper_regime' or 'paper_regime_smoke', each with "
                     "'mc_dropout' or without.")
  if variant.startswith('pretrained'):
    c.model.pretrained = 'synthetic_shapes'
    c.model.kwargs.width = 16  # the shipped backbone's
  return c


def _paper_regime(c, *, smoke: bool = False):
  """``:paper_regime``: the stand-in at ShanghaiTech-B's operating point (the module docstring)."""
  c.data.update(image_size=256)
  c.model.pretrained = 'synthetic_shapes'
  c.augment.crop = (192, 192)
  if smoke:
    c.seeds = (0,)
    c.data.update(num_train=48, num_test=16, image_size=32)
    c.augment.crop = (24, 24)
    c.al.update(initial=8, budget=8, cycles=2)
    c.train.update(epochs=1, lr_boundaries=())
    c.loss_module.update(lr_boundaries=())
  c.loss_module.updates_per_step = defaults.loss_module_updates_per_step(
      'shanghaitech', c.al.initial, c.train.batch_size, c.train.epochs)
  return c
