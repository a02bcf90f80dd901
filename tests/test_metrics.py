import numpy as np
import pytest

from l2r_jax import metrics


def test_pckh_hand_worked():
  # Two people, three joints; head boxes with diagonals 10 and 20 -> head sizes 6 and 12, so the
  # PCKh@0.5 radius is 3 px for the first person and 6 px for the second.
  head_boxes = np.array([[[0, 0], [6, 8]], [[0, 0], [12, 16]]], float)
  gt = np.zeros((2, 3, 2))
  pred = np.array([[[3, 0], [0, 3.1], [9, 9]],     # hit (3 <= 3), miss (3.1), invisible
                   [[0, 5], [6, 0], [4, 4]]], float)  # hit, hit (6 <= 6), hit (5.66)
  visible = np.array([[1, 1, 0], [1, 1, 1]], bool)
  per_joint, overall = metrics.pckh(pred, gt, visible, head_boxes, exclude_from_mean=())
  np.testing.assert_allclose(per_joint, [100.0, 50.0, 100.0])
  # weighted by visible counts (2, 2, 1): (200 + 100 + 100) / 5
  assert overall == pytest.approx(80.0)
  _, without_first = metrics.pckh(pred, gt, visible, head_boxes, exclude_from_mean=(0,))
  assert without_first == pytest.approx((100 + 100) / 3)


def test_pckh_standard_mean_leaves_out_pelvis_and_thorax():
  gt = np.zeros((1, 16, 2))
  pred = np.zeros((1, 16, 2))
  pred[0, 6] = pred[0, 7] = 100.0  # pelvis and thorax far off
  _, overall = metrics.pckh(pred, gt, np.ones((1, 16)), np.array([[[0, 0], [10, 0]]], float))
  assert overall == 100.0


def test_pckh_of_another_skeleton_names_the_parameter_to_change():
  pred, visible = np.zeros((1, 4, 2)), np.ones((1, 4))
  boxes = np.array([[[0, 0], [10, 0]]], float)
  with pytest.raises(ValueError, match=r'exclude_from_mean=\(6, 7\) names joints \[6, 7\] of only '
                                       r'4.*exclude_from_mean=\(\)'):
    metrics.pckh(pred, pred, visible, boxes)
  assert metrics.pckh(pred, pred, visible, boxes, exclude_from_mean=())[1] == 100.0


def test_count_errors():
  out = metrics.count_errors(np.array([10.0, 20.0, 33.0]), np.array([12.0, 20.0, 30.0]))
  assert out['mae'] == pytest.approx(5 / 3)
  assert out['rmse'] == pytest.approx(np.sqrt((4 + 0 + 9) / 3))
