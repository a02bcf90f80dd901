"""Evaluation metrics: Spearman's rho, PCKh for human pose, count errors for crowds."""
from typing import Dict, Sequence, Tuple

import chex
import numpy as np

from sorter.ranking import spearman  # Spearman's rho with average ranks for ties

# MPII joint order (as in the MPII annotations and SimpleBaseline): 0 r-ankle, 1 r-knee, 2 r-hip,
# 3 l-hip, 4 l-knee, 5 l-ankle, 6 pelvis, 7 thorax, 8 upper neck, 9 head top, 10 r-wrist,
# 11 r-elbow, 12 r-shoulder, 13 l-shoulder, 14 l-elbow, 15 l-wrist.
MPII_MEAN_EXCLUDES = (6, 7)  # the standard "Mean" leaves out pelvis and thorax
HEAD_SIZE_SCALE = 0.6        # head size = 0.6 x the head box diagonal (MPII's SC_BIAS)


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_boxes: np.ndarray,
         threshold: float = 0.5,
         exclude_from_mean: Sequence[int] = MPII_MEAN_EXCLUDES) -> Tuple[np.ndarray, float]:
  """PCKh@threshold as the MPII evaluation computes it (percentages).

  A visible joint is correct when its predicted position lies within ``threshold`` head sizes of
  the truth, a head size being 0.6 times the diagonal of the person's head box.

  Args:
    pred, gt: ``[N, K, 2]`` joint positions (pixels).
    visible: ``[N, K]``, true where the joint is annotated; the rest are ignored.
    head_boxes: ``[N, 2, 2]``, two opposite corners ``(x, y)`` of each head box.
    threshold: fraction of the head size.
    exclude_from_mean: joints left out of the overall score.

  Returns:
    ``(per_joint [K], overall)``: per-joint PCKh, and their mean over the other joints weighted by
    how many visible instances each has.
  """
  chex.assert_equal_shape((pred, gt))
  chex.assert_rank(pred, 3)
  chex.assert_shape(visible, pred.shape[:2])
  chex.assert_shape(head_boxes, (pred.shape[0], 2, 2))
  head_size = HEAD_SIZE_SCALE * np.linalg.norm(head_boxes[:, 1] - head_boxes[:, 0], axis=-1)
  err = np.linalg.norm(pred - gt, axis=-1) / head_size[:, None]
  visible = np.asarray(visible, bool)
  count = visible.sum(0)
  hits = ((err <= threshold) & visible).sum(0)
  per_joint = 100.0 * hits / np.maximum(count, 1)
  keep = np.ones(pred.shape[1], bool)
  outside = [j for j in exclude_from_mean if not -pred.shape[1] <= j < pred.shape[1]]
  if outside:
    raise ValueError(f'pckh: exclude_from_mean={tuple(exclude_from_mean)} names joints {outside} '
                     f'of only {pred.shape[1]}; the default excludes MPII\'s pelvis and thorax '
                     '(6, 7): give exclude_from_mean=() for another skeleton.')
  keep[list(exclude_from_mean)] = False
  weights = count * keep
  overall = float((per_joint * weights).sum() / max(weights.sum(), 1))
  return per_joint, overall


def count_errors(pred_counts: np.ndarray, gt_counts: np.ndarray) -> Dict[str, float]:
  """Crowd-counting errors: ``mae`` and ``rmse`` of the counts (the latter is what crowd-counting
  papers, the C^3 framework among them, report as "MSE")."""
  chex.assert_equal_shape((pred_counts, gt_counts))
  d = np.asarray(pred_counts, np.float64) - np.asarray(gt_counts, np.float64)
  return {'mae': float(np.abs(d).mean()), 'rmse': float(np.sqrt((d**2).mean()))}


__all__ = ['count_errors', 'pckh', 'spearman']
