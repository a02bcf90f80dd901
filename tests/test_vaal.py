"""VAAL: its losses against hand-worked values and numpy, its models' shapes, and its queries."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2r_jax import defaults
from l2r_jax import devices as devices_lib
from l2r_jax import strategies
from l2r_jax.models import vaal as vaal_models
from l2r_jax.strategies import vaal
import tolerances

# Small settings shared by every test that trains, so that they share one compiled step.
_FAST = dict(iterations=50, batch_size=32, hidden=(64,))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_kl_hand_worked_and_numpy():
  # KL(N(1, 1) || N(0, 1)) = 1/2; KL(N(0, 2) || N(0, 1)) = (2 - 1 - ln 2) / 2; summed.
  mu, logvar = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, np.log(2.0)]])
  np.testing.assert_allclose(vaal.kl_divergence(mu, logvar), 0.5 + (1.0 - np.log(2.0)) / 2,
                             rtol=1e-6)
  r = np.random.default_rng(0)
  mu, logvar = r.normal(size=(5, 7)), r.normal(size=(5, 7))
  sigma2 = np.exp(logvar)
  expected = 0.5 * np.sum(mu**2 + sigma2 - 1.0 - logvar)  # summed over batch and latent
  np.testing.assert_allclose(vaal.kl_divergence(jnp.asarray(mu), jnp.asarray(logvar)), expected,
                             rtol=1e-5)


def test_vae_loss_is_mean_squared_error_plus_beta_kl():
  r = np.random.default_rng(1)
  x, recon = r.normal(size=(4, 6, 6, 2)), r.normal(size=(4, 6, 6, 2))
  mu, logvar = r.normal(size=(4, 3)), r.normal(size=(4, 3))
  mse = np.mean((recon - x)**2)
  kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar)
  got = vaal.vae_loss(*map(jnp.asarray, (x, recon, mu, logvar)), beta=0.5)
  np.testing.assert_allclose(got, mse + 0.5 * kl, rtol=1e-5)
  # A posterior equal to the prior costs nothing: only the reconstruction is left.
  zeros = jnp.zeros((4, 3))
  np.testing.assert_allclose(vaal.vae_loss(jnp.asarray(x), jnp.asarray(recon), zeros, zeros, 1.0),
                             mse, rtol=1e-6)


def test_discriminator_and_adversarial_bce_match_numpy():
  r = np.random.default_rng(2)
  lab, unl = r.normal(size=9) * 3, r.normal(size=11) * 3
  p_l, p_u = _sigmoid(lab), _sigmoid(unl)
  np.testing.assert_allclose(vaal.discriminator_loss(jnp.asarray(lab), jnp.asarray(unl)),
                             -np.mean(np.log(p_l)) - np.mean(np.log(1 - p_u)), rtol=1e-5)
  np.testing.assert_allclose(vaal.adversarial_loss(jnp.asarray(lab), jnp.asarray(unl)),
                             -np.mean(np.log(p_l)) - np.mean(np.log(p_u)), rtol=1e-5)


def _init_shapes(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(
      lambda x: model.init({'params': jax.random.PRNGKey(0), 'reparam': jax.random.PRNGKey(1)},
                           x, train=False), x)
  out = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=False, rngs={'reparam': jax.random.PRNGKey(2)}),
      variables, x)
  return variables, out


@pytest.mark.parametrize('side', [32, 64])
def test_conv_vae_shapes(side):
  options = vaal.options_with_defaults({})
  model = vaal_models.make_vae(options, (side, side, 3))
  assert isinstance(model, vaal_models.ConvVAE)
  variables, (recon, mu, logvar) = _init_shapes(model, (2, side, side, 3))
  assert recon.shape == (2, side, side, 3) and mu.shape == logvar.shape == (2, 32)
  # Four stride-2 convolutions: 1024 x (side/16)^2 features into fc_mu (official: 1024*2*2 at 32).
  assert variables['params']['fc_mu']['kernel'].shape == (1024 * (side // 16)**2, 32)
  assert 'batch_stats' in variables


@pytest.mark.parametrize('shape', [(40,), (8, 8), (8, 8, 1)])
def test_mlp_vae_shapes_for_small_inputs(shape):
  model = vaal_models.make_vae(vaal.options_with_defaults({}), shape)
  assert isinstance(model, vaal_models.MLPVAE)
  _, (recon, mu, _) = _init_shapes(model, (3, *shape))
  assert recon.shape == (3, *shape) and mu.shape == (3, 32)
  logits = jax.eval_shape(lambda z: vaal_models.Discriminator().init_with_output(
      jax.random.PRNGKey(0), z)[0], jax.ShapeDtypeStruct((3, 32), jnp.float32))
  assert logits.shape == (3,)


def test_arch_conv_refuses_small_images():
  with pytest.raises(ValueError, match="arch='conv'"):
    vaal_models.make_vae(vaal.options_with_defaults(dict(arch='conv')), (8, 8, 1))


def test_conv_train_step_traces():
  # The whole conv step over the suite's two devices (BatchNorm statistics threaded through both
  # VAE steps and the discriminator step), traced without compiling: too heavy to run here.
  trainer = vaal.make_trainer({}, np.zeros((1, 32, 32, 3), np.float32))
  x = jnp.zeros((2, 32, 32, 3))
  state = jax.eval_shape(lambda x: vaal.create_state(jax.random.PRNGKey(0), trainer, x), x)
  replicated = jax.tree.map(lambda a: jax.ShapeDtypeStruct((2, *a.shape), a.dtype), state)
  batches = jax.ShapeDtypeStruct((2, 2, 4, 32, 32, 3), jnp.float32)
  new_state, metrics = jax.eval_shape(trainer.step, replicated, batches, batches,
                                      jax.random.PRNGKey(0))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert set(metrics) == {'train_vae_loss', 'train_reconstruction', 'train_kl',
                          'train_adversarial', 'train_discriminator_loss'}


def _step_on(devices, trainer, state, labeled, unlabeled, rng):
  """``trainer.step`` with each ``[n_batches, B, ...]`` batch split over the first ``devices``."""
  split = lambda x: x.reshape(x.shape[0], devices, -1, *x.shape[2:]).swapaxes(0, 1)
  new, metrics = trainer.step(devices_lib.replicate(state, jax.devices()[:devices]),
                              split(labeled), split(unlabeled), rng)
  return jax.tree.map(lambda a: np.asarray(a[0]), (new, metrics))


def test_train_step_updates_both_models_deterministically():
  r = np.random.default_rng(3)
  lab = r.normal(size=(2, 32, 40)).astype(np.float32)
  unl = (r.normal(size=(2, 32, 40)) + 1.0).astype(np.float32)
  trainer = vaal.make_trainer(_FAST, lab[0])
  init = vaal.create_state(jax.random.PRNGKey(0), trainer, jnp.asarray(lab[0]))
  # The compiled step the strategy uses (the state is donated: replicated afresh per call).
  outs = [_step_on(2, trainer, init, lab, unl, jax.random.PRNGKey(1)) for _ in range(2)]
  new, metrics = outs[0]
  assert int(new.vae.step) == 2 and int(new.discriminator.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for before, after in ((init.vae.params, new.vae.params),
                        (init.discriminator.params, new.discriminator.params)):
    assert max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(before),
                                                           jax.tree.leaves(after))) > 0
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_array_equal(a, b)


def test_training_over_two_devices_is_training_on_one():
  # Each device holds half of every batch and its share of every loss; the summed gradients, the
  # reported losses and the reparameterisation noise of each sample are those of one device.
  # Three iterations: Adam's first update is blind to a gradient's scale, the losses are not.
  r = np.random.default_rng(5)
  lab = r.normal(size=(3, 2, 32, 40)).astype(np.float32)
  unl = (r.normal(size=(3, 2, 32, 40)) + 1.0).astype(np.float32)
  trainer = vaal.make_trainer(_FAST, lab[0, 0])
  init = vaal.create_state(jax.random.PRNGKey(0), trainer, jnp.asarray(lab[0, 0]))
  trained = {}
  for devices in (1, 2):
    state, history = init, []
    for it in range(3):
      state, metrics = _step_on(devices, trainer, state, lab[it], unl[it],
                                jax.random.PRNGKey(it))
      history.append(metrics)
    trained[devices] = state, history
  # Adam divides each gradient by its own running magnitude, so entries whose gradient is near
  # float32 rounding move by a sizeable part of the learning rate either way: 2 % of the movement
  # (0.3 % measured); without the sum over devices (each its half-batch gradient), 29 %.
  tolerances.assert_same_training(trained[2][0], trained[1][0], init, rtol=0.02)
  for one, two in zip(trained[1][1], trained[2][1]):
    for name in one:
      np.testing.assert_allclose(two[name], one[name], rtol=1e-4, err_msg=name)


def test_scores_over_two_devices_are_one_devices():
  x = np.random.default_rng(0).normal(size=(301, 40)).astype(np.float32)
  trainer = vaal.make_trainer(_FAST, x)
  state = vaal.create_state(jax.random.PRNGKey(0), trainer, jnp.asarray(x[:2]))
  indices = np.random.default_rng(1).permutation(301)
  got = vaal.scores(trainer, devices_lib.replicate(state), lambda idx: x[idx], indices, chunk=64)
  want = jax.jit(vaal._scores)(state, jnp.asarray(x[indices]))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_official_iteration_count_and_options():
  options = vaal.options_with_defaults(defaults.get_config().vaal)
  # solver.py: num_images * train_epochs // batch_size, CIFAR-10's 50,000 images.
  assert vaal.num_iterations(options, 50000) == 50000 * 100 // 128
  assert vaal.num_iterations(vaal.options_with_defaults(dict(iterations=7)), 50000) == 7
  with pytest.raises(ValueError, match="no field 'lr_vae'"):
    vaal.options_with_defaults(dict(lr_vae=1e-3))


def _two_clusters(seed, n_labeled=256, n_more_a=200, n_b=200, shift=2.0):
  """A pool of cluster A (the labeled set and more) and a shifted cluster B, in shuffled order."""
  r = np.random.default_rng(seed)
  a = r.normal(size=(n_labeled + n_more_a, 40))
  b = r.normal(size=(n_b, 40)) + shift * np.sign(r.normal(size=(1, 40)))
  order = r.permutation(len(a) + n_b)
  x = np.concatenate([a, b]).astype(np.float32)[order]
  labeled = np.argsort(order)[:n_labeled]  # where the first n_labeled samples of A went
  return x, labeled, order >= len(a)


def _state(x, labeled, **options):
  # The experiment's way: one trainer (its compiled programs) for every selection.
  options = dict(_FAST, **options)
  key = tuple(sorted(options.items()))
  if key not in _TRAINERS:
    _TRAINERS[key] = vaal.make_trainer(options, x)
  return strategies.SelectionState(infer=None, labeled=labeled,
                                   inputs=lambda idx: x[np.asarray(idx)], pool_size=len(x),
                                   options=options, prepared=_TRAINERS[key])


_TRAINERS = {}


@pytest.mark.parametrize('n_labeled,subset_size,budget', [(256, 150, 40), (0, 30, 7)])
def test_selection_invariants(n_labeled, subset_size, budget):
  x, labeled, _ = _two_clusters(0, n_labeled=n_labeled)
  r = np.random.default_rng(1)
  subset = r.choice(np.setdiff1d(np.arange(len(x)), labeled), subset_size, replace=False)
  state = _state(x, labeled, iterations=5)
  chosen = strategies.get('vaal').select(state, subset, budget, jax.random.PRNGKey(4))
  assert len(chosen) == budget == len(set(chosen.tolist()))
  assert set(chosen.tolist()) <= set(subset.tolist())
  assert not set(chosen.tolist()) & set(labeled.tolist())
  again = strategies.get('vaal').select(state, subset, budget, jax.random.PRNGKey(4))
  np.testing.assert_array_equal(chosen, again)


def test_selection_needs_the_pool_inputs():
  state = strategies.SelectionState(infer=None, labeled=np.arange(3))
  with pytest.raises(ValueError, match='needs `inputs`'):
    strategies.get('vaal').select(state, np.arange(3, 10), 2, jax.random.PRNGKey(0))


def test_queries_the_cluster_the_labeled_set_lacks():
  # Labeled: 256 samples of cluster A. Candidates: 200 more of A and 200 of a shifted cluster B.
  # The discriminator learns what labeled samples look like; VAAL must query B (chance: 50%).
  x, labeled, is_b = _two_clusters(0)
  candidates = np.setdiff1d(np.arange(len(x)), labeled)
  chosen = strategies.get('vaal').select(_state(x, labeled), candidates, 100, jax.random.PRNGKey(0))
  assert is_b[chosen].mean() >= 0.8
