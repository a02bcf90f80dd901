"""The stopping signals against scikit-learn's Cohen's kappa and hand-worked examples."""
import numpy as np
import pytest
from sklearn import metrics

from l2r_jax import protocol
from l2r_jax import stopping


@pytest.mark.parametrize('seed', range(5))
def test_kappa_equals_scikit_learns(seed):
  r = np.random.default_rng(seed)
  a = r.integers(0, 4, 200)
  b = np.where(r.random(200) < 0.7, a, r.integers(0, 4, 200))
  assert stopping.cohens_kappa(a, b, 4) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_by_hand_and_for_identical_predictions():
  # Agree on 3 of 4; each round predicts class 0 twice and class 1 twice: chance 1/2.
  assert stopping.cohens_kappa([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx((0.75 - 0.5) / 0.5)
  # One class throughout, twice: scikit-learn's 0/0 is NaN; the rounds agree completely.
  assert stopping.cohens_kappa([2, 2, 2], [2, 2, 2], 3) == 1.0


def test_stabilising_predictions_waits_for_a_full_window_and_averages_it():
  assert stopping.stabilising_predictions([None, 1.0, 1.0]) == {'kappa_mean': None, 'stop': False}
  out = stopping.stabilising_predictions([None, 0.5, 0.97, 0.99, 1.0])
  assert out['kappa_mean'] == pytest.approx((0.97 + 0.99 + 1.0) / 3) and out['stop'] is False
  assert stopping.stabilising_predictions([None, 0.5, 0.99, 0.99, 1.0])['stop'] is True
  # A mean at the threshold reaches it, though its float sum lands a hair below.
  assert stopping.stabilising_predictions([None, 0.99, 0.995, 0.985])['stop'] is True
  assert stopping.stabilising_predictions([None, 0.99, 0.99, 0.99])['stop'] is True
  assert stopping.stabilising_predictions([None, 0.99, 0.99, 0.9899])['stop'] is False


def test_plateau_compares_the_last_window_with_the_best_before_it():
  assert stopping.plateau([0.5, 0.6, 0.7], True)['gain'] is None
  out = stopping.plateau([0.5, 0.8, 0.801, 0.79, 0.803], True)
  assert out['gain'] == pytest.approx(0.003) and out['stop'] is True
  assert stopping.plateau([0.5, 0.6, 0.7, 0.8], True) == {'gain': pytest.approx(0.3), 'stop': False}
  # Lower is better (MAE): a fall is the improvement.
  assert stopping.plateau([12.0, 11.0, 10.9, 10.99, 10.998], False)['gain'] == pytest.approx(0.1)


def test_the_stop_set_is_fixed_by_seed_and_pool_and_holds_distinct_pool_samples():
  a = protocol.stop_set(0, 1300, 500)
  np.testing.assert_array_equal(a, protocol.stop_set(0, 1300, 500))
  assert len(np.unique(a)) == 500 and a.min() >= 0 and a.max() < 1300
  assert not np.array_equal(a, protocol.stop_set(1, 1300, 500))
  np.testing.assert_array_equal(protocol.stop_set(0, 30, 500), np.arange(30))
