"""Per-task losses, decoding and scoring (l2r_jax.tasks), and on-device augmentation."""
import re

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from l2r_jax import augment
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax.data import density
from l2r_jax import tasks


def test_heatmaps_match_numpy_gaussians():
  joints = np.array([[[3.0, 1.0, 1.0], [0.5, 4.25, 0.0]]], np.float32)
  hm = np.asarray(tasks.render_heatmaps(jnp.asarray(joints), (6, 5), 1.5))
  chex.assert_shape(hm, (1, 6, 5, 2))
  yy, xx = np.mgrid[0:6, 0:5]
  for k in range(2):
    x, y = joints[0, k, :2]
    np.testing.assert_allclose(hm[0, ..., k], np.exp(-((xx - x)**2 + (yy - y)**2) / (2 * 1.5**2)),
                               rtol=1e-5, atol=1e-7)
  assert hm[0, 1, 3, 0] == pytest.approx(1.0)  # peak at (x=3, y=1): row 1, column 3


def test_heatmap_mse_hand_worked():
  # A prediction equal to the target except one pixel of joint 0 off by 0.5; joint 1 (weight 0)
  # is all wrong and must not count. Loss = 0.5 * mean over 2 joints x 16 pixels of 0.5^2.
  joints = jnp.array([[[1.0, 2.0, 1.0], [2.0, 2.0, 0.0]]])
  target = tasks.render_heatmaps(joints, (4, 4), 2.0)
  pred = target.at[0, 0, 0, 0].add(0.5).at[..., 1].set(7.0)
  assert float(tasks.heatmap_mse(pred, joints, 2.0)[0]) == pytest.approx(0.5 * 0.25 / 32,
                                                                          rel=1e-5)
  assert float(tasks.heatmap_mse(target, joints, 2.0)[0]) == pytest.approx(0.0, abs=1e-9)


def test_decode_quarter_pixel_shift():
  hm = np.zeros((1, 5, 6, 3), np.float32)
  hm[0, 2, 3, 0] = 1.0            # joint 0 peak at (x=3, y=2), right and lower neighbours higher
  hm[0, 2, 4, 0] = 0.5
  hm[0, 3, 3, 0] = 0.2
  hm[0, 1, 3, 0] = 0.1
  hm[0, 4, 0, 1] = 1.0            # joint 1 in a corner: no neighbour on one side, no shift
  hm[0, 4, 1, 1] = 0.9
  hm[0, 1, 2, 2] = 1.0            # joint 2: left neighbour higher, equal above and below
  hm[0, 1, 1, 2] = 0.3
  out = np.asarray(tasks.decode_heatmaps(jnp.asarray(hm)))
  np.testing.assert_allclose(out[0], [[3.25, 2.25], [0.0, 4.0], [1.75, 1.0]])


def test_density_mse():
  d = jnp.ones((2, 3, 4, 1))
  t = jnp.stack([jnp.ones((3, 4)), jnp.zeros((3, 4)).at[0, 0].set(3.0)])
  np.testing.assert_allclose(tasks.density_mse(d, t), [0.0, (4 + 11) / 12], rtol=1e-6)


def _pose_dataset(n=3):
  y = np.zeros((n, 16, 3), np.float32)
  y[..., 2] = 1
  return data_lib.Dataset(np.zeros((n, 32, 32, 3), np.float32), y, np.zeros((n, 32, 32, 3)), y,
                          16, 'pose', {'head_boxes': np.tile([[0., 0.], [3., 4.]], (n, 1, 1))},
                          {'sigma': 1.0, 'heatmap_size': (16, 16),
                           'flip_pairs': ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))})


def test_pose_task_scores_pckh():
  ds = _pose_dataset()
  task = tasks.Task.for_dataset(ds)
  assert (task.metric, task.higher_is_better) == ('pckh', True)
  y = np.zeros((1, 16, 3), np.float32)
  y[0, :, :2] = 8.0
  y[0, :, 2] = 1
  pred = y[..., :2].copy()
  # Head box diagonal 5 -> head size 3, threshold 1.5 pixels: 4 of the 14 scored joints off by 2.
  pred[0, [0, 1, 2, 3], 0] += 2.0
  task = tasks.Task.for_dataset(ds._replace(test_meta={'head_boxes': ds.test_meta['head_boxes'][:1]}))
  out = task.score(pred, y)
  assert out['pckh'] == pytest.approx(100 * 10 / 14)


def test_crowd_task_counts():
  scale = 100.0
  ds = data_lib.Dataset(np.zeros((2, 8, 8, 3)), np.zeros((2, 2, 2)), np.zeros((2, 8, 8, 3)),
                        np.zeros((2, 2, 2)), 1, 'crowd', {}, {'density_scale': scale})
  task = tasks.Task.for_dataset(ds)
  assert (task.metric, task.higher_is_better) == ('mae', False)
  pred = jnp.full((2, 2, 2, 1), 0.25 * scale)      # one person per image
  y = jnp.stack([jnp.full((2, 2), 0.75 * scale), jnp.zeros((2, 2))])  # 3 and 0 people
  out = task.score(np.asarray(task.decode(pred)), np.asarray(task.truth(y)))
  assert out == pytest.approx({'mae': 1.5, 'rmse': np.sqrt((4 + 1) / 2)})


# Augmentation -------------------------------------------------------------------------------


def _keys(seed, n=1):
  """One key per sample, as the training step gives augment."""
  return jax.random.split(jax.random.PRNGKey(seed), n)


def _pose_aug(**kw):
  cfg = ml_collections.ConfigDict({**dict(scale=0.0, rotation=0.0, flip=False), **kw})
  return augment.make(tasks.Task.for_dataset(_pose_dataset()), cfg)


def _blob_image(points, size=32):
  yy, xx = np.mgrid[0:size, 0:size]
  img = np.zeros((size, size, 1), np.float32)
  for x, y in points:
    img[..., 0] += np.exp(-((xx - x)**2 + (yy - y)**2) / 2.0)
  return img


def test_a_pose_without_its_left_and_right_joints_is_refused_a_flip():
  ds = _pose_dataset()
  params = {k: v for k, v in ds.task_params.items() if k != 'flip_pairs'}
  task = tasks.Task.for_dataset(ds._replace(task_params=params))
  cfg = ml_collections.ConfigDict(dict(scale=0.25, rotation=30.0, flip=True))
  with pytest.raises(errors.ConfigError, match=re.escape(
      "config.augment.flip: a mirrored picture swaps its left and right joints, and the dataset "
      "does not say which they are: give its loader task_params['flip_pairs']")):
    augment.make(task, cfg)
  cfg.flip = False   # no flip, no pairs needed
  assert augment.make(task, cfg) is not None


def test_pose_augmentation_without_changes_is_identity():
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
  y = np.tile(np.array([[4.0, 5.0, 1.0]], np.float32), (2, 16, 1))
  xa, ya = _pose_aug()(jnp.asarray(x), jnp.asarray(y), _keys(0, 2))
  np.testing.assert_allclose(xa, x, atol=1e-5)
  np.testing.assert_allclose(ya, y, atol=1e-5)


@pytest.mark.parametrize('kw', [dict(rotation=30.0), dict(scale=0.25), dict(flip=True),
                                dict(scale=0.25, rotation=30.0, flip=True)])
def test_pose_augmentation_moves_joints_with_the_image(kw):
  # A blob drawn at each of two joints (input pixels = 2 x heatmap pixels): after augmentation the
  # image's local maxima must sit where the transformed joints say.
  joints = np.zeros((16, 3), np.float32)
  joints[:, :2] = 8.0
  joints[0] = [5.0, 6.0, 1.0]   # r-ankle
  joints[5] = [11.0, 9.0, 1.0]  # l-ankle: its flip partner
  img = _blob_image([2 * joints[0, :2], 2 * joints[5, :2]])
  aug = _pose_aug(**kw)
  for seed in range(8):
    xa, ya = aug(jnp.asarray(img[None]), jnp.asarray(joints[None]), _keys(seed))
    xa, ya = np.asarray(xa[0, ..., 0]), np.asarray(ya[0])
    for k in (0, 5):
      px, py = 2 * ya[k, :2]
      # The image around the transformed joint is a peak of the blob.
      yi, xi = int(round(py)), int(round(px))
      window = xa[max(yi - 2, 0):yi + 3, max(xi - 2, 0):xi + 3]
      assert xa[yi, xi] > 0.5 and xa[yi, xi] >= window.max() - 0.15, (seed, k, kw)
    assert ya[0, 2] == 1 and ya[5, 2] == 1


def test_pose_flip_swaps_left_and_right():
  joints = np.zeros((1, 16, 3), np.float32)
  joints[0, :, 2] = 1
  joints[0, 0, :2] = [2.0, 3.0]   # r-ankle on the left of the picture
  joints[0, 5, :2] = [12.0, 3.0]  # l-ankle on the right
  aug = _pose_aug(flip=True)
  seen = set()
  for seed in range(16):
    _, ya = aug(jnp.zeros((1, 32, 32, 1)), jnp.asarray(joints), _keys(seed))
    ya = np.asarray(ya[0])
    flipped = not np.allclose(ya, joints[0], atol=1e-4)
    seen.add(flipped)
    if flipped:  # mirrored about the image centre: x -> 15.5 - x in heatmap pixels (32 / 2 - 0.5)
      np.testing.assert_allclose(ya[0, :2], [15.5 - 12.0, 3.0], atol=1e-4)  # new r-ankle
      np.testing.assert_allclose(ya[5, :2], [15.5 - 2.0, 3.0], atol=1e-4)
  assert seen == {True, False}


def test_pose_joints_leaving_the_frame_lose_their_weight():
  joints = np.zeros((1, 16, 3), np.float32)
  joints[0, :, :2] = 8.0
  joints[0, :, 2] = 1
  joints[0, 3, :2] = [15.4, 15.4]  # near the corner: a rotation or a zoom-in pushes it out
  aug = _pose_aug(scale=0.25, rotation=30.0)
  weights = []
  for seed in range(20):
    _, ya = aug(jnp.zeros((1, 32, 32, 1)), jnp.asarray(joints), _keys(seed))
    ya = np.asarray(ya[0])
    inside = np.all((ya[3, :2] >= -0.5) & (ya[3, :2] < 15.5))
    assert ya[3, 2] == float(inside)
    weights.append(ya[3, 2])
  assert 0 < np.mean(weights) < 1


def test_crowd_augmentation_keeps_heads_on_their_density():
  rng = np.random.default_rng(0)
  points = rng.uniform(0, 32, size=(6, 2))
  img = _blob_image(points)
  dens = density.density_map(points, (8, 8), 0.5, stride=4)
  ds = data_lib.Dataset(img[None], dens[None], img[None], dens[None], 1, 'crowd', {},
                        {'density_scale': 1.0})
  aug = augment.make(tasks.Task.for_dataset(ds),
                     ml_collections.ConfigDict(dict(crop=(16, 24), flip=True)))
  for seed in range(6):
    xa, da = aug(jnp.asarray(img[None]), jnp.asarray(dens[None]), _keys(seed))
    xa, da = np.asarray(xa[0, ..., 0]), np.asarray(da[0])
    chex.assert_shape(xa, (16, 24))
    chex.assert_shape(da, (4, 6))
    # Pooling the image to the density grid gives a map aligned with the density.
    pooled = xa.reshape(4, 4, 6, 4).sum((1, 3))
    if da.sum() > 0.5:
      assert np.corrcoef(pooled.ravel(), da.ravel())[0, 1] > 0.8, seed


def test_classification_crop_and_flip_keyed_by_sample():
  x = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
  ds = data_lib.Dataset(x, np.zeros(2, np.int32), x, np.zeros(2, np.int32), 10)
  aug = augment.make(tasks.Task.for_dataset(ds), ml_collections.ConfigDict(dict(pad=1, flip=True)))
  a1, y1 = aug(x, jnp.zeros(2, jnp.int32), _keys(1, 2))
  a2, _ = aug(x, jnp.zeros(2, jnp.int32), _keys(1, 2))
  np.testing.assert_array_equal(a1, a2)
  chex.assert_shape(a1, x.shape)
  outs = {np.asarray(aug(x, y1, _keys(s, 2))[0]).tobytes() for s in range(12)}
  assert len(outs) > 3
  assert augment.make(tasks.Task.for_dataset(ds), None) is None
