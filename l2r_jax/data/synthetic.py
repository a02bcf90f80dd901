"""Offline stand-ins for MPII human pose and ShanghaiTech-B crowd counting, rendered from a seed.

The paper's regression experiments (MPII, ShanghaiTech-B) need downloads and GPUs; these two
generators give the same tasks -- same label formats, same metrics -- at 64x64 on a laptop CPU, so
the active-learning loop can be run end to end in minutes. Two properties matter for that use and
shaped every choice below:

* **Difficulty varies from sample to sample.** Each sample draws a latent ``difficulty`` in [0, 1]
  that drives how much clutter, occlusion, background texture, camouflage and pixel noise it gets
  (and, for pose, how small the figure is). A strategy that finds the hard samples therefore has
  something to find, and one that ranks losses well should beat random sampling. The knobs each
  sample drew are returned with it, for tests and analysis.
* **Learnable, but not from a glance.** Pose figures are articulated stick people with MPII's 16
  joints, the person's right limbs always warm (red/orange) and left limbs always cool (cyan/blue),
  as real images carry left/right cues; clutter strokes sometimes take the figure's own colours.
  Crowd people are a head disc above a body, with perspective and mutual occlusion; distractors
  include head-like discs without a body.

**Determinism.** Sample ``i`` of a split is drawn from ``np.random.default_rng([seed, split, i])``,
so it is the same whatever ``n`` is, and can be made on demand (``lazy=True`` pools through
:class:`~l2r_jax.data.base.LazyImages`). Within a sample, the labels (skeleton, head points) are
drawn first and the rendering after, so labels alone are cheap (``render=False``) and a ``clean``
render (the figure or crowd alone on black, for tests) shows exactly the labelled geometry.

**Rendering.** Every shape is a layer with an anti-aliased coverage ``alpha [H, W]``: capsules
(thick segments; discs are zero-length capsules) from the distance to the segment, convex quads
from their edge half-planes, all evaluated on the whole pixel grid at once; the layers are then
painted back to front (:func:`_composite`). Pixel centres are at integers, ``x`` to
the right, ``y`` down.

Public: :func:`pose_sample`, :func:`make_pose`, :func:`load_synthetic_pose` (``'synthetic_pose'``)
and :func:`crowd_sample`, :func:`make_crowd`, :func:`load_synthetic_crowd` (``'synthetic_crowd'``).
"""
import colorsys
import functools
from typing import Any, Dict, Tuple, Union

import ml_collections
import numpy as np

from l2r_jax.data import base
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages
from l2r_jax.data.density import density_map

Split = Union[str, int]
_SPLITS = {'train': 0, 'test': 1}

# Images are rendered in [0, 1] and standardised with fixed constants (measured over 2,000 samples
# of each generator), so that the scaling never depends on which samples are in a batch.
POSE_PIXEL_MEAN, POSE_PIXEL_STD = 0.44, 0.23
CROWD_PIXEL_MEAN, CROWD_PIXEL_STD = 0.44, 0.22

# MPII joint order (l2r_jax.metrics): 0 r-ankle, 1 r-knee, 2 r-hip, 3 l-hip, 4 l-knee, 5 l-ankle,
# 6 pelvis, 7 thorax, 8 upper neck, 9 head top, 10 r-wrist, 11 r-elbow, 12 r-shoulder,
# 13 l-shoulder, 14 l-elbow, 15 l-wrist.
NUM_JOINTS = 16
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
# Per side (right, left): (hip, knee, ankle) and (shoulder, elbow, wrist).
_LEG = ((2, 1, 0), (3, 4, 5))
_ARM = ((12, 11, 10), (13, 14, 15))

# Bone lengths in units of the torso (pelvis to thorax), roughly human proportions.
_NECK, _HEAD = 0.22, 0.42          # thorax -> upper neck -> head top
_UPPER_ARM, _FOREARM = 0.62, 0.55
_THIGH, _SHIN = 0.88, 0.85
_SHOULDER_HALF, _HIP_HALF = 0.42, 0.22
_HEAD_RADIUS = 0.21

# Pose families and their probabilities: most people stand, the rest reach, kick, bend or lie.
_POSES = ('standing', 'arms_up', 'kicking', 'bending', 'lying', 'free')
_POSE_PROBS = (0.3, 0.15, 0.15, 0.15, 0.1, 0.15)


# config.data.normalize: 'synthetic', the generators' fixed constants above, or 'imagenet' (the
# same pixels in [0, 1], standardised with ImageNet's per-channel mean and std).
NORMALISATIONS = ('synthetic', 'imagenet')


def _renormalised(images, mean: float, std: float, normalisation: str):
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


def _rng(seed: int, split: Split, index: int) -> np.random.Generator:
  return np.random.default_rng([int(seed), _SPLITS.get(split, split), int(index)])


# ------------------------------------------------------------------------------------------------
# Rendering primitives.


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
  """Pixel-centre coordinates ``(xx, yy)``, each ``[size, size]`` float32 (read-only, cached)."""
  c = np.arange(size, dtype=np.float32)
  return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


def _capsules(p0: np.ndarray, p1: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
  """Coverage ``[N, size, size]`` of ``N`` thick segments ``p0 -> p1`` (``[N, 2]``, ``(x, y)``).

  A pixel's coverage is ``clip(radius + 0.5 - distance to the segment, 0, 1)``: one pixel of
  linear fall-off, a cheap anti-aliasing that keeps thin strokes (radius < 1) visible.
  """
  xx, yy = _grid(size)
  p0 = np.asarray(p0, np.float32).reshape(-1, 2)[:, :, None, None]
  v = np.asarray(p1, np.float32).reshape(-1, 2)[:, :, None, None] - p0
  wx, wy = xx - p0[:, 0], yy - p0[:, 1]
  t = np.clip((wx * v[:, 0] + wy * v[:, 1]) / ((v**2).sum(1) + 1e-6), 0.0, 1.0)
  dist = np.sqrt((wx - t * v[:, 0])**2 + (wy - t * v[:, 1])**2)
  r = np.asarray(radius, np.float32).reshape(-1, 1, 1)
  return np.clip(r + 0.5 - dist, 0.0, 1.0)


def _quads(corners: np.ndarray, size: int) -> np.ndarray:
  """Coverage ``[N, size, size]`` of convex quadrilaterals ``corners [N, 4, 2]`` (either winding).

  The signed distance inside a convex polygon is the smallest distance to its edge lines.
  """
  xx, yy = _grid(size)
  a = np.asarray(corners, np.float32)
  e = np.roll(a, -1, axis=1) - a                                    # edges a_i -> a_{i+1}
  winding = np.sign((a[:, :, 0] * np.roll(a[:, :, 1], -1, 1)
                     - np.roll(a[:, :, 0], -1, 1) * a[:, :, 1]).sum(1))
  n = np.stack([-e[..., 1], e[..., 0]], -1) * winding[:, None, None]  # inward normals
  n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-6
  sd = ((xx - a[..., 0, None, None]) * n[..., 0, None, None]
        + (yy - a[..., 1, None, None]) * n[..., 1, None, None])     # [N, 4, H, W]
  return np.clip(sd.min(1) + 0.5, 0.0, 1.0)


def _composite(background: np.ndarray, alphas: np.ndarray, colours: np.ndarray) -> np.ndarray:
  """Paints layers ``alphas [L, H, W]`` of ``colours [L, 3]`` over ``background [3, H, W]``, in
  order (the painter's algorithm). The loop is over layers only, each step whole-image; it beats
  a cumulative product of transmittances over the layer axis, which numpy runs element by element.
  Images are channels-first until :func:`_finish`: broadcasting over a trailing axis of 3 is
  several times slower.
  """
  image = np.array(background, np.float32)
  step = np.empty_like(image)
  for alpha, colour in zip(alphas, np.asarray(colours, np.float32)):
    np.subtract(colour[:, None, None], image, out=step)
    step *= alpha
    image += step
  return image


def _hsv(h, s, v) -> np.ndarray:
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


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
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


def _background(rng: np.random.Generator, size: int, contrast: float) -> np.ndarray:
  """A textured background ``[3, size, size]`` in roughly [0, 1]: a base colour plus a mix of
  smooth noise, stripes and a gradient, scaled so its standard deviation is ``contrast``."""
  xx, yy = _grid(size)
  base = _hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.8))
  tex = np.zeros((3, size, size), np.float32)
  for cells in (2, 4, 9):
    noise = _smooth_noise(rng, size, cells, 4)          # luminance and colour, channels first
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


def _finish(rng: np.random.Generator, image: np.ndarray, noise: float, mean: float,
            std: float) -> np.ndarray:
  """Pixel noise, clipping to [0, 1] and standardisation; ``[3, S, S]`` in, ``[S, S, 3]`` out."""
  image = image + np.float32(noise) * rng.standard_normal(image.shape, np.float32)
  image = (np.clip(image, 0.0, 1.0) - np.float32(mean)) / np.float32(std)
  return np.ascontiguousarray(image.transpose(1, 2, 0), np.float32)


def _direction(angle: np.ndarray) -> np.ndarray:
  """Unit vectors ``[..., 2]`` at ``angle`` radians clockwise from 'up' on screen (``y`` down)."""
  return np.stack([np.sin(angle), -np.cos(angle)], -1)


# ------------------------------------------------------------------------------------------------
# Pose.


def _pose_angles(rng: np.random.Generator, kind: str) -> Dict[str, np.ndarray]:
  """Joint angles in degrees for one pose family.

  ``rot``: the legs' frame against upright; ``lean``: the torso against the legs; per side
  (right, left), ``shoulder`` / ``hip`` abduction from hanging down (positive = away from the body,
  180 = straight up) and ``elbow`` / ``knee`` bends relative to the upper bone.
  """
  def u(lo, hi):  # one angle per side
    return rng.uniform(lo, hi, 2)

  if kind == 'standing':
    a = dict(rot=rng.normal(0, 8), lean=rng.normal(0, 6), shoulder=u(-10, 50), elbow=u(-110, 40),
             hip=u(-5, 20), knee=u(-20, 20))
  elif kind == 'arms_up':
    a = dict(rot=rng.normal(0, 10), lean=rng.normal(0, 10), shoulder=u(90, 190),
             elbow=u(-70, 70), hip=u(-5, 25), knee=u(-20, 20))
  elif kind == 'kicking':
    kick = rng.integers(2)
    hip, knee = u(-10, 15), u(-20, 10)
    hip[kick], knee[kick] = rng.uniform(45, 120), rng.uniform(-100, 10)
    a = dict(rot=rng.normal(0, 12), lean=rng.normal(0, 15), shoulder=u(-20, 120),
             elbow=u(-90, 60), hip=hip, knee=knee)
  elif kind == 'bending':
    a = dict(rot=rng.normal(0, 10), lean=rng.choice([-1, 1]) * rng.uniform(35, 100),
             shoulder=u(-40, 80), elbow=u(-60, 60), hip=u(-10, 25), knee=u(-30, 30))
  elif kind == 'lying':
    a = dict(rot=rng.choice([-1, 1]) * 90 + rng.normal(0, 20), lean=rng.normal(0, 20),
             shoulder=u(-30, 180), elbow=u(-90, 90), hip=u(-20, 60), knee=u(-90, 30))
  else:  # 'free': anything within the joints' ranges
    a = dict(rot=rng.normal(0, 35), lean=rng.uniform(-45, 45), shoulder=u(-40, 200),
             elbow=u(-140, 140), hip=u(-30, 110), knee=u(-130, 40))
  return {k: np.deg2rad(v) for k, v in a.items()}


def _skeleton(rng: np.random.Generator) -> Dict[str, Any]:
  """A random figure in torso units, pelvis at the origin: joints ``[16, 2]``, the head disc,
  which side faces the camera, and the limb thicknesses."""
  kind = _POSES[rng.choice(len(_POSES), p=_POSE_PROBS)]
  a = _pose_angles(rng, kind)
  facing_back = rng.uniform() < 0.3
  side = np.array([1.0, -1.0]) if facing_back else np.array([-1.0, 1.0])  # screen side of R, L
  width = rng.uniform(0.35, 1.0)                 # cos(yaw): profile views narrow the body
  near = rng.integers(2)                         # which side is closer to the camera

  def bone(length):  # per side: individual proportions, and 30% foreshortened (pointing at us)
    return length * rng.uniform(0.9, 1.1, 2) * np.where(rng.uniform(size=2) < 0.3,
                                                        rng.uniform(0.55, 1.0, 2), 1.0)

  j = np.zeros((NUM_JOINTS, 2))
  up_torso = a['rot'] + a['lean']
  j[7] = _direction(up_torso)                                           # thorax (pelvis = 0)
  neck_angle = up_torso + np.deg2rad(rng.normal(0, 10))
  j[8] = j[7] + _NECK * _direction(neck_angle)
  j[9] = j[8] + _HEAD * rng.uniform(0.9, 1.1) * _direction(neck_angle + np.deg2rad(
      rng.normal(0, 15)))
  upper_arm, forearm, thigh, shin = bone(_UPPER_ARM), bone(_FOREARM), bone(_THIGH), bone(_SHIN)
  for k in range(2):                                                    # 0 right, 1 left
    s = side[k]
    hip, knee, ankle = _LEG[k]
    j[hip] = s * _HIP_HALF * width * _direction(a['rot'] + np.pi / 2)
    thigh_angle = a['rot'] + np.pi - s * a['hip'][k]
    j[knee] = j[hip] + thigh[k] * _direction(thigh_angle)
    j[ankle] = j[knee] + shin[k] * _direction(thigh_angle - s * a['knee'][k])
    sho, elb, wri = _ARM[k]
    j[sho] = (j[7] + s * _SHOULDER_HALF * width * _direction(up_torso + np.pi / 2)
              + 0.06 * _direction(up_torso + np.pi))
    arm_angle = up_torso + np.pi - s * a['shoulder'][k]
    j[elb] = j[sho] + upper_arm[k] * _direction(arm_angle)
    j[wri] = j[elb] + forearm[k] * _direction(arm_angle - s * a['elbow'][k])
  head_radius = _HEAD_RADIUS * rng.uniform(0.9, 1.15)
  head_centre = j[9] + head_radius * (j[8] - j[9]) / np.linalg.norm(j[8] - j[9])
  build = rng.uniform(0.8, 1.3)
  return dict(joints=j, head_centre=head_centre, head_radius=head_radius, near=near,
              kind=_POSES.index(kind), thick=build * np.array([0.13, 0.11, 0.17, 0.14]))


def _figure_colours(rng: np.random.Generator) -> Dict[str, np.ndarray]:
  """Right limbs warm, left limbs cool (a consistent cue, as clothes and lighting give in real
  images), legs a darker shade than arms; torso any colour; head skin-toned."""
  right = _hsv(rng.uniform(-0.06, 0.08), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
  left = _hsv(rng.uniform(0.5, 0.67), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
  return dict(arm=np.stack([right, left]), leg=np.stack([right, left]) * rng.uniform(0.6, 0.85),
              torso=_hsv(rng.uniform(), rng.uniform(0.0, 0.8), rng.uniform(0.35, 1.0)),
              head=_hsv(rng.uniform(0.03, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.45, 0.95)))


def _figure_layers(fig: Dict[str, Any], p: np.ndarray, unit: float, colours: Dict[str, np.ndarray],
                   size: int) -> Tuple[np.ndarray, np.ndarray]:
  """The figure's layers back to front: far limbs, torso, neck and head, near limbs.

  ``p`` are the joints in input pixels and ``unit`` the torso length in pixels.
  """
  arm_r, fore_r, thigh_r, shin_r = np.maximum(fig['thick'] * unit, 0.6)
  def limbs(k):
    hip, knee, ankle = _LEG[k]
    sho, elb, wri = _ARM[k]
    return ([(p[hip], p[knee], thigh_r), (p[knee], p[ankle], shin_r),
             (p[sho], p[elb], arm_r), (p[elb], p[wri], fore_r)],
            [colours['leg'][k]] * 2 + [colours['arm'][k]] * 2)
  far, near = limbs(1 - fig['near']), limbs(fig['near'])
  segs = far[0] + [(p[6], p[7], max(0.2 * unit, 0.6)), (p[7], p[8], max(0.11 * unit, 0.6)),
                   (fig['head_px'], fig['head_px'], fig['head_radius'] * unit)] + near[0]
  alphas = _capsules(*[np.array(c, np.float64) for c in zip(*segs)], size)
  torso = _quads(p[[12, 13, 3, 2]][None], size)[0]
  alphas[4] = np.maximum(alphas[4], torso)       # the torso quad and its spine are one layer
  return alphas, np.stack(far[1] + [colours['torso'], colours['head'], colours['head']]
                          + near[1])


def pose_sample(seed: int, split: Split, index: int, image_size: int = 64,
                heatmap_size: int = 32, *, clean: bool = False,
                render: bool = True) -> Dict[str, Any]:
  """One synthetic pose sample.

  Args:
    seed, split, index: the sample's identity (``split`` 'train', 'test' or an int).
    image_size: ``S``, the square input's side.
    heatmap_size: the heatmap side; input pixel ``x`` maps to heatmap ``x * heatmap_size / S``.
    clean: render the figure alone on black (no background, clutter, occluders, noise or
      camouflage): the same figure and joints as the full sample, for checking the geometry.
    render: False skips the image (labels only, much cheaper).

  Returns:
    dict with ``image`` ``float32 [S, S, 3]`` (standardised; absent when ``render`` is False),
    ``joints`` ``float32 [16, 3]`` (x, y, weight) in heatmap pixels, weight 0 exactly for joints
    outside the heatmap frame ``[-0.5, heatmap_size - 0.5)`` (the test :mod:`l2r_jax.augment` uses;
    occluded joints keep weight 1, as in MPII), ``head_box`` ``float32 [2, 2]`` (an axis-aligned
    square around the neck-to-head-top segment, its side that segment's length), and ``knobs``:
    the latent ``difficulty``, ``scale`` (torso length / S), ``clutter`` and ``occluders`` counts,
    ``occluded`` (joints covered by an occluder), ``noise``, ``bg_contrast``, ``camouflage`` and
    the pose family ``pose`` (an index into ``_POSES``).
  """
  rng = _rng(seed, split, index)
  s = image_size
  fig = _skeleton(rng)
  colours = _figure_colours(rng)
  difficulty = rng.uniform()
  # Size and placement as in SimpleBaseline's person-centred crops (the crop is 1.25 times the
  # person's box): the figure's longer side spans 62-88% of the frame (a little less when harder),
  # its box centred near the middle; sometimes zoomed in so that limbs leave the frame.
  lo = np.minimum(fig['joints'].min(0), fig['head_centre'] - fig['head_radius'])
  hi = np.maximum(fig['joints'].max(0), fig['head_centre'] + fig['head_radius'])
  unit = s * rng.uniform(0.62, 0.88) * (1.0 - 0.1 * difficulty) / (hi - lo).max()
  if rng.uniform() < 0.1:
    unit *= rng.uniform(1.1, 1.4)
  centre = (s - 1) / 2 + rng.normal(0, 0.04 * s, 2)
  offset = centre - unit * (lo + hi) / 2
  p = fig['joints'] * unit + offset                                     # input pixels
  fig['head_px'] = fig['head_centre'] * unit + offset

  r = heatmap_size / s
  xy = p * r
  inside = np.all((xy >= -0.5) & (xy < heatmap_size - 0.5), axis=1)
  joints = np.concatenate([xy, inside[:, None]], 1).astype(np.float32)
  half = np.linalg.norm(xy[9] - xy[8]) / 2
  mid = (xy[9] + xy[8]) / 2
  head_box = np.stack([mid - half, mid + half]).astype(np.float32)

  n_clutter = rng.poisson(0.5 + 12 * difficulty)
  n_occluders = rng.binomial(2, 0.15 + 0.6 * difficulty)
  knobs = dict(difficulty=difficulty, scale=unit / s, clutter=n_clutter, occluders=n_occluders,
               noise=difficulty * rng.uniform(0.0, 0.15),
               bg_contrast=rng.uniform(0.03, 0.12 + 0.3 * difficulty),
               camouflage=rng.uniform(0.0, 0.5 * difficulty), occluded=0, pose=fig['kind'])
  out = dict(joints=joints, head_box=head_box, knobs=knobs)
  if not render:
    return out

  fig_alphas, fig_colours = _figure_layers(fig, p, unit, colours, s)
  if clean:
    image = _composite(np.zeros((3, s, s), np.float32), fig_alphas, fig_colours)
    out['image'] = _finish(rng, image, 0.0, POSE_PIXEL_MEAN, POSE_PIXEL_STD)
    return out

  background = _background(rng, s, knobs['bg_contrast'])
  bg_colour = background.mean((1, 2))
  fig_colours = (1 - knobs['camouflage']) * fig_colours + knobs['camouflage'] * bg_colour
  # Clutter: limb-like strokes and blobs, a third of them in the figure's own colours, most behind
  # the figure and some in front of it.
  palette = np.concatenate([colours['arm'], colours['leg'], colours['torso'][None],
                            colours['head'][None]])
  limb = rng.uniform(size=n_clutter) < 0.6
  c0 = rng.uniform(-0.1 * s, 1.1 * s, (n_clutter, 2))
  length = unit * rng.uniform(0.4, 1.2, n_clutter) * limb
  c1 = c0 + length[:, None] * _direction(rng.uniform(0, 2 * np.pi, n_clutter))
  radius = unit * np.where(limb, rng.uniform(0.08, 0.2, n_clutter),
                           rng.uniform(0.12, 0.5, n_clutter))
  own = rng.uniform(size=n_clutter) < 0.35
  clutter_colours = np.where(own[:, None], palette[rng.integers(len(palette), size=n_clutter)]
                             + rng.normal(0, 0.05, (n_clutter, 3)),
                             _hsv(rng.uniform(size=n_clutter), rng.uniform(0, 1, n_clutter),
                                  rng.uniform(0.1, 1, n_clutter)))
  front = rng.uniform(size=n_clutter) < 0.15
  clutter = _capsules(c0, c1, np.maximum(radius, 0.6), s)
  # Occluders: boxes or blobs over a random joint, the size of a limb or two.
  at = p[rng.integers(NUM_JOINTS, size=n_occluders)] + unit * rng.normal(0, 0.3, (n_occluders, 2))
  w, h = unit * rng.uniform(0.4, 1.2, n_occluders), unit * rng.uniform(0.4, 1.5, n_occluders)
  angle = rng.uniform(0, np.pi, n_occluders)
  sx, sy = np.array([-1, 1, 1, -1])[None, :, None], np.array([-1, -1, 1, 1])[None, :, None]
  corners = (at[:, None] + sx * (w / 2)[:, None, None] * _direction(angle)[:, None]
             + sy * (h / 2)[:, None, None] * _direction(angle + np.pi / 2)[:, None])
  boxes = rng.uniform(size=n_occluders) < 0.6
  occluders = np.where(boxes[:, None, None], _quads(corners, s) if n_occluders else 0.0,
                       _capsules(at, at, (w + h) / 4, s))
  occ_colours = np.where(rng.uniform(size=(n_occluders, 1)) < 0.3, bg_colour,
                         _hsv(rng.uniform(size=n_occluders), rng.uniform(0, 1, n_occluders),
                              rng.uniform(0.1, 1, n_occluders)))
  if n_occluders:
    ij = np.clip(np.round(p).astype(int), 0, s - 1)
    covered = occluders.max(0)[ij[:, 1], ij[:, 0]] > 0.5
    knobs['occluded'] = int((covered & inside).sum())
  alphas = np.concatenate([clutter[~front], fig_alphas, clutter[front], occluders])
  layer_colours = np.concatenate([clutter_colours[~front], fig_colours, clutter_colours[front],
                                  occ_colours]).reshape(-1, 3)
  image = _composite(background, alphas, layer_colours)
  out['image'] = _finish(rng, image, knobs['noise'], POSE_PIXEL_MEAN, POSE_PIXEL_STD)
  return out


def make_pose(n: int, seed: int, split: Split, image_size: int = 64, heatmap_size: int = 32, *,
              clean: bool = False) -> Dict[str, Any]:
  """``n`` pose samples (indices ``0..n-1``) stacked: ``images [n, S, S, 3]``, ``joints
  [n, 16, 3]``, ``head_boxes [n, 2, 2]`` and ``knobs`` (a dict of ``[n]`` arrays); see
  :func:`pose_sample`."""
  samples = [pose_sample(seed, split, i, image_size, heatmap_size, clean=clean) for i in range(n)]
  return dict(
      images=np.stack([x['image'] for x in samples]).reshape(n, image_size, image_size, 3),
      joints=np.stack([x['joints'] for x in samples]).reshape(n, NUM_JOINTS, 3),
      head_boxes=np.stack([x['head_box'] for x in samples]).reshape(n, 2, 2),
      knobs={k: np.array([x['knobs'][k] for x in samples]) for k in samples[0]['knobs']}
      if n else {})


def _pose_split(config: ml_collections.ConfigDict, split: str, n: int):
  seed, s, hm = config.get('seed', 0), config.get('image_size', 64), config.get('heatmap_size', 32)
  if not config.get('lazy', False):
    d = make_pose(n, seed, split, s, hm)
    return d['images'], d['joints'], d['head_boxes']
  labels = [pose_sample(seed, split, i, s, hm, render=False) for i in range(n)]
  images = LazyImages(n, (s, s, 3), lambda i: pose_sample(seed, split, i, s, hm)['image'])
  return (images, np.stack([x['joints'] for x in labels]).reshape(n, NUM_JOINTS, 3),
          np.stack([x['head_box'] for x in labels]).reshape(n, 2, 2))


def load_synthetic_pose(config: ml_collections.ConfigDict) -> Dataset:
  """Synthetic MPII: 16-joint stick figures, labels in heatmap pixels, PCKh head boxes.

  ``config`` fields (defaults): ``num_train`` (2000), ``num_test`` (500), ``seed`` (0),
  ``image_size`` (64), ``heatmap_size`` (32), ``sigma`` (1.0, the target Gaussians' width in
  heatmap pixels), ``lazy`` (False; True renders images on demand through ``LazyImages``, labels
  are still computed up front since they are cheap), ``normalize`` ('synthetic': the fixed
  constants ``POSE_PIXEL_MEAN``, ``POSE_PIXEL_STD``; 'imagenet': ImageNet's, for its weights).
  """
  normalisation = base.normalisation(config, 'synthetic_pose', NORMALISATIONS)
  x_train, y_train, _ = _pose_split(config, 'train', config.get('num_train', 2000))
  x_test, y_test, head_boxes = _pose_split(config, 'test', config.get('num_test', 500))
  x_train, x_test = (_renormalised(x, POSE_PIXEL_MEAN, POSE_PIXEL_STD, normalisation)
                     for x in (x_train, x_test))
  hm = config.get('heatmap_size', 32)
  return Dataset(x_train, y_train, x_test, y_test, num_outputs=NUM_JOINTS, task='pose',
                 test_meta={'head_boxes': head_boxes},
                 task_params={'sigma': float(config.get('sigma', 1.0)), 'heatmap_size': (hm, hm),
                              'flip_pairs': FLIP_PAIRS, 'normalisation': normalisation})


# ------------------------------------------------------------------------------------------------
# Crowd.


def _perspective_rows(rng: np.random.Generator, n: int, lo: float, hi: float,
                      horizon: float) -> np.ndarray:
  """Rows in ``[lo, hi)`` of people standing uniformly on a ground plane whose horizon is at row
  ``horizon`` (above the image): the density per row goes as ``1 / (y - horizon)^2``."""
  a, b = 1.0 / (lo - horizon), 1.0 / (hi - horizon)
  return horizon + 1.0 / (a - rng.uniform(size=n) * (a - b))


def _head_colours(rng: np.random.Generator, n: int) -> np.ndarray:
  """Mostly dark hair, some skin (faces), a few hats."""
  kind = rng.choice(3, size=n, p=(0.55, 0.35, 0.1))
  hair = _hsv(rng.uniform(0.02, 0.1, n), rng.uniform(0.2, 0.7, n), rng.uniform(0.05, 0.3, n))
  skin = _hsv(rng.uniform(0.03, 0.1, n), rng.uniform(0.3, 0.6, n), rng.uniform(0.45, 0.9, n))
  hat = _hsv(rng.uniform(size=n), rng.uniform(0, 1, n), rng.uniform(0.2, 1, n))
  return np.choose(kind[:, None], [hair, skin, hat])


def crowd_sample(seed: int, split: Split, index: int, image_size: int = 64, *,
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
  rng = _rng(seed, split, index)
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
  body = _capsules(heads + r[:, None] * [0, 1.4], heads + r[:, None] * [0, 3.8], 1.1 * r, s)
  shoulders = _capsules(heads + r[:, None] * [-1.2, 1.9], heads + r[:, None] * [1.2, 1.9],
                        0.6 * r, s)
  body_colours = _hsv(rng.uniform(size=m), rng.uniform(0.1, 0.9, m), rng.uniform(0.2, 0.95, m))
  alphas = np.stack([np.maximum(body, shoulders), _capsules(heads, heads, r, s)], 1)
  colours = np.stack([body_colours, _head_colours(rng, m)], 1)
  alphas, colours = alphas.reshape(2 * m, s, s), colours.reshape(2 * m, 3)
  if clean:
    image = _composite(np.zeros((3, s, s), np.float32), alphas, colours)
    out['image'] = _finish(rng, image, 0.0, CROWD_PIXEL_MEAN, CROWD_PIXEL_STD)
    return out

  background = _background(rng, s, knobs['bg_contrast'])
  # Distractors behind the people: 0 a head-like disc without a body, 1 a large blob, 2 a pole,
  # 3 a small dot; sized by the perspective at their row.
  n = knobs['distractors']
  kind = rng.choice(4, size=n, p=(0.35, 0.25, 0.2, 0.2))
  at = np.stack([rng.uniform(-0.5, s - 0.5, n), _perspective_rows(rng, n, -0.5, s - 0.5, horizon)],
                1)
  rd = r_bottom * scale_at(at[:, 1])
  size = rd * np.choose(kind, [rng.uniform(0.8, 1.3, n), rng.uniform(2.0, 4.0, n),
                               rng.uniform(0.3, 0.7, n), rng.uniform(0.3, 0.5, n)])
  length = np.where(kind == 2, rd * rng.uniform(4.0, 10.0, n), 0.0)
  d_alphas = _capsules(at, at + length[:, None] * [0, 1], np.maximum(size, 0.5), s)
  d_colours = np.where((kind == 0)[:, None], _head_colours(rng, n),
                       _hsv(rng.uniform(size=n), rng.uniform(0, 1, n), rng.uniform(0.1, 1, n)))
  image = _composite(background, np.concatenate([d_alphas, alphas]),
                     np.concatenate([d_colours.reshape(-1, 3), colours]))
  out['image'] = _finish(rng, image, knobs['noise'], CROWD_PIXEL_MEAN, CROWD_PIXEL_STD)
  return out


def make_crowd(n: int, seed: int, split: Split, image_size: int = 64, density_stride: int = 4,
               sigma: float = 1.0, *, clean: bool = False) -> Dict[str, Any]:
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
  ``image_size`` (64, or ``(h, w)``), ``density_stride`` (4: the maps are ``S / 4`` on a side), ``sigma`` (1.0,
  map pixels), ``density_scale`` (100.0: targets are ``density_scale`` x the density, the C^3
  framework's LOG_PARA, so they are not vanishingly small), ``lazy`` (False), ``normalize``
  ('synthetic' or 'imagenet', as for pose).
  ``task_params`` also carries the true ``counts_train`` and ``counts_test``. With ``lazy`` (or a
  rectangular ``image_size``) images and density maps are made on demand, labels up front.
  """
  normalisation = base.normalisation(config, 'synthetic_crowd', NORMALISATIONS)
  scale = float(config.get('density_scale', 100.0))
  x_train, d_train, c_train = _crowd_split(config, 'train', config.get('num_train', 400), scale)
  x_test, d_test, c_test = _crowd_split(config, 'test', config.get('num_test', 200), scale)
  x_train, x_test = (_renormalised(x, CROWD_PIXEL_MEAN, CROWD_PIXEL_STD, normalisation)
                     for x in (x_train, x_test))
  return Dataset(x_train, d_train, x_test, d_test, num_outputs=1, task='crowd',
                 task_params={'density_scale': scale, 'counts_train': c_train,
                              'counts_test': c_test, 'normalisation': normalisation})


__all__ = ['FLIP_PAIRS', 'crowd_sample', 'load_synthetic_crowd', 'load_synthetic_pose',
           'make_crowd', 'make_pose', 'pose_sample']
