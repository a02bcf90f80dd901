"""A workdir holds one experiment, written by one run at a time."""
import collections
import json
import os
import signal
import subprocess
import sys

import pytest

from l2r_jax import experiment
from l2r_jax import workdir
import smoke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
  """One strategy, one cycle: a few seconds."""
  return smoke.mnist1d(**{'strategies': ('random',), 'al.cycles': 1, **overrides})


def _listing(path):
  return sorted(os.path.relpath(os.path.join(d, f), path)
                for d, _, files in os.walk(path) for f in files)


def test_a_changed_config_is_refused_with_every_difference_and_nothing_is_touched(tmp_path):
  experiment.run(_config(), str(tmp_path))
  before = {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)}
  for overrides, named in [
      ({'al.budget': 16, 'data.seed': 43}, ('config.al.budget: 32 -> 16',
                                            'config.data.seed: 42 -> 43')),
      ({'data.num_samples': 700}, ('config.data.num_samples: 600 -> 700',)),
      ({'predictor.hidden': 64}, ('config.predictor.hidden: 128 -> 64',)),
  ]:
    with pytest.raises(workdir.WorkdirError) as e:
      experiment.run(_config(**overrides), str(tmp_path))
    for text in named:
      assert text in str(e.value)
    assert 'give a new --workdir' in str(e.value)
    assert {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)} == before


def test_a_field_added_to_the_package_since_counts_as_unchanged_at_its_default(tmp_path):
  """A workdir made before ``typiclust.embedding`` existed: at its default the experiment is the
  same one; set to another value, it is another."""
  config = _config()
  ident = workdir.identity(config)
  del ident['fields']['typiclust.embedding']
  workdir.write_identity(str(tmp_path), ident)
  assert workdir.check_identity(str(tmp_path), config)['fields']['typiclust.embedding'] == 'target'
  config.typiclust.embedding = 'pretrained'
  with pytest.raises(workdir.WorkdirError, match=r'config.typiclust.embedding: "\(absent\)" -> '
                                                 r'"pretrained"'):
    workdir.check_identity(str(tmp_path), config)


def test_cycles_strategies_and_seeds_extend_the_experiment_and_the_report_shows_the_current_runs(
    tmp_path):
  experiment.run(_config(), str(tmp_path))
  records = experiment.run(_config(strategies=('random', 'entropy'), **{'al.cycles': 2}),
                           str(tmp_path))
  assert {(r['strategy'], r['cycle']) for r in records} == {
      (s, c) for s in ('random', 'entropy') for c in (0, 1)}
  # Back to the first config: the record keeps everything, the returned runs and the report
  # cover this config's runs only.
  records = experiment.run(_config(), str(tmp_path))
  assert {(r['strategy'], r['cycle']) for r in records} == {('random', 0)}
  assert '| entropy |' not in (tmp_path / 'summary.md').read_text()
  lines = (tmp_path / 'results.jsonl').read_text().strip().split('\n')
  assert len(lines) == 4
  identity = json.loads((tmp_path / workdir.IDENTITY_FILE).read_text())
  assert identity['fields']['al.budget'] == 32 and 'al.cycles' not in identity['fields']


def test_a_refused_config_leaves_no_identity_behind(tmp_path):
  with pytest.raises(ValueError, match='config.al.budget'):
    experiment.run(_config(**{'al.budget': 300}), str(tmp_path))
  assert not (tmp_path / workdir.IDENTITY_FILE).exists()
  assert not (tmp_path / workdir.LOCK_FILE).exists()


_HOLD = '''
import sys, time
from l2r_jax import workdir
with workdir.lock(sys.argv[1]):
  print('held', flush=True)
  time.sleep(600)
'''


def test_a_second_run_is_refused_naming_the_first_and_a_killed_runs_lock_is_taken_over(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', _HOLD, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    out = subprocess.run(
        [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
         f'--workdir={tmp_path}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert f'in use by process {holder.pid} on this host' in out.stderr
    with pytest.raises(workdir.WorkdirError, match=str(holder.pid)):
      with workdir.lock(str(tmp_path)):
        pass
  finally:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
  # The holder is gone (killed, its lock left behind): the next run takes the lock over.
  assert (tmp_path / workdir.LOCK_FILE).exists()
  with workdir.lock(str(tmp_path)):
    assert json.loads((tmp_path / workdir.LOCK_FILE).read_text())['pid'] == os.getpid()
  assert not (tmp_path / workdir.LOCK_FILE).exists()


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path):
  (tmp_path / workdir.LOCK_FILE).write_text(json.dumps(
      {'pid': 1, 'host': 'elsewhere', 'started': '2026-01-01T00:00:00'}))
  with pytest.raises(workdir.WorkdirError, match=r'on host elsewhere; if it no longer runs, '
                                                 r'delete .*lock'):
    with workdir.lock(str(tmp_path)):
      pass


def _checkpoint(workdir, run, cycle):
  return workdir / 'checkpoints' / run / str(cycle)


def _truncate_a_data_file(step_dir):
  data = max((p for p in step_dir.glob('models/**/d/*')), key=lambda p: p.stat().st_size)
  data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])


def _remove_the_manifest(step_dir):
  for manifest in step_dir.glob('models/**/manifest.ocdbt'):
    manifest.unlink()


def _remove_the_json_part(step_dir):
  (step_dir / 'al' / 'metadata').unlink()


def _key(r):
  return (r['strategy'], r['seed'], r['cycle'])


def _strip(records):
  return sorted(({k: v for k, v in r.items() if k != 'wall_s'} for r in records), key=_key)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  path = tmp_path_factory.mktemp('uninterrupted')
  experiment.run(_config(**{'al.cycles': 3}), str(path))
  return _strip(experiment.checkpoint.read_results(str(path / 'results.jsonl')))


@pytest.mark.parametrize('damage', [_truncate_a_data_file, _remove_the_manifest,
                                    _remove_the_json_part])
def test_a_damaged_newest_checkpoint_is_moved_aside_and_its_cycle_computed_again(
    tmp_path, monkeypatch, uninterrupted, damage):
  config = _config(**{'al.cycles': 3})
  experiment.run(config, str(tmp_path))
  damage(_checkpoint(tmp_path, 'random-seed0', 2))
  reports = []
  monkeypatch.setattr(experiment.checkpoint.logging, 'warning', reports.append)
  records = experiment.run(config, str(tmp_path))
  assert len(reports) == 1 and 'the checkpoint of cycle 2 cannot be restored' in reports[0]
  assert 'resuming from the one before' in reports[0] and '\n' not in reports[0]
  aside = list((tmp_path / 'damaged').iterdir())
  assert len(aside) == 1 and aside[0].name.startswith('random-seed0-cycle2-')
  assert _checkpoint(tmp_path, 'random-seed0', 2).exists()  # computed again
  assert _strip(records) == uninterrupted
  assert _strip(experiment.checkpoint.read_results(str(tmp_path / 'results.jsonl'))) == (
      uninterrupted)


def test_a_failed_restore_silences_its_abandoned_reads_and_nothing_else(monkeypatch):
  # Without its OCDBT manifest, a checkpoint's restore fails on one array while tensorstore's
  # reads of the others complete later, each waking a closed event loop: 30 tracebacks.
  seen = []
  monkeypatch.setattr(sys, 'unraisablehook', seen.append)
  experiment.checkpoint._drop_abandoned_reads_noise()
  experiment.checkpoint._drop_abandoned_reads_noise()  # once, not stacked
  args = collections.namedtuple('UnraisableHookArgs',
                                'exc_type exc_value exc_traceback err_msg object')
  sys.unraisablehook(args(RuntimeError, RuntimeError('Event loop is closed'), None, None, None))
  other = args(RuntimeError, RuntimeError('a bug'), None, None, None)
  sys.unraisablehook(other)
  assert seen == [other]


def test_a_results_line_that_cannot_be_parsed_is_reported_and_its_record_restored(
    tmp_path, uninterrupted):
  config = _config(**{'al.cycles': 3})
  experiment.run(config, str(tmp_path))
  path = tmp_path / 'results.jsonl'
  lines = path.read_text().split('\n')
  lines[1] = lines[1][:20] + '#' + lines[1][21:]  # a damaged middle line, not a cut-off last one
  path.write_text('\n'.join(lines))
  reports = []
  records = experiment.checkpoint.read_results(str(path), report=reports.append)
  assert len(records) == 2 and len(reports) == 1 and 'line 2 cannot be parsed' in reports[0]
  assert list(tmp_path.glob('results.jsonl.damaged-*'))  # the file as it was, kept
  assert _strip(experiment.run(config, str(tmp_path))) == uninterrupted
  assert _strip(experiment.checkpoint.read_results(str(path))) == uninterrupted
