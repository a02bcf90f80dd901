import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from configs import cifar10 as cifar10_config
from configs import mnist1d as mnist1d_config
from l2r_jax import checkpoint
from l2r_jax import defaults
from l2r_jax import experiment
from l2r_jax import strategies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke(**overrides):
  c = mnist1d_config.get_config('smoke')
  for k, v in overrides.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


def _strip(records):
  return [{k: v for k, v in r.items() if k != 'wall_s'} for r in records]


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('full')
  return workdir, experiment.run(_smoke(), str(workdir))


def test_every_strategy_end_to_end(full_run):
  workdir, records = full_run
  assert {(r['strategy'], r['cycle']) for r in records} == {
      (s, c) for s in ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r') for c in (0, 1)}
  for r in records:
    assert r['num_labeled'] == 64 + 32 * r['cycle'] and r['metric'] == 'accuracy'
    assert 0 <= r['value'] <= 1 and r['wall_s'] > 0
    assert (r['spearman'] is not None) == (r['strategy'] in ('ll4al', 'l2r'))
  for name in ('results.jsonl', 'summary.md', 'curves.png'):
    assert (workdir / name).stat().st_size > 0
  assert '| l2r |' in (workdir / 'summary.md').read_text()
  # Same seed: every strategy starts from the same initial set and the same model.
  first = [r['value'] for r in records if r['cycle'] == 0 and r['strategy'] != 'll4al']
  assert len(set(first)) == 1


def test_label_sets_in_checkpoints(full_run):
  workdir, _ = full_run
  labeled = {}
  for s in ('random', 'entropy', 'coreset', 'll4al', 'l2r'):
    mgr = checkpoint.manager(str(workdir / 'checkpoints' / f'{s}-seed0'))
    al = mgr.restore(1, args=checkpoint.ocp.args.Composite(al=checkpoint.ocp.args.JsonRestore()))
    labeled[s] = np.asarray(al.al['labeled'])
    assert len(labeled[s]) == len(set(labeled[s].tolist())) == 96
  initial = experiment.initial_labeled(0, 480, 64)
  for s, lab in labeled.items():
    np.testing.assert_array_equal(lab[:64], initial)
  assert not np.array_equal(labeled['random'][64:], labeled['entropy'][64:])


def test_rerun_resumes_without_duplicates(full_run):
  workdir, records = full_run
  again = experiment.run(_smoke(), str(workdir))
  assert _strip(again) == _strip(records)
  lines = (workdir / 'results.jsonl').read_text().strip().split('\n')
  assert len(lines) == len(records)


def test_killed_run_resumes_to_the_same_results(full_run, tmp_path):
  _, reference = full_run
  cmd = [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
         f'--workdir={tmp_path}']
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  results = tmp_path / 'results.jsonl'
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if results.exists() and len(results.read_text().strip().split('\n')) >= 3:
      break
    time.sleep(0.2)
  assert proc.poll() is None, 'the run ended before it could be killed'
  os.kill(proc.pid, signal.SIGKILL)  # mid-training of a later cycle
  proc.wait()
  subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=400)
  resumed = checkpoint.read_results(str(results))
  assert len(resumed) == len(reference)
  key = lambda r: (r['strategy'], r['cycle'])  # noqa: E731
  for a, b in zip(sorted(_strip(resumed), key=key), sorted(_strip(reference), key=key)):
    assert a.keys() == b.keys()
    assert a['value'] == pytest.approx(b['value'], abs=1e-6)
    if a['spearman'] is not None:
      assert a['spearman'] == pytest.approx(b['spearman'], abs=1e-5)


def _labeled_sets(workdir, strategies, seeds):
  out = {}
  for s in strategies:
    for seed in seeds:
      mgr = checkpoint.manager(str(workdir / 'checkpoints' / f'{s}-seed{seed}'))
      al = mgr.restore(mgr.latest_step(),
                       args=checkpoint.ocp.args.Composite(al=checkpoint.ocp.args.JsonRestore()))
      out[s, seed] = al.al['labeled']
  return out


def test_vmapped_seeds_give_the_results_of_seeds_run_one_by_one(tmp_path):
  strategies, seeds = ('entropy', 'l2r'), (0, 1)
  overrides = {'strategies': strategies, 'seeds': seeds, 'train.epochs': 3, 'al.cycles': 2,
               'train.loop': 'step'}
  one_by_one = experiment.run(_smoke(**overrides), str(tmp_path / 'one'))
  # Seeds resumed at different cycles: seed 0 has finished cycle 0, seed 1 nothing.
  experiment.run(_smoke(**{**overrides, 'seeds': (0,), 'al.cycles': 1}), str(tmp_path / 'vmap'))
  vmapped = experiment.run(_smoke(vmap_seeds=True, **overrides), str(tmp_path / 'vmap'))
  key = lambda r: (r['strategy'], r['seed'], r['cycle'])  # noqa: E731
  a, b = sorted(_strip(one_by_one), key=key), sorted(_strip(vmapped), key=key)
  assert [key(r) for r in a] == [key(r) for r in b] and len(a) == 2 * 2 * 2
  for ra, rb in zip(a, b):
    if ra['strategy'] == 'entropy' or ra['cycle'] == 0:
      # Same selections, hence the same label sets and accuracies.
      assert ra['value'] == rb['value'], (ra, rb)
    else:
      # A barely trained loss module predicts near-ties, which rounding may reorder: a pick or
      # two can differ, so the accuracy may move by a test sample or two.
      assert ra['value'] == pytest.approx(rb['value'], abs=0.03), (ra, rb)
    if ra['spearman'] is not None:
      assert ra['spearman'] == pytest.approx(rb['spearman'], abs=0.03), (ra, rb)
  one, vmap = (_labeled_sets(tmp_path / d, strategies, seeds) for d in ('one', 'vmap'))
  for (strategy, seed), labeled in one.items():
    if strategy == 'entropy':
      assert vmap[strategy, seed] == labeled
    else:
      assert len(set(vmap[strategy, seed]) & set(labeled)) >= 0.9 * len(labeled)


def test_vmapped_training_matches_one_seed_at_a_time():
  # One module update per step: each further update on the same batch lets Adam amplify the
  # rounding differences of a vmapped convolution once more.
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, 'predictor.updates_per_step': 1})
  exp = experiment.make_experiment(config)

  def start(seed, n):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = experiment.initial_labeled(seed, exp.dataset.pool_size, n)
    models = experiment.make_models(config, exp.dataset, 'l2r', rng_init)
    return experiment.ALState('l2r', seed, 0, labeled, rng, models, [])

  # 160 labels: three steps per epoch, the last batch filled from a second permutation.
  als = [start(seed, 160) for seed in (3, 4)]
  rngs = [jax.random.PRNGKey(10 + i) for i in range(2)]
  together, histories = experiment.train_cycle(exp, als, 1, rngs, '')
  for al, rng, models, history in zip(als, rngs, together, histories):
    alone, alone_history = experiment.train_cycle(exp, [al], 1, [rng], '')
    chex.assert_trees_all_close(models.target, alone[0].target, atol=1e-5, rtol=1e-5)
    # The listwise loss does not change when every predicted loss shifts alike, so the module's
    # last bias gets a gradient of rounding noise, which Adam scales up to its learning rate:
    # the weights are compared.
    kernels = lambda m: {k: v['kernel'] for k, v in m.predictor.params.items()}  # noqa: E731
    chex.assert_trees_all_close(kernels(models), kernels(alone[0]), atol=1e-4)
    for m, n in zip(history, alone_history[0]):
      assert m == pytest.approx(n, rel=1e-4, abs=1e-6)
  # The seeds did train apart.
  assert not np.allclose(together[0].target.params['Dense_0']['kernel'],
                         together[1].target.params['Dense_0']['kernel'])


@pytest.mark.parametrize('runs', [1, 2])
def test_an_epoch_scanned_matches_an_epoch_step_by_step(runs):
  # One module update per step, as in the vmapped test above.
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, 'train.loop': 'step',
                                          'predictor.updates_per_step': 1})
  exp = experiment.make_experiment(config)
  als, rngs = [], []
  for seed in range(runs):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = experiment.initial_labeled(seed, exp.dataset.pool_size, 160)  # 3 steps an epoch
    models = experiment.make_models(config, exp.dataset, 'l2r', rng_init)
    als.append(experiment.ALState('l2r', seed, 0, labeled, rng, models, []))
    rngs.append(jax.random.PRNGKey(20 + seed))
  stepped, step_history = experiment.train_cycle(exp, als, 1, rngs, '')
  config.train.loop = 'scan'
  scanned, scan_history = experiment.train_cycle(exp, als, 1, rngs, '')
  for a, b in zip(stepped, scanned):
    chex.assert_trees_all_close(a.target, b.target, atol=1e-5, rtol=1e-5)
  for h, g in zip(step_history, scan_history):
    for m, n in zip(h, g):
      assert m == pytest.approx(n, rel=1e-4, abs=1e-6)


def test_the_device_feed_trains_as_the_host_feed_and_compiles_a_step_once(tmp_path):
  compiled = []

  def listener(event, secs, fun_name=None, **kw):
    if event == '/jax/core/compile/backend_compile_duration':
      compiled.append(fun_name)

  overrides = {'strategies': ('random', 'l2r'), 'train.epochs': 2, 'train.loop': 'step',
               'al.cycles': 4}
  records = {}
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    for feed in ('host', 'device'):
      compiled.clear()
      records[feed] = experiment.run(_smoke(**{**overrides, 'train.feed': feed}),
                                     str(tmp_path / feed))
      # The pmapped step is compiled as 'jit(_fun)': once per strategy, although the labeled
      # set grows every cycle (the device feed pads it to the last cycle's size).
      assert compiled.count('jit(_fun)') == 2, compiled
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert _strip(records['device']) == _strip(records['host'])
  assert len(records['host']) == 2 * 4


def test_the_device_feed_gives_vmapped_seeds_and_scanned_epochs_the_host_feeds_batches():
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, 'train.loop': 'scan'})
  exp = experiment.make_experiment(config)
  als, rngs = [], []
  for seed in range(2):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = experiment.initial_labeled(seed, exp.dataset.pool_size, 160)  # 3 steps an epoch
    models = experiment.make_models(config, exp.dataset, 'l2r', rng_init)
    als.append(experiment.ALState('l2r', seed, 0, labeled, rng, models, []))
    rngs.append(jax.random.PRNGKey(30 + seed))
  trained = {}
  for feed in ('host', 'device'):
    config.train.feed = feed
    trained[feed] = experiment.train_cycle(exp, als, 1, rngs, '')
  chex.assert_trees_all_equal(trained['host'][0], trained['device'][0])
  assert trained['host'][1] == trained['device'][1]


def test_auto_loop_times_both_once_keeps_the_faster_and_leaves_the_results_alone(tmp_path):
  def run(loop, workdir, seed=0):
    config = _smoke(strategies=('random',), **{'train.epochs': 3, 'train.loop': loop})
    exp = experiment.make_experiment(config)
    al = experiment.run_one(exp, str(workdir), 'random', seed)
    return exp, al

  exp, auto = run('auto', tmp_path / 'auto')
  choice = exp.loop_choice
  assert choice['step_s'] > 0 and choice['scan_s'] > 0 and choice['steps_per_epoch'] == 1
  assert choice['loop'] == min(('step', 'scan'), key=lambda k: choice[f'{k}_s'])
  # Saved for a resumed run, which takes it instead of timing again.
  assert json.loads((tmp_path / 'auto' / 'train_loop.json').read_text()) == choice
  exp2, _ = run('auto', tmp_path / 'auto', seed=1)
  assert exp2.loop_choice == choice
  # Timing trains nothing: the run is the one its chosen loop gives.
  _, chosen = run(choice['loop'], tmp_path / 'chosen')
  assert [r['value'] for r in auto.results] == [r['value'] for r in chosen.results]
  chex.assert_trees_all_equal(jax.tree.leaves(auto.models), jax.tree.leaves(chosen.models))


@pytest.mark.parametrize('partitionable', [True, False])
def test_cycle_keys_are_each_epochs_split(partitionable):
  rng = jax.random.PRNGKey(7)
  with jax.threefry_partitionable(partitionable):
    for per_epoch in (1, 2, 3, 5, 13):
      expected = np.stack([np.asarray(jax.random.split(jax.random.fold_in(rng, e), per_epoch))
                           for e in range(4)])
      np.testing.assert_array_equal(experiment._cycle_keys(rng, 4, per_epoch), expected)


def test_cut_off_result_line_is_repaired(tmp_path):
  path = str(tmp_path / 'results.jsonl')
  rec = {'strategy': 'random', 'seed': 0, 'cycle': 0, 'value': 0.5}
  with open(path, 'w') as f:
    f.write(json.dumps(rec) + '\n{"strategy": "ran')
  checkpoint.append_results(path, [rec, dict(rec, cycle=1)])
  assert checkpoint.read_results(path) == [rec, dict(rec, cycle=1)]


@pytest.mark.parametrize('overrides, message', [
    ({'al.budget': 300}, r'config.al.budget=300 is larger than config.al.subset=200'),
    ({'al.cycles': 20}, r'more than the pool of 480'),
    ({'strategies': ('random', 'bald')}, r"config.strategies: unknown strategy 'bald'"),
    ({'train.batch_size': 96}, r'batch_size=96 is not a multiple of config.predictor.sorter_len=64'),
    ({'predictor.sorter_len': 48, 'train.batch_size': 96},
     r'sorter_len=48: no pretrained GRU sorter.*--config.seq_len=48'),
    ({'model.name': 'vgg'}, r"config.model.name='vgg' is not a model"),
    ({'vmap_seeds': None}, r'config.vmap_seeds must be True or False, got None'),
    ({'train.loop': 'fused'}, r"config.train.loop='fused': choose one of \('auto', 'step', 'scan'\)"),
    ({'train.feed': 'disk'}, r"config.train.feed='disk': choose one of \('auto', 'device', 'host'\)"),
    ({'predictor.updates_per_step': 0}, r'config.predictor.updates_per_step must be a positive'),
])
def test_bad_config_is_refused_before_training(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    experiment.run(_smoke(**overrides), str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_unwritable_workdir(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(PermissionError, match='is not writable'):
    experiment.run(_smoke(), str(tmp_path / 'file' / 'run'))


def test_wrongly_typed_override_names_the_field(tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
       '--config.al.budget=1.5', f'--workdir={tmp_path}'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0 and 'al.budget' in out.stderr


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
  config = _smoke(strategies=('random',), **{'al.cycles': 1})
  experiment.run(config, str(tmp_path))
  config = _smoke(strategies=('random',), **{'train.lr': 1e30})
  with pytest.raises(FloatingPointError, match='cycle 1'):
    experiment.run(config, str(tmp_path))
  assert [r['cycle'] for r in checkpoint.read_results(str(tmp_path / 'results.jsonl'))] == [0]
  mgr = checkpoint.manager(str(tmp_path / 'checkpoints' / 'random-seed0'))
  assert mgr.latest_step() == 0


def test_cifar10_config_runs_resnet18_on_random_arrays(tmp_path):
  config = cifar10_config.get_config('random')
  config.strategies = ('l2r',)
  records = experiment.run(config, str(tmp_path))
  assert [r['num_labeled'] for r in records] == [64, 128]
  assert cifar10_config.get_config().train.lr_boundaries == (120,)


def test_predictor_updates_match_the_papers_first_cycle():
  # Hand-worked: the paper's CIFAR-10 cycle 0 is ceil(1000 / 64) = 16 steps x 150 epochs = 2,400
  # updates; digits' is 1 step x 60 epochs, mnist1d's 2 x 60; MPII's 7 x 140 = 980 against the
  # pose stand-in's 4 x 20; ShanghaiTech-B's 5 x 100 against the crowd stand-in's same 5 x 100.
  assert defaults.predictor_updates_per_step('cifar10', 64, 64, 60) == 40
  assert defaults.predictor_updates_per_step('cifar10', 100, 64, 60) == 20
  assert defaults.predictor_updates_per_step('mpii', 100, 32, 20) == 12
  assert defaults.predictor_updates_per_step('shanghaitech', 20, 4, 100) == 1
  # The paper's own protocols give one update per step; never fewer than one.
  for task, (initial, batch, epochs) in {'cifar10': (1000, 64, 150), 'celeba': (100, 64, 100),
                                         'mpii': (200, 32, 140)}.items():
    assert defaults.predictor_updates_per_step(task, initial, batch, epochs) == 1
  assert defaults.predictor_updates_per_step('celeba', 10_000, 64, 100) == 1


def test_registry_covers_the_paper():
  assert {'random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r'} <= set(strategies.REGISTRY)


def test_two_processes_on_localhost_see_the_same_labeled_set(tmp_path):
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('localhost', 0))
    port = s.getsockname()[1]
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1',
             PYTHONPATH=ROOT)
  procs = [subprocess.Popen([sys.executable, 'tests/multiprocess_worker.py', str(port), str(i),
                             str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=400) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  labeled = [json.loads(out.split('LABELED ')[1]) for out, _ in outs]
  assert labeled[0] == labeled[1]
  assert all(len(v) == 96 for v in labeled[0].values())
  records = checkpoint.read_results(str(tmp_path / 'results.jsonl'))
  assert len(records) == 4  # written once, by process 0


def test_one_device_gives_the_two_device_results(tmp_path):
  # One loss-module update per step: each further one lets Adam amplify the rounding differences
  # between the two layouts (the extra updates on two devices: tests/test_train.py).
  strategies, k = ('ll4al', 'l2r'), 1
  reference = experiment.run(  # this process has two (fake CPU) devices
      _smoke(strategies=strategies, **{'predictor.updates_per_step': k}), str(tmp_path / 'two'))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  subprocess.run([sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
                  f'--config.strategies={strategies!r}', f'--config.predictor.updates_per_step={k}',
                  f'--workdir={tmp_path / "one"}'],
                 cwd=ROOT, env=env, check=True, capture_output=True, timeout=400)
  one = {(r['strategy'], r['cycle']): r for r in checkpoint.read_results(
      str(tmp_path / 'one' / 'results.jsonl'))}
  assert len(one) == 4 and len(reference) == 4
  for r in reference:
    o = one[(r['strategy'], r['cycle'])]
    assert o['num_labeled'] == r['num_labeled']
    assert o['value'] == pytest.approx(r['value'], abs=1e-6)
    assert o['spearman'] == pytest.approx(r['spearman'], abs=1e-3)


def test_true_losses_are_the_targets_cross_entropy_on_the_pool():
  config = _smoke()
  exp = experiment.make_experiment(config)
  models = experiment.make_models(config, exp.dataset, 'random', jax.random.PRNGKey(3))
  idx = np.array([5, 0, 77, 3, 12])  # fewer than a chunk, out of order
  t = models.target
  logits, _ = t.apply_fn({'params': t.params, 'batch_stats': t.batch_stats},
                         exp.dataset.x_train[idx], train=False)
  logp = jax.nn.log_softmax(np.asarray(logits, np.float64))
  expected = -logp[np.arange(len(idx)), exp.dataset.y_train[idx]]
  np.testing.assert_allclose(experiment.true_losses(exp, models, idx), expected, rtol=1e-5)
