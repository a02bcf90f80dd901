"""The configs hold the papers' values (MISSION's protocol table, the configs' docstrings)."""
import math

import pytest

from configs import cifar10
from configs import mnist1d
from configs import mpii
from configs import shanghaitech
from configs import synthetic_crowd
from configs import synthetic_pose
from l2r_jax import validation


def test_cifar10_is_the_papers_protocol_with_ll4als_own_settings():
  c = cifar10.get_config()
  assert (c.al.initial, c.al.budget, c.al.cycles, c.al.subset) == (1000, 1000, 10, 10000)
  assert (c.train.optimizer, c.train.lr, c.train.epochs, tuple(c.train.lr_boundaries),
          c.train.momentum, c.train.weight_decay, c.train.batch_size) == (
              'sgd', 0.1, 150, (120,), 0.9, 5e-4, 64)
  assert (c.loss_module.optimizer, c.loss_module.lr, c.loss_module.sorter,
          c.loss_module.sorter_len) == ('adam', 1e-3, 'gru', 64)
  # LL4AL: weight 1 as in its CIFAR-10 code; the ranking loss reaches the target for 60% of
  # training (its code: through epoch 120 of 200).
  assert (c.ll4al.weight, c.ll4al.margin, c.ll4al.detach_epoch) == (1.0, 1.0, 90)
  assert c.model.pretrained is None


def test_lls_detach_epoch_follows_the_epochs_overridden_until_it_is_set_itself():
  """LL4AL detaches at 60% of each cycle's epochs, also with --config.train.epochs overridden
  (config_flags sets the field of a locked config, as here)."""
  c = mnist1d.get_config()
  assert (c.train.epochs, c.ll4al.detach_epoch) == (60, 36)
  c.lock()
  c.train.epochs = 40
  assert c.ll4al.detach_epoch == 24 and c.to_dict()['ll4al']['detach_epoch'] == 24
  c.train.epochs = 200
  assert c.ll4al.detach_epoch == 120
  c.ll4al.detach_epoch = 10   # set itself: it stays
  c.train.epochs = 100
  assert c.ll4al.detach_epoch == 10


def test_mpii_starts_from_imagenet_with_the_papers_schedule():
  c = mpii.get_config()
  assert (c.model.name, c.model.pretrained, c.data.normalize) == (
      'simple_baseline', 'imagenet', 'imagenet')
  assert (c.al.initial, c.al.budget, c.al.cycles, c.al.subset) == (200, 200, 5, 5000)
  assert (c.train.optimizer, c.train.lr, c.train.epochs, c.train.batch_size) == (
      'adam', 1e-3, 140, 32)
  assert (c.loss_module.optimizer, c.loss_module.lr, tuple(c.loss_module.lr_boundaries),
          c.loss_module.sorter, c.loss_module.sorter_len) == ('sgd', 5e-2, (110,), 'gru', 32)
  assert (c.ll4al.weight, c.ll4al.detach_epoch) == (1e-4, 84)  # LL4AL's MPII weight; 60%


def test_shanghaitech_starts_from_imagenet_and_ranks_lists_of_4_with_the_gru_sorter():
  c = shanghaitech.get_config()
  assert (c.model.name, c.model.pretrained, c.data.normalize) == (
      'crowd_counter', 'imagenet', 'imagenet')
  assert (c.al.initial, c.al.budget, c.al.cycles, c.al.subset) == (20, 20, 5, None)
  assert (c.train.optimizer, c.train.lr, c.train.epochs, c.train.batch_size) == (
      'adam', 1e-5, 100, 4)
  # The paper: "the target model and loss prediction module are trained ... Adam ... 1e-5".
  assert (c.loss_module.optimizer, c.loss_module.lr, c.loss_module.sorter,
          c.loss_module.sorter_len) == ('adam', 1e-5, 'gru', 4)
  assert (c.ll4al.weight, c.ll4al.detach_epoch) == (1e-4, 60)


@pytest.mark.parametrize('module', [synthetic_pose, synthetic_crowd])
def test_the_stand_ins_two_regimes_differ_only_in_the_initialisation(module):
  default, warm = module.get_config().to_dict(), module.get_config('pretrained').to_dict()
  assert default['model'].pop('pretrained') is None
  assert warm['model'].pop('pretrained') == 'synthetic_shapes'
  assert default == warm
  assert module.get_config().ll4al.weight == 1e-4
  assert module.get_config().loss_module.sorter == 'gru'
  with pytest.raises(ValueError, match='pretrained_smoke'):
    module.get_config('bogus')
  # 'mc_dropout' in a variant's name adds dropout 0.1 and nothing else.
  for variant, with_dropout in [('default', 'mc_dropout'), ('pretrained', 'pretrained_mc_dropout'),
                                ('pretrained_smoke', 'pretrained_mc_dropout_smoke')]:
    plain, dropped = module.get_config(variant).to_dict(), module.get_config(with_dropout).to_dict()
    assert (plain['model'].pop('dropout'), dropped['model'].pop('dropout')) == (0.0, 0.1)
    assert plain == dropped



@pytest.mark.parametrize('module', [synthetic_pose, synthetic_crowd])
def test_the_paper_regime_variants_keep_the_papers_protocol_in_proportion(module):
  for variant in ('paper_regime', 'paper_regime_smoke', 'paper_regime_mc_dropout'):
    c = module.get_config(variant)
    validation.check_config(c)
    assert c.al.initial == c.al.budget and c.model.pretrained == 'synthetic_shapes'
    if module is synthetic_pose:
      # The heatmaps are what the model outputs: a stride-4 stem, the stages, the deconvolutions.
      stride = 4 * math.prod(c.model.kwargs.stage_strides) // 2**c.model.kwargs.num_deconv
      assert c.data.image_size // stride == c.data.heatmap_size
    if variant == 'paper_regime_smoke':
      continue
    final = c.al.initial + (c.al.cycles - 1) * c.al.budget
    if module is synthetic_pose:  # MPII: a subset of 25 budgets, drawn from what is unlabeled
      assert c.al.subset == 25 * c.al.budget
      assert c.data.num_train - (final - c.al.budget) >= c.al.subset
    else:  # ShanghaiTech-B: the whole pool scored, a quarter of it labelled in the end
      assert c.al.subset is None and 4 * final == c.data.num_train
  assert module.get_config('paper_regime').al.cycles == 5
  assert module.get_config('paper_regime_mc_dropout').model.dropout == 0.1
  with pytest.raises(ValueError, match='paper_regime_smoke'):
    module.get_config('paper_regime_bogus')
