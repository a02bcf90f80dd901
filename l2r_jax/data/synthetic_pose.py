"""The offline stand-in for MPII human pose, rendered from a seed (``'synthetic_pose'``).

The paper's pose experiment (MPII) needs a download and a GPU; this generator gives the same task
-- MPII's 16 joints, heatmap targets, PCKh -- at 64x64 on a laptop CPU, so the active-learning loop
runs end to end in minutes. Two properties matter for that use and shaped every choice below:

* **Difficulty varies from sample to sample.** Each sample draws a latent ``difficulty`` in [0, 1]
  that drives how much clutter, occlusion, background texture, camouflage and pixel noise it gets
  and how small the figure is. A strategy that finds the hard samples therefore has something to
  find, and one that ranks losses well should beat random sampling. The knobs each sample drew are
  returned with it, for tests and analysis.
* **Learnable, but not from a glance.** Figures are articulated stick people, the person's right
  limbs always warm (red/orange) and left limbs always cool (cyan/blue), as real images carry
  left/right cues; clutter strokes sometimes take the figure's own colours.

Samples are deterministic and rendered layer by layer (:mod:`l2r_jax.data.render`); the skeleton
is drawn before the rendering, so labels alone are cheap (``render=False``).

Public: :func:`pose_sample`, :func:`make_pose`, :func:`load_synthetic_pose`.
"""
from typing import Any, Dict, Tuple

import ml_collections
import numpy as np

from l2r_jax.data import base
from l2r_jax.data import render as render_lib
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import LazyImages

# Images are rendered in [0, 1] and standardised with fixed constants (measured over 2,000
# samples), so that the scaling never depends on which samples are in a batch.
POSE_PIXEL_MEAN, POSE_PIXEL_STD = 0.44, 0.23

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
  j[7] = render_lib.direction(up_torso)                                      # thorax (pelvis = 0)
  neck_angle = up_torso + np.deg2rad(rng.normal(0, 10))
  j[8] = j[7] + _NECK * render_lib.direction(neck_angle)
  j[9] = j[8] + _HEAD * rng.uniform(0.9, 1.1) * render_lib.direction(neck_angle + np.deg2rad(
      rng.normal(0, 15)))
  upper_arm, forearm, thigh, shin = bone(_UPPER_ARM), bone(_FOREARM), bone(_THIGH), bone(_SHIN)
  for k in range(2):                                                    # 0 right, 1 left
    s = side[k]
    hip, knee, ankle = _LEG[k]
    j[hip] = s * _HIP_HALF * width * render_lib.direction(a['rot'] + np.pi / 2)
    thigh_angle = a['rot'] + np.pi - s * a['hip'][k]
    j[knee] = j[hip] + thigh[k] * render_lib.direction(thigh_angle)
    j[ankle] = j[knee] + shin[k] * render_lib.direction(thigh_angle - s * a['knee'][k])
    sho, elb, wri = _ARM[k]
    j[sho] = (j[7] + s * _SHOULDER_HALF * width * render_lib.direction(up_torso + np.pi / 2)
              + 0.06 * render_lib.direction(up_torso + np.pi))
    arm_angle = up_torso + np.pi - s * a['shoulder'][k]
    j[elb] = j[sho] + upper_arm[k] * render_lib.direction(arm_angle)
    j[wri] = j[elb] + forearm[k] * render_lib.direction(arm_angle - s * a['elbow'][k])
  head_radius = _HEAD_RADIUS * rng.uniform(0.9, 1.15)
  head_centre = j[9] + head_radius * (j[8] - j[9]) / np.linalg.norm(j[8] - j[9])
  build = rng.uniform(0.8, 1.3)
  return dict(joints=j, head_centre=head_centre, head_radius=head_radius, near=near,
              kind=_POSES.index(kind), thick=build * np.array([0.13, 0.11, 0.17, 0.14]))


def _figure_colours(rng: np.random.Generator) -> Dict[str, np.ndarray]:
  """Right limbs warm, left limbs cool (a consistent cue, as clothes and lighting give in real
  images), legs a darker shade than arms; torso any colour; head skin-toned."""
  right = render_lib.hsv(rng.uniform(-0.06, 0.08), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
  left = render_lib.hsv(rng.uniform(0.5, 0.67), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
  return dict(arm=np.stack([right, left]), leg=np.stack([right, left]) * rng.uniform(0.6, 0.85),
              torso=render_lib.hsv(rng.uniform(), rng.uniform(0.0, 0.8), rng.uniform(0.35, 1.0)),
              head=render_lib.hsv(rng.uniform(0.03, 0.1), rng.uniform(0.25, 0.6),
                                  rng.uniform(0.45, 0.95)))


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
  alphas = render_lib.capsules(*[np.array(c, np.float64) for c in zip(*segs)], size)
  torso = render_lib.quads(p[[12, 13, 3, 2]][None], size)[0]
  alphas[4] = np.maximum(alphas[4], torso)       # the torso quad and its spine are one layer
  return alphas, np.stack(far[1] + [colours['torso'], colours['head'], colours['head']]
                          + near[1])


def _occluders(rng: np.random.Generator, p: np.ndarray, unit: float, n_occluders: int,
               bg_colour: np.ndarray, s: int) -> Tuple[np.ndarray, np.ndarray]:
  """Occluders: boxes or blobs over a random joint of ``p``, the size of a limb or two; their
  coverage ``[n_occluders, s, s]`` and colours."""
  at = p[rng.integers(NUM_JOINTS, size=n_occluders)] + unit * rng.normal(0, 0.3, (n_occluders, 2))
  w, h = unit * rng.uniform(0.4, 1.2, n_occluders), unit * rng.uniform(0.4, 1.5, n_occluders)
  angle = rng.uniform(0, np.pi, n_occluders)
  sx, sy = np.array([-1, 1, 1, -1])[None, :, None], np.array([-1, -1, 1, 1])[None, :, None]
  corners = (at[:, None] + sx * (w / 2)[:, None, None] * render_lib.direction(angle)[:, None]
             + sy * (h / 2)[:, None, None] * render_lib.direction(angle + np.pi / 2)[:, None])
  boxes = rng.uniform(size=n_occluders) < 0.6
  occluders = np.where(boxes[:, None, None], render_lib.quads(corners, s) if n_occluders else 0.0,
                       render_lib.capsules(at, at, (w + h) / 4, s))
  occ_colours = np.where(rng.uniform(size=(n_occluders, 1)) < 0.3, bg_colour,
                         render_lib.hsv(rng.uniform(size=n_occluders),
                                        rng.uniform(0, 1, n_occluders),
                                        rng.uniform(0.1, 1, n_occluders)))
  return occluders, occ_colours


def pose_sample(seed: int, split: render_lib.Split, index: int, image_size: int = 64,
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
  rng = render_lib.sample_rng(seed, split, index)
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
    image = render_lib.composite(np.zeros((3, s, s), np.float32), fig_alphas, fig_colours)
    out['image'] = render_lib.finish(rng, image, 0.0, POSE_PIXEL_MEAN, POSE_PIXEL_STD)
    return out

  background = render_lib.background(rng, s, knobs['bg_contrast'])
  bg_colour = background.mean((1, 2))
  fig_colours = (1 - knobs['camouflage']) * fig_colours + knobs['camouflage'] * bg_colour
  # Clutter: limb-like strokes and blobs, a third of them in the figure's own colours, most behind
  # the figure and some in front of it.
  palette = np.concatenate([colours['arm'], colours['leg'], colours['torso'][None],
                            colours['head'][None]])
  limb = rng.uniform(size=n_clutter) < 0.6
  c0 = rng.uniform(-0.1 * s, 1.1 * s, (n_clutter, 2))
  length = unit * rng.uniform(0.4, 1.2, n_clutter) * limb
  c1 = c0 + length[:, None] * render_lib.direction(rng.uniform(0, 2 * np.pi, n_clutter))
  radius = unit * np.where(limb, rng.uniform(0.08, 0.2, n_clutter),
                           rng.uniform(0.12, 0.5, n_clutter))
  own = rng.uniform(size=n_clutter) < 0.35
  clutter_colours = np.where(own[:, None], palette[rng.integers(len(palette), size=n_clutter)]
                             + rng.normal(0, 0.05, (n_clutter, 3)),
                             render_lib.hsv(rng.uniform(size=n_clutter),
                                            rng.uniform(0, 1, n_clutter),
                                            rng.uniform(0.1, 1, n_clutter)))
  front = rng.uniform(size=n_clutter) < 0.15
  clutter = render_lib.capsules(c0, c1, np.maximum(radius, 0.6), s)
  occluders, occ_colours = _occluders(rng, p, unit, n_occluders, bg_colour, s)
  if n_occluders:
    ij = np.clip(np.round(p).astype(int), 0, s - 1)
    covered = occluders.max(0)[ij[:, 1], ij[:, 0]] > 0.5
    knobs['occluded'] = int((covered & inside).sum())
  alphas = np.concatenate([clutter[~front], fig_alphas, clutter[front], occluders])
  layer_colours = np.concatenate([clutter_colours[~front], fig_colours, clutter_colours[front],
                                  occ_colours]).reshape(-1, 3)
  image = render_lib.composite(background, alphas, layer_colours)
  out['image'] = render_lib.finish(rng, image, knobs['noise'], POSE_PIXEL_MEAN, POSE_PIXEL_STD)
  return out


def make_pose(n: int, seed: int, split: render_lib.Split, image_size: int = 64,
              heatmap_size: int = 32, *, clean: bool = False) -> Dict[str, Any]:
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
  normalisation = base.normalisation(config, 'synthetic_pose', render_lib.NORMALISATIONS)
  x_train, y_train, _ = _pose_split(config, 'train', config.get('num_train', 2000))
  x_test, y_test, head_boxes = _pose_split(config, 'test', config.get('num_test', 500))
  x_train, x_test = (render_lib.renormalised(x, POSE_PIXEL_MEAN, POSE_PIXEL_STD, normalisation)
                     for x in (x_train, x_test))
  hm = config.get('heatmap_size', 32)
  return Dataset(x_train, y_train, x_test, y_test, num_outputs=NUM_JOINTS, task='pose',
                 test_meta={'head_boxes': head_boxes},
                 task_params={'sigma': float(config.get('sigma', 1.0)), 'heatmap_size': (hm, hm),
                              'flip_pairs': FLIP_PAIRS, 'normalisation': normalisation})
