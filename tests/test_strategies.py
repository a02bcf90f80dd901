import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from l2r_jax import protocol
from l2r_jax import strategies
from l2r_jax.strategies import coreset
from l2r_jax.strategies import geometry
from l2r_jax.strategies import simple


def _numpy_k_center(candidates, centers, budget, margins=None):
  """The textbook algorithm with a full distance matrix, in float64. ``margins``, a list, gets at
  each step the gap between the farthest candidate and the runner-up."""
  d = ((candidates[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
  min_d = d.min(1) if len(centers) else np.full(len(candidates), np.inf)
  chosen = []
  for _ in range(budget):
    if margins is not None:
      top2 = np.sort(min_d)[-2:]
      margins.append(top2[1] - top2[0])
    i = int(np.argmax(min_d))
    chosen.append(i)
    min_d = np.minimum(min_d, ((candidates - candidates[i]) ** 2).sum(-1))
    min_d[chosen] = -1
  return chosen


@pytest.mark.parametrize('n_centers,n', [(0, 300), (1, 300), (7, 301), (600, 300)])
def test_k_center_greedy_matches_numpy(n_centers, n):
  # Over the suite's two devices, a block each (301: the second block padded).
  assert jax.device_count() == 2
  r = np.random.default_rng(n_centers)
  candidates = r.normal(size=(n, 16))
  centers = r.normal(size=(n_centers, 16))
  got = coreset.k_center_greedy(jnp.asarray(candidates), jnp.asarray(centers), 40, chunk=64)
  assert list(np.asarray(got)) == _numpy_k_center(candidates, centers, 40)


@pytest.mark.parametrize('offset', [100.0, 1000.0])
def test_k_center_greedy_keeps_float64_picks_far_from_the_origin(offset):
  # Post-ReLU embeddings can sit far from the origin. In float32 at an offset of 1000, the
  # uncentred |a|² - 2ab + |b|² has an error ~|a|²·6e-8 ≈ 0.5, larger than the gaps between the
  # distances greedy compares here; the float64 reference sees the same float32 points.
  r = np.random.default_rng(int(offset))
  candidates = (offset + r.normal(size=(400, 8))).astype(np.float32)
  centers = (offset + r.normal(size=(50, 8))).astype(np.float32)
  margins = []
  want = _numpy_k_center(candidates.astype(np.float64), centers.astype(np.float64), 30, margins)
  # The reference's choices are not near-ties at float32's precision after centring (spread ~1):
  # every pick beats the runner-up by far more than ~1e-6.
  assert min(margins) > 1e-4
  got = coreset.k_center_greedy(jnp.asarray(candidates), jnp.asarray(centers), 30, chunk=16)
  assert list(np.asarray(got)) == want


def test_k_center_greedy_breaks_ties_by_the_first_index_as_numpy_does():
  # Small integer coordinates, every point twice: distances tie exactly in float32, and each
  # point's copy is in the other device's block.
  r = np.random.default_rng(0)
  points = r.integers(-3, 4, size=(50, 4)).astype(np.float64)
  candidates = np.concatenate([points, points])
  for centers in (candidates[:0], points[:3]):
    got = coreset.k_center_greedy(jnp.asarray(candidates), jnp.asarray(centers), 60, chunk=8)
    assert list(np.asarray(got)) == _numpy_k_center(candidates, centers, 60)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0, np.inf]), min_size=1, max_size=40))
def test_first_argmax_is_numpys_argmax(values):
  assert int(geometry.first_argmax(jnp.asarray(values, jnp.float32))) == int(np.argmax(values))


def test_k_center_greedy_compiles_once_for_labeled_sets_within_a_chunk():
  r = np.random.default_rng(1)
  candidates = r.normal(size=(50, 8)).astype(np.float32)
  compiled = []

  def listener(event, secs, **kw):
    if event == '/jax/core/compile/backend_compile_duration':
      compiled.append(kw.get('fun_name'))

  coreset.k_center_greedy(candidates, r.normal(size=(5, 8)).astype(np.float32), 4, chunk=64)
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    for m in (9, 33, 64):
      coreset.k_center_greedy(candidates, r.normal(size=(m, 8)).astype(np.float32), 4, chunk=64)
    assert not compiled
    coreset.k_center_greedy(candidates, r.normal(size=(65, 8)).astype(np.float32), 4, chunk=64)
    assert compiled     # the next multiple of the chunk is another program
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def test_k_center_greedy_rejects_too_large_budget():
  with pytest.raises(ValueError, match='cannot pick 5 of 4'):
    coreset.k_center_greedy(jnp.zeros((4, 2)), jnp.zeros((0, 2)), 5)


def test_entropy_matches_numpy():
  r = np.random.default_rng(0)
  logits = r.normal(size=(6, 10)) * 3
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(simple.prediction_entropy(jnp.asarray(logits)),
                             stats.entropy(p, axis=-1), rtol=1e-5)
  maps = r.normal(size=(3, 5, 4, 2))  # [n, H, W, K]
  expected = np.mean([[stats.entropy(np.exp(maps[i, ..., k]).ravel()) for k in range(2)]
                      for i in range(3)], axis=1)
  np.testing.assert_allclose(simple.prediction_entropy(jnp.asarray(maps)), expected, rtol=1e-5)


def test_entropy_of_impossible_classes_is_their_limit_not_nan():
  # A logit of -inf is a class of probability 0, which adds 0 * log 0 = 0 (scipy's limit).
  logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 2.0], [0.0, -200.0, 0.0]])
  p = np.exp(logits - logits.max(-1, keepdims=True))
  expected = stats.entropy(p / p.sum(-1, keepdims=True), axis=-1)
  got = np.asarray(simple.prediction_entropy(jnp.asarray(logits, jnp.float32)))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
  assert got[1] == 0.0
  maps = np.zeros((1, 2, 2, 1))
  maps[0, 0, 0, 0] = -np.inf
  np.testing.assert_allclose(simple.prediction_entropy(jnp.asarray(maps, jnp.float32)),
                             [np.log(3.0)], rtol=1e-6)


def test_margin_and_least_confidence_hand_worked_and_numpy():
  # softmax(log p) = p: probabilities (0.5, 0.3, 0.2) have margin 0.2 and least confidence 0.5;
  # (0.4, 0.4, 0.2): 0 and 0.6; (0.9, 0.05, 0.05): 0.85 and 0.1.
  p = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.05, 0.9, 0.05]])
  logits = jnp.asarray(np.log(p) + 3.0, jnp.float32)   # a shift changes no softmax
  np.testing.assert_allclose(simple.top_two_margin(logits), [0.2, 0.0, 0.85], atol=1e-6)
  np.testing.assert_allclose(simple.least_confidence(logits), [0.5, 0.6, 0.1], atol=1e-6)
  r = np.random.default_rng(2)
  logits = r.normal(size=(20, 7)) * 2
  q = np.sort(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), -1)
  np.testing.assert_allclose(simple.top_two_margin(jnp.asarray(logits)), q[:, -1] - q[:, -2],
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(simple.least_confidence(jnp.asarray(logits)), 1 - q[:, -1],
                             rtol=1e-5, atol=1e-7)
  # Heatmaps [n, H, W, K]: 1 - the peak of each map's softmax over its pixels, averaged over K.
  maps = r.normal(size=(3, 5, 4, 2)) * 3
  peak = np.array([[np.exp(m).max() / np.exp(m).sum() for m in np.moveaxis(x, -1, 0)]
                   for x in maps])
  np.testing.assert_allclose(simple.least_confidence(jnp.asarray(maps)), (1 - peak).mean(-1),
                             rtol=1e-5)


def test_margin_and_least_confidence_pick_the_least_sure():
  state, logits, *_ = _fake_state(50, [], 3)
  subset = np.arange(5, 45)
  q = np.sort(np.exp(logits[subset]) / np.exp(logits[subset]).sum(-1, keepdims=True), -1)
  assert sorted(strategies.get('margin').select(state, subset, 6, None)) == sorted(
      subset[np.argsort(q[:, -1] - q[:, -2])[:6]])
  assert sorted(strategies.get('least_confidence').select(state, subset, 6, None)) == sorted(
      subset[np.argsort(q[:, -1])[:6]])


@pytest.mark.parametrize('name,task,ok', [('margin', 'classification', True),
                                          ('margin', 'pose', False), ('margin', 'crowd', False),
                                          ('least_confidence', 'pose', True),
                                          ('least_confidence', 'crowd', False),
                                          ('entropy', 'crowd', True)])
def test_strategies_say_which_tasks_they_apply_to(name, task, ok):
  if ok:
    strategies.check_task(name, task)
  else:
    with pytest.raises(ValueError, match=rf"Strategy '{name}' does not apply to the '{task}' task: "
                                         r'.+ For .+ choose from: .*entropy'):
      strategies.check_task(name, task)


def test_nan_scores_are_refused_not_silently_skipped():
  with pytest.raises(FloatingPointError, match=r'indices \[7\]'):
    protocol.top_k(np.array([0.1, np.nan, 0.3]), np.array([5, 7, 9]), 2)
  np.testing.assert_array_equal(protocol.top_k(np.array([0.1, 0.5, 0.3]), np.array([5, 7, 9]), 2),
                                [7, 9])


def _fake_state(pool_size, labeled, seed):
  r = np.random.default_rng(seed)
  logits = r.normal(size=(pool_size, 4))
  emb = r.normal(size=(pool_size, 8))
  pred = r.normal(size=pool_size)

  def infer(idx):
    idx = np.asarray(idx)
    return strategies.PoolOutputs(logits[idx], emb[idx], pred[idx])

  true = r.exponential(size=pool_size)

  def sample_predictions(idx, passes, rng, reduce=None):   # logits disturbed in every pass
    noise = jax.random.normal(rng, (len(idx), passes, logits.shape[-1]))
    samples = logits[np.asarray(idx)][:, None] + np.asarray(noise)
    return samples if reduce is None else np.asarray(reduce(jnp.asarray(samples)))

  state = strategies.SelectionState(
      infer=infer, labeled=np.asarray(labeled), inputs=lambda idx: emb[np.asarray(idx)],
      pool_size=pool_size,
      true_loss=lambda idx: true[np.asarray(idx)], sample_predictions=sample_predictions)
  return state, logits, pred, true


_OPTIONS = {'vaal': dict(iterations=5, batch_size=32, hidden=(64,)), 'bald': dict(passes=4),
            'batchbald': dict(passes=4, num_samples=64), 'mc_variance': dict(passes=4)}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_labeled=st.integers(0, 20), subset_size=st.integers(1, 60),
       budget_frac=st.floats(0.01, 1.0), name=st.sampled_from(sorted(strategies.REGISTRY)))
def test_selection_invariants(seed, n_labeled, subset_size, budget_frac, name):
  pool_size = 100
  r = np.random.default_rng(seed)
  perm = r.permutation(pool_size)
  labeled, unlabeled = perm[:n_labeled], perm[n_labeled:]
  subset = r.choice(unlabeled, size=min(subset_size, len(unlabeled)), replace=False)
  budget = max(1, int(budget_frac * len(subset)))
  state, *_ = _fake_state(pool_size, labeled, seed)
  state = state._replace(options=_OPTIONS.get(name))   # config.<name>
  chosen = strategies.get(name).select(state, subset, budget, jax.random.PRNGKey(seed))
  assert len(chosen) == budget and len(set(chosen.tolist())) == budget
  assert set(chosen.tolist()) <= set(subset.tolist())
  new_labeled = np.union1d(labeled, chosen)
  assert len(new_labeled) == len(labeled) + budget
  assert not set(new_labeled.tolist()) & set(np.setdiff1d(unlabeled, chosen).tolist())


def test_coreset_refuses_non_finite_embeddings():
  state, *_ = _fake_state(50, [0, 1], 0)
  infer = state.infer

  def diverged(idx):
    out = infer(idx)
    return out._replace(embedding=np.where(np.asarray(idx)[:, None] == 7, np.nan, out.embedding))

  with pytest.raises(FloatingPointError, match=r"The model's embeddings are NaN or infinite on 1 "
                                                r'of 15 pool samples \(index 7\)'):
    strategies.get('coreset').select(state._replace(infer=diverged), np.arange(5, 20), 3, None)


def test_loss_and_entropy_strategies_pick_the_top_scores():
  state, logits, pred, true = _fake_state(50, [], 0)
  subset = np.arange(10, 40)
  top_pred = subset[np.argsort(-pred[subset])[:5]]
  for name in ('l2r', 'll4al'):
    assert sorted(strategies.get(name).select(state, subset, 5, None)) == sorted(top_pred)
  assert sorted(strategies.get('oracle_loss').select(state, subset, 5, None)) == sorted(
      subset[np.argsort(-true[subset])[:5]])
  with pytest.raises(ValueError, match='oracle_loss needs the true losses'):
    strategies.get('oracle_loss').select(state._replace(true_loss=None), subset, 5, None)
  ent = np.asarray(simple.prediction_entropy(jnp.asarray(logits[subset])))
  assert sorted(strategies.get('entropy').select(state, subset, 5, None)) == sorted(
      subset[np.argsort(-ent)[:5]])


def test_unknown_strategy():
  with pytest.raises(ValueError, match="Unknown strategy 'baldness'"):
    strategies.get('baldness')
