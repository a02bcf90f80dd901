"""The offline stand-in for ShanghaiTech-B crowd counting, rendered from a seed
(``'synthetic_crowd'``).

The paper's counting experiment (ShanghaiTech-B) needs a download and a GPU; this generator gives
the same task -- density maps, counts, MAE -- at 64x64 on a laptop CPU. As for the pose stand-in
(:mod:`l2r_jax.data.synthetic_pose`), each sample draws a latent ``difficulty`` in [0, 1] that
drives its clutter, occlusion, background texture, camouflage and pixel noise, returned with it as
``knobs``. People are a head disc above a body, with perspective and mutual occlusion; distractors
include head-like discs without a body.

Samples are deterministic and rendered layer by layer (:mod:`l2r_jax.data.render`); the head
points are drawn before the rendering, so labels alone are cheap (``render=False``).

Public: :func:`crowd_sample`, :func:`make_crowd`, :func:`load_synthetic_crowd`.
"""
from typing import Any, Dict, Tuple

import ml_collections
import numpy as np

from l2r_jax.data import base
from l2r_jax.data import render as render_lib
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages
from l2r_jax.data.density import density_map

# Images are rendered in [0, 1] and standardised with fixed constants (measured over 2,000
# samples), so that the scaling never depends on which samples are in a batch.
CROWD_PIXEL_MEAN, CROWD_PIXEL_STD = 0.44, 0.22


def _perspective_rows(rng: np.random.Generator, n: int, lo: float, hi: float,
                      horizon: float) -> np.ndarray:
  """Rows in ``[lo, hi)`` of people standing uniformly on a ground plane whose horizon is at row
  ``horizon`` (above the image): the density per row goes as ``1 / (y - horizon)^2``."""
  a, b = 1.0 / (lo - horizon), 1.0 / (hi - horizon)
  return horizon + 1.0 / (a - rng.uniform(size=n) * (a - b))


def _head_colours(rng: np.random.Generator, n: int) -> np.ndarray:
  """Mostly dark hair, some skin (faces), a few hats."""
  kind = rng.choice(3, size=n, p=(0.55, 0.35, 0.1))
  hair = render_lib.hsv(rng.uniform(0.02, 0.1, n), rng.uniform(0.2, 0.7, n),
                        rng.uniform(0.05, 0.3, n))
  skin = render_lib.hsv(rng.uniform(0.03, 0.1, n), rng.uniform(0.3, 0.6, n),
                        rng.uniform(0.45, 0.9, n))
  hat = render_lib.hsv(rng.uniform(size=n), rng.uniform(0, 1, n), rng.uniform(0.2, 1, n))
  return np.choose(kind[:, None], [hair, skin, hat])


def _distractors(rng: np.random.Generator, n: int, s: int, horizon: float,
                 r_bottom: float) -> Tuple[np.ndarray, np.ndarray]:
  """``n`` distractors behind the people, their coverage ``[n, s, s]`` and colours: 0 a head-like
  disc without a body, 1 a large blob, 2 a pole, 3 a small dot; sized by the perspective at their
  row (the ground's ``horizon``; a head's radius ``r_bottom`` at the bottom row)."""
  scale_at = lambda y: (y - horizon) / (s - 1 - horizon)  # noqa: E731
  kind = rng.choice(4, size=n, p=(0.35, 0.25, 0.2, 0.2))
  at = np.stack([rng.uniform(-0.5, s - 0.5, n), _perspective_rows(rng, n, -0.5, s - 0.5, horizon)],
                1)
  rd = r_bottom * scale_at(at[:, 1])
  size = rd * np.choose(kind, [rng.uniform(0.8, 1.3, n), rng.uniform(2.0, 4.0, n),
                               rng.uniform(0.3, 0.7, n), rng.uniform(0.3, 0.5, n)])
  length = np.where(kind == 2, rd * rng.uniform(4.0, 10.0, n), 0.0)
  d_alphas = render_lib.capsules(at, at + length[:, None] * [0, 1], np.maximum(size, 0.5), s)
  d_colours = np.where((kind == 0)[:, None], _head_colours(rng, n),
                       render_lib.hsv(rng.uniform(size=n), rng.uniform(0, 1, n),
                                      rng.uniform(0.1, 1, n)))
  return d_alphas, d_colours


def crowd_sample(seed: int, split: render_lib.Split, index: int, image_size: int = 64, *,
                 clean: bool = False, render: bool = True) -> Dict[str, Any]:
  """One synthetic crowd image.

  People stand on a ground plane seen in perspective: a horizon above the image sets how fast
  they shrink toward the top, and rows near the top hold more of them. A share of them stand in
  a few groups (dense, mutually occluding), the rest spread out. Each person is a head disc above
  a body (torso capsule plus shoulders); people are painted far to near, so nearer bodies hide the
  heads and bodies behind them. People whose heads are above the frame show only their bodies and
  are not counted; distractors (head-like discs without a body, large blobs, poles, small dots)
  are not people.

  Args:
    seed, split, index: the sample's identity.
    image_size: ``S``.
    clean: the people alone on black, no background, distractors or noise.
    render: False skips the image.

  Returns:
    dict with ``image`` ``float32 [S, S, 3]`` (standardised), ``points`` ``float32 [P, 2]`` head
    centres ``(x, y)`` in input pixels, all inside the frame, and ``knobs``: ``difficulty``,
    ``count``, ``distractors``, ``noise``, ``bg_contrast``, ``clustered`` (share of people in
    groups), ``head_radius`` (at the bottom row, pixels) and ``perspective`` (size at the top row
    over size at the bottom).
  """
  rng = render_lib.sample_rng(seed, split, index)
  s = image_size
  count = int(np.round(np.exp(rng.uniform(np.log(2), np.log(110)))))
  horizon = -s * rng.uniform(0.15, 2.5)
  r_bottom = rng.uniform(1.5, 3.3) * s / 64
  scale_at = lambda y: (y - horizon) / (s - 1 - horizon)  # noqa: E731
  clustered = rng.uniform(0.0, 1.0)
  n_groups = 1 + rng.poisson(1.5)
  group_y = _perspective_rows(rng, n_groups, -0.5, s - 0.5, horizon)
  group = np.stack([rng.uniform(-0.5, s - 0.5, n_groups), group_y], 1)
  member = rng.integers(n_groups, size=count)
  in_group = rng.uniform(size=count) < clustered
  # A group of m people needs about m head spacings squared of ground: its spread grows as sqrt(m).
  group_size = np.bincount(member[in_group], minlength=n_groups)
  spread = scale_at(group_y) * np.maximum(rng.uniform(2.5, 8.0, n_groups) * s / 64,
                                          1.3 * r_bottom * np.sqrt(group_size))
  points = group[member] + spread[member, None] * rng.normal(size=(count, 2)) * [1.0, 0.6]
  # The rest stand anywhere; so do group members off the frame, and (for a few rounds) anyone whose
  # head is less than a head radius from someone placed before them: crowds overlap, not merge.
  move = ~in_group | np.any((points < -0.5) | (points >= s - 0.5), axis=1)
  for _ in range(4):
    k = int(move.sum())
    if not k:
      break
    points[move] = np.stack([rng.uniform(-0.5, s - 0.5, k),
                             _perspective_rows(rng, k, -0.5, s - 0.5, horizon)], 1)
    gap = np.linalg.norm(points[:, None] - points[None], axis=-1)
    move = np.tril(gap < r_bottom * scale_at(points[:, 1])[:, None], -1).any(1)
  points = points.astype(np.float32)
  difficulty = rng.uniform()
  knobs = dict(difficulty=difficulty, count=count, distractors=rng.poisson(0.5 + 8 * difficulty),
               noise=difficulty * rng.uniform(0.0, 0.12),
               bg_contrast=rng.uniform(0.03, 0.1 + 0.25 * difficulty), clustered=clustered,
               head_radius=r_bottom, perspective=scale_at(0.0))
  out = dict(points=points, knobs=knobs)
  if not render:
    return out

  # People: the counted ones plus a few cut off by the top edge, painted far to near.
  above = rng.poisson(0.05 * count + 0.3)
  heads = np.concatenate([points, np.stack([rng.uniform(-0.5, s - 0.5, above),
                                            -rng.uniform(1.0, 6.0, above) * s / 64], 1)])
  heads = heads[np.argsort(heads[:, 1], kind='stable')]
  m = len(heads)
  r = r_bottom * scale_at(heads[:, 1]) * rng.uniform(0.85, 1.15, m)
  body = render_lib.capsules(heads + r[:, None] * [0, 1.4], heads + r[:, None] * [0, 3.8],
                             1.1 * r, s)
  shoulders = render_lib.capsules(heads + r[:, None] * [-1.2, 1.9], heads + r[:, None] * [1.2, 1.9],
                                  0.6 * r, s)
  body_colours = render_lib.hsv(rng.uniform(size=m), rng.uniform(0.1, 0.9, m),
                                rng.uniform(0.2, 0.95, m))
  alphas = np.stack([np.maximum(body, shoulders), render_lib.capsules(heads, heads, r, s)], 1)
  colours = np.stack([body_colours, _head_colours(rng, m)], 1)
  alphas, colours = alphas.reshape(2 * m, s, s), colours.reshape(2 * m, 3)
  if clean:
    image = render_lib.composite(np.zeros((3, s, s), np.float32), alphas, colours)
    out['image'] = render_lib.finish(rng, image, 0.0, CROWD_PIXEL_MEAN, CROWD_PIXEL_STD)
    return out

  background = render_lib.background(rng, s, knobs['bg_contrast'])
  d_alphas, d_colours = _distractors(rng, knobs['distractors'], s, horizon, r_bottom)
  image = render_lib.composite(background, np.concatenate([d_alphas, alphas]),
                               np.concatenate([d_colours.reshape(-1, 3), colours]))
  out['image'] = render_lib.finish(rng, image, knobs['noise'], CROWD_PIXEL_MEAN, CROWD_PIXEL_STD)
  return out


def make_crowd(n: int, seed: int, split: render_lib.Split, image_size: int = 64,
               density_stride: int = 4, sigma: float = 1.0, *,
               clean: bool = False) -> Dict[str, Any]:
  """``n`` crowd samples stacked: ``images [n, S, S, 3]``, ``points`` (a list of ``[P_i, 2]``),
  ``counts`` ``int32 [n]``, ``density`` ``float32 [n, S/stride, S/stride]`` (each sums to its
  count; :func:`~l2r_jax.data.density.density_map`) and ``knobs``; see :func:`crowd_sample`."""
  samples = [crowd_sample(seed, split, i, image_size, clean=clean) for i in range(n)]
  out = _crowd_labels([x['points'] for x in samples], image_size, density_stride, sigma)
  out['images'] = np.stack([x['image'] for x in samples]).reshape(n, image_size, image_size, 3)
  out['knobs'] = ({k: np.array([x['knobs'][k] for x in samples]) for k in samples[0]['knobs']}
                  if n else {})
  return out


def _crowd_labels(points, image_size: int, stride: int, sigma: float) -> Dict[str, Any]:
  h = image_size // stride
  density = np.stack([density_map(p, (h, h), sigma, stride) for p in points]).reshape(-1, h, h)
  return dict(points=list(points), counts=np.array([len(p) for p in points], np.int32),
              density=density)


def _crowd_split(config: ml_collections.ConfigDict, split: str, n: int, scale: float):
  """Images, scaled density maps and counts of one split. ``image_size`` may be ``(h, w)``: scenes
  are then made on a square of side ``max(h, w)`` and the centre cut out, heads outside dropped."""
  seed, size = config.get('seed', 0), config.get('image_size', 64)
  stride, sigma = config.get('density_stride', 4), config.get('sigma', 1.0)
  if isinstance(size, int) and not config.get('lazy', False):
    d = make_crowd(n, seed, split, size, stride, sigma)
    return d['images'], scale * d['density'], d['counts']
  h, w = (size, size) if isinstance(size, int) else tuple(size)
  side = max(h, w)
  y0, x0 = (side - h) // 2, (side - w) // 2
  points = []
  for i in range(n):
    p = crowd_sample(seed, split, i, side, render=False)['points'] - [x0, y0]
    points.append(p[(p[:, 0] >= -0.5) & (p[:, 0] < w - 0.5) & (p[:, 1] >= -0.5)
                    & (p[:, 1] < h - 0.5)])
  images = LazyImages(n, (h, w, 3), lambda i: crowd_sample(seed, split, i, side)['image'][
      y0:y0 + h, x0:x0 + w])
  shape = (h // stride, w // stride)
  density = LazyImages(n, shape, lambda i: scale * density_map(points[i], shape, sigma, stride))
  return images, density, np.array([len(p) for p in points], np.int32)


def load_synthetic_crowd(config: ml_collections.ConfigDict) -> Dataset:
  """Synthetic ShanghaiTech-B: crowd images and scaled density maps.

  ``config`` fields (defaults): ``num_train`` (400), ``num_test`` (200), ``seed`` (0),
  ``image_size`` (64, or ``(h, w)``), ``density_stride`` (4: the maps are ``S / 4`` on a side),
  ``sigma`` (1.0, map pixels), ``density_scale`` (100.0: targets are ``density_scale`` x the
  density, the C^3 framework's LOG_PARA, so they are not vanishingly small), ``lazy`` (False),
  ``normalize`` ('synthetic' or 'imagenet', as for pose).
  ``task_params`` also carries the true ``counts_train`` and ``counts_test``. With ``lazy`` (or a
  rectangular ``image_size``) images and density maps are made on demand, labels up front.
  """
  normalisation = base.normalisation(config, 'synthetic_crowd', render_lib.NORMALISATIONS)
  scale = float(config.get('density_scale', 100.0))
  x_train, d_train, c_train = _crowd_split(config, 'train', config.get('num_train', 400), scale)
  x_test, d_test, c_test = _crowd_split(config, 'test', config.get('num_test', 200), scale)
  x_train, x_test = (render_lib.renormalised(x, CROWD_PIXEL_MEAN, CROWD_PIXEL_STD, normalisation)
                     for x in (x_train, x_test))
  return Dataset(x_train, d_train, x_test, d_test, num_outputs=1, task='crowd',
                 task_params={'density_scale': scale, 'counts_train': c_train,
                              'counts_test': c_test, 'normalisation': normalisation})
