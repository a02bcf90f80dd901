"""Pose and crowd counting end to end: every strategy on the synthetic tasks, the paper configs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import mpii as mpii_config
from configs import shanghaitech as shanghaitech_config
from configs import synthetic_crowd as crowd_config
from configs import synthetic_pose as pose_config
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax.data import synthetic_pose

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = ('random', 'entropy', 'coreset', 'll4al', 'l2r')
# The dense tasks' MC-dropout strategy (its model with dropout), on the crowd stand-in. (TypiClust
# and ProbCover read only the pooled embedding every task has: tests/test_typicality.py selects
# with TypiClust on the crowd stand-in, and tests/test_learner.py runs both end to end.)
CROWD_EXTRA = ('mc_variance',)


@pytest.mark.parametrize('config_module, metric, extra', [
    (pose_config, 'pckh', 'pckh_per_joint'), (crowd_config, 'mae', 'rmse')])
def test_every_strategy_on_the_synthetic_task(tmp_path, config_module, metric, extra):
  c = config_module.get_config('smoke')
  c.strategies = STRATEGIES + (CROWD_EXTRA if metric == 'mae' else ())
  if metric == 'mae':
    c.model.dropout = 0.2
    c.mc_variance = dict(passes=3)
  records = experiment.run(c, str(tmp_path))
  assert {(r['strategy'], r['cycle']) for r in records} == {
      (s, k) for s in c.strategies for k in (0, 1)}
  for r in records:
    assert r['metric'] == metric and np.isfinite(r['value']) and extra in r
    assert r['num_labeled'] == c.al.initial + c.al.budget * r['cycle']
    assert (r['spearman'] is not None) == (r['strategy'] in ('ll4al', 'l2r'))
    if metric == 'pckh':
      assert 0 <= r['value'] <= 100 and len(r['pckh_per_joint']) == 16
    else:
      assert r['value'] >= 0 and r['rmse'] >= r['value'] - 1e-9  # RMSE >= MAE
  summary = (tmp_path / 'summary.md').read_text()
  assert f'{metric} on the test set ({"higher" if metric == "pckh" else "lower"} is better)' \
      in summary


@pytest.mark.parametrize('config_file, named', [
    ('configs/mpii.py', ('train.json', 'valid.json', 'gt_valid.mat', 'images')),
    ('configs/shanghaitech.py', ('part_B', 'train_data', 'test_data', 'GT_IMG_'))])
def test_paper_configs_without_data_print_instructions(tmp_path, config_file, named):
  proc = subprocess.run(
      [sys.executable, '-m', 'l2r_jax.main', f'--config={config_file}',
       f'--workdir={tmp_path / "run"}', f'--config.data.data_dir={tmp_path / "tfds"}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr
  for name in named:
    assert name in proc.stderr, (name, proc.stderr[-2000:])
  assert str(tmp_path / 'tfds') in proc.stderr  # says where the files go


@pytest.mark.parametrize('config_module, x_shape, y_shape', [
    (mpii_config, (22246, 256, 256, 3), (16, 3)),
    (shanghaitech_config, (400, 768, 1024, 3), (768, 1024))])
def test_synthetic_stand_in_at_paper_scale(config_module, x_shape, y_shape):
  c = config_module.get_config()
  c.data.synthetic = True
  c.model.pretrained = None  # the ImageNet weights: tests/test_pretrained.py
  exp = experiment.make_experiment(c)  # also checks the paper model against the data (traced)
  ds = exp.dataset
  assert ds.x_train.shape == x_shape and len(ds.x_test) == {22246: 2958, 400: 316}[x_shape[0]]
  x = ds.x_train[np.array([0, x_shape[0] - 1])]  # generated on demand, not held in memory
  assert x.shape == (2, *x_shape[1:]) and np.isfinite(x).all()
  assert ds.y_train[np.array([3])].shape == (1, *y_shape)


def test_a_model_that_does_not_fit_the_task_is_refused_before_training():
  c = pose_config.get_config('smoke')
  c.model.name, c.model.kwargs = 'cnn2d', {}
  with pytest.raises(ValueError, match=r"config.model.name='cnn2d' predicts shape \(2, 16\).*"
                                       r"needs \(2, 8, 8, 16\)"):
    experiment.make_experiment(c)
  c = crowd_config.get_config('smoke')
  c.augment.crop = (20, 24)  # not on the density grid (stride 8)
  with pytest.raises(ValueError, match=r'config.augment.crop=\(20, 24\) must be'):
    experiment.make_experiment(c)


def test_a_strategy_that_does_not_apply_to_the_task_is_refused_before_training():
  c = crowd_config.get_config('smoke')
  c.strategies = ('random', 'margin')
  with pytest.raises(errors.ConfigError, match=r"config.strategies, config.data.name='synthetic_"
                                               r"crowd': Strategy 'margin' does not apply to the "
                                               r"'crowd' task"):
    experiment.make_experiment(c)


@pytest.mark.slow  # a run and a benchmark in subprocesses
def test_pose_by_difficulty_reads_the_runs_own_test_score(tmp_path):
  """benchmarks/pose_by_difficulty.py rescored a run's test set by quintile of difficulty: its
  every-pose row equals the PCKh the run itself recorded, its quintiles hold a fifth of the poses
  each."""
  overrides = ['--config=configs/synthetic_pose.py:paper_regime_smoke',
               "--config.strategies=('random',)", '--config.al.cycles=1',
               f'--workdir={tmp_path / "run"}']
  subprocess.run([sys.executable, '-m', 'l2r_jax.main', *overrides], cwd=ROOT, check=True,
                 capture_output=True, timeout=600)
  recorded = json.loads((tmp_path / 'run' / 'results.jsonl').read_text().splitlines()[0])
  subprocess.run([sys.executable, 'benchmarks/pose_by_difficulty.py', *overrides,
                  f'--out={tmp_path}'], cwd=ROOT, check=True, capture_output=True, timeout=600)
  rows = [line.split('|')[1:-1] for line in
          (tmp_path / 'pose_by_difficulty.md').read_text().splitlines() if line.startswith('| ')]
  table = {r[0].strip(): r for r in rows[1:]}
  assert float(table['all'][4].strip(' %')) == pytest.approx(recorded['value'], abs=0.01)
  counts = [int(r[1]) for name, r in table.items() if name != 'all']
  assert len(counts) == 5 and sum(counts) == 32 and set(counts) <= {6, 7}, counts
  # Each quintile's clutter is that of the poses ranked there by the renderer's difficulty,
  # ranked here by sorting rather than by the script's quantile edges.
  config = pose_config.get_config('paper_regime_smoke')
  knobs = synthetic_pose.make_pose(config.data.num_test, config.data.seed, 'test',
                                   config.data.image_size, config.data.heatmap_size)['knobs']
  ranked = knobs['clutter'][np.argsort(knobs['difficulty'], kind='stable')]
  groups = np.split(ranked, np.cumsum(counts)[:-1])
  assert [float(r[2]) for name, r in table.items() if name != 'all'] == pytest.approx(
      [g.mean() for g in groups], abs=0.05)
  # Only read: the script refuses a folder that holds no experiment, and creates nothing there.
  empty = tmp_path / 'not_a_run'
  empty.mkdir()
  refused = subprocess.run([sys.executable, 'benchmarks/pose_by_difficulty.py', *overrides[:-1],
                            f'--workdir={empty}', f'--out={tmp_path}'], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
  assert refused.returncode == 2 and 'holds no experiment' in refused.stderr
  assert 'Traceback' not in refused.stderr and not any(empty.iterdir())
