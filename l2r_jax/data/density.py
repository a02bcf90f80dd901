"""Crowd density maps from head points."""
import numpy as np


def density_map(points: np.ndarray, shape, sigma: float, stride: int = 1) -> np.ndarray:
  """A density map ``[H, W]`` with one Gaussian per head, each summing to exactly 1.

  Args:
    points: ``[P, 2]`` head positions ``(x, y)`` in input pixels (pixel centres at integers).
      Points outside the image are dropped.
    shape: ``(H, W)`` of the map, the input size divided by ``stride``.
    sigma: the Gaussian's standard deviation, in map pixels.
    stride: input pixels per map pixel; a head at input ``x`` sits at map ``(x + 0.5) / stride
      - 0.5``.

  Each Gaussian is separable and renormalised over the map, so the map sums to the number of heads
  inside the image (a head near the border keeps its full unit of mass).
  """
  h, w = shape
  points = np.asarray(points, np.float64).reshape(-1, 2)
  inside = ((points[:, 0] >= -0.5) & (points[:, 0] < w * stride - 0.5) &
            (points[:, 1] >= -0.5) & (points[:, 1] < h * stride - 0.5))
  centres = (points[inside] + 0.5) / stride - 0.5
  gx = np.exp(-0.5 * ((np.arange(w)[None, :] - centres[:, :1]) / sigma)**2)
  gy = np.exp(-0.5 * ((np.arange(h)[None, :] - centres[:, 1:]) / sigma)**2)
  gx /= gx.sum(1, keepdims=True)
  gy /= gy.sum(1, keepdims=True)
  return (gy.T @ gx).astype(np.float32)
