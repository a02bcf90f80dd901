"""The synthetic pose and crowd generators: determinism, label formats, and labels that agree with
the pixels (a figure rendered alone must lie on the segments between its scaled joints)."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from l2r_jax import data
from l2r_jax import errors
from l2r_jax import metrics
from l2r_jax import tasks
from l2r_jax.data import synthetic_crowd
from l2r_jax.data import synthetic_pose

S, HM = 64, 32
BONES = ((0, 1), (1, 2), (3, 4), (4, 5), (10, 11), (11, 12), (13, 14), (14, 15), (6, 7), (7, 8),
         (8, 9), (12, 13), (2, 3), (12, 2), (13, 3))


def _segment_distance(points, a, b):
  """Distance ``[P, B]`` from points ``[P, 2]`` to segments ``a -> b`` (``[B, 2]`` each)."""
  v = b - a
  w = points[:, None] - a[None]
  t = np.clip((w * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-9), 0, 1)
  return np.linalg.norm(w - t[..., None] * v, axis=-1)


def _foreground(image):
  """Pixels of a ``clean`` pose render (figure on black) that are not background, as ``(x, y)``."""
  mean, std = synthetic_pose.POSE_PIXEL_MEAN, synthetic_pose.POSE_PIXEL_STD
  ys, xs = np.nonzero(np.abs(image * std + mean).max(-1) > 0.05)
  return np.stack([xs, ys], 1).astype(float)


def test_pose_shapes_and_dtypes():
  d = synthetic_pose.make_pose(6, 0, 'train')
  assert d['images'].shape == (6, S, S, 3) and d['images'].dtype == np.float32
  assert d['joints'].shape == (6, 16, 3) and d['joints'].dtype == np.float32
  assert d['head_boxes'].shape == (6, 2, 2) and d['head_boxes'].dtype == np.float32
  assert np.isfinite(d['images']).all()
  assert set(np.unique(d['joints'][..., 2])) <= {0.0, 1.0}
  assert set(d['knobs']) >= {'difficulty', 'scale', 'clutter', 'occluders', 'noise'}
  assert all(v.shape == (6,) for v in d['knobs'].values())


def test_pose_is_deterministic_and_per_sample():
  small, big = synthetic_pose.make_pose(5, 3, 'train'), synthetic_pose.make_pose(50, 3, 'train')
  again = synthetic_pose.make_pose(5, 3, 'train')
  for key in ('images', 'joints', 'head_boxes'):
    np.testing.assert_array_equal(small[key], again[key])
    np.testing.assert_array_equal(small[key], big[key][:5])
  one = synthetic_pose.pose_sample(3, 'train', 37)
  np.testing.assert_array_equal(one['image'], big['images'][37])
  np.testing.assert_array_equal(one['joints'], big['joints'][37])
  labels_only = synthetic_pose.pose_sample(3, 'train', 37, render=False)
  np.testing.assert_array_equal(labels_only['joints'], big['joints'][37])
  assert not np.array_equal(synthetic_pose.make_pose(5, 4, 'train')['images'], small['images'])
  assert not np.array_equal(synthetic_pose.make_pose(5, 3, 'test')['joints'], small['joints'])


def test_pose_joints_lie_on_the_rendered_figure():
  """Rendered alone on black, every figure pixel lies within a limb's thickness of a segment between
  the joints mapped back to input pixels, and every limb's midpoint and every in-frame joint is on
  the figure. Swapped x/y, a wrong heatmap scale or a misplaced figure fail this."""
  fails = []
  for i in range(40):
    d = synthetic_pose.pose_sample(1, 'test', i, S, HM, clean=True)
    j = d['joints'][:, :2].astype(float) * S / HM
    unit = d['knobs']['scale'] * S
    fg = _foreground(d['image'])
    a, b = j[[p for p, _ in BONES]], j[[q for _, q in BONES]]
    far = _segment_distance(fg, a, b).min(1) > 0.3 * unit + 1.0
    fg_set = {(int(x), int(y)) for x, y in fg}
    def on_figure(p):
      near = np.round(p + np.array([[0, 0], [0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5]])).astype(int)
      return any((x, y) in fg_set for x, y in near)
    inside = [p for p in np.concatenate([j, (a + b) / 2])
              if (p >= 0.5).all() and (p <= S - 1.5).all()]
    missing = [p for p in inside if not on_figure(p)]
    if far.any() or missing:
      fails.append((i, int(far.sum()), len(missing)))
  assert not fails, fails


def test_pose_left_and_right_limbs_differ_in_colour():
  """Right limbs are warm and left limbs cool, so left/right is learnable."""
  warm_right = []
  for i in range(30):
    d = synthetic_pose.pose_sample(2, 'train', i, clean=True)
    j = d['joints'][:, :2] * S / HM
    px = lambda p: d['image'][int(round(p[1])), int(round(p[0]))]  # noqa: E731
    for right, left in (((12, 11), (13, 14)), ((2, 1), (3, 4))):   # upper arms, thighs
      pr, pl = j[list(right)].mean(0), j[list(left)].mean(0)
      if all((p >= 0).all() and (p <= S - 1).all() for p in (pr, pl)):
        warm_right.append(px(pr)[0] - px(pr)[2] > px(pl)[0] - px(pl)[2])
  assert np.mean(warm_right) > 0.8


def test_pose_weights_are_zero_exactly_off_the_frame():
  joints = np.stack([synthetic_pose.pose_sample(0, 'train', i, render=False)['joints']
                     for i in range(300)])
  xy, w = joints[..., :2], joints[..., 2]
  inside = np.all((xy >= -0.5) & (xy < HM - 0.5), axis=-1)
  np.testing.assert_array_equal(w, inside.astype(np.float32))
  assert 0 < (w == 0).sum() < 0.2 * w.size   # some joints leave the frame, most do not


def test_head_boxes_hold_the_neck_and_head_top():
  d = [synthetic_pose.pose_sample(0, 'test', i, render=False) for i in range(100)]
  boxes, joints = np.stack([x['head_box'] for x in d]), np.stack([x['joints'] for x in d])
  lo, hi = boxes.min(1), boxes.max(1)
  for k in (8, 9):
    assert (joints[:, k, :2] >= lo - 1e-4).all() and (joints[:, k, :2] <= hi + 1e-4).all()
  side = hi - lo
  np.testing.assert_allclose(side[:, 0], side[:, 1], rtol=1e-5)
  segment = np.linalg.norm(joints[:, 9, :2] - joints[:, 8, :2], axis=-1)
  np.testing.assert_allclose(side[:, 0], segment, rtol=1e-4)


def test_pose_difficulty_varies():
  k = synthetic_pose.make_pose(60, 0, 'train')['knobs']
  assert k['difficulty'].min() < 0.2 and k['difficulty'].max() > 0.8
  assert k['clutter'].max() >= 8 and k['clutter'].min() <= 1
  assert k['scale'].max() > 1.8 * k['scale'].min()
  assert (k['occluded'] > 0).any() and (k['occluded'] == 0).any()
  # the latent difficulty drives the knobs
  assert np.corrcoef(k['difficulty'], k['clutter'])[0, 1] > 0.5


def test_pose_is_calibrated_like_mpii_person_crops():
  """At the synthetic_pose config's geometry: figures fill the crop as SimpleBaseline's person crops
  do (crop = 1.25 x the person's box), the PCKh@0.5 threshold is the same fraction of the crop as on
  MPII (about 0.045: 2.9 heatmap pixels of 64 on a 256 crop), heatmaps read on the grid can reach
  it (a perfect heatmap decodes to >= 95%), and guessing the mean pose cannot."""
  from configs import synthetic_pose as pose_config  # pylint: disable=import-outside-toplevel
  cfg = pose_config.get_config().data
  s, hm = cfg.image_size, cfg.heatmap_size
  d = [synthetic_pose.pose_sample(cfg.seed, 'test', i, s, hm, render=False) for i in range(300)]
  joints, boxes = np.stack([x['joints'] for x in d]), np.stack([x['head_box'] for x in d])
  threshold = 0.5 * metrics.HEAD_SIZE_SCALE * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)
  assert 0.035 < np.median(threshold) / hm < 0.055
  assert np.percentile(threshold, 5) > 0.6 * np.median(threshold)   # moderate scale variation
  xy, visible = joints[..., :2], joints[..., 2] > 0
  extent = (xy.max(1) - xy.min(1)).max(-1) / hm                       # the figure's longer side
  assert 0.55 < np.median(extent) < 0.9
  perfect = np.asarray(tasks.decode_heatmaps(tasks.render_heatmaps(
      jnp.asarray(joints), (hm, hm), cfg.sigma)))
  assert metrics.pckh(perfect, xy, visible, boxes)[1] >= 95.0
  mean_pose = np.broadcast_to(xy[:150].mean(0), xy[150:].shape)     # from the other half
  assert metrics.pckh(mean_pose, xy[150:], visible[150:], boxes[150:])[1] < 15.0


def test_load_synthetic_pose_eager_and_lazy_agree():
  cfg = ml_collections.ConfigDict(dict(name='synthetic_pose', num_train=12, num_test=6, seed=5))
  ds = data.load(cfg)
  assert ds.task == 'pose' and ds.num_outputs == 16
  assert ds.x_train.shape == (12, S, S, 3) and ds.y_train.shape == (12, 16, 3)
  assert ds.x_test.shape == (6, S, S, 3) and ds.test_meta['head_boxes'].shape == (6, 2, 2)
  assert ds.task_params['heatmap_size'] == (HM, HM) and ds.task_params['sigma'] == 1.0
  assert ds.task_params['flip_pairs'] == synthetic_pose.FLIP_PAIRS
  cfg.lazy = True
  lazy = data.load(cfg)
  assert isinstance(lazy.x_train, data.LazyImages) and lazy.x_train.shape == ds.x_train.shape
  idx = np.array([11, 0, 4])
  np.testing.assert_array_equal(lazy.x_train[idx], ds.x_train[idx])
  np.testing.assert_array_equal(lazy.x_test[5], ds.x_test[5])
  for a, b in ((lazy.y_train, ds.y_train), (lazy.y_test, ds.y_test),
               (lazy.test_meta['head_boxes'], ds.test_meta['head_boxes'])):
    np.testing.assert_array_equal(a, b)


def test_crowd_shapes_determinism_and_density():
  c = synthetic_crowd.make_crowd(8, 0, 'train')
  assert c['images'].shape == (8, S, S, 3) and c['images'].dtype == np.float32
  assert c['density'].shape == (8, S // 4, S // 4) and c['density'].dtype == np.float32
  assert len(c['points']) == 8 and c['counts'].shape == (8,)
  for p, n, dm in zip(c['points'], c['counts'], c['density']):
    assert p.shape == (n, 2)
    assert ((p >= -0.5) & (p < S - 0.5)).all()
    assert dm.sum() == pytest.approx(n, abs=1e-3)
  bigger = synthetic_crowd.make_crowd(20, 0, 'train')
  np.testing.assert_array_equal(bigger['images'][:8], c['images'])
  np.testing.assert_array_equal(bigger['density'][:8], c['density'])
  one = synthetic_crowd.crowd_sample(0, 'train', 6, render=False)
  np.testing.assert_array_equal(one['points'], c['points'][6])
  assert not np.array_equal(synthetic_crowd.make_crowd(8, 1, 'train')['images'], c['images'])
  assert not np.array_equal(synthetic_crowd.make_crowd(8, 0, 'test')['counts'], c['counts'])


def test_crowd_heads_are_drawn_where_labelled():
  for i in range(15):
    d = synthetic_crowd.crowd_sample(4, 'train', i, clean=True)
    background = (0.0 - synthetic_crowd.CROWD_PIXEL_MEAN) / synthetic_crowd.CROWD_PIXEL_STD
    ij = np.clip(np.round(d['points']).astype(int), 0, S - 1)
    at_heads = d['image'][ij[:, 1], ij[:, 0]]
    assert (np.abs(at_heads - background).max(-1) > 0.2).all(), i


def test_crowd_counts_and_difficulty_vary():
  ks = [synthetic_crowd.crowd_sample(0, 'train', i, render=False)['knobs'] for i in range(200)]
  counts = np.array([k['count'] for k in ks])
  assert counts.min() <= 4 and counts.max() >= 80 and np.median(counts) < 40
  assert np.ptp([k['difficulty'] for k in ks]) > 0.9
  assert np.ptp([k['distractors'] for k in ks]) >= 8
  assert all(k['perspective'] < 1 for k in ks)


def test_load_synthetic_crowd():
  cfg = ml_collections.ConfigDict(dict(name='synthetic_crowd', num_train=10, num_test=4, seed=2,
                                       density_scale=50.0))
  ds = data.load(cfg)
  assert ds.task == 'crowd' and ds.num_outputs == 1
  assert ds.x_train.shape == (10, S, S, 3) and ds.y_train.shape == (10, S // 4, S // 4)
  assert ds.task_params['density_scale'] == 50.0
  np.testing.assert_allclose(ds.y_train.sum((1, 2)), 50.0 * ds.task_params['counts_train'],
                             rtol=1e-4)
  np.testing.assert_allclose(ds.y_test.sum((1, 2)), 50.0 * ds.task_params['counts_test'],
                             rtol=1e-4)
  cfg.lazy = True
  lazy = data.load(cfg)
  np.testing.assert_array_equal(lazy.x_train[np.arange(10)], ds.x_train)
  np.testing.assert_array_equal(lazy.y_train, ds.y_train)
  np.testing.assert_array_equal(lazy.task_params['counts_test'], ds.task_params['counts_test'])


@pytest.mark.parametrize('name, field, value, named', [
    ('synthetic_crowd', 'sigma', -1.0, 'config.data.sigma must be a finite positive number'),
    ('synthetic_crowd', 'image_size', (0, 64), 'config.data.image_size must be a positive integer '
                                               'or a pair'),
    ('synthetic_crowd', 'density_stride', 0, 'config.data.density_stride must be a positive'),
    ('synthetic_pose', 'heatmap_size', None, 'config.data.heatmap_size must be a positive integer'),
    ('synthetic_pose', 'num_test', 2.5, 'config.data.num_test must be a positive integer'),
    ('mnist1d', 'seed', -1, 'config.data.seed must be a non-negative integer'),
])
def test_a_generated_datasets_field_it_cannot_take_is_refused_before_it_renders(
    name, field, value, named):
  config = ml_collections.ConfigDict({'name': name, field: value})
  with pytest.raises(errors.ConfigError, match=named):
    data.load(config)
  # Through the real dataset behind a stand-in name, too.
  if name in data.STAND_INS.values():
    real = next(k for k, v in data.STAND_INS.items() if v == name)
    with pytest.raises(errors.ConfigError, match=named):
      data.load(ml_collections.ConfigDict({'name': real, 'synthetic': True, field: value}))


def test_a_crowd_scene_size_may_be_a_pair():
  data.check_fields('synthetic_crowd', ml_collections.ConfigDict({'image_size': (48, 64)}))
