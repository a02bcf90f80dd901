"""Pretrained backbones: torchvision's ResNets converted, checked against torchvision itself."""
import copy
import functools
import hashlib
import io
import os
import shutil
import urllib.error
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torchvision

from l2r_jax import errors
from l2r_jax import models
from l2r_jax import state as state_lib
from l2r_jax import train
from l2r_jax.models import pretrained
from l2r_jax.models import state_dict_files

# torchvision's model and ours, with the ImageNet stem; the Flax stage sizes of each.
ARCHS = {'resnet18': (torchvision.models.resnet18, dict(stage_sizes=(2, 2, 2, 2), block='basic')),
         'resnet50': (torchvision.models.resnet50,
                      dict(stage_sizes=(3, 4, 6, 3), block='bottleneck'))}


@functools.lru_cache(maxsize=None)
def _torch_model(arch):
  """A torchvision ResNet with random weights and BatchNorm statistics of real activations (its
  affine parameters randomised too, so that every BatchNorm tensor's mapping matters)."""
  torch.manual_seed(0)
  net = ARCHS[arch][0]()
  gen = torch.Generator().manual_seed(1)
  for m in net.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
      m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=gen)
      m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=gen)
      m.momentum = None  # the running statistics: the average over the batches below
  net.train()
  with torch.no_grad():
    for _ in range(2):
      net(torch.randn(8, 3, 64, 64, generator=gen))
  return net.eval()


def _torch_stages(net, x_nhwc, dtype=torch.float32):
  """Every stage's output, channels-last, as Features.stages; computed in ``dtype``."""
  net = copy.deepcopy(net).to(dtype)
  x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).to(dtype)
  out = []
  with torch.no_grad():
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
      x = layer(x)
      out.append(x.numpy().transpose(0, 2, 3, 1).astype(np.float64))
  return out


def _saved(tmp_path, arch, name=None):
  path = tmp_path / (name or f'{arch}.pth')
  torch.save(_torch_model(arch).state_dict(), path)
  return str(path)


def _flax_backbone(arch, **kw):
  return models.ResNetBackbone(stem='imagenet', **{**ARCHS[arch][1], **kw})


def _template(module, x):
  return jax.eval_shape(functools.partial(module.init, train=False), jax.random.PRNGKey(0), x)


@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_torchvision_weights_give_torchvisions_features(tmp_path, arch):
  """Every stage's features against torchvision's, computed in float64 so that the reference
  carries no float32 rounding. Ours (float32) must be within 1e-4 of it, or, where float32 cannot
  be that close (ResNet-50's deeper stages: torchvision's own float32 output is 2.6e-4 and
  4.1e-4 away on activations up to 13), within 3x torchvision's own float32 distance: the same
  rounding in another summation order. A wrongly mapped tensor is off by order one."""
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  module = _flax_backbone(arch)
  backbone = pretrained.load(_saved(tmp_path, arch), _template(module, x), width=64,
                             **ARCHS[arch][1])
  assert backbone.normalisation == 'imagenet'
  feats = module.apply({'params': backbone.params, 'batch_stats': backbone.batch_stats}, x,
                       train=False)
  exact = _torch_stages(_torch_model(arch), x, torch.float64)
  theirs = _torch_stages(_torch_model(arch), x, torch.float32)
  assert len(feats.stages) == 4
  for ours, reference, torch32 in zip(feats.stages, exact, theirs):
    assert ours.shape == reference.shape
    error = float(np.abs(np.asarray(ours, np.float64) - reference).max())
    assert error <= max(1e-4, 3 * float(np.abs(torch32 - reference).max()))
    assert error <= 1e-4 * float(np.abs(reference).max())  # relative to the activations' scale
  # Not a vacuous match: the activations are of order one.
  assert float(np.abs(exact[-1]).mean()) > 0.1


def test_a_model_starts_from_the_backbone_and_keeps_its_freshly_initialised_head(tmp_path):
  model = models.CrowdCounter(num_outputs=1)  # ResNet-50 through layer3 at stride 8
  x = jnp.zeros((1, 64, 64, 3))
  backbone = pretrained.load_for_model(_saved(tmp_path, 'resnet50'), model, x)
  tx = optax.sgd(0.1)
  fresh = train.create_state(jax.random.PRNGKey(3), model, tx, x)
  warm = train.create_state(jax.random.PRNGKey(3), model, tx, x, backbone=backbone)
  jax.tree.map(np.testing.assert_array_equal, warm.target.params['backbone'],
               jax.tree.map(np.asarray, backbone.params))
  jax.tree.map(np.testing.assert_array_equal, warm.target.batch_stats['backbone'],
               jax.tree.map(np.asarray, backbone.batch_stats))
  for head in set(fresh.target.params) - {'backbone'}:
    jax.tree.map(np.testing.assert_array_equal, warm.target.params[head],
                 fresh.target.params[head])
  # layer3 at stride 1 (C^3): the same weights as torchvision's layer3, so the same shapes.
  assert warm.target.params['backbone']['Bottleneck_12']['Conv_1']['kernel'].shape == (
      3, 3, 256, 256)


def test_mismatches_are_refused_by_name(tmp_path):
  x = jnp.zeros((1, 64, 64, 3))
  with pytest.raises(ValueError, match=r'Bottleneck_0/Conv_0/kernel: the model needs \(1, 1, 64, '
                     r'64\), layer1.0.conv1.weight gives \(3, 3, 64, 64\)'):
    pretrained.load(_saved(tmp_path, 'resnet18'), _template(_flax_backbone('resnet50'), x),
                    width=64, **ARCHS['resnet50'][1])
  cifar = models.ResNetBackbone(stage_sizes=(2, 2, 2, 2))  # 3x3 stem
  with pytest.raises(ValueError, match=r'max-pooling: --config.model.kwargs="{\'stem\': '
                     r'\'imagenet\'}", or .*\): stem_conv/kernel: the model needs \(3, 3, 3, '
                     r'64\), conv1.weight gives \(7, 7, 3, 64\)'):
    pretrained.load(_saved(tmp_path, 'resnet18'), _template(cifar, x), width=64, block='basic',
                    stage_sizes=(2, 2, 2, 2))
  with pytest.raises(ValueError, match="no ImageNet weights are published for a backbone of "
                     r"basic blocks \(1, 1\), width 16"):
    pretrained.load('imagenet', {}, block='basic', stage_sizes=(1, 1), width=16)
  with pytest.raises(ValueError, match='has no ResNet backbone|has none'):
    pretrained.load_for_model('imagenet', models.CNN1D(), jnp.zeros((1, 40)))


def test_imagenet_weights_come_from_the_cache_or_a_message_that_says_where_to_put_them(
    tmp_path, monkeypatch):
  monkeypatch.setenv('L2R_JAX_WEIGHTS', str(tmp_path / 'cache'))
  monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))

  def offline(url, timeout=None):
    raise urllib.error.URLError('no network')

  monkeypatch.setattr(pretrained.urllib.request, 'urlopen', offline)
  with pytest.raises(errors.WeightsNotFoundError) as e:
    pretrained.imagenet_file('resnet50')
  message = str(e.value)
  assert 'https://download.pytorch.org/models/resnet50-0676ba61.pth' in message
  assert str(tmp_path / 'cache' / 'resnet50-0676ba61.pth') in message and 'no network' in message
  assert not os.listdir(tmp_path / 'cache')  # nothing half-downloaded is left
  # A file in torch hub's cache is found there, under its published name, and its hash checked.
  path = _saved(tmp_path, 'resnet18')
  digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
  monkeypatch.setitem(pretrained.IMAGENET, 'resnet18', (f'resnet18-{digest[:8]}.pth',))
  hub = tmp_path / 'torch' / 'hub' / 'checkpoints'
  hub.mkdir(parents=True)
  os.rename(path, hub / f'resnet18-{digest[:8]}.pth')
  assert pretrained.imagenet_file('resnet18') == str(hub / f'resnet18-{digest[:8]}.pth')
  x = jnp.zeros((1, 64, 64, 3))
  backbone = pretrained.load('imagenet', _template(_flax_backbone('resnet18'), x), width=64,
                             **ARCHS['resnet18'][1])
  assert backbone.source == str(hub / f'resnet18-{digest[:8]}.pth')
  # A damaged file is refused by its hash.
  monkeypatch.setitem(pretrained.IMAGENET, 'resnet18', ('resnet18-00000000.pth',))
  os.rename(hub / f'resnet18-{digest[:8]}.pth', hub / 'resnet18-00000000.pth')
  with pytest.raises(ValueError, match='damaged or not the published file'):
    pretrained.imagenet_file('resnet18')


def test_a_download_is_kept_only_when_its_hash_matches(tmp_path, monkeypatch):
  payload = b'weights'
  digest = hashlib.sha256(payload).hexdigest()
  monkeypatch.setattr(pretrained.urllib.request, 'urlopen',
                      lambda url, timeout=None: io.BytesIO(payload))
  good = tmp_path / f'resnet18-{digest[:8]}.pth'
  pretrained._download('http://x', str(good))
  assert good.read_bytes() == payload
  with pytest.raises(ValueError, match='damaged'):
    pretrained._download('http://x', str(tmp_path / 'resnet50-12345678.pth'))
  assert sorted(os.listdir(tmp_path)) == [good.name]


def test_npz_conversion_and_an_exported_backbone_load_the_same_weights(tmp_path):
  x = jnp.zeros((1, 64, 64, 3))
  template = _template(_flax_backbone('resnet18'), x)
  kw = dict(width=64, **ARCHS['resnet18'][1])
  from_pth = pretrained.load(_saved(tmp_path, 'resnet18'), template, **kw)
  pretrained.main(['', str(tmp_path / 'resnet18.pth'), str(tmp_path / 'r18.npz')])
  from_npz = pretrained.load(str(tmp_path / 'r18.npz'), template, **kw)
  jax.tree.map(np.testing.assert_array_equal, from_pth.params, from_npz.params)
  pretrained.export(str(tmp_path / 'export'), from_pth.params, from_pth.batch_stats, 'imagenet',
                    {'source': 'test'})
  exported = pretrained.load(str(tmp_path / 'export'), template, **kw)
  jax.tree.map(np.testing.assert_array_equal, from_pth.batch_stats, exported.batch_stats)
  assert exported.normalisation == 'imagenet'
  with pytest.raises(ValueError, match=r'does not fit the model: params/BasicBlock_0/BatchNorm_0/bias: '
                     r'the model needs \(32,\), the file has \(64,\)'):
    pretrained.load(str(tmp_path / 'export'), _template(_flax_backbone('resnet18', width=32), x),
                    block='basic', stage_sizes=(2, 2, 2, 2), width=32)


def _imagenet_in_cache(tmp_path, monkeypatch, arch='resnet50'):
  """torchvision-format weights (random) where 'imagenet' looks for them, under a name that
  carries their hash, as the published file's does."""
  monkeypatch.setenv('L2R_JAX_WEIGHTS', str(tmp_path / 'cache'))
  monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
  (tmp_path / 'cache').mkdir(exist_ok=True)
  path = _saved(tmp_path / 'cache', arch, 'weights.pth')
  digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()[:8]
  name = f'{arch}-{digest}.pth'
  os.rename(path, tmp_path / 'cache' / name)
  monkeypatch.setitem(pretrained.IMAGENET, arch, (name,))
  return str(tmp_path / 'cache' / name)


def test_the_paper_pose_config_starts_from_imagenet_weights(tmp_path, monkeypatch):
  from configs import mpii as mpii_config  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  c = mpii_config.get_config()
  c.data.synthetic = True  # the stand-in at MPII's sizes, normalised as ImageNet's weights need
  c.data.update(num_train=1500, num_test=100)  # MPII's crops and heatmaps; fewer poses to draw
  assert c.model.pretrained == 'imagenet' and c.data.normalize == 'imagenet'

  def offline(url, timeout=None):
    raise urllib.error.URLError('no network')

  monkeypatch.setattr(pretrained.urllib.request, 'urlopen', offline)
  monkeypatch.setenv('L2R_JAX_WEIGHTS', str(tmp_path / 'empty'))
  monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
  with pytest.raises(errors.WeightsNotFoundError, match='resnet50-0676ba61.pth'):
    experiment.make_experiment(c)
  path = _imagenet_in_cache(tmp_path, monkeypatch)
  exp = experiment.make_experiment(c)
  assert exp.backbone.source == path and exp.backbone.normalisation == 'imagenet'
  state = state_lib.initial_train_state(exp, 'l2r', jax.random.PRNGKey(0))
  expected = pretrained.from_torchvision(state_dict_files.read_state_dict(path),
                                         {'params': state.target.params['backbone'],
                                          'batch_stats': state.target.batch_stats['backbone']},
                                         (3, 4, 6, 3))
  jax.tree.map(np.testing.assert_array_equal, state.target.params['backbone'], expected[0])
  assert expected[2] == ['fc.bias', 'fc.weight']  # everything but the classifier is used
  # Inputs normalised otherwise are refused before anything trains, by the field to change.
  c.data.normalize = 'synthetic'
  with pytest.raises(ValueError, match=r"expects inputs normalised as 'imagenet'.*"
                     r"--config.data.normalize=imagenet"):
    experiment.make_experiment(c)


def test_shapes_pretraining_is_deterministic_and_feeds_both_stand_ins(tmp_path):
  from configs import pretrain_shapes  # pylint: disable=g-import-not-at-top
  from configs import synthetic_crowd  # pylint: disable=g-import-not-at-top
  from configs import synthetic_pose  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import pretrain  # pylint: disable=g-import-not-at-top
  config = pretrain_shapes.get_config('smoke')
  info = pretrain.pretrain(config, str(tmp_path / 'a'))
  pretrain.pretrain(config, str(tmp_path / 'b'))
  assert len(info['history']) == config.epochs and 0 <= info['val_accuracy'] <= 1
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.WorkdirError, match='holds an exported backbone already'):
    pretrain.pretrain(config, str(tmp_path / 'a'))    # never written over
  too_big = config.copy_and_resolve_references()
  too_big.batch_size = config.num_train + 1
  with pytest.raises(errors.ConfigError, match='is more than config.num_train'):
    pretrain.pretrain(too_big, str(tmp_path / 'c'))
  assert not (tmp_path / 'c').exists()
  exports = [str(tmp_path / d / 'export') for d in 'ab']
  for module, stages in ((synthetic_pose, 4), (synthetic_crowd, 3)):
    c = module.get_config('pretrained_smoke')
    backbones = []
    for export in exports:
      c.model.pretrained = export
      backbones.append(experiment.make_experiment(c).backbone)
    # The same seed, the same weights; the crowd counter takes the first three stages.
    jax.tree.map(np.testing.assert_array_equal, backbones[0].params, backbones[1].params)
    assert len([k for k in backbones[0].params if k.startswith('BasicBlock_')]) == stages
    assert backbones[0].normalisation == 'synthetic'
  # The shipped backbone is such an export, of the full config.
  assert 'synthetic_shapes' in pretrained.shipped()
  c = synthetic_pose.get_config('pretrained_smoke')
  assert experiment.make_experiment(c).backbone.source.endswith('synthetic_shapes')


def test_keypoint_target_by_hand():
  """One keypoint at (x, y) = (10, 20) of a 32×32 image: the channel is 1 there and the Gaussian of
  sigma 4 elsewhere; averaged over 4×4 cells its peak is cell (row 5, column 2); NaN rows add
  nothing."""
  from l2r_jax import pretrain  # pylint: disable=g-import-not-at-top
  keypoints = np.full((1, 3, 2), np.nan, np.float32)
  keypoints[0, 0] = (10.0, 20.0)
  channel = pretrain.keypoint_channel(keypoints, 32, 4.0)
  yy, xx = np.mgrid[:32, :32]
  np.testing.assert_allclose(channel[0, ..., 0],
                             np.exp(-((xx - 10.0)**2 + (yy - 20.0)**2) / 32.0), atol=1e-6)
  target = np.asarray(pretrain.heatmap_target(jnp.asarray(channel), 4))
  np.testing.assert_allclose(target[0], channel[0, ..., 0].reshape(8, 4, 8, 4).mean((1, 3)),
                             atol=1e-6)
  assert np.unravel_index(np.argmax(target[0]), (8, 8)) == (5, 2)


def test_shapes_keypoints_are_each_shapes_ends_and_corners():
  """Per class, the number of distinct stroke ends and corners of its parts, placed as the shape:
  a bar's ends (-0.5, 0) and (0.5, 0) of the unit frame lie ``size`` apart (the stretch acts on y),
  ``size`` in [0.35, 0.8] of the image; a box's corners, mapped linearly, form a parallelogram."""
  from l2r_jax.data import shapes  # pylint: disable=g-import-not-at-top
  expected = {'disc': 1, 'bar': 2, 'cross': 4, 'vee': 3, 'tee': 4, 'box': 4, 'dumbbell': 2,
              'zigzag': 4, 'pair': 2, 'arc': 6}
  data = shapes.make_shapes(300, 0, 32)
  counts = (~np.isnan(data['keypoints'][..., 0])).sum(1)
  for label, name in enumerate(shapes.CLASSES):
    assert set(counts[data['labels'] == label]) == {expected[name]}, name
  bars = data['keypoints'][data['labels'] == shapes.CLASSES.index('bar')]
  length = np.linalg.norm(bars[:, 0] - bars[:, 1], axis=-1)
  assert len(bars) and np.all((length >= 0.35 * 32 - 1e-3) & (length <= 0.8 * 32 + 1e-3))
  boxes = data['keypoints'][data['labels'] == shapes.CLASSES.index('box')]
  np.testing.assert_allclose(boxes[:, 1] - boxes[:, 0], boxes[:, 2] - boxes[:, 3], atol=1e-3)


def test_figures_source_is_the_pose_stand_ins_joints_from_a_stream_of_its_own():
  """``source='figures'``: keypoints are the renderer's joints mapped to input pixels (heatmap
  pixel ``x`` is input pixel ``x * S / heatmap_size``), out-of-frame joints none; the images are
  neither the stand-in's pool nor its test set."""
  from configs import pretrain_shapes  # pylint: disable=g-import-not-at-top
  from l2r_jax import pretrain  # pylint: disable=g-import-not-at-top
  from l2r_jax.data import synthetic_pose  # pylint: disable=g-import-not-at-top
  config = pretrain_shapes.get_config('figures_smoke')
  s = config.image_size
  data = pretrain.source_data(config, 6, 40)
  for i in range(6):
    reference = synthetic_pose.pose_sample(config.seed, pretrain.FIGURES_SPLIT, 40 + i, s, 8)
    xy, inside = reference['joints'][:, :2] * s / 8, reference['joints'][:, 2] > 0
    np.testing.assert_allclose(data['keypoints'][i][inside], xy[inside], atol=1e-4)
    assert np.isnan(data['keypoints'][i][~inside]).all()
    np.testing.assert_array_equal(data['images'][i], reference['image'])
    for split in ('train', 'test'):
      assert not np.allclose(data['images'][i],
                             synthetic_pose.pose_sample(config.seed, split, 40 + i, s)['image'])
  config.source_task = 'classification'
  with pytest.raises(ValueError, match=r"config.source='figures'.*source_task='keypoints'"):
    pretrain.pretrain(config, '/nonexistent')


def test_keypoints_pretraining_feeds_the_pose_paper_regime(tmp_path):
  from configs import pretrain_shapes  # pylint: disable=g-import-not-at-top
  from configs import synthetic_pose  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import pretrain  # pylint: disable=g-import-not-at-top
  config = pretrain_shapes.get_config('keypoints_smoke')
  info = pretrain.pretrain(config, str(tmp_path))
  assert info['source_task'] == 'shapes_keypoints'
  assert len(info['history']) == config.epochs and info['val_explained'] <= 1
  c = synthetic_pose.get_config('paper_regime_smoke')
  shipped = experiment.make_experiment(c).backbone  # the classifier's, of the same backbone
  c.model.pretrained = str(tmp_path / 'export')
  backbone = experiment.make_experiment(c).backbone
  assert backbone.source == str(tmp_path / 'export')
  jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), backbone.params,
               shipped.params)


# -- weights files as people have them ---------------------------------------------------------

TINY = dict(block='basic', stage_sizes=(1,), width=8)


def _tiny():
  """A one-block ImageNet-stem backbone of width 8: its template, and torchvision-named float32
  tensors that fit it (written out by hand, OIHW kernels)."""
  template = _template(models.ResNetBackbone(stem='imagenet', **TINY), jnp.zeros((1, 32, 32, 3)))
  shapes = {'conv1.weight': (8, 3, 7, 7), 'layer1.0.conv1.weight': (8, 8, 3, 3),
            'layer1.0.conv2.weight': (8, 8, 3, 3)}
  for bn in ('bn1', 'layer1.0.bn1', 'layer1.0.bn2'):
    shapes.update({f'{bn}.{leaf}': (8,) for leaf in ('weight', 'bias', 'running_mean',
                                                      'running_var')})
  rng = np.random.default_rng(0)
  return template, {k: rng.uniform(0.5, 1.5, s).astype(np.float32) for k, s in shapes.items()}


def _declared_zeros(zf, name, shape):
  """A member of zip ``zf`` holding an .npy of float32 zeros of ``shape``, written in blocks (the
  file stays small: zeros compress a thousandfold)."""
  with zf.open(name + '.npy', 'w', force_zip64=True) as f:
    np.lib.format.write_array_header_2_0(f, {'descr': '<f4', 'fortran_order': False,
                                             'shape': shape})
    left = 4 * int(np.prod(shape))
    while left > 0:
      f.write(bytes(min(left, 1 << 22)))
      left -= 1 << 22


def test_an_npz_is_read_lazily_and_an_array_that_cannot_fit_is_refused_before_it_is_read(
    tmp_path, monkeypatch):
  template, tensors = _tiny()
  read = []
  getitem = np.lib.npyio.NpzFile.__getitem__
  monkeypatch.setattr(np.lib.npyio.NpzFile, '__getitem__',
                      lambda self, key: read.append(key) or getitem(self, key))
  path = tmp_path / 'tiny.npz'
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
    for name, value in tensors.items():
      with zf.open(name + '.npy', 'w') as f:
        np.lib.format.write_array(f, value)
    _declared_zeros(zf, 'fc.weight', (1 << 24,))   # 64 MB the backbone does not need
  backbone = pretrained.load(str(path), template, **TINY)
  assert 'fc.weight' not in read and sorted(read) == sorted(tensors)
  np.testing.assert_array_equal(backbone.params['stem_conv']['kernel'],
                                tensors['conv1.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(backbone.batch_stats['BasicBlock_0']['BatchNorm_1']['var'],
                                tensors['layer1.0.bn2.running_var'])
  read.clear()
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
    for name, value in tensors.items():
      if name != 'conv1.weight':
        with zf.open(name + '.npy', 'w') as f:
          np.lib.format.write_array(f, value)
    _declared_zeros(zf, 'conv1.weight', (1 << 24,))
  with pytest.raises(ValueError, match=r'stem_conv/kernel: the model needs \(7, 7, 3, 8\), '
                     r'conv1.weight gives \(16777216,\)\.$'):
    pretrained.load(str(path), template, **TINY)
  assert 'conv1.weight' not in read


def _npz_bytes(tensors):
  out = io.BytesIO()
  np.savez(out, **tensors)
  return out.getvalue()


def _npy(array):
  out = io.BytesIO()
  np.save(out, array)
  return out.getvalue()


def _damaged_npz(tensors):
  """An .npz whose layer1.0.conv1.weight has a byte flipped after its header (its CRC fails)."""
  data = bytearray(_npz_bytes(tensors))
  data[data.index(b'layer1.0.conv1.weight.npy') + 200] ^= 0xFF
  return bytes(data)


def _objects(tensors):
  kernel = np.empty((8, 3, 7, 7), object)
  kernel[...] = 0.5
  return _npz_bytes({**tensors, 'conv1.weight': kernel})


class _Note:
  """Not a tensor: a pickle that weights-only loading refuses."""


def _torch_bytes(obj):
  out = io.BytesIO()
  torch.save(obj, out)
  return out.getvalue()


WEIGHTS_FILES = {
    'text.npz': (lambda t: b'weights, trust me\n', 'is not a zip of arrays'),
    'cut.npz': (lambda t: _npz_bytes(t)[:3000], 'is a damaged or truncated zip'),
    'one.npz': (lambda t: _npy(t['conv1.weight']), r'single array \(.npy\)'),
    'objects.npz': (_objects, 'conv1.weight holds object values, not floating-point weights'),
    'ints.npz': (lambda t: _npz_bytes({**t, 'layer1.0.bn1.bias': np.arange(8)}),
                 'layer1.0.bn1.bias holds int64 values'),
    'nan.npz': (lambda t: _npz_bytes({**t, 'bn1.running_var': np.full(8, np.nan, np.float32)}),
                'bn1.running_var holds NaN or infinite values'),
    'damaged.npz': (_damaged_npz, r'its array layer1.0.conv1.weight cannot be read \(Bad CRC'),
    'random.pth': (lambda t: bytes(range(256)) * 4, 'it is not a PyTorch file, or it is damaged'),
    'note.pth': (lambda t: _torch_bytes({'conv1.weight': torch.zeros(1), 'note': _Note()}),
                 r'holds a pickled test_pretrained._Note, and only tensors are read'),
    'model.pth': (lambda t: _torch_bytes(torch.nn.Linear(2, 2)),
                  r'holds a pickled torch.nn.modules.linear.Linear'),
    'list.pth': (lambda t: _torch_bytes([torch.zeros(2)]), 'holds a list, not a state dict'),
}


@pytest.mark.parametrize('name', sorted(WEIGHTS_FILES))
def test_weights_files_that_cannot_be_used_are_refused_in_one_line(tmp_path, name):
  template, tensors = _tiny()
  make, message = WEIGHTS_FILES[name]
  (tmp_path / name).write_bytes(make(tensors))
  with pytest.raises(errors.Refusal, match=message) as refusal:
    pretrained.load(str(tmp_path / name), template, **TINY)
  assert '\n' not in str(refusal.value)


def test_a_bfloat16_state_dict_loads_as_float32(tmp_path):
  template, tensors = _tiny()
  half = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in tensors.items()}
  torch.save(half, tmp_path / 'half.pth')
  backbone = pretrained.load(str(tmp_path / 'half.pth'), template, **TINY)
  np.testing.assert_array_equal(backbone.params['BasicBlock_0']['BatchNorm_0']['scale'],
                                half['layer1.0.bn1.weight'].float().numpy())


def _truncate_the_arrays(variables):
  """Cuts the largest data file of an export (its arrays; the small ones are indices)."""
  files = (variables / 'ocdbt.process_0' / 'd').iterdir()
  with open(max(files, key=lambda f: f.stat().st_size), 'r+b') as f:
    f.truncate(10)


EXPORT_DAMAGE = {
    'no backbone.json': (lambda d: (d / 'backbone.json').unlink(), 'has no backbone.json'),
    'no variables': (lambda d: shutil.rmtree(d / 'variables'),
                     r'lacks variables/ \(the weights\)'),
    'empty variables': (lambda d: [shutil.rmtree(d / 'variables'), (d / 'variables').mkdir()],
                        'lacks variables/_METADATA, variables/manifest.ocdbt, variables/d/'),
    'no metadata': (lambda d: (d / 'variables' / '_METADATA').unlink(),
                    r'lacks variables/_METADATA\.'),
    'no arrays': (lambda d: shutil.rmtree(d / 'variables' / 'ocdbt.process_0' / 'd'),
                  r'lacks variables/ocdbt.process_0/d/ \(the arrays\)'),
    'arrays cut': (lambda d: _truncate_the_arrays(d / 'variables'),
                          r'variables cannot be restored \(its array [\w.]+\).*export it again'),
    'json cut': (lambda d: (d / 'backbone.json').write_text('{"format": 1, "norm'),
                 r'backbone.json cannot be read'),
    'no normalisation': (lambda d: (d / 'backbone.json').write_text('{"format": 1}'),
                         'does not say which input normalisation'),
    'a later format': (lambda d: (d / 'backbone.json').write_text(
        '{"format": 99, "normalisation": "imagenet"}'), 'export format 99; .*upgrade'),
}


def test_an_exported_backbone_missing_a_part_is_refused_naming_it(tmp_path):
  template, tensors = _tiny()
  np.savez(tmp_path / 'tiny.npz', **tensors)
  backbone = pretrained.load(str(tmp_path / 'tiny.npz'), template, **TINY)
  pretrained.export(str(tmp_path / 'whole'), backbone.params, backbone.batch_stats, 'imagenet',
                    {'source': 'test'})
  assert not [f for f in os.listdir(tmp_path / 'whole') if '.tmp' in f]
  for damage, (make, message) in EXPORT_DAMAGE.items():
    folder = tmp_path / damage.replace(' ', '_')
    shutil.copytree(tmp_path / 'whole', folder)
    make(folder)
    with pytest.raises(errors.Refusal, match=message) as refusal:
      pretrained.load(str(folder), template, **TINY)
    assert '\n' not in str(refusal.value), damage
  whole = pretrained.load(str(tmp_path / 'whole'), template, **TINY)
  jax.tree.map(np.testing.assert_array_equal, whole.params, backbone.params)
