"""Rendering primitives of the synthetic stand-ins (:mod:`~l2r_jax.data.synthetic_pose`,
:mod:`~l2r_jax.data.synthetic_crowd`) and of the shapes that pretrain their backbone
(:mod:`~l2r_jax.data.shapes`).

**Determinism.** Sample ``i`` of a split is drawn from ``np.random.default_rng([seed, split, i])``
(:func:`sample_rng`), so it is the same whatever ``n`` is, and can be made on demand (``lazy=True``
pools through :class:`~l2r_jax.data.base.LazyImages`). Within a sample, the labels are drawn first
and the rendering after, so labels alone are cheap (``render=False``) and a ``clean`` render (the
figure or crowd alone on black, for tests) shows exactly the labelled geometry.

**Rendering.** Every shape is a layer with an anti-aliased coverage ``alpha [H, W]``: capsules
(thick segments; discs are zero-length capsules) from the distance to the segment, convex quads
from their edge half-planes, all evaluated on the whole pixel grid at once; the layers are then
painted back to front (:func:`composite`). Pixel centres are at integers, ``x`` to the right,
``y`` down.
"""
import colorsys
import functools
from typing import Tuple, Union

import numpy as np

from l2r_jax.data import base
from l2r_jax.data.base import LazyImages

Split = Union[str, int]
SPLITS = {'train': 0, 'test': 1}

# config.data.normalize: 'synthetic', each generator's fixed constants, or 'imagenet' (the
# same pixels in [0, 1], standardised with ImageNet's per-channel mean and std).
NORMALISATIONS = ('synthetic', 'imagenet')


def renormalised(images, mean: float, std: float, normalisation: str):
  """Images standardised with ``(mean, std)`` as ``normalisation`` says (an array or a
  :class:`LazyImages`, whose rows are then mapped as they are read)."""
  if normalisation == 'synthetic':
    return images
  scale = np.float32(std) / base.IMAGENET_STD
  shift = (np.float32(mean) - base.IMAGENET_MEAN) / base.IMAGENET_STD

  def to_imagenet(x):
    return (x * scale + shift).astype(np.float32)

  if isinstance(images, LazyImages):
    read = images._read  # pylint: disable=protected-access
    return LazyImages(len(images), images.shape[1:], lambda i: to_imagenet(read(i)))
  return to_imagenet(images)


def sample_rng(seed: int, split: Split, index: int) -> np.random.Generator:
  """The generator of sample ``index`` of ``split`` ('train', 'test' or a number)."""
  return np.random.default_rng([int(seed), SPLITS.get(split, split), int(index)])



@functools.lru_cache(maxsize=8)
def grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
  """Pixel-centre coordinates ``(xx, yy)``, each ``[size, size]`` float32 (read-only, cached)."""
  c = np.arange(size, dtype=np.float32)
  return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


def capsules(p0: np.ndarray, p1: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
  """Coverage ``[N, size, size]`` of ``N`` thick segments ``p0 -> p1`` (``[N, 2]``, ``(x, y)``).

  A pixel's coverage is ``clip(radius + 0.5 - distance to the segment, 0, 1)``: one pixel of
  linear fall-off, a cheap anti-aliasing that keeps thin strokes (radius < 1) visible.
  """
  xx, yy = grid(size)
  p0 = np.asarray(p0, np.float32).reshape(-1, 2)[:, :, None, None]
  v = np.asarray(p1, np.float32).reshape(-1, 2)[:, :, None, None] - p0
  wx, wy = xx - p0[:, 0], yy - p0[:, 1]
  t = np.clip((wx * v[:, 0] + wy * v[:, 1]) / ((v**2).sum(1) + 1e-6), 0.0, 1.0)
  dist = np.sqrt((wx - t * v[:, 0])**2 + (wy - t * v[:, 1])**2)
  r = np.asarray(radius, np.float32).reshape(-1, 1, 1)
  return np.clip(r + 0.5 - dist, 0.0, 1.0)


def quads(corners: np.ndarray, size: int) -> np.ndarray:
  """Coverage ``[N, size, size]`` of convex quadrilaterals ``corners [N, 4, 2]`` (either winding).

  The signed distance inside a convex polygon is the smallest distance to its edge lines.
  """
  xx, yy = grid(size)
  a = np.asarray(corners, np.float32)
  e = np.roll(a, -1, axis=1) - a                                    # edges a_i -> a_{i+1}
  winding = np.sign((a[:, :, 0] * np.roll(a[:, :, 1], -1, 1)
                     - np.roll(a[:, :, 0], -1, 1) * a[:, :, 1]).sum(1))
  n = np.stack([-e[..., 1], e[..., 0]], -1) * winding[:, None, None]  # inward normals
  n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-6
  sd = ((xx - a[..., 0, None, None]) * n[..., 0, None, None]
        + (yy - a[..., 1, None, None]) * n[..., 1, None, None])     # [N, 4, H, W]
  return np.clip(sd.min(1) + 0.5, 0.0, 1.0)


def composite(background: np.ndarray, alphas: np.ndarray, colours: np.ndarray) -> np.ndarray:
  """Paints layers ``alphas [L, H, W]`` of ``colours [L, 3]`` over ``background [3, H, W]``, in
  order (the painter's algorithm). The loop is over layers only, each step whole-image; it beats
  a cumulative product of transmittances over the layer axis, which numpy runs element by element.
  Images are channels-first until :func:`finish`: broadcasting over a trailing axis of 3 is
  several times slower.
  """
  image = np.array(background, np.float32)
  step = np.empty_like(image)
  for alpha, colour in zip(alphas, np.asarray(colours, np.float32)):
    np.subtract(colour[:, None, None], image, out=step)
    step *= alpha
    image += step
  return image


def hsv(h, s, v) -> np.ndarray:
  """HSV in [0, 1] (broadcast) to RGB ``[..., 3]``."""
  if np.ndim(h) == np.ndim(s) == np.ndim(v) == 0:   # most calls: one colour, 20x faster this way
    return np.array(colorsys.hsv_to_rgb(float(h) % 1.0, float(s), float(v)))
  h, s, v = np.broadcast_arrays(np.asarray(h, np.float64) % 1.0, s, v)
  i = np.floor(h * 6.0).astype(int) % 6
  f = h * 6.0 - np.floor(h * 6.0)
  p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
  r = np.choose(i, [v, q, p, p, t, v])
  g = np.choose(i, [t, v, v, q, p, p])
  b = np.choose(i, [p, p, t, v, v, q])
  return np.stack([r, g, b], -1)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
  """Value noise ``[channels, size, size]``: a random ``cells``-wide grid, smoothly interpolated."""
  u = (np.arange(size) + 0.5) / size * cells
  i = np.minimum(np.floor(u).astype(int), cells - 1)
  f = u - i
  f = f * f * (3 - 2 * f)
  m = np.zeros((size, cells + 1))
  m[np.arange(size), i] = 1 - f
  m[np.arange(size), i + 1] = f
  g = rng.normal(size=(cells + 1, cells + 1, channels))
  return np.tensordot(m, np.tensordot(m, g, (1, 1)), (1, 1)).transpose(2, 0, 1)


def background(rng: np.random.Generator, size: int, contrast: float) -> np.ndarray:
  """A textured background ``[3, size, size]`` in roughly [0, 1]: a base colour plus a mix of
  smooth noise, stripes and a gradient, scaled so its standard deviation is ``contrast``."""
  xx, yy = grid(size)
  base = hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.8))
  tex = np.zeros((3, size, size), np.float32)
  for cells in (2, 4, 9):
    noise = smooth_noise(rng, size, cells, 4)          # luminance and colour, channels first
    tex += rng.uniform(0.0, 1.0) * (noise[:1] + rng.uniform(0.0, 0.6) * noise[1:])
  if rng.uniform() < 0.3:                                   # stripes: fabric, fences, tiles
    angle, period = rng.uniform(0, np.pi), rng.uniform(3.0, 14.0) * size / 64
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
    sharp = rng.uniform(0.5, 4.0)
    tex += rng.uniform(0.5, 2.0) * np.tanh(sharp * np.sin(phase)) * rng.normal(size=(3, 1, 1))
  if rng.uniform() < 0.6:                                   # a lighting gradient
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle)) / size
    tex += rng.uniform(1.0, 4.0) * ramp * (1.0 + 0.3 * rng.normal(size=(3, 1, 1)))
  tex *= contrast / (tex.std() + 1e-6)
  return (base[:, None, None] + tex).astype(np.float32)


def finish(rng: np.random.Generator, image: np.ndarray, noise: float, mean: float,
            std: float) -> np.ndarray:
  """Pixel noise, clipping to [0, 1] and standardisation; ``[3, S, S]`` in, ``[S, S, 3]`` out."""
  image = image + np.float32(noise) * rng.standard_normal(image.shape, np.float32)
  image = (np.clip(image, 0.0, 1.0) - np.float32(mean)) / np.float32(std)
  return np.ascontiguousarray(image.transpose(1, 2, 0), np.float32)


def direction(angle: np.ndarray) -> np.ndarray:
  """Unit vectors ``[..., 2]`` at ``angle`` radians clockwise from 'up' on screen (``y`` down)."""
  return np.stack([np.sin(angle), -np.cos(angle)], -1)
