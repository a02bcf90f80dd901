"""The parts of a training cycle (l2r_jax/cycle.py): the plan on the host, and the epoch loops."""
import jax
import ml_collections
import numpy as np
import pytest

from l2r_jax import cycle
from l2r_jax import optim
from l2r_jax import protocol


def test_the_plan_covers_each_runs_samples_every_epoch_with_a_runs_axis():
  rngs = [jax.random.PRNGKey(5), jax.random.PRNGKey(9)]
  plan = cycle.make_plan([3, 4], rngs, cycle=2, n=50, epochs=3, batch_size=16)
  assert plan.rows.shape == (3, 4, 2, 16) and (plan.epochs, plan.steps) == (3, 4)
  for r, seed in enumerate([3, 4]):
    for epoch in range(3):
      rows = plan.rows[epoch, :, r].reshape(-1)
      # Run r's rows lie at [50 r, 50 (r + 1)); every sample once, the last batch filled up.
      np.testing.assert_array_equal(rows, protocol.epoch_order(seed, 2, epoch, 50, 16) + 50 * r)
      assert sorted(set(rows.tolist())) == list(range(50 * r, 50 * (r + 1)))
      np.testing.assert_array_equal(
          plan.keys[epoch, :, r], jax.random.split(jax.random.fold_in(rngs[r], epoch), 4))
  one = cycle.make_plan([3], rngs[:1], cycle=2, n=50, epochs=3, batch_size=16)
  assert one.rows.shape == (3, 4, 1, 16)  # one run keeps its axis
  np.testing.assert_array_equal(one.rows[:, :, 0], plan.rows[:, :, 0])


def test_processes_feed_disjoint_slices_of_every_global_batch():
  rngs = [jax.random.PRNGKey(0)]
  whole = cycle.make_plan([1], rngs, 0, 40, 2, 8)
  shares = [cycle.make_plan([1], rngs, 0, 40, 2, 8, process_index=p, process_count=2)
            for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([s.rows for s in shares], -1), whole.rows)
  np.testing.assert_array_equal(shares[1].keys, whole.keys)  # every process the same keys


@pytest.mark.parametrize('partitionable', [True, False])
def test_cycle_keys_are_each_epochs_split(partitionable):
  rng = jax.random.PRNGKey(7)
  with jax.threefry_partitionable(partitionable):
    for per_epoch in (1, 2, 3, 5, 13):
      expected = np.stack([np.asarray(jax.random.split(jax.random.fold_in(rng, e), per_epoch))
                           for e in range(4)])
      np.testing.assert_array_equal(cycle._cycle_keys(rng, 4, per_epoch), expected)


def test_the_learning_rate_schedule_is_the_papers_in_epochs():
  config = ml_collections.ConfigDict(dict(lr=0.1, lr_decay=0.1, lr_boundaries=(3, 7)))
  schedule = optim.schedule(config)
  expected = [0.1] * 3 + [0.01] * 4 + [0.001] * 3
  # Each rate rounded once from float64, as the optimiser stores a Python float.
  np.testing.assert_array_equal([schedule(e) for e in range(10)], np.float32(expected))
  assert float(optim.schedule(ml_collections.ConfigDict(
      dict(lr=0.05, lr_decay=0.1, lr_boundaries=())))(100)) == np.float32(0.05)
