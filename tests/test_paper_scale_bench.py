"""The paper-scale benchmark (benchmarks/paper_scale.py): its run arithmetic against hand-worked
numbers, the sizes it reads from the paper configs, and one tiny run end to end (slow)."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PATH = os.path.join(ROOT, 'benchmarks', 'paper_scale.py')
_spec = importlib.util.spec_from_file_location('paper_scale', _PATH)
paper_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paper_scale)


def test_a_run_is_its_cycles_epochs_of_steps_its_subsets_and_its_test_evaluations():
  run = dict(labeled=[100, 200], epochs=3, batch=64, subsets=[500], test=50)
  # Training: 3 epochs of ceil(100/64) = 2 steps, then of ceil(200/64) = 4, at 2 s a step: 36 s;
  # scoring 500 samples once and the 50 test samples after each of the 2 cycles at 10 ms each.
  assert paper_scale.estimate_run_s(run, 2.0, 0.01) == pytest.approx(
      dict(train_s=36.0, score_s=5.0, eval_s=1.0, total_s=42.0))


@pytest.mark.parametrize('name, labeled, epochs, batch, subsets, test', [
    ('cifar10', [1000 * k for k in range(1, 11)], 150, 64, [10000] * 9, 10000),
    ('celeba', [100 * k for k in range(1, 11)], 100, 64, [20000] * 9, 19962),
    # MPII: 200 + 200 per cycle, subsets of 5,000 from 22,246 poses, its 2,958 validation poses.
    ('mpii', [200 * k for k in range(1, 6)], 140, 32, [5000] * 4, 2958),
    # ShanghaiTech-B scores what is left of its 400 training images every cycle.
    ('shanghaitech', [20 * k for k in range(1, 6)], 100, 4, [380, 360, 340, 320], 316)])
def test_the_sizes_of_a_run_are_the_paper_configs(name, labeled, epochs, batch, subsets, test):
  run = paper_scale.sizes_of_a_run(name)
  assert (run['labeled'], run['epochs'], run['batch'], run['subsets'], run['test']) == (
      labeled, epochs, batch, subsets, test)


def test_a_child_sees_the_devices_it_is_given(monkeypatch):
  monkeypatch.setattr(paper_scale, '_platform', lambda: 'cpu')
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=8 --xla_dump_to=/x')
  env = paper_scale._visible(2)
  assert env['XLA_FLAGS'].split() == ['--xla_dump_to=/x', '--xla_force_host_platform_device_count=2']
  monkeypatch.setattr(paper_scale, '_platform', lambda: 'gpu')
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3,5,6')
  assert paper_scale._visible(2)['CUDA_VISIBLE_DEVICES'] == '3,5'
  monkeypatch.delenv('CUDA_VISIBLE_DEVICES')
  assert paper_scale._visible(3)['CUDA_VISIBLE_DEVICES'] == '0,1,2'
  assert 'CUDA_VISIBLE_DEVICES' not in paper_scale._visible(None)


def test_a_run_stopped_midway_keeps_the_configs_it_measured(tmp_path, monkeypatch):
  # A device lent for minutes: the run is stopped (here: interrupted) in its second config; the
  # report on disk holds the first.
  def spawn(name, case, args, devices=None):
    del case, args, devices
    if name == 'shanghaitech':
      raise KeyboardInterrupt
    return {'error': 'out of memory'}

  monkeypatch.setattr(paper_scale, 'spawn', spawn)
  with pytest.raises(KeyboardInterrupt):
    paper_scale.main(['--configs', 'mpii,shanghaitech', '--out', str(tmp_path)])
  report = (tmp_path / 'paper_scale.md').read_text()
  assert '| mpii | simple_baseline' in report and 'failed: out of memory' in report
  assert '| shanghaitech |' not in report
  assert list(json.loads((tmp_path / 'paper_scale.json').read_text())['configs']) == ['mpii']


@pytest.mark.slow
def test_a_tiny_run_writes_its_report(tmp_path):
  results = paper_scale.main(['--configs', 'cifar10', '--steps', '1', '--repeats', '1',
                              '--score_n', '16', '--score_devices', '1,2', '--out', str(tmp_path)])
  cifar = results['configs']['cifar10']
  assert 'error' not in cifar['train'] and 'error' not in cifar['score'], cifar
  assert cifar['train']['batch'] == 64 and cifar['train']['steps'] == 1
  assert cifar['score']['samples'] == 16 and cifar['score']['chunk'] == 512
  assert [results['score_devices']['cifar10'][k]['devices'] for k in ('1', '2')] == [1, 2]
  report = (tmp_path / 'paper_scale.md').read_text()
  assert '| cifar10 | resnet18, 32×32×3 | 64 |' in report and 'failed' not in report
  assert json.loads((tmp_path / 'paper_scale.json').read_text())['steps'] == 1
