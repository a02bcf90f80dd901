"""A workdir holds one experiment, written by one run at a time."""
import builtins
import collections
import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from l2r_jax import checkpoint
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import report
from l2r_jax import runs
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
      ({'loss_module.hidden': 64}, ('config.loss_module.hidden: 128 -> 64',)),
  ]:
    with pytest.raises(errors.WorkdirError) as e:
      experiment.run(_config(**overrides), str(tmp_path))
    for text in named:
      assert text in str(e.value)
    assert 'give a new --workdir' in str(e.value)
    assert {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)} == before


def test_a_run_resumes_on_the_device_count_it_began_on(tmp_path, monkeypatch):
  """One device and several compute the same steps up to rounding, which training can amplify
  (Adam's several loss-module updates a step): a workdir's runs are not mixed across counts."""
  experiment.run(_config(), str(tmp_path))   # this process has two (fake CPU) devices
  assert json.loads((tmp_path / workdir.IDENTITY_FILE).read_text())['devices'] == 2
  before = {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)}
  monkeypatch.setattr(experiment.jax, 'device_count', lambda: 1)
  with pytest.raises(errors.WorkdirError, match=r'Differences: devices: 2 -> 1 \(one device and '
                     r'several compute the same steps up to rounding, which training can amplify: '
                     r'resume on 2\)'):
    experiment.run(_config(**{'al.cycles': 2}), str(tmp_path))
  assert {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)} == before


def test_other_data_under_the_same_config_is_refused_naming_what_changed(tmp_path,
                                                                         monkeypatch):
  # A loader edited between two runs (its samples, then its labels): the config is the same, the
  # experiment is not. A workdir of a version that recorded no data resumes on its config.
  from l2r_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  experiment.run(_config(), str(tmp_path))
  before = {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)}
  recorded = json.loads((tmp_path / workdir.IDENTITY_FILE).read_text())['data']
  made = experiment.make_experiment(_config())
  assert recorded == data_lib.describe(made.dataset, test=True)
  assert recorded['pool_size'] == len(made.dataset.x_train) and recorded['test_size'] == len(
      made.dataset.x_test)
  load = data_lib.LOADERS['mnist1d']
  for edit, named in [
      (lambda d: d._replace(x_train=d.x_train * 2), 'data pool_sha256: '),
      (lambda d: d._replace(y_test=d.y_test[::-1].copy()), 'data test_labels_sha256: '),
      (lambda d: d._replace(x_test=d.x_test[:-1], y_test=d.y_test[:-1]),
       f'data test_size: {len(made.dataset.x_test)} -> {len(made.dataset.x_test) - 1}')]:
    monkeypatch.setitem(data_lib.LOADERS, 'mnist1d', lambda c, edit=edit: edit(load(c)))
    with pytest.raises(errors.WorkdirError, match=r'holds another experiment.*Differences: .*' +
                       re.escape(named)):
      experiment.run(_config(), str(tmp_path))
    assert {f: (tmp_path / f).read_bytes() for f in _listing(tmp_path)} == before
  monkeypatch.setitem(data_lib.LOADERS, 'mnist1d', load)
  ident = json.loads((tmp_path / workdir.IDENTITY_FILE).read_text())
  del ident['data']
  (tmp_path / workdir.IDENTITY_FILE).write_text(json.dumps(ident))
  assert len(experiment.run(_config(**{'al.cycles': 2}), str(tmp_path))) == 2
  assert 'data' not in json.loads((tmp_path / workdir.IDENTITY_FILE).read_text())


def test_where_the_data_lies_may_change_where_the_data_itself_is_recorded():
  # A folder named with a trailing slash, from another folder, or moved: the same data, compared
  # by its description; a workdir that records no data is known by its config alone.
  config = _config()
  config.data.root = '/data/photos'
  data = {'pool_size': 10, 'pool_ids_sha256': 'abc'}
  old = workdir.identity(config, data)
  for root in ('/data/photos/', 'photos', '/mnt/team/photos'):
    config.data.root = root
    assert workdir.differences(old, workdir.identity(config, data)) == ()
    assert workdir.differences(old, workdir.identity(config)) == ()   # before the data loads
  assert workdir.differences(old, workdir.identity(config, dict(data, pool_size=11))) == (
      'data pool_size: 10 -> 11',)
  del old['data']
  assert workdir.differences(old, workdir.identity(config, data)) == (
      'config.data.root: "/data/photos" -> "/mnt/team/photos"',)


def test_a_field_added_to_the_package_since_counts_as_unchanged_at_its_default(tmp_path):
  """A workdir made before ``typiclust.embedding`` existed: at its default the experiment is the
  same one; set to another value, it is another."""
  config = _config()
  ident = workdir.identity(config)
  del ident['fields']['typiclust.embedding']
  workdir.write_identity(str(tmp_path), ident)
  assert workdir.check_identity(str(tmp_path), config)['fields']['typiclust.embedding'] == 'target'
  config.typiclust.embedding = 'pretrained'
  with pytest.raises(errors.WorkdirError, match=r'config.typiclust.embedding: "\(absent\)" -> '
                                                 r'"pretrained"'):
    workdir.check_identity(str(tmp_path), config)
  # A field a config file added since, unset (None): the same experiment; set, another.
  config = _config()
  config.data.classes = None
  assert workdir.check_identity(str(tmp_path), config)
  config.data.classes = ('a', 'b')
  with pytest.raises(errors.WorkdirError, match=r'config.data.classes: "\(absent\)" -> '):
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
    with pytest.raises(errors.WorkdirError, match=str(holder.pid)):
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


@pytest.mark.parametrize('text', ['[]', '{"fields": []}', '{"data": 3}', '"experiment"'])
def test_an_identity_damaged_by_hand_into_other_json_is_refused_in_one_line(tmp_path, text):
  (tmp_path / workdir.IDENTITY_FILE).write_text(text)
  with pytest.raises(errors.WorkdirError, match=r'experiment.json cannot be read \(not the JSON '
                                                 r'object it writes\).*Restore it'):
    workdir.check_identity(str(tmp_path), _config())


def test_a_lock_damaged_by_hand_names_no_holder_and_is_taken(tmp_path):
  for text in ('[1]', '"me"', '{"pid": 1, "host": "elsewhere"}'):
    (tmp_path / workdir.LOCK_FILE).write_text(text)
    if 'elsewhere' in text:
      with pytest.raises(errors.WorkdirError, match='started at a time the lock does not record'):
        with workdir.lock(str(tmp_path)):
          pass
    else:
      with workdir.lock(str(tmp_path)):
        assert json.loads((tmp_path / workdir.LOCK_FILE).read_text())['pid'] == os.getpid()


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path):
  (tmp_path / workdir.LOCK_FILE).write_text(json.dumps(
      {'pid': 1, 'host': 'elsewhere', 'started': '2026-01-01T00:00:00'}))
  with pytest.raises(errors.WorkdirError, match=r'on host elsewhere; if it no longer runs, '
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


def _empty_the_json_part(step_dir):    # JSON still, but no record of the run
  (step_dir / 'al' / 'metadata').write_text('{}')


def _label_a_sample_outside_the_pool(step_dir):
  path = step_dir / 'al' / 'metadata'
  saved = json.loads(path.read_text())
  saved['labeled'][0] = 99999
  path.write_text(json.dumps(saved))


def _key(r):
  return (r['strategy'], r['seed'], r['cycle'])


def _strip(records):
  return sorted(({k: v for k, v in r.items() if k != 'wall_s'} for r in records), key=_key)


def _scalars(folder):
  """{tag: [(step, value), ...]} of the TensorBoard event files in ``folder``, read record by
  record (TFRecord framing: length, its CRC, the Event proto, its CRC)."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  scalars = collections.defaultdict(list)
  for name in sorted(os.listdir(folder)):
    data, at = (folder / name).read_bytes(), 0
    while at < len(data):
      length = struct.unpack('<Q', data[at:at + 8])[0]
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:
        scalars[value.tag].append((event.step, value.simple_value))
  return scalars


def _scalar_steps(folder):
  return {tag: sorted(s for s, _ in pairs) for tag, pairs in _scalars(folder).items()}


def _scalar_values(folder):
  return {tag: [v for _, v in sorted(pairs)] for tag, pairs in _scalars(folder).items()}


def test_tensorboard_holds_every_saved_cycles_scalars_when_the_run_is_killed(tmp_path):
  # The process dies (no goodbye, no flush) right after its second cycle is saved: both cycles'
  # scalars are on disk, none left in the writer's queue; resumed, the third follows, once.
  script = (
      'import os, sys\n'
      'from l2r_jax import experiment, runs\n'
      'import smoke\n'
      'save = runs.save_run\n'
      'def save_then_die(experiment_, workdir, run, history):\n'
      '  save(experiment_, workdir, run, history)\n'
      '  if run.state.cycle == 1:\n'
      '    os._exit(0)\n'
      'runs.save_run = save_then_die\n'
      "experiment.run(smoke.mnist1d(**{'strategies': ('random',), 'al.cycles': 3}), sys.argv[1])\n")
  tests = os.path.dirname(os.path.abspath(__file__))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(tests), tests]))
  subprocess.run([sys.executable, '-c', script, str(tmp_path)], check=True, env=env)
  config = _config(**{'al.cycles': 3})
  epochs = config.train.epochs
  labels = [r['num_labeled'] for r in checkpoint.read_results(str(tmp_path / 'results.jsonl'))]
  assert len(labels) == 2
  steps = _scalar_steps(tmp_path / 'tensorboard' / 'random-seed0')
  assert steps['eval_accuracy'] == labels
  assert steps['train_loss'] == list(range(2 * epochs))
  experiment.run(config, str(tmp_path))
  labels = [r['num_labeled'] for r in checkpoint.read_results(str(tmp_path / 'results.jsonl'))]
  steps = _scalar_steps(tmp_path / 'tensorboard' / 'random-seed0')
  assert len(labels) == 3 and steps['eval_accuracy'] == labels
  assert steps['train_loss'] == list(range(3 * epochs))


def test_a_cycle_computed_again_replaces_its_scalars(tmp_path):
  # A kill between a cycle's scalars and its checkpoint: the cycle is computed again, and its
  # scalars written again; TensorBoard shows them once, with the values of the second.
  record = dict(value=0.5, metric='accuracy', num_labeled=20, spearman=None)
  runs._write_scalars(str(tmp_path), 0, dict(record, num_labeled=10), [{'train_loss': 2.0}], 1)
  runs._write_scalars(str(tmp_path), 1, record, [{'train_loss': 1.0}], 1)
  with mock.patch('time.time', return_value=time.time() + 5):   # another second: another file
    runs._write_scalars(str(tmp_path), 1, dict(record, value=0.75), [{'train_loss': 0.5}], 1)
  assert len(os.listdir(tmp_path)) == 2
  assert _scalar_steps(tmp_path) == {'train_loss': [0, 1], 'eval_accuracy': [10, 20]}
  assert _scalar_values(tmp_path)['eval_accuracy'] == [0.5, 0.75]
  # Within the same second the writer's file name is the same: written over, and kept.
  now = time.time()
  with mock.patch('time.time', return_value=now):
    runs._write_scalars(str(tmp_path), 2, record, [{'train_loss': 0.25}], 1)
    runs._write_scalars(str(tmp_path), 2, record, [{'train_loss': 0.25}], 1)
  assert len(os.listdir(tmp_path)) == 3
  assert _scalar_steps(tmp_path)['train_loss'] == [0, 1, 2]


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A workdir holding a finished three-cycle run: copy it before changing anything in it."""
  path = tmp_path_factory.mktemp('uninterrupted')
  experiment.run(_config(**{'al.cycles': 3}), str(path))
  return path


@pytest.fixture(scope='module')
def uninterrupted(finished):
  return _strip(experiment.checkpoint.read_results(str(finished / 'results.jsonl')))


@pytest.mark.parametrize('damage', [_truncate_a_data_file, _remove_the_manifest,
                                    _remove_the_json_part, _empty_the_json_part,
                                    _label_a_sample_outside_the_pool])
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


# -- nothing through a link ----------------------------------------------------------------------


def _contents(path):
  """A file's bytes, or a folder's files (by relative name) with their bytes."""
  return path.read_bytes() if path.is_file() else {f: (path / f).read_bytes()
                                                   for f in _listing(path)}


def _link_to_a_users_file(entry, elsewhere):
  """``entry``, a file the run writes, made a link to a file of the user's."""
  target = elsewhere / 'notes.txt'
  target.write_bytes(b'a file of the user, not of l2r-jax\n')
  if entry.exists():
    entry.unlink()
  entry.symlink_to(target)
  return target


def _link_to_a_copy(entry, elsewhere):
  """``entry``, a folder the run wrote, moved out of the workdir and linked to where it went."""
  target = elsewhere / entry.name
  shutil.move(str(entry), str(target))
  entry.symlink_to(target, target_is_directory=True)
  return target


def _link_to_an_empty_folder(entry, elsewhere):
  target = elsewhere / 'folder'
  target.mkdir()
  entry.symlink_to(target, target_is_directory=True)
  return target


def _events_file(workdir):
  return next((workdir / 'tensorboard' / 'random-seed0').iterdir())


@pytest.mark.parametrize('where, plant', [
    ('results.jsonl', _link_to_a_users_file),
    ('summary.md', _link_to_a_users_file),
    ('curves.png', _link_to_a_users_file),
    (workdir.IDENTITY_FILE, _link_to_a_users_file),
    (workdir.LOCK_FILE, _link_to_a_users_file),
    ('checkpoints', _link_to_a_copy),
    ('checkpoints/random-seed0', _link_to_a_copy),
    ('checkpoints/random-seed0/2', _link_to_a_copy),
    ('tensorboard', _link_to_a_copy),
    ('tensorboard/random-seed0', _link_to_a_copy),
    (_events_file, _link_to_a_users_file),
    ('damaged', _link_to_an_empty_folder),
], ids=lambda v: v if isinstance(v, str) else v.__name__.strip('_'))
def test_a_link_where_a_run_writes_is_refused_in_one_line_and_its_target_left_as_it_was(
    tmp_path, finished, where, plant):
  path = tmp_path / 'workdir'
  shutil.copytree(finished, path)
  entry = where(path) if callable(where) else path / where
  target = plant(entry, tmp_path)
  before = _contents(target), {f: (path / f).read_bytes() for f in _listing(path)}
  with pytest.raises(errors.WorkdirError) as e:
    # One cycle more: a run that went on would write into every one of these.
    experiment.run(_config(**{'al.cycles': 4}), str(path))
  assert 'is a symbolic link' in str(e.value) and str(entry.name) in str(e.value)
  assert '\n' not in str(e.value)
  # Nothing written, in the workdir (no lock left either) or through the link.
  assert (_contents(target), {f: (path / f).read_bytes() for f in _listing(path)}) == before
  assert entry.is_symlink()


@pytest.mark.parametrize('where', ['checkpoints/random-seed0/1', 'tensorboard/random-seed0/x'])
def test_a_link_planted_while_a_cycle_runs_is_refused_before_its_save(tmp_path, monkeypatch,
                                                                       where):
  """The folders are checked when a run opens, and again before each cycle is saved: a link put
  there meanwhile is never written through."""
  path, planted = tmp_path / 'workdir', []
  cycle = experiment.run_cycle

  def cycle_then_plant(*args):   # cycle 1 ends; a link appears before it is saved
    out = cycle(*args)
    if args[1][0].cycle == 0:
      planted.append(_link_to_an_empty_folder(path / where, tmp_path))
    return out

  monkeypatch.setattr(experiment, 'run_cycle', cycle_then_plant)
  with pytest.raises(errors.WorkdirError, match=f'{where} is a symbolic link'):
    experiment.run(_config(**{'al.cycles': 3}), str(path))
  assert not os.listdir(planted[0])   # nothing written through it
  assert [r['cycle'] for r in checkpoint.read_results(str(path / 'results.jsonl'))] == [0]


def test_the_command_line_refuses_a_linked_report_in_one_line_and_exits_2(tmp_path):
  (tmp_path / 'workdir').mkdir()
  target = _link_to_a_users_file(tmp_path / 'workdir' / 'summary.md', tmp_path)
  out = subprocess.run(
      [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
       f'--workdir={tmp_path / "workdir"}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  lines = out.stderr.strip().split('\n')
  assert len(lines) == 1 and lines[0].startswith('l2r_jax: ')
  assert 'summary.md is a symbolic link' in lines[0]
  assert target.read_bytes() == b'a file of the user, not of l2r-jax\n'
  assert os.listdir(tmp_path / 'workdir') == ['summary.md']


def test_each_writer_refuses_a_link_itself(tmp_path):
  """Beyond the check before a run: the report, the results file, the damaged folder."""
  records = [{'strategy': 'random', 'seed': 0, 'cycle': 0, 'num_labeled': 32,
              'metric': 'accuracy', 'value': 0.5, 'spearman': None}]
  (tmp_path / 'elsewhere').mkdir()
  for name in ('summary.md', 'curves.png'):
    target = _link_to_a_users_file(tmp_path / name, tmp_path / 'elsewhere')
    with pytest.raises(errors.WorkdirError, match=f'{name} is a symbolic link'):
      report.write(records, str(tmp_path))
    assert target.read_bytes() == b'a file of the user, not of l2r-jax\n'
    assert not (tmp_path / 'summary.md').exists() or (tmp_path / 'summary.md').is_symlink()
    (tmp_path / name).unlink()
  target = _link_to_a_users_file(tmp_path / 'results.jsonl', tmp_path / 'elsewhere')
  for write in (lambda p: checkpoint.append_results(p, records), checkpoint.read_results,
                lambda p: checkpoint.drop_results(p, 'random', 0, -1)):
    with pytest.raises(errors.WorkdirError, match='results.jsonl is a symbolic link'):
      write(str(tmp_path / 'results.jsonl'))
    assert target.read_bytes() == b'a file of the user, not of l2r-jax\n'
  (tmp_path / 'checkpoints' / 'run' / '3').mkdir(parents=True)
  _link_to_an_empty_folder(tmp_path / 'damaged', tmp_path / 'elsewhere')
  with pytest.raises(errors.WorkdirError, match='damaged is a symbolic link'):
    checkpoint.move_aside(str(tmp_path / 'checkpoints' / 'run'), 3)
  assert (tmp_path / 'checkpoints' / 'run' / '3').is_dir()
  assert not os.listdir(tmp_path / 'elsewhere' / 'folder')


def test_paths_outside_the_workdir_and_files_where_folders_belong_are_refused(tmp_path):
  (tmp_path / 'inside').mkdir()
  (tmp_path / 'elsewhere').mkdir()
  (tmp_path / 'inside' / 'down').symlink_to(tmp_path / 'elsewhere', target_is_directory=True)
  for parts in [('..', 'x'), ('/etc', 'passwd'), ('down', '..', '..', 'x')]:
    with pytest.raises(errors.WorkdirError, match='outside the workdir'):
      workdir.path_in(str(tmp_path / 'inside'), *parts)
  with pytest.raises(errors.WorkdirError, match='down is a symbolic link'):
    workdir.path_in(str(tmp_path / 'inside'), 'down', 'x')
  # 'down/../b' comes back as 'b': the kernel would take 'down/..' through the link, outside.
  assert workdir.path_in(str(tmp_path / 'inside'), 'down', '..', 'b') == str(
      tmp_path / 'inside' / 'b')
  (tmp_path / 'inside' / 'tensorboard').write_text('a file')
  with pytest.raises(errors.WorkdirError, match='tensorboard is a file; the project keeps a '
                                                 'folder there'):
    workdir.check_no_links(str(tmp_path / 'inside'))
  (tmp_path / 'inside' / 'summary.md').mkdir()
  with pytest.raises(errors.WorkdirError, match='summary.md is a folder; the project keeps a '):
    workdir.write_atomic(workdir.path_in(str(tmp_path / 'inside'), 'summary.md'), 'text')
  with pytest.raises(errors.WorkdirError, match='summary.md is a folder'):
    workdir.append_synced(workdir.path_in(str(tmp_path / 'inside'), 'summary.md'), 'text')
  with pytest.raises(errors.WorkdirError, match='summary.md is a folder'):
    checkpoint.read_results(str(tmp_path / 'inside' / 'summary.md'))
  (tmp_path / 'inside' / 'tensorboard').unlink()
  with pytest.raises(errors.WorkdirError, match='summary.md is a folder; the project keeps a '):
    workdir.check_no_links(str(tmp_path / 'inside'))


def test_a_workdir_through_a_link_to_nothing_is_refused_before_anything_is_made(tmp_path):
  from l2r_jax import learner  # pylint: disable=g-import-not-at-top
  from l2r_jax import validation  # pylint: disable=g-import-not-at-top
  (tmp_path / 'dangling').symlink_to(tmp_path / 'nowhere', target_is_directory=True)
  for given in (tmp_path / 'dangling', tmp_path / 'dangling' / 'run'):
    with pytest.raises(errors.WorkdirError, match=f'dangling is a symbolic link to '
                       f'{tmp_path / "nowhere"}, which does not exist; create that folder'):
      validation.check_workdir(str(given))
  with pytest.raises(errors.WorkdirError, match='which does not exist'):
    experiment.run(_config(), str(tmp_path / 'dangling'))
  with pytest.raises(errors.WorkdirError, match='which does not exist'):
    learner.ActiveLearner(_config(), str(tmp_path / 'dangling'))
  assert not os.path.lexists(tmp_path / 'nowhere')
  # A link to a folder that exists is the folder the user named: a workdir may be reached so.
  (tmp_path / 'nowhere').mkdir()
  assert validation.check_workdir(str(tmp_path / 'dangling')) == str(tmp_path / 'dangling')


def test_results_lines_that_are_not_utf8_or_not_records_are_reported_and_the_file_kept(tmp_path):
  record = {'strategy': 'random', 'seed': 0, 'cycle': 0, 'num_labeled': 32, 'metric': 'accuracy',
            'value': 0.5}
  edited = [dict(record, value='x'), dict(record, cycle='0'), dict(record, strategy=['random']),
            dict(record, seed='zero'), dict(record, seed=True)]   # by hand, another kind
  old = (json.dumps(record).encode() + b'\n' + b'{"strategy": "r\xe9sum\xe9"}\n' + b'[1, 2]\n'
         + json.dumps({k: v for k, v in record.items() if k != 'cycle'}).encode() + b'\n'
         + b''.join(json.dumps(r).encode() + b'\n' for r in edited))
  path = tmp_path / 'results.jsonl'
  path.write_bytes(old)
  reports = []
  assert checkpoint.read_results(str(path), report=reports.append,
                                 required=checkpoint.RESULT_FIELDS) == [record]
  assert len(reports) == 1 and 'lines 2, 3, 4, 5, 6, 7, 8, 9 cannot be parsed as a record' in (
      reports[0])
  copy, = tmp_path.glob('results.jsonl.damaged-*')
  assert copy.read_bytes() == old
  assert path.read_bytes() == json.dumps(record).encode() + b'\n'


# -- one writer ----------------------------------------------------------------------------------

_CONTEND = '''
import json, os, sys, time
from l2r_jax import errors
from l2r_jax import workdir
root, trials = sys.argv[1], int(sys.argv[2])

def wait_for(name):
  while not os.path.exists(os.path.join(root, name)):
    time.sleep(0.0002)

def tell(trial, outcome):
  path = os.path.join(root, f'outcome{trial}-{os.getpid()}')
  with open(path + '.tmp', 'w') as f:
    f.write(outcome)
  os.replace(path + '.tmp', path)

for trial in range(trials):
  wait_for(f'go{trial}')
  try:
    with workdir.lock(os.path.join(root, f'workdir{trial}')):
      with open(os.path.join(root, f'workdir{trial}', 'lock')) as f:
        tell(trial, 'held' if json.load(f)['pid'] == os.getpid() else 'held, not recorded')
      wait_for(f'release{trial}')
  except errors.WorkdirError as e:
    tell(trial, f'refused: {e}')
'''


def _wait_for(paths, seconds=10):
  for _ in range(int(seconds / 0.001)):
    if all(p.exists() for p in paths):
      return
    time.sleep(0.001)
  raise AssertionError(f'not all of {paths} appeared')


def test_two_processes_taking_over_a_dead_processes_lock_at_once_give_one_holder(tmp_path):
  trials = 50
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True).stdout.strip()
  stale = json.dumps({'pid': int(dead), 'host': socket.gethostname(),
                      'started': '2026-01-01T00:00:00'})
  for trial in range(trials):
    (tmp_path / f'workdir{trial}').mkdir()
    (tmp_path / f'workdir{trial}' / workdir.LOCK_FILE).write_text(stale)
  racers = [subprocess.Popen([sys.executable, '-c', _CONTEND, str(tmp_path), str(trials)],
                             cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
  try:
    for trial in range(trials):
      (tmp_path / f'go{trial}').touch()
      outcomes = [tmp_path / f'outcome{trial}-{r.pid}' for r in racers]
      _wait_for(outcomes)
      told = {r.pid: o.read_text() for r, o in zip(racers, outcomes)}
      holders = [pid for pid, outcome in told.items() if outcome == 'held']
      assert len(holders) == 1, told
      other, = set(told) - set(holders)
      assert told[other].startswith(
          f'refused: --workdir={tmp_path / f"workdir{trial}"} is in use by process {holders[0]} '
          'on this host'), told
      (tmp_path / f'release{trial}').touch()
    for r in racers:
      assert r.wait(timeout=20) == 0, r.stderr.read()
  finally:
    for r in racers:
      if r.poll() is None:
        r.kill()
        r.wait()
  assert not any((tmp_path / f'workdir{t}' / workdir.LOCK_FILE).exists() for t in range(trials))


def test_a_lock_that_is_a_folder_or_a_link_is_refused_in_one_line(tmp_path):
  (tmp_path / workdir.LOCK_FILE).mkdir()
  with pytest.raises(errors.WorkdirError, match=r'lock is a folder; .* Remove the folder') as e:
    with workdir.lock(str(tmp_path)):
      pass
  assert '\n' not in str(e.value) and (tmp_path / workdir.LOCK_FILE).is_dir()
  (tmp_path / workdir.LOCK_FILE).rmdir()
  target = _link_to_a_users_file(tmp_path / workdir.LOCK_FILE, tmp_path)
  with pytest.raises(errors.WorkdirError, match='lock is a symbolic link'):
    with workdir.lock(str(tmp_path)):
      pass
  assert target.read_bytes() == b'a file of the user, not of l2r-jax\n'


# -- atomic rewrites -----------------------------------------------------------------------------


class _Killed(BaseException):
  """The process killed right after a step: nothing after it runs (no ``except Exception``)."""


def _kill_after(monkeypatch, step):
  """Kills (raises :class:`_Killed`) right after the ``step``-th call of a function that opens,
  writes, syncs or renames a file; returns a counter of the calls made."""
  calls = [0]

  def killing(function):
    def call(*args, **kwargs):
      out = function(*args, **kwargs)
      calls[0] += 1
      if calls[0] == step:
        raise _Killed()
      return out
    return call

  for module, name in [(os, 'open'), (os, 'write'), (os, 'fsync'), (os, 'replace'),
                       (os, 'rename'), (os, 'ftruncate'), (builtins, 'open')]:
    monkeypatch.setattr(module, name, killing(getattr(module, name)))
  return calls


def test_a_kill_at_any_step_of_cleaning_a_cut_off_last_line_leaves_the_old_file_or_the_new(
    tmp_path, monkeypatch):
  records = [{'strategy': 'random', 'seed': 0, 'cycle': c, 'value': c / 10} for c in range(3)]
  whole = ''.join(json.dumps(r) + '\n' for r in records).encode()
  old = whole + b'{"strategy": "random", "se'
  path = tmp_path / 'results.jsonl'
  outcomes = set()
  for step in range(1, 100):
    path.write_bytes(old)
    with monkeypatch.context() as patch:
      calls = _kill_after(patch, step)
      try:
        assert checkpoint.read_results(str(path)) == records
      except _Killed:
        pass
    assert path.read_bytes() in (old, whole), step
    outcomes.add(path.read_bytes())
    if calls[0] < step:   # the clean-up ran to its end without reaching this step
      break
  assert outcomes == {old, whole} and step > 3


def test_an_append_that_fills_the_disk_is_cut_back_whole(tmp_path, monkeypatch):
  path = tmp_path / 'results.jsonl'
  path.write_bytes(b'{"a": 1}\n')
  write = os.write
  writes = []

  def full_after_half(fd, data):
    if writes:
      raise OSError(errno.ENOSPC, 'No space left on device')
    writes.append(data)
    return write(fd, data[:len(data) // 2])

  monkeypatch.setattr(os, 'write', full_after_half)
  with pytest.raises(OSError, match='No space left'):
    workdir.append_synced(str(path), '{"b": 2}\n{"c": 3}\n')
  assert writes and path.read_bytes() == b'{"a": 1}\n'


# Written by l2r-jax 0.2.0 while the loss module's config section and training-state field were
# named ``predictor``: ``python -m l2r_jax.main --config=configs/mnist1d.py:smoke
# --config.strategies='("random","l2r")' --config.seeds='(0,)' --config.al.cycles=1`` (its
# experiment.json, results.jsonl and checkpoints).
PREDICTOR_WORKDIR = os.path.join(ROOT, 'tests', 'data', 'workdir_predictor')


def test_a_workdir_written_under_the_loss_modules_old_name_resumes_where_it_stopped(tmp_path):
  workdir_path = tmp_path / 'older'
  shutil.copytree(PREDICTOR_WORKDIR, workdir_path)
  recorded = json.loads((workdir_path / 'experiment.json').read_text())['fields']
  assert 'predictor.hidden' in recorded and 'loss_module.hidden' not in recorded
  before = (workdir_path / 'results.jsonl').read_text()
  config = smoke.mnist1d(strategies=('random', 'l2r'), seeds=(0,), **{'al.cycles': 2})
  # Another experiment is still refused, its field named as it is now.
  with pytest.raises(errors.WorkdirError, match=r'config.loss_module.hidden: 128 -> 64'):
    workdir.check_identity(str(workdir_path), smoke.override(
        smoke.mnist1d(strategies=('random', 'l2r')), **{'loss_module.hidden': 64}))
  # The loss module restores to what was saved under its old name (read here without a template).
  saved = ocp.StandardCheckpointer().restore(
      workdir_path / 'checkpoints' / 'l2r-seed0' / '0' / 'models')
  experiment_ = experiment.make_experiment(config)
  run = runs.open_run(experiment_, str(workdir_path), 'l2r', 0)
  runs.close_run(run)
  assert run.state.cycle == 0
  restored = jax.tree_util.tree_leaves(jax.device_get(run.state.train_state.loss_module.params))
  expected = jax.tree_util.tree_leaves(saved['predictor']['params'])
  assert len(restored) == len(expected) > 0
  for a, b in zip(restored, expected):
    np.testing.assert_array_equal(a, b)
  # The run goes on from there: cycle 0 kept as it was, cycle 1 trained on the labeled set it
  # queried, nothing moved aside as damaged.
  records = experiment.run(config, str(workdir_path))
  assert {(r['strategy'], r['cycle']) for r in records} == {
      (s, c) for s in ('random', 'l2r') for c in (0, 1)}
  assert (workdir_path / 'results.jsonl').read_text().startswith(before)
  assert len((workdir_path / 'results.jsonl').read_text().strip().split('\n')) == 4
  assert not (workdir_path / 'damaged').exists()


def test_a_config_that_sets_the_old_section_name_is_refused_and_todays_name_holds():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from l2r_jax import defaults  # pylint: disable=g-import-not-at-top
  from l2r_jax import validation  # pylint: disable=g-import-not-at-top
  # A config file that assigns the section by its old name (the command line is refused by absl).
  config = defaults.get_config()
  config.predictor = ml_collections.ConfigDict({'lr': 0.1})
  with pytest.raises(errors.ConfigError,
                     match=r'^config.predictor: it is now config.loss_module, with the same'):
    validation.check_config(config)
  # A record holding a field under both names compares under today's, with today's value.
  assert workdir._todays_names(  # pylint: disable=protected-access
      {'predictor.lr': 0.1, 'loss_module.lr': 0.001, 'predictor.hidden': 128, 'al.budget': 10}
  ) == {'loss_module.lr': 0.001, 'loss_module.hidden': 128, 'al.budget': 10}


def test_a_damaged_checkpoint_under_the_old_name_is_reported_for_its_damage(tmp_path, monkeypatch):
  """Today's layout fails such a checkpoint on its tree's structure first; the report gives the
  damage, and the checkpoint is moved aside as any other."""
  workdir_path = tmp_path / 'older'
  shutil.copytree(PREDICTOR_WORKDIR, workdir_path)
  _truncate_a_data_file(_checkpoint(workdir_path, 'l2r-seed0', 0))
  reports = []
  monkeypatch.setattr(checkpoint.logging, 'warning', reports.append)
  config = smoke.mnist1d(strategies=('random', 'l2r'), seeds=(0,), **{'al.cycles': 1})
  run = runs.open_run(experiment.make_experiment(config), str(workdir_path), 'l2r', 0)
  runs.close_run(run)
  assert run.state.cycle == -1  # nothing before it: the run starts again
  assert len(reports) == 1 and 'the checkpoint of cycle 0 cannot be restored' in reports[0]
  assert 'tree structures do not match' not in reports[0], reports[0]
  assert [p.name.split('-cycle')[0] for p in (workdir_path / 'damaged').iterdir()] == ['l2r-seed0']


HIDDEN = {'width': 8}   # the width the model's code builds today


def _mlp_as_its_code_is_today(num_outputs: int):
  from examples import breast_cancer  # pylint: disable=g-import-not-at-top
  return breast_cancer.TabularMLP(num_outputs=num_outputs, hidden=HIDDEN['width'])


def test_a_checkpoint_of_a_model_whose_code_changed_is_refused_in_one_line_and_nothing_moved(
    tmp_path, monkeypatch):
  import l2r_jax  # pylint: disable=g-import-not-at-top
  from examples import breast_cancer  # pylint: disable=g-import-not-at-top
  l2r_jax.register_model('mlp_as_its_code_is_today', _mlp_as_its_code_is_today)
  config = breast_cancer.get_config('smoke')
  config.model.name = 'mlp_as_its_code_is_today'
  config.model.dropout = 0.0
  config.strategies = ('random',)
  experiment.run(config, str(tmp_path))
  before = _listing(tmp_path)
  results = (tmp_path / 'results.jsonl').read_bytes()
  monkeypatch.setitem(HIDDEN, 'width', 16)   # the code edited: a wider layer
  reports = []
  monkeypatch.setattr(experiment.checkpoint.logging, 'warning', reports.append)
  with pytest.raises(errors.WorkdirError) as refused:
    experiment.run(config, str(tmp_path))
  message = str(refused.value)
  assert '\n' not in message and not reports
  assert 'the checkpoint of cycle 1 holds another model than the config builds now' in message
  assert 'target.params.Dense_0.bias: (8,) saved, (16,) now; 14 more' in message
  assert _listing(tmp_path) == before and not (tmp_path / 'damaged').exists()
  assert (tmp_path / 'results.jsonl').read_bytes() == results


def test_a_new_workdir_made_by_another_run_meanwhile_is_refused_naming_it(tmp_path, monkeypatch):
  # Two runs started at once on a new workdir: the second made it (and took its lock) while the
  # first loaded its data. The first is refused, naming it, and writes nothing.
  new = str(tmp_path / 'new')
  make = experiment._make_checked_experiment
  other = contextlib.ExitStack()

  def made_meanwhile(config):
    made = make(config)
    os.makedirs(new)
    other.enter_context(workdir.lock(new))
    return made

  monkeypatch.setattr(experiment, '_make_checked_experiment', made_meanwhile)
  with other, pytest.raises(errors.WorkdirInUse, match=f'is in use by process {os.getpid()}'):
    experiment.run(_config(), new)
  assert os.listdir(new) == []


def test_runs_without_the_record_of_their_experiment_are_refused(tmp_path, finished):
  shutil.copytree(finished, tmp_path / 'copy')
  os.remove(tmp_path / 'copy' / workdir.IDENTITY_FILE)
  before = _listing(tmp_path / 'copy')
  with pytest.raises(errors.WorkdirError, match='holds checkpoints and results.jsonl but not '
                     'experiment.json, the record of the experiment they belong to'):
    experiment.run(_config(**{'al.cycles': 3, 'al.budget': 16}), str(tmp_path / 'copy'))
  assert _listing(tmp_path / 'copy') == before


@pytest.mark.parametrize('name', ['results.jsonl', 'experiment.json', 'lock'])
def test_a_fifo_where_a_file_belongs_is_refused_in_one_line(tmp_path, finished, name):
  shutil.copytree(finished, tmp_path / 'copy')
  os.remove(tmp_path / 'copy' / name) if (tmp_path / 'copy' / name).exists() else None
  os.mkfifo(tmp_path / 'copy' / name)
  with pytest.raises(errors.WorkdirError, match=f'^{tmp_path / "copy" / name} is not a file .a '
                     'FIFO, a socket or a device.; the project keeps a file there'):
    experiment.run(_config(**{'al.cycles': 3}), str(tmp_path / 'copy'))


@pytest.mark.parametrize('name', ['results.jsonl', 'lock'])
def test_a_file_hard_linked_elsewhere_is_never_written_through(tmp_path, finished, name):
  shutil.copytree(finished, tmp_path / 'copy')
  outside = tmp_path / 'users_file'    # the user's copy, made with ln instead of cp
  target = tmp_path / 'copy' / name
  outside.write_bytes(target.read_bytes() if target.exists() else b'a file of the user\n')
  kept = outside.read_bytes()
  if target.exists():
    target.unlink()
  os.link(outside, target)
  with pytest.raises(errors.WorkdirError, match=f'{name} has 2 hard links'):
    experiment.run(_config(**{'al.cycles': 4}), str(tmp_path / 'copy'))
  assert outside.read_bytes() == kept


def test_an_export_of_a_model_whose_code_changed_is_refused_when_loaded(tmp_path, monkeypatch):
  import l2r_jax  # pylint: disable=g-import-not-at-top
  from examples import breast_cancer  # pylint: disable=g-import-not-at-top
  from l2r_jax import export  # pylint: disable=g-import-not-at-top
  l2r_jax.register_model('mlp_as_its_code_is_today', _mlp_as_its_code_is_today)
  config = breast_cancer.get_config('smoke')
  config.model.name = 'mlp_as_its_code_is_today'
  config.model.dropout = 0.0
  config.strategies = ('random',)
  experiment.run(config, str(tmp_path / 'run'))
  made = experiment.make_experiment(config)
  state = runs.read_run(made, str(tmp_path / 'run'), 'random', 0)
  path = export.save(export.from_training(config, made.dataset, state.train_state.target),
                     str(tmp_path / 'model'))
  assert export.load_model(path).predict(made.dataset.x_test[:2]).probabilities.shape == (2, 2)
  monkeypatch.setitem(HIDDEN, 'width', 16)
  with pytest.raises(errors.ExportError, match=r'holds weights of other shapes than the model '
                     r"'mlp_as_its_code_is_today' builds now \(params.Dense_0.bias: \(8,\) saved, "
                     r'\(16,\) now; 4 more\)'):
    export.load_model(path)


def test_a_temporary_file_left_by_a_killed_write_is_removed_by_the_next_run(tmp_path, finished):
  shutil.copytree(finished, tmp_path / 'copy')
  (tmp_path / 'copy' / 'query').mkdir()
  dead = 2 ** 22 + 7           # above Linux's largest pid: no process has it
  left = [tmp_path / 'copy' / f'results.jsonl.tmp-{dead}',
          tmp_path / 'copy' / 'query' / f'query.csv.tmp-{dead}']
  alive = tmp_path / 'copy' / 'summary.md.tmp-1'   # a live process's (init): kept
  for path in left + [alive]:
    path.write_text('half of a file')
  experiment.run(_config(**{'al.cycles': 3}), str(tmp_path / 'copy'))
  assert not any(path.exists() for path in left) and alive.exists()
  assert (tmp_path / 'copy' / 'results.jsonl').read_text() == (
      finished / 'results.jsonl').read_text()
