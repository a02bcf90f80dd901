import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2r_jax import models


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name, shape, channels', [
    ('cnn1d', (3, 40), (32, 32, 32)),
    ('cnn2d', (3, 8, 8), (32, 64, 64)),
])
def test_small_targets_honour_the_contract(rng, name, shape, channels):
  model = models.TARGETS[name]()
  variables = model.init(rng, jnp.zeros(shape), train=False)
  (logits, feats), updates = model.apply(variables, jnp.ones(shape), train=True,
                                         mutable=['batch_stats'])
  chex.assert_shape(logits, (3, 10))
  assert isinstance(feats, models.Features) and feats.last is feats.stages[-1]
  assert [f.shape[-1] for f in feats.stages] == list(channels)
  assert 'batch_stats' in updates


def test_resnet18_cifar(rng):
  model = models.ResNet18(num_outputs=10)
  variables = jax.eval_shape(lambda: model.init(rng, jnp.zeros((1, 32, 32, 3)), train=False))
  # The CIFAR ResNet-18 everyone compares against (3x3 stem, no max-pool) has 11,173,962
  # trainable parameters for 10 classes.
  assert _count(variables['params']) == 11_173_962
  logits, feats = jax.eval_shape(
      lambda v: model.apply(v, jnp.zeros((2, 32, 32, 3)), train=False), variables)
  chex.assert_shape(logits, (2, 10))
  assert [f.shape for f in feats.stages] == [(2, 32, 32, 64), (2, 16, 16, 128), (2, 8, 8, 256),
                                             (2, 4, 4, 512)]


def test_loss_modules(rng):
  feats = models.Features(last=jnp.ones((5, 4, 4, 16)),
                          stages=(jnp.ones((5, 8, 8, 8)), jnp.ones((5, 4, 4, 16))))
  l2r = models.L2RLossModule(hidden=32)
  params = l2r.init(rng, feats)
  chex.assert_shape(l2r.apply(params, feats), (5,))
  assert _count(params) == (16 * 32 + 32) + (32 + 1)  # Dense(16 -> 32), Dense(32 -> 1)
  ll4al = models.LL4ALLossModule(hidden=32)
  params = ll4al.init(rng, feats)
  chex.assert_shape(ll4al.apply(params, feats), (5,))
  assert _count(params) == (8 * 32 + 32) + (16 * 32 + 32) + (64 + 1)


def test_l2r_module_uses_leaky_relu(rng):
  feats = models.Features(last=jnp.ones((1, 2, 3)), stages=(jnp.ones((1, 2, 3)),))
  module = models.L2RLossModule(hidden=1)
  params = module.init(rng, feats)['params']
  params = jax.tree.map(jnp.ones_like, params)
  params['Dense_0']['bias'] = jnp.array([-10.0])  # pre-activation 3 - 10 = -7
  out = module.apply({'params': params}, feats)
  assert float(out[0]) == pytest.approx(-7 * 0.01 + 1)


def test_simple_baseline_is_the_papers_resnet50_model(rng):
  model = models.SimpleBaseline(num_outputs=16)
  x = jnp.zeros((2, 256, 256, 3))
  variables = jax.eval_shape(lambda: model.init(rng, x[:1], train=False))
  # torchvision's ResNet-50 without its classifier (25,557,032 - 2,049,000) + deconvolutions
  # 2048*256*16 + 2 * 256*256*16 + BatchNorm 3 * 2 * 256 + final 1x1 conv 256*16 + 16: the 34.0M
  # of SimpleBaseline's paper.
  assert _count(variables['params']) == 23_508_032 + 8_388_608 + 2_097_152 + 1_536 + 4_112
  heatmaps, feats = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  chex.assert_shape(heatmaps, (2, 64, 64, 16))
  assert [f.shape for f in feats.stages] == [(2, 64, 64, 256), (2, 32, 32, 512),
                                             (2, 16, 16, 1024), (2, 8, 8, 2048)]


def test_crowd_counter_is_c3_resnet50(rng):
  model = models.CrowdCounter()
  x = jnp.zeros((1, 96, 128, 3))
  variables = jax.eval_shape(lambda: model.init(rng, x, train=False))
  # torchvision's ResNet-50 stem + layer1-3 (9,408 + 128 + 215,808 + 1,219,584 + 7,098,368), then
  # 1x1 convs 1024 -> 128 -> 1 with biases.
  assert _count(variables['params']) == 8_543_296 + (1024 * 128 + 128) + (128 + 1)
  density, feats = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  chex.assert_shape(density, (1, 96, 128, 1))       # stride 8, upsampled x 8
  chex.assert_shape(feats.last, (1, 12, 16, 1024))  # layer3 kept at stride 8


@pytest.mark.parametrize('name, kwargs, x_shape, out_shape', [
    ('simple_baseline', dict(stage_sizes=(1, 1, 1, 1), block='basic', width=8, stem='cifar',
                             num_deconv=2, deconv_width=16), (2, 32, 32, 3), (2, 16, 16, 16)),
    ('crowd_counter', dict(stage_sizes=(1, 1, 1), block='basic', width=8, stem='cifar',
                           stage_strides=(1, 2, 2), upsample=1), (2, 32, 32, 3), (2, 8, 8, 1)),
])
def test_small_dense_models_run(rng, name, kwargs, x_shape, out_shape):
  model = models.TARGETS[name](**kwargs)
  variables = model.init(rng, jnp.zeros(x_shape), train=False)
  (out, feats), updates = model.apply(variables, jnp.ones(x_shape), train=True,
                                      mutable=['batch_stats'])
  chex.assert_shape(out, out_shape)
  assert feats.last is feats.stages[-1] and 'batch_stats' in updates
  if name == 'crowd_counter':
    assert float(out.min()) >= 0  # densities are non-negative


def test_simple_baseline_resize_upsampling_against_numpy(rng):
  """``upsample='resize'``: nearest-neighbour ×2, a 3×3 'SAME' cross-correlation without bias,
  BatchNorm (at init: x / sqrt(1 + 1e-5)), ReLU, the 1×1 head; recomputed in numpy."""
  kwargs = dict(num_outputs=3, stage_sizes=(1, 1, 1, 1), block='basic', width=8, stem='cifar',
                num_deconv=1, deconv_width=5)
  resize = models.SimpleBaseline(upsample='resize', **kwargs)
  x = jax.random.normal(rng, (2, 16, 16, 3))
  variables = resize.init(rng, x, train=False)
  heatmaps, feats = resize.apply(variables, x, train=False)
  params = variables['params']
  up = np.repeat(np.repeat(np.asarray(feats.last, np.float64), 2, 1), 2, 2)
  padded = np.pad(up, ((0, 0), (1, 1), (1, 1), (0, 0)))
  kernel = np.asarray(params['Conv_0']['kernel'], np.float64)  # [3, 3, in, out]
  h, w = up.shape[1:3]
  y = sum(np.einsum('bhwc,co->bhwo', padded[:, i:i + h, j:j + w], kernel[i, j])
          for i in range(3) for j in range(3))
  y = np.maximum(y / np.sqrt(1 + 1e-5), 0)
  final = params['final_conv']
  expected = (np.einsum('bhwc,co->bhwo', y, np.asarray(final['kernel'][0, 0], np.float64))
              + np.asarray(final['bias'], np.float64))
  np.testing.assert_allclose(np.asarray(heatmaps), expected, rtol=1e-4,
                             atol=1e-5 * np.abs(expected).max())
  # The same shapes as the transposed convolutions', a 3×3 kernel in place of each 4×4.
  deconv = models.SimpleBaseline(**kwargs)
  deconv_params = deconv.init(rng, x, train=False)['params']
  chex.assert_equal_shape([heatmaps, deconv.apply(deconv.init(rng, x, train=False), x,
                                                  train=False)[0]])
  assert _count(deconv_params) - _count(params) == (16 - 9) * 64 * 5
  with pytest.raises(ValueError, match="upsample='bilinear': use 'deconv' or 'resize'"):
    models.SimpleBaseline(upsample='bilinear', **kwargs).init(rng, x, train=False)
