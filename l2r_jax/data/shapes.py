"""A generated classification task for pretraining backbones offline, in ImageNet's role.

The paper's pose and crowd models start from a backbone pretrained on ImageNet: a labeled source
task from another domain, whose features (edges, textures, parts) transfer. The offline stand-ins
(:mod:`l2r_jax.data.synthetic_pose`, :mod:`l2r_jax.data.synthetic_crowd`) need the same, with no
download: ten classes of shapes built from the parts people and crowds are drawn with (bars like
limbs, discs like heads, joints, corners; :mod:`l2r_jax.data.render`), each at a random size,
rotation, place and colour over the stand-ins' textured backgrounds, with clutter strokes and
pixel noise. Classifying them teaches low-level features that transfer to both stand-ins, as
ImageNet's do, without a single pose or crowd image: sample ``i`` is drawn from
``np.random.default_rng([seed, SOURCE_STREAM, i])``, a stream the stand-ins never use, and no
shape is a figure or a crowd. Images are standardised with the pose stand-in's constants
(``synthetic_pose.POSE_PIXEL_MEAN``, ``POSE_PIXEL_STD``; the crowd stand-in's differ by 0.01 in
the standard deviation), so the backbone expects the stand-ins' own normalisation,
``'synthetic'``.
"""
from typing import Dict

import numpy as np

from l2r_jax.data import render
from l2r_jax.data import synthetic_pose

CLASSES = ('disc', 'bar', 'cross', 'vee', 'tee', 'box', 'dumbbell', 'zigzag', 'pair', 'arc')
SOURCE_STREAM = 7  # the stand-ins draw from streams 0 (train) and 1 (test)
NORMALISATION = 'synthetic'


def _parts(rng: np.random.Generator, label: int):
  """A shape in a unit frame (about [-0.5, 0.5]^2): capsules ``(p0 [N, 2], p1 [N, 2], radius [N])``
  and convex quads ``[M, 4, 2]``."""
  w = rng.uniform(0.06, 0.13)  # stroke half-width
  name = CLASSES[label]
  caps, quads = [], []
  if name == 'disc':
    caps.append(((0, 0), (0, 0), rng.uniform(0.2, 0.4)))
  elif name == 'bar':
    caps.append(((-0.5, 0), (0.5, 0), w))
  elif name == 'cross':
    caps += [((-0.5, 0), (0.5, 0), w), ((0, -0.5), (0, 0.5), w)]
  elif name == 'vee':
    half = rng.uniform(0.25, 0.6)  # half the opening angle, radians
    caps += [((0, -0.3), (0.6 * np.sin(s * half), -0.3 + 0.6 * np.cos(half)), w) for s in (-1, 1)]
  elif name == 'tee':
    caps += [((-0.5, -0.4), (0.5, -0.4), w), ((0, -0.4), (0, 0.5), w)]
  elif name == 'box':
    a, b = rng.uniform(0.25, 0.5), rng.uniform(0.25, 0.5)
    quads.append(((-a, -b), (a, -b), (a, b), (-a, b)))
  elif name == 'dumbbell':
    r = rng.uniform(0.12, 0.2)
    caps += [((-0.45, 0), (0.45, 0), w * 0.7), ((-0.45, 0), (-0.45, 0), r), ((0.45, 0), (0.45, 0), r)]
  elif name == 'zigzag':
    xs = np.linspace(-0.5, 0.5, 4)
    ys = np.array([-1, 1, -1, 1]) * rng.uniform(0.15, 0.3)
    caps += [((xs[k], ys[k]), (xs[k + 1], ys[k + 1]), w) for k in range(3)]
  elif name == 'pair':
    r = rng.uniform(0.12, 0.22)
    caps += [((-0.3, 0), (-0.3, 0), r), ((0.3, 0), (0.3, 0), r)]
  elif name == 'arc':
    t = np.linspace(-1.0, 1.0, 6) * rng.uniform(0.8, 1.4)
    pts = np.stack([0.5 * np.sin(t), 0.5 - 0.5 * np.cos(t)], 1) - (0, 0.25)
    caps += [(pts[k], pts[k + 1], w) for k in range(5)]
  p0 = np.array([c[0] for c in caps], np.float64).reshape(-1, 2)
  p1 = np.array([c[1] for c in caps], np.float64).reshape(-1, 2)
  radius = np.array([c[2] for c in caps], np.float64)
  return p0, p1, radius, np.array(quads, np.float64).reshape(-1, 4, 2)


MAX_KEYPOINTS = 6  # the most a shape has: an arc's 6 stroke ends


def _keypoints(p0, p1, quads) -> np.ndarray:
  """A shape's ends and corners in its unit frame, each once: ``[K, 2]``, ``K <= MAX_KEYPOINTS``."""
  points = np.concatenate([p0, p1, quads.reshape(-1, 2)])
  _, first = np.unique(np.round(points, 9), axis=0, return_index=True)
  return points[np.sort(first)]


def shapes_sample(seed: int, index: int, image_size: int = 64) -> Dict[str, np.ndarray]:
  """Sample ``index``: ``image`` ``float32 [S, S, 3]`` (standardised as the stand-ins'),
  ``label`` (an index into :data:`CLASSES`) and ``keypoints`` ``float32 [MAX_KEYPOINTS, 2]``, the
  shape's stroke ends and corners as (x, y) pixel coordinates, NaN past the shape's own (the
  localisation source task of ``configs/pretrain_shapes.py:keypoints``; drawing them takes no
  random numbers, so images and labels are the same with them or without)."""
  rng = np.random.default_rng([int(seed), SOURCE_STREAM, int(index)])
  s = image_size
  label = int(rng.integers(len(CLASSES)))
  p0, p1, radius, quads = _parts(rng, label)
  size = s * rng.uniform(0.35, 0.8)
  angle = rng.uniform(0, 2 * np.pi)
  rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  aspect = np.array([1.0, rng.uniform(0.7, 1.3)])  # a little stretch, before the rotation
  centre = (s - 1) / 2 + rng.uniform(-0.15, 0.15, 2) * s

  def place(p):
    return (p * aspect) @ rot.T * size + centre

  layers = []
  if len(p0):
    layers.append(render.capsules(place(p0), place(p1), np.maximum(radius * size, 0.6),
                                  s).max(0))
  if len(quads):
    layers.append(render.quads(place(quads.reshape(-1, 2)).reshape(-1, 4, 2), s).max(0))
  shape = np.max(layers, 0)
  difficulty = rng.uniform()
  background = render.background(rng, s, rng.uniform(0.03, 0.12 + 0.3 * difficulty))
  n_clutter = rng.poisson(0.5 + 6 * difficulty)
  c0 = rng.uniform(-0.1 * s, 1.1 * s, (n_clutter, 2))
  c1 = c0 + rng.uniform(0.05, 0.3, (n_clutter, 1)) * s * render.direction(
      rng.uniform(0, 2 * np.pi, n_clutter))
  clutter = render.capsules(c0, c1, rng.uniform(0.6, 0.06 * s, n_clutter), s)
  colours = render.hsv(rng.uniform(size=n_clutter + 1), rng.uniform(0, 1, n_clutter + 1),
                       rng.uniform(0.1, 1, n_clutter + 1)).reshape(-1, 3)
  image = render.composite(background, np.concatenate([clutter, shape[None]]), colours)
  image = render.finish(rng, image, difficulty * rng.uniform(0.0, 0.1),
                        synthetic_pose.POSE_PIXEL_MEAN, synthetic_pose.POSE_PIXEL_STD)
  keypoints = np.full((MAX_KEYPOINTS, 2), np.nan, np.float32)
  own = place(_keypoints(p0, p1, quads))
  keypoints[:len(own)] = own
  return {'image': image, 'label': np.int32(label), 'keypoints': keypoints}


def make_shapes(n: int, seed: int, image_size: int = 64, start: int = 0) -> Dict[str, np.ndarray]:
  """Samples ``start .. start + n - 1``: ``images [n, S, S, 3]``, ``labels [n]`` int32 and
  ``keypoints [n, MAX_KEYPOINTS, 2]``."""
  samples = [shapes_sample(seed, i, image_size) for i in range(start, start + n)]
  return {'images': np.stack([x['image'] for x in samples]).reshape(n, image_size, image_size, 3),
          'labels': np.array([x['label'] for x in samples], np.int32),
          'keypoints': np.stack([x['keypoints'] for x in samples]).reshape(n, MAX_KEYPOINTS, 2)}


__all__ = ['CLASSES', 'MAX_KEYPOINTS', 'NORMALISATION', 'make_shapes', 'shapes_sample']
