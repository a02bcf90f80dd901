"""What each task means: its per-sample training loss, how predictions are decoded and scored.

A :class:`Task` is built once per experiment from the dataset (``Task.for_dataset``). Its ``loss``
is what the target trains on (the mean over the batch, eq. 2) and what loss-prediction modules learn
to rank; its ``decode`` turns model outputs into what the metric reads, on device, so evaluation
never holds whole heatmaps on the host.

* classification: cross-entropy; accuracy.
* pose (SimpleBaseline, Xiao et al. 2018): Gaussian target heatmaps (``sigma`` heatmap pixels)
  rendered on device from the joints; joint-weighted heatmap MSE; joints decoded by arg-max with
  the quarter-pixel shift toward the higher neighbour; PCKh@0.5 (MPII's evaluation).
* crowd (the C^3 framework's recipe): density-map MSE; count = map sum / ``density_scale``;
  MAE (and RMSE, which counting papers call MSE) of the counts.
"""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import chex
import jax.numpy as jnp
import numpy as np
import optax

from l2r_jax import metrics

# Metric each task reports, and whether higher is better.
METRICS = {'classification': ('accuracy', True), 'pose': ('pckh', True), 'crowd': ('mae', False)}


def cross_entropy(logits: chex.Array, labels: chex.Array) -> chex.Array:
  """Per-sample cross-entropy ``[B]`` of integer labels."""
  chex.assert_rank(logits, 2)
  chex.assert_rank(labels, 1)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def render_heatmaps(joints: chex.Array, heatmap_size: Tuple[int, int], sigma: float) -> chex.Array:
  """Target heatmaps ``[B, H, W, K]``: ``exp(-|p - j_k|^2 / 2 sigma^2)`` around each joint ``j_k``
  (``joints [B, K, 3]`` = x, y in heatmap pixels, weight), peak 1 at the joint."""
  chex.assert_rank(joints, 3)
  h, w = heatmap_size
  dx = jnp.arange(w, dtype=jnp.float32)[None, None, :] - joints[:, :, 0, None]  # [B, K, W]
  dy = jnp.arange(h, dtype=jnp.float32)[None, None, :] - joints[:, :, 1, None]  # [B, K, H]
  g = jnp.exp(-0.5 * (dy[..., :, None]**2 + dx[..., None, :]**2) / sigma**2)    # [B, K, H, W]
  return jnp.moveaxis(g, 1, -1)


def heatmap_mse(heatmaps: chex.Array, joints: chex.Array, sigma: float) -> chex.Array:
  """SimpleBaseline's joint-weighted heatmap MSE, per sample ``[B]``:
  ``0.5 * mean_k mean_pixels (w_k * (pred_k - target_k))^2``."""
  chex.assert_rank(heatmaps, 4)
  chex.assert_shape(joints, (heatmaps.shape[0], heatmaps.shape[-1], 3))
  target = render_heatmaps(joints, heatmaps.shape[1:3], sigma)
  w = joints[:, None, None, :, 2]
  return 0.5 * jnp.mean((w * (heatmaps - target))**2, axis=(1, 2, 3))


def decode_heatmaps(heatmaps: chex.Array) -> chex.Array:
  """Joint positions ``[B, K, 2]`` (x, y heatmap pixels) from heatmaps ``[B, H, W, K]``: the
  arg-max, moved a quarter pixel toward the higher neighbour along x and y (where it has both
  neighbours)."""
  chex.assert_rank(heatmaps, 4)
  b, h, w, k = heatmaps.shape
  maps = jnp.moveaxis(heatmaps, -1, 1).reshape(b, k, h * w)
  idx = jnp.argmax(maps, axis=-1)
  px, py = idx % w, idx // w

  def at(x, y):
    return jnp.take_along_axis(maps, (jnp.clip(y, 0, h - 1) * w + jnp.clip(x, 0, w - 1))[..., None],
                               axis=-1)[..., 0]

  sx = jnp.where((px > 0) & (px < w - 1), jnp.sign(at(px + 1, py) - at(px - 1, py)), 0.0)
  sy = jnp.where((py > 0) & (py < h - 1), jnp.sign(at(px, py + 1) - at(px, py - 1)), 0.0)
  return jnp.stack([px + 0.25 * sx, py + 0.25 * sy], axis=-1).astype(jnp.float32)


def density_mse(density: chex.Array, target: chex.Array) -> chex.Array:
  """Per-sample mean squared error ``[B]`` of a density map ``[B, H, W, 1]`` against ``[B, H, W]``."""
  chex.assert_rank(density, 4)
  chex.assert_shape(target, density.shape[:3])
  return jnp.mean((density[..., 0] - target)**2, axis=(1, 2))


def _identity(x):
  return x


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """A task's functions, bound to its parameters. Built once per experiment (hashable by identity,
  so jitted steps that close over them compile once)."""
  name: str
  loss: Callable[[chex.Array, chex.Array], chex.Array]      # (prediction, y) -> [B]
  decode: Callable[[chex.Array], chex.Array]                # prediction -> what `score` reads
  truth: Callable[[chex.Array], chex.Array]                 # y -> what `score` compares with
  score: Callable[[np.ndarray, np.ndarray], Dict[str, Any]]  # (decoded, truth) -> metrics
  params: Mapping[str, Any]
  prediction_shape: Tuple[int, ...] = ()   # one sample's prediction, as a target must give it
  crop_stride: Optional[int] = None        # config.augment.crop's multiple (None: no crop)

  @property
  def metric(self) -> str:
    return METRICS[self.name][0]

  @property
  def higher_is_better(self) -> bool:
    return METRICS[self.name][1]

  @property
  def classifies(self) -> bool:
    """Its predictions are class logits ``[B, classes]``, its labels class indices."""
    return self.name == 'classification'

  def crop_problem(self, crop: Optional[Sequence[int]], image_shape: Sequence[int]
                   ) -> Optional[str]:
    """Why ``crop`` (``config.augment.crop``, ``(h, w)`` input pixels) cannot cut this task's
    images of ``image_shape`` (``[H, W, C]``); None where it can, or the task takes no crop."""
    if self.crop_stride is None or crop is None:
      return None
    crop = tuple(crop)
    if (len(crop) != 2 or any(c % self.crop_stride for c in crop)
        or crop[0] > image_shape[0] or crop[1] > image_shape[1]):
      return (f'must be (h, w), multiples of the density stride {self.crop_stride}, and fit in '
              f'the images {tuple(image_shape[:2])}')
    return None

  @classmethod
  def for_dataset(cls, dataset) -> 'Task':
    p = dict(dataset.task_params)
    if dataset.task == 'classification':
      return cls('classification', cross_entropy, lambda logits: jnp.argmax(logits, -1), _identity,
                 lambda labels, y: {'accuracy': float(np.mean(labels == y))}, p,
                 (dataset.num_outputs,))
    if dataset.task == 'pose':
      sigma, head_boxes = float(p['sigma']), np.asarray(dataset.test_meta['head_boxes'])
      # Scored joints: the annotated ones (MPII counts those outside the crop too), else those
      # with a target.
      visible = dataset.test_meta.get('visible')

      def score_pose(joints, y):
        mask = y[..., 2] > 0 if visible is None else np.asarray(visible, bool)
        per_joint, overall = metrics.pckh(joints, y[..., :2], mask, head_boxes)
        return {'pckh': overall, 'pckh_per_joint': [round(float(v), 2) for v in per_joint]}

      return cls('pose', lambda hm, y: heatmap_mse(hm, y, sigma), decode_heatmaps, _identity,
                 score_pose, p, (*p.get('heatmap_size', ()), dataset.num_outputs))
    if dataset.task == 'crowd':
      scale = float(p['density_scale'])
      # Counts: map sums over the density scale (each head's Gaussian sums to 1 in the target).
      density_shape = tuple(dataset.y_train.shape[1:])
      return cls('crowd', density_mse, lambda d: jnp.sum(d, axis=(1, 2, 3)) / scale,
                 lambda y: jnp.sum(y, axis=(1, 2)) / scale, metrics.count_errors, p,
                 (*density_shape, 1), dataset.x_train.shape[1] // density_shape[0])
    raise ValueError(f'dataset.task={dataset.task!r}: not one of classification, pose, crowd.')
