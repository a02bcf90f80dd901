import json
import os
import signal
import subprocess
import sys
import time

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cifar10 as cifar10_config
from l2r_jax import checkpoint
from l2r_jax import cycle
from l2r_jax import defaults
from l2r_jax import devices as devices_lib
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import inference
from l2r_jax import losses
from l2r_jax import protocol
from l2r_jax import models as models_lib
from l2r_jax import runs
from l2r_jax import state as state_lib
from l2r_jax import strategies
from l2r_jax import train
from l2r_jax import workdir
from l2r_jax.strategies import simple
from l2r_jax.models.base import global_average_pool
import smoke
import tolerances

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_smoke = smoke.mnist1d


def _xla_flags(devices):
  """This process's XLA flags for a child, with ``devices`` fake CPU devices."""
  kept = [f for f in os.environ.get('XLA_FLAGS', '').split()
          if not f.startswith('--xla_force_host_platform_device_count')]
  return ' '.join([f'--xla_force_host_platform_device_count={devices}', *kept])


def _strip(records):
  return [{k: v for k, v in r.items() if k != 'wall_s'} for r in records]


# The main config's strategies and the paper's Fig. 5 ablation.
ALL = ('random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r', 'l2r_all_features')


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('full')
  return workdir, experiment.run(_smoke(strategies=ALL), str(workdir))


def test_every_strategy_end_to_end(full_run):
  workdir, records = full_run
  assert {(r['strategy'], r['cycle']) for r in records} == {(s, c) for s in ALL for c in (0, 1)}
  for r in records:
    assert r['num_labeled'] == 64 + 32 * r['cycle'] and r['metric'] == 'accuracy'
    assert 0 <= r['value'] <= 1 and r['wall_s'] > 0
    assert (r['spearman'] is not None) == (strategies.get(r['strategy']).loss_module is not None)
  for name in ('results.jsonl', 'summary.md', 'curves.png'):
    assert (workdir / name).stat().st_size > 0
  assert '| l2r |' in (workdir / 'summary.md').read_text()
  # Same seed: every strategy starts from the same initial set and the same model, and only
  # LL4AL's ranking loss reaches the target: every other strategy trains it alike in cycle 0.
  first = [r['value'] for r in records if r['cycle'] == 0 and r['strategy'] != 'll4al']
  assert len(set(first)) == 1


def test_the_rank_all_features_ablation_trains_ll4als_module_with_the_listwise_loss(full_run):
  """The paper's Fig. 5 'Rank-all-features': LL4AL's module (every stage), L2R-AL's loss and
  isolation. Its module has a Dense per stage; its target is the one no ranking loss trains."""
  workdir, _ = full_run
  config = _smoke(strategies=ALL)
  exp = experiment.make_experiment(config)
  models = state_lib.initial_train_state(exp, 'l2r_all_features', jax.random.PRNGKey(0))
  mgr = checkpoint.manager(str(workdir / 'checkpoints' / 'l2r_all_features-seed0'))
  trained, _ = checkpoint.restore_latest(mgr, models)
  mgr.close()
  stages = len(config.model.get('kwargs', {}).get('widths', (32, 32, 32)))
  assert sorted(trained.loss_module.params) == [
      f'Dense_{i}' for i in range(stages + 1)]
  assert strategies.get('l2r_all_features').loss_module == strategies.LossModule(
      models_lib.LL4ALLossModule, losses.LISTWISE, isolated=True)


def test_a_new_loss_based_strategy_is_one_registration(tmp_path):
  # LL4AL's pairwise loss on L2R-AL's module, isolated from the target.
  from l2r_jax.strategies import base  # pylint: disable=g-import-not-at-top
  base.register_scores('pairwise_isolated', loss_module=strategies.LossModule(
      models_lib.L2RLossModule, losses.PAIRWISE, isolated=True))(simple.predicted_loss_scores)
  try:
    with pytest.raises(ValueError, match="'pairwise_isolated' is registered already"):
      base.register('pairwise_isolated')(lambda *a: None)
    config = _smoke(strategies=('random', 'pairwise_isolated'), **{'al.cycles': 2})
    exp = experiment.make_experiment(config)
    records = experiment.run(config, str(tmp_path))
    assert [r['spearman'] is None for r in records] == [True, True, False, False]
    assert [r['num_labeled'] for r in records] == [64, 96] * 2
    state = {s: checkpoint.restore_latest(checkpoint.manager(
        str(tmp_path / 'checkpoints' / f'{s}-seed0')), state_lib.initial_train_state(
            exp, s, jax.random.PRNGKey(0)))[0] for s in config.strategies}
    assert sorted(state['pairwise_isolated'].loss_module.params) == ['Dense_0', 'Dense_1']
  finally:
    base.REGISTRY.pop('pairwise_isolated')


def test_strategies_with_one_loss_module_share_one_trainer():
  exp = experiment.make_experiment(_smoke(strategies=ALL))
  assert exp.trainers['random'] is exp.trainers['entropy'] is exp.trainers['vaal']
  assert len({id(t) for t in exp.trainers.values()}) == 4  # none, l2r, ll4al, rank-all-features
  assert exp.loss_modules['random'] is None
  assert exp.trainers['ll4al'].options['gradient'].detach_epoch == exp.config.ll4al.detach_epoch
  assert exp.trainers['l2r'].options['gradient'].isolated


def test_label_sets_in_checkpoints(full_run):
  workdir, _ = full_run
  labeled = {}
  for s in ('random', 'entropy', 'coreset', 'll4al', 'l2r'):
    mgr = checkpoint.manager(str(workdir / 'checkpoints' / f'{s}-seed0'))
    al = mgr.restore(1, args=checkpoint.ocp.args.Composite(al=checkpoint.ocp.args.JsonRestore()))
    labeled[s] = np.asarray(al.al['labeled'])
    assert len(labeled[s]) == len(set(labeled[s].tolist())) == 96
  initial = protocol.initial_labeled(0, 480, 64)
  for s, lab in labeled.items():
    np.testing.assert_array_equal(lab[:64], initial)
  assert not np.array_equal(labeled['random'][64:], labeled['entropy'][64:])


def test_rerun_resumes_without_duplicates(full_run):
  workdir, records = full_run
  again = experiment.run(_smoke(strategies=ALL), str(workdir))
  assert _strip(again) == _strip(records)
  lines = (workdir / 'results.jsonl').read_text().strip().split('\n')
  assert len(lines) == len(records)


def test_after_run_is_called_as_each_run_has_every_cycle_in_its_results(tmp_path):
  config = _smoke(strategies=('random', 'entropy'), seeds=(0, 1), **{'train.epochs': 1})
  seen = []

  def after_run(strategy, seed):  # what results.jsonl holds at each call
    lines = (tmp_path / 'results.jsonl').read_text().splitlines()
    seen.append(((strategy, seed),
                 sorted((r['strategy'], r['seed'], r['cycle']) for r in map(json.loads, lines))))

  experiment.run(config, str(tmp_path), after_run=after_run)
  runs = [('random', 0), ('random', 1), ('entropy', 0), ('entropy', 1)]
  assert [run for run, _ in seen] == runs
  for k, (_, have) in enumerate(seen):  # every cycle of the runs so far, nothing more
    assert have == sorted((s, seed, c) for s, seed in runs[:k + 1]
                          for c in range(config.al.cycles))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_results(full_run, tmp_path):
  _, reference = full_run
  cmd = [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
         f'--config.strategies={ALL!r}', f'--workdir={tmp_path}']
  env = dict(os.environ, XLA_FLAGS=_xla_flags(2))
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
  # The killed run's lock is left behind; the resumed run takes it over.
  assert (tmp_path / workdir.LOCK_FILE).exists()
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


def _same_up_to_rounding(a, b, num_test):
  """Two records of runs that trained the same labeled sets, up to float32 rounding: the metric
  may differ by the test samples whose prediction sits within rounding of a tie (one, at most),
  Spearman's rho by a swap of near-tied predicted losses."""
  assert a['num_labeled'] == b['num_labeled']
  assert a['value'] == pytest.approx(b['value'], abs=1.01 / num_test), (a, b)
  if a['spearman'] is not None:
    assert a['spearman'] == pytest.approx(b['spearman'], abs=1e-3), (a, b)


@pytest.mark.slow
def test_vmapped_seeds_give_the_results_of_seeds_run_one_by_one(tmp_path):
  # Results are compared where the two runs train the same labeled sets: every run's cycle 0, and
  # every cycle of random, whose picks do not depend on the model. A loss module's picks after
  # cycle 0 may differ: rounding reorders its near-tied predictions (a barely trained module has
  # many), and a different pick makes a different experiment from there on.
  strategies, seeds = ('random', 'l2r'), (0, 1)
  overrides = {'strategies': strategies, 'seeds': seeds, 'train.epochs': 3, 'al.cycles': 2,
               'train.loop': 'step'}
  config = _smoke(**overrides)
  one_by_one = experiment.run(config, str(tmp_path / 'one'))
  # Seeds resumed at different cycles: seed 0 has finished cycle 0, seed 1 nothing.
  experiment.run(_smoke(**{**overrides, 'seeds': (0,), 'al.cycles': 1}), str(tmp_path / 'vmap'))
  vmapped = experiment.run(_smoke(vmap_seeds=True, **overrides), str(tmp_path / 'vmap'))
  key = lambda r: (r['strategy'], r['seed'], r['cycle'])  # noqa: E731
  a, b = sorted(_strip(one_by_one), key=key), sorted(_strip(vmapped), key=key)
  assert [key(r) for r in a] == [key(r) for r in b] and len(a) == 2 * 2 * 2
  num_test = experiment.make_experiment(config).dataset.x_test.shape[0]
  for ra, rb in zip(a, b):
    if ra['strategy'] == 'random' or ra['cycle'] == 0:
      _same_up_to_rounding(ra, rb, num_test)
  one, vmap = (_labeled_sets(tmp_path / d, strategies, seeds) for d in ('one', 'vmap'))
  for seed in seeds:
    assert vmap['random', seed] == one['random', seed]


# The loss module trained by SGD in the comparisons of two equal trainings: Adam divides each update
# by the gradient's own scale, so a rounding-level difference in a near-zero gradient becomes a
# step as large as its learning rate, and no tolerance can tell that from a bug. SGD keeps
# differences in proportion to the gradients (tests/tolerances.py).
_SGD_MODULE = {'loss_module.optimizer': 'sgd', 'loss_module.lr': 0.05, 'loss_module.momentum': 0.9}


def test_vmapped_training_matches_one_seed_at_a_time():
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, **_SGD_MODULE})
  exp = experiment.make_experiment(config)

  def start(seed, n):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = protocol.initial_labeled(seed, exp.dataset.pool_size, n)
    models = state_lib.initial_train_state(exp, 'l2r', rng_init)
    return state_lib.RunState('l2r', seed, 0, labeled, rng, models, [])

  # 160 labels: three steps per epoch, the last batch filled from a second permutation.
  als = [start(seed, 160) for seed in (3, 4)]
  rngs = [jax.random.PRNGKey(10 + i) for i in range(2)]
  together, histories = cycle.train_cycle(exp, als, 1, rngs)
  for al, rng, models, history in zip(als, rngs, together, histories):
    alone, alone_history = cycle.train_cycle(exp, [al], 1, [rng])
    _assert_same_training(models, alone[0], al.train_state)
    tolerances.assert_same_metrics(history, alone_history[0])
  # The seeds did train apart.
  assert not np.allclose(together[0].target.params['Dense_0']['kernel'],
                         together[1].target.params['Dense_0']['kernel'])


def _assert_same_training(a, b, start):
  """Target and loss module of two trainings from ``start``, equal up to rounding
  (tests/tolerances.py); the module's output bias aside (a ranking loss leaves it at zero up to
  rounding)."""
  tolerances.assert_same_training(a.target.params, b.target.params, start.target.params,
                                  what='target')
  tolerances.assert_same_training(a.target.batch_stats, b.target.batch_stats,
                                  start.target.batch_stats, what='target')
  if start.loss_module is not None:
    (pa, bias_a), (pb, bias_b), (p0, _) = (tolerances.without_output_bias(m.loss_module.params)
                                           for m in (a, b, start))
    tolerances.assert_same_training(pa, pb, p0, what='loss module')
    assert np.abs(bias_a).max() < 1e-5 and np.abs(bias_b).max() < 1e-5


@pytest.mark.parametrize('runs', [1, 2])
def test_an_epoch_scanned_matches_an_epoch_step_by_step(runs):
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, 'train.loop': 'step',
                                          **_SGD_MODULE})
  exp = experiment.make_experiment(config)
  als, rngs = [], []
  for seed in range(runs):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = protocol.initial_labeled(seed, exp.dataset.pool_size, 160)  # 3 steps an epoch
    models = state_lib.initial_train_state(exp, 'l2r', rng_init)
    als.append(state_lib.RunState('l2r', seed, 0, labeled, rng, models, []))
    rngs.append(jax.random.PRNGKey(20 + seed))
  stepped, step_history = cycle.train_cycle(exp, als, 1, rngs)
  config.train.loop = 'scan'
  scanned, scan_history = cycle.train_cycle(exp, als, 1, rngs)
  for a, b, al in zip(stepped, scanned, als):
    _assert_same_training(a, b, al.train_state)
  for h, g in zip(step_history, scan_history):
    tolerances.assert_same_metrics(h, g)


def test_the_device_feed_trains_as_the_host_feed_and_compiles_a_step_once(tmp_path, monkeypatch):
  compiled = []

  def listener(event, secs, fun_name=None, **kw):
    # The pmapped programs (the step, scoring, evaluation) are compiled as 'jit(_fun)'.
    if event == '/jax/core/compile/backend_compile_duration' and fun_name == 'jit(_fun)':
      compiled.append(fun_name)

  # How many pmapped programs had been compiled when each (strategy, cycle) was saved.
  at_save, save = {}, runs.save_run
  monkeypatch.setattr(runs, 'save_run', lambda experiment_, workdir, run, history: (
      at_save.__setitem__((run.state.strategy, run.state.cycle), len(compiled)),
      save(experiment_, workdir, run, history)))
  overrides = {'strategies': ('random', 'l2r'), 'train.epochs': 2, 'train.loop': 'step',
               'al.cycles': 4}
  records = {}
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    for feed in ('host', 'device'):
      compiled.clear()
      records[feed] = experiment.run(_smoke(**{**overrides, 'train.feed': feed}),
                                     str(tmp_path / feed))
      # Each is compiled by a strategy's second cycle (the step once, in cycle 0); the later
      # cycles compile none, although the labeled set grows every cycle (the device feed pads
      # it to the last cycle's size).
      for strategy in overrides['strategies']:
        assert at_save[strategy, 1] == at_save[strategy, 3], (feed, at_save)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert _strip(records['device']) == _strip(records['host'])
  assert len(records['host']) == 2 * 4


@pytest.mark.slow
def test_the_device_feed_gives_vmapped_seeds_and_scanned_epochs_the_host_feeds_batches():
  config = _smoke(strategies=('l2r',), **{'train.epochs': 2, 'train.loop': 'scan'})
  exp = experiment.make_experiment(config)
  als, rngs = [], []
  for seed in range(2):
    rng_init, rng = jax.random.split(jax.random.PRNGKey(seed))
    labeled = protocol.initial_labeled(seed, exp.dataset.pool_size, 160)  # 3 steps an epoch
    models = state_lib.initial_train_state(exp, 'l2r', rng_init)
    als.append(state_lib.RunState('l2r', seed, 0, labeled, rng, models, []))
    rngs.append(jax.random.PRNGKey(30 + seed))
  trained = {}
  for feed in ('host', 'device'):
    config.train.feed = feed
    trained[feed] = cycle.train_cycle(exp, als, 1, rngs)
  chex.assert_trees_all_equal(trained['host'][0], trained['device'][0])
  assert trained['host'][1] == trained['device'][1]


def test_the_auto_loop_is_chosen_by_backend_not_by_a_clock(tmp_path):
  assert experiment.choose_loop('auto', 'cpu') == 'step'
  assert experiment.choose_loop('auto', 'gpu') == experiment.choose_loop('auto', 'tpu') == 'scan'
  assert experiment.choose_loop('scan', 'cpu') == 'scan'

  def run(loop, workdir):
    config = _smoke(strategies=('random',), **{'train.epochs': 3, 'train.loop': loop})
    exp = experiment.make_experiment(config)
    return exp, experiment.run_one(exp, str(workdir), 'random', 0)

  exp, auto = run('auto', tmp_path / 'auto')
  assert exp.loop.name == 'step'  # this test runs on CPU devices
  _, chosen = run('step', tmp_path / 'step')
  assert [r['value'] for r in auto.results] == [r['value'] for r in chosen.results]
  chex.assert_trees_all_equal(jax.tree.leaves(auto.train_state), jax.tree.leaves(chosen.train_state))


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
    ({'strategies': ('random', 'baldness')}, r"config.strategies: unknown strategy 'baldness'"),
    ({'train.batch_size': 96},
     r'batch_size=96 is not a multiple of config.loss_module.sorter_len=64'),
    ({'loss_module.sorter_len': 48, 'train.batch_size': 96},
     r'sorter_len=48: no pretrained GRU sorter.*--config.seq_len=48'),
    ({'loss_module.sorter': 'soft_rank', 'loss_module.sorter_len': 1},
     r'sorter_len=1: a list of one sample has no order to learn'),
    ({'loss_module.sorter': 'soft_rank', 'loss_module.sorter_len': 2},
     r'sorter_len=2 with the soft_rank sorter: two scores, standardised and scaled by the length, '
     r'always lie 4 rank positions apart'),
    ({'loss_module.sorter': 'soft_rank', 'loss_module.sorter_kwargs': {
        'regularization_strength': 'strong'}},
     r"regularization_strength='strong': give a positive number"),
    ({'model.name': 'vgg'}, r"config.model.name='vgg' is not a model"),
    ({'vmap_seeds': None}, r'config.vmap_seeds must be True or False, got None'),
    ({'train.loop': 'fused'}, r"config.train.loop='fused': choose one of \('auto', 'step', 'scan'\)"),
    ({'train.feed': 'disk'}, r"config.train.feed='disk': choose one of \('auto', 'device', 'host'\)"),
    ({'loss_module.updates_per_step': 0},
     r'config.loss_module.updates_per_step must be a positive'),
    ({'train.lr': float('nan')}, r'config.train.lr must be a finite non-negative number, got nan'),
    ({'loss_module.lr_decay': float('inf')}, r'config.loss_module.lr_decay must be a finite'),
    ({'train.lr_boundaries': (1, 5)}, r'config.train.lr_boundaries=\(1, 5\): the learning-rate '
                                      r'steps must be whole epochs within \[0, 2\]'),
    ({'ll4al.detach_epoch': 3}, r"config.ll4al.detach_epoch=3: the ranking loss's detach epoch "
                                r'must be'),
    ({'vaal.batch_size': 0}, r'config.vaal.batch_size must be a positive integer'),
    ({'vaal.iterations': -1}, r'config.vaal.iterations must be a whole number >= 0'),
    ({'vaal.arch': 'resnet'}, r"config.vaal.arch='resnet': choose one of"),
    ({'train.optimizer': 'rmsprop'}, r"config.train.optimizer='rmsprop': choose one of "
                                     r"\('sgd', 'adam'\)"),
    ({'seeds': (0, 0)}, r'config.seeds names 0 more than once'),
    ({'strategies': ('random', 'l2r', 'random')}, r"config.strategies names 'random' more than"),
    ({'al.initial': 10000}, r'config.al.initial=10000 is more than the pool of 480'),
])
def test_bad_config_is_refused_before_training(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    experiment.run(_smoke(**overrides), str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()  # a refused run creates nothing


def test_unwritable_workdir(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(errors.WorkdirError, match=r'cannot be created: .*file is a file'):
    experiment.run(_smoke(), str(tmp_path / 'file' / 'run'))


def test_wrongly_typed_override_names_the_field(tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
       '--config.al.budget=1.5', f'--workdir={tmp_path}'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0 and 'al.budget' in out.stderr


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
  # Every pool sample but the initial labeled set holds a NaN: cycle 0 trains, cycle 1 cannot.
  config = _smoke(strategies=('random',))
  load = experiment.data_lib.load

  def poisoned(data_config):
    ds = load(data_config)
    x = np.array(ds.x_train)
    x[np.setdiff1d(np.arange(len(x)), protocol.initial_labeled(0, len(x), config.al.initial))] = (
        np.nan)
    return ds._replace(x_train=x)

  monkeypatch.setattr(experiment.data_lib, 'load', poisoned)
  with pytest.raises(FloatingPointError, match='cycle 1'):
    experiment.run(config, str(tmp_path))
  assert [r['cycle'] for r in checkpoint.read_results(str(tmp_path / 'results.jsonl'))] == [0]
  mgr = checkpoint.manager(str(tmp_path / 'checkpoints' / 'random-seed0'))
  assert mgr.latest_step() == 0


@pytest.mark.slow  # half a minute of compiling ResNet-18
def test_cifar10_config_runs_resnet18_on_random_arrays(tmp_path):
  config = cifar10_config.get_config('random')
  config.strategies = ('l2r',)
  records = experiment.run(config, str(tmp_path))
  assert [r['num_labeled'] for r in records] == [64, 128]
  assert cifar10_config.get_config().train.lr_boundaries == (120,)


def test_loss_module_updates_match_the_papers_first_cycle():
  # Hand-worked: the paper's CIFAR-10 cycle 0 is ceil(1000 / 64) = 16 steps x 150 epochs = 2,400
  # updates; digits' is 1 step x 60 epochs, mnist1d's 2 x 60; MPII's 7 x 140 = 980 against the
  # pose stand-in's 4 x 20; ShanghaiTech-B's 5 x 100 against the crowd stand-in's same 5 x 100.
  assert defaults.loss_module_updates_per_step('cifar10', 64, 64, 60) == 40
  assert defaults.loss_module_updates_per_step('cifar10', 100, 64, 60) == 20
  assert defaults.loss_module_updates_per_step('mpii', 100, 32, 20) == 12
  assert defaults.loss_module_updates_per_step('shanghaitech', 20, 4, 100) == 1
  # The paper's own protocols give one update per step; never fewer than one.
  for task, (initial, batch, epochs) in {'cifar10': (1000, 64, 150), 'celeba': (100, 64, 100),
                                         'mpii': (200, 32, 140)}.items():
    assert defaults.loss_module_updates_per_step(task, initial, batch, epochs) == 1
  assert defaults.loss_module_updates_per_step('celeba', 10_000, 64, 100) == 1


def test_registry_covers_the_paper():
  assert {'random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r'} <= set(strategies.REGISTRY)


@pytest.mark.slow
def test_two_processes_on_localhost_see_the_same_labeled_set(tmp_path):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS=_xla_flags(1),
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
  # The same computation as two devices of one process (pool scoring, core-set's search and
  # VAAL's batches split the same way, each process working on its block and gathering the
  # other's): the same selections. (L2R-AL's scoring is the same pool scoring; its training over
  # two processes: the pose test below.)
  config = _smoke(strategies=('coreset', 'vaal'), **{'vaal.iterations': 4})
  exp = experiment.make_experiment(config)
  here = {s: experiment.run_one(exp, str(tmp_path / 'one'), s, 0).labeled.tolist()
          for s in config.strategies}
  assert here == labeled[0]
  records = checkpoint.read_results(str(tmp_path / 'results.jsonl'))
  assert len(records) == 4  # written once, by process 0


@pytest.mark.slow
def test_one_device_gives_the_two_device_results(tmp_path):
  # One loss-module update per step: each further one lets Adam amplify the rounding differences
  # between the two layouts (the extra updates on two devices: tests/test_train.py). Compared where
  # both train the same labeled sets: cycle 0, and random's every cycle (as for vmapped seeds).
  strategies, k = ('random', 'll4al', 'l2r'), 1
  reference = experiment.run(  # this process has two (fake CPU) devices
      _smoke(strategies=strategies, **{'loss_module.updates_per_step': k}), str(tmp_path / 'two'))
  env = dict(os.environ, XLA_FLAGS=_xla_flags(1))
  subprocess.run([sys.executable, '-m', 'l2r_jax.main', '--config=configs/mnist1d.py:smoke',
                  f'--config.strategies={strategies!r}',
                  f'--config.loss_module.updates_per_step={k}',
                  f'--workdir={tmp_path / "one"}'],
                 cwd=ROOT, env=env, check=True, capture_output=True, timeout=400)
  one = {(r['strategy'], r['cycle']): r for r in checkpoint.read_results(
      str(tmp_path / 'one' / 'results.jsonl'))}
  assert len(one) == 6 and len(reference) == 6
  num_test = experiment.make_experiment(_smoke()).dataset.x_test.shape[0]
  for r in reference:
    o = one[(r['strategy'], r['cycle'])]
    assert o['num_labeled'] == r['num_labeled']
    if r['strategy'] == 'random' or r['cycle'] == 0:
      _same_up_to_rounding(o, r, num_test)


def _free_port():
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _worker_variables(task, out, devices, processes=1):
  """tests/augmented_worker.py's starting and trained variables, run in ``processes`` child
  processes of ``devices`` fake CPU devices each."""
  env = dict(os.environ, XLA_FLAGS=_xla_flags(devices), PYTHONPATH=ROOT)
  extra = lambda i: [str(port), str(i)] if processes > 1 else []  # noqa: E731
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, 'tests/augmented_worker.py', task, str(out),
                             *extra(i)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(processes)]
  for p in procs:
    _, err = p.communicate(timeout=400)
    assert p.returncode == 0, err[-3000:]
  with np.load(out) as f:
    return {k: f[k] for k in f.files}


def _assert_same_variables(a, b):
  part = lambda v, name: {k[len(name):]: x for k, x in v.items() if k.startswith(name)}  # noqa: E731
  tolerances.assert_same_training(part(a, 'trained'), part(b, 'trained'), part(a, 'start'))


def _in_this_process(task):
  """tests/augmented_worker.py's variables, trained on this process's two (fake CPU) devices."""
  import augmented_worker  # pylint: disable=g-import-not-at-top
  assert jax.local_device_count() == 2
  return augmented_worker.flat(*augmented_worker.train_cycle_zero(task))


@pytest.mark.slow
def test_an_augmented_cifar_shaped_task_trains_alike_on_one_and_two_devices(tmp_path):
  # Each sample is augmented with the key of its place in the global batch: were keys drawn per
  # device, the two would differ by more than what training moved (3 times, here).
  _assert_same_variables(_worker_variables('cifar_shaped', tmp_path / 'one.npz', devices=1),
                         _in_this_process('cifar_shaped'))


@pytest.mark.slow
def test_the_pose_stand_in_trains_alike_in_one_process_and_on_two(tmp_path):
  # Two processes of one device each: two devices, as in one process with two (bit for bit the
  # same there). Keyed per device, the two differed by 1.4 times what training moved.
  _assert_same_variables(_worker_variables('pose', tmp_path / 'one.npz', devices=1),
                         _worker_variables('pose', tmp_path / 'two.npz', devices=1, processes=2))


def test_scoring_splits_the_indices_into_one_block_per_device():
  pool = np.arange(1000, 1300) * 10
  seen = jax.pmap(lambda x: (x, jnp.broadcast_to(jax.lax.axis_index(devices_lib.AXIS), x.shape)),
                  axis_name=devices_lib.AXIS)
  indices = np.random.default_rng(0).permutation(300)[:299]
  values, device = devices_lib.map_over_devices(seen, lambda rows: (pool[rows],), indices, chunk=64)
  np.testing.assert_array_equal(values, pool[indices])   # in index order, padding cut
  np.testing.assert_array_equal(device, np.repeat([0, 1], [150, 149]))


def test_scoring_and_evaluation_over_two_devices_give_one_devices_outputs():
  # The same per-sample computation, batched differently: equal up to float32 rounding.
  config = _smoke(strategies=('l2r',))
  exp = experiment.make_experiment(config)
  state = state_lib.initial_train_state(exp, 'l2r', jax.random.PRNGKey(0))
  indices = np.random.default_rng(0).permutation(exp.dataset.pool_size)[:300]
  outputs = inference.infer(state, exp.dataset.x_train, indices, chunk=64)
  prediction, feats, predicted = jax.jit(inference._apply)(
      state, jnp.asarray(exp.dataset.x_train[indices]))
  for got, want in zip(outputs, (prediction, global_average_pool(feats.last),
                                 predicted)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  result = inference.evaluate(exp, state, chunk=64)
  accuracy = float(np.mean(np.argmax(jax.jit(inference._apply)(
      state, jnp.asarray(exp.dataset.x_test))[0], -1) == exp.dataset.y_test))
  assert result['value'] == pytest.approx(accuracy, abs=1.01 / len(exp.dataset.y_test))


def test_true_losses_are_the_targets_cross_entropy_on_the_pool():
  config = _smoke()
  exp = experiment.make_experiment(config)
  models = state_lib.initial_train_state(exp, 'random', jax.random.PRNGKey(3))
  idx = np.array([5, 0, 77, 3, 12])  # fewer than a chunk, out of order
  t = models.target
  logits, _ = t.apply_fn({'params': t.params, 'batch_stats': t.batch_stats},
                         exp.dataset.x_train[idx], train=False)
  logp = jax.nn.log_softmax(np.asarray(logits, np.float64))
  expected = -logp[np.arange(len(idx)), exp.dataset.y_train[idx]]
  np.testing.assert_allclose(inference.true_losses(exp, models, idx), expected, rtol=1e-5)


def test_a_strategy_has_one_colour_in_both_panels_of_the_curves():
  from l2r_jax import report  # pylint: disable=g-import-not-at-top
  records = [{'strategy': s, 'seed': 0, 'cycle': c, 'num_labeled': 10 * (c + 1), 'metric':
              'accuracy', 'value': 0.5 + 0.1 * c, 'spearman': 0.3 if s != 'random' else None}
             for s in ('random', 'entropy', 'll4al', 'l2r') for c in (0, 1)]
  values_ax, rho_ax = report.curves_figure(records).axes
  colour = lambda ax: {line.get_label(): line.get_color() for line in ax.get_lines()}  # noqa: E731
  assert len(set(colour(values_ax).values())) == 4
  for s, c in colour(rho_ax).items():
    assert colour(values_ax)[s] == c


def test_a_workdir_that_is_a_file_is_named_as_such(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(errors.WorkdirError, match='is a file, not a folder'):
    experiment.run(_smoke(), str(tmp_path / 'file'))


class _NoBatchNorm(flax.linen.Module):
  """A target without BatchNorm (no batch_stats at all): conv, pool, dense."""
  num_outputs: int = 10
  bn_axis_name: str = None

  @flax.linen.compact
  def __call__(self, x, *, train):
    del train
    h = flax.linen.relu(flax.linen.Conv(8, (3,), strides=2)(x[..., None]))
    return flax.linen.Dense(self.num_outputs)(h.mean(1)), models_lib.Features(last=h, stages=(h,))


# Each loop and each feed once: an empty `batch_stats` must keep a scanned epoch's carry of one
# structure, and neither feed may assume statistics. (docs/your_data.md's worked example trains
# one more, an MLP, with every strategy.)
@pytest.mark.parametrize('loop, feed', [('step', 'host'), ('scan', 'device')])
def test_a_model_without_batchnorm_trains_in_every_loop_and_feed(tmp_path, monkeypatch, loop,
                                                                 feed):
  monkeypatch.setitem(models_lib.TARGETS, 'no_batchnorm', _NoBatchNorm)
  config = _smoke(strategies=('random', 'l2r'), **{
      'model.name': 'no_batchnorm', 'train.loop': loop, 'train.feed': feed, 'train.epochs': 2})
  records = experiment.run(config, str(tmp_path))
  assert len(records) == 4 and all(np.isfinite(r['value']) for r in records)
