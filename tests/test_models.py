import chex
import jax
import jax.numpy as jnp
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
  model = models.ResNet18(num_classes=10)
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
