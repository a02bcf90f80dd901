r"""The paper's configs at their own sizes: a training step's and scoring's time and memory, and what
a run would take, on whatever devices JAX sees (a GPU's work; it runs on a CPU too, slowly).

    python benchmarks/paper_scale.py                                   # the four paper configs
    python benchmarks/paper_scale.py --configs cifar10,mpii --steps 4 --score_n 256
    python benchmarks/paper_scale.py --score_devices 1,2,4,8           # scoring over 1..8 devices

For each config (``configs/cifar10.py``, ``celeba.py``, ``mpii.py``, ``shanghaitech.py``: their
models, input sizes, batch sizes, augmentation and L2R-AL's loss module and sorter as they are):

* **train**: ``--steps`` steps of L2R-AL's training through ``cycle.train_cycle`` itself (the
  driver's epoch: batches planned, augmented, cropped and fed to the pmapped step over every local
  device), once to compile and ``--repeats`` times timed; the step's time is the median epoch's over
  its steps.
* **score**: ``inference.infer`` (target and loss module forward, pooled embeddings, predicted
  losses back on the host) on ``--score_n`` pool samples in the config's ``eval_batch_size``
  chunks; with ``--score_devices``, once per device count, each in a process that sees only that
  many devices (``CUDA_VISIBLE_DEVICES`` on a GPU machine, XLA's forced host device count on a
  CPU, where the devices share the same cores and scaling shows only overhead).

Each (config, case) runs in a fresh process, whose peak memory is the devices' own where they
report it (``memory_stats()['peak_bytes_in_use']``, GPUs and TPUs: the most of any device) and the
process's resident high-water mark (``VmHWM``) otherwise. The data: CIFAR-10 and CelebA as random
arrays of their shapes (10 classes for both: the head's width does not move the time), MPII and
ShanghaiTech-B through their synthetic stand-ins at the datasets' sizes; MPII's backbone from random
weights (the ImageNet ones cannot be read offline; the same network and cost).

**One run**, L2R-AL and one seed, is estimated from these: every cycle's epochs at
``ceil(labeled / batch)`` steps, the subset scored after each cycle but the last and the test set
evaluated after each (both at the scoring rate), with the paper's sizes (the test sets: CIFAR-10
10,000, CelebA 19,962, MPII 2,958, ShanghaiTech-B 316). Writes ``OUT/paper_scale.md`` and
``OUT/paper_scale.json`` (OUT: ``--out``, default benchmarks/results) after every config, so a run
stopped at a time limit keeps the configs it measured.
"""
import argparse
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: benchmarks/ importable
from benchmarks import machine as machine_info  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import speed  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = ('cifar10', 'celeba', 'mpii', 'shanghaitech')
# The test sets the paper's runs evaluate on after every cycle (the stand-ins' configs hold MPII's
# and ShanghaiTech-B's own sizes in config.data.num_test).
TEST_SIZES = {'cifar10': 10000, 'celeba': 19962}
# The pool a run draws its subsets from, where the config does not say (ShanghaiTech-B: all of it).
POOL_SIZES = {'cifar10': 50000, 'celeba': 162770}


def paper_config(name: str, samples: int):
  """``configs/NAME.py``'s paper config, its data replaced by ``samples`` generated samples of
  the same shapes (a pool to train and score on; its size moves nothing measured)."""
  config = speed.load_config(name)
  if name in TEST_SIZES:
    size = 32 if name == 'cifar10' else config.data.image_size
    config.data = dict(name='random_images', num_samples=samples, num_test=8,
                       shape=(size, size, 3))
  else:
    config.data.synthetic = True
    config.data.update(num_train=samples, num_test=8)
    config.model.pretrained = None
  # One cycle from a labeled set the generated pool holds (nothing here reads the schedule).
  config.al.update(initial=min(config.al.initial, samples), cycles=1)
  config.al.subset = None
  config.strategies = ('l2r',)
  config.seeds = (0,)
  config.quiet = True
  return config


def sizes_of_a_run(name: str) -> Dict[str, Any]:
  """What one L2R-AL run of the paper's config does: labeled counts per cycle, epochs, batch, the
  subset scored after each cycle, the test set evaluated."""
  config = speed.load_config(name)
  pool = POOL_SIZES.get(name, config.data.get('num_train'))
  labeled = [config.al.initial + k * config.al.budget for k in range(config.al.cycles)]
  subsets = [min(config.al.subset or pool, pool - n) for n in labeled[:-1]]
  return dict(labeled=labeled, epochs=config.train.epochs, batch=config.train.batch_size,
              subsets=subsets, test=TEST_SIZES.get(name, config.data.get('num_test')),
              model=config.model.name, input=_input_shape(config), pool=pool)


def _input_shape(config) -> List[int]:
  crop = config.augment.get('crop')
  if config.data.name == 'cifar10':
    return [32, 32, 3]
  size = config.data.image_size
  size = list(size) if isinstance(size, (tuple, list)) else [size, size]
  return (list(crop) if crop else size) + [3]


def device_peak_mib() -> Optional[float]:
  """The most any local device has held at once, MiB, where the devices say (GPUs, TPUs)."""
  import jax  # pylint: disable=g-import-not-at-top
  peaks = []
  for device in jax.local_devices():
    stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
    if stats and 'peak_bytes_in_use' in stats:
      peaks.append(stats['peak_bytes_in_use'] / 2**20)
  return max(peaks) if peaks else None


def train_case(name: str, steps: int, repeats: int) -> Dict[str, Any]:
  """L2R-AL's epochs of ``steps`` steps through the driver's own ``cycle.train_cycle``."""
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import cycle  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  probe = speed.load_config(name)
  batch = probe.train.batch_size
  config = paper_config(name, steps * batch)
  config.train.epochs = 1  # one epoch a call: no schedule boundary or detachment within it
  config.train.lr_boundaries = config.loss_module.lr_boundaries = ()
  config.ll4al.detach_epoch = 0
  exp = experiment.make_experiment(config)
  rng_init, rng = jax.random.split(jax.random.PRNGKey(0))
  train_state = state_lib.initial_train_state(exp, 'l2r', rng_init)
  labeled = np.arange(steps * batch)
  run = state_lib.RunState('l2r', 0, -1, labeled, rng, train_state, [])

  def epoch():
    trained, _ = cycle.train_cycle(exp, [run], 0, [rng])
    jax.block_until_ready(trained)

  r = speed.timed(epoch, repeats)
  r = speed._with_compile(r, r['median_s'])  # pylint: disable=protected-access
  r.update(step_s=r['median_s'] / steps, steps=steps, batch=batch,
           devices=jax.local_device_count(), device_kind=jax.local_devices()[0].device_kind)
  return r


def score_case(name: str, n: int, repeats: int) -> Dict[str, Any]:
  """``inference.infer`` on ``n`` pool samples in the config's evaluation chunks."""
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import inference  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  config = paper_config(name, n)
  exp = experiment.make_experiment(config)
  train_state = state_lib.initial_train_state(exp, 'l2r', jax.random.PRNGKey(0))
  chunk = config.eval_batch_size
  x = exp.dataset.x_train
  rows = np.arange(n)
  # The first call compiles the one chunk shape every later call uses.
  warm = speed.timed(lambda: inference.infer(train_state, x, rows[:chunk], chunk), 1, warmup=1)
  r = speed.timed(lambda: inference.infer(train_state, x, rows, chunk), repeats, warmup=0)
  r['first_s'] = warm['first_s']
  r = speed._with_compile(r, warm['median_s'])  # pylint: disable=protected-access
  r.update(per_sample_s=r['median_s'] / n, samples=n, chunk=chunk,
           devices=jax.local_device_count(), device_kind=jax.local_devices()[0].device_kind)
  return r


def run_child(name: str, case: str, args: argparse.Namespace) -> Dict[str, Any]:
  if case == 'train':
    result = train_case(name, args.steps, args.repeats)
  else:
    result = score_case(name, args.score_n, args.repeats)
  result['device_peak_mib'] = device_peak_mib()
  result['process_peak_mib'] = speed.peak_rss_mib()
  return result


def _visible(devices: Optional[int]) -> Dict[str, str]:
  """The environment of a child that sees ``devices`` devices (None: all there are)."""
  env = dict(os.environ)
  if devices is None:
    return env
  if _platform() == 'cpu':
    flags = [f for f in env.get('XLA_FLAGS', '').split()
             if not f.startswith('--xla_force_host_platform_device_count')]
    env['XLA_FLAGS'] = ' '.join(flags + [f'--xla_force_host_platform_device_count={devices}'])
  else:
    visible = env.get('CUDA_VISIBLE_DEVICES')
    ids = visible.split(',') if visible else [str(i) for i in range(devices)]
    env['CUDA_VISIBLE_DEVICES'] = ','.join(ids[:devices])
  return env


def _platform() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.default_backend()


def spawn(name: str, case: str, args: argparse.Namespace,
          devices: Optional[int] = None) -> Dict[str, Any]:
  """One (config, case) in a fresh process."""
  return speed.run_in_process(
      [sys.executable, os.path.abspath(__file__), '--_child', name, case, '--steps',
       str(args.steps), '--repeats', str(args.repeats), '--score_n', str(args.score_n)],
      env=_visible(devices))


def estimate_run_s(run: Dict[str, Any], step_s: float, per_sample_s: float) -> Dict[str, float]:
  """One L2R-AL run's time from a step's and a scored sample's: training, scoring the subsets,
  evaluating the test set after every cycle."""
  train_s = sum(run['epochs'] * math.ceil(n / run['batch']) * step_s for n in run['labeled'])
  score_s = sum(run['subsets']) * per_sample_s
  eval_s = len(run['labeled']) * run['test'] * per_sample_s
  return dict(train_s=train_s, score_s=score_s, eval_s=eval_s,
              total_s=train_s + score_s + eval_s)


def _memory(result: Dict[str, Any]) -> str:
  if result.get('device_peak_mib') is not None:
    return f'{result["device_peak_mib"] / 1024:.2f} GiB (device)'
  return f'{result["process_peak_mib"] / 1024:.2f} GiB (process)'


def fmt_hours(seconds: float) -> str:
  return f'{seconds / 3600:.1f} h' if seconds >= 3600 else speed.fmt_time(seconds)


def render(results: Dict[str, Any]) -> str:
  lines = [
      '# The paper configs at their sizes (`benchmarks/paper_scale.py`)', '',
      f'Command: `{results["command"]}`.', '',
      f'Machine: {results["machine"]}; devices: {results["devices"]}.', '',
      'Step: L2R-AL\'s training step at the config\'s batch (target, loss module, sorter, '
      'augmentation, the driver\'s feed), median over timed epochs of '
      f'{results["steps"]} steps. Scoring: target and loss module forward on '
      f'{results["score_n"]} pool samples in the config\'s evaluation chunks, per 1,000 samples. '
      'Memory: the devices\' peak where they report it, else the process\'s. One run: L2R-AL, one '
      'seed, every cycle at the paper\'s sizes (training + scoring the subsets + evaluating the '
      'test set), estimated from the two rates.', '',
      '| config | model, input | batch | step | compile (step) | epoch at the last cycle | '
      'scoring / 1,000 | memory (train) | memory (score) | one run |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for name, r in results['configs'].items():
    run, train, score = r['run'], r['train'], r['score']
    if 'error' in train or 'error' in score:
      failed = train.get('error') or score.get('error')
      lines.append(f'| {name} | {run["model"]}, {run["input"]} | {run["batch"]} | '
                   f'failed: {failed} | | | | | | |')
      continue
    est = estimate_run_s(run, train['step_s'], score['per_sample_s'])
    last_epoch = math.ceil(run['labeled'][-1] / run['batch']) * train['step_s']
    lines.append(
        f'| {name} | {run["model"]}, {"×".join(map(str, run["input"]))} | {run["batch"]} | '
        f'{speed.fmt_time(train["step_s"])} | {speed.fmt_time(train["compile_s"])} | '
        f'{fmt_hours(last_epoch)} ({run["labeled"][-1]:,} labels) | '
        f'{speed.fmt_time(score["per_sample_s"] * 1000)} | {_memory(train)} | {_memory(score)} | '
        f'{fmt_hours(est["total_s"])} ({run["epochs"]} epochs × {len(run["labeled"])} cycles) |')
  scaling = results.get('score_devices')
  if scaling:
    lines += ['', 'Scoring over several devices (each count in a process that sees only those '
              'devices; on a CPU they share its cores):', '',
              '| config | ' + ' | '.join(f'{k} device{"s" * (int(k) > 1)}' for k in scaling[
                  next(iter(scaling))]) + ' |',
              '|---|' + '---|' * len(scaling[next(iter(scaling))])]
    for name, by_count in scaling.items():
      one = by_count.get('1', {}).get('per_sample_s')
      cells = []
      for r in by_count.values():
        if 'error' in r:
          cells.append('failed')
          continue
        speedup = f' ({one / r["per_sample_s"]:.2f}×)' if one else ''
        cells.append(f'{speed.fmt_time(r["per_sample_s"] * 1000)} / 1,000{speedup}')
      lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--configs', default=','.join(CONFIGS), help='comma list of ' +
                      ', '.join(CONFIGS))
  parser.add_argument('--steps', type=int, default=8, help='training steps per timed epoch')
  parser.add_argument('--repeats', type=int, default=2, help='timed repeats of each case')
  parser.add_argument('--score_n', type=int, default=1024, help='pool samples scored')
  parser.add_argument('--score_devices', default='',
                      help='comma list of device counts to score on, e.g. 1,2,4,8')
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results'))
  parser.add_argument('--_child', nargs=2, metavar=('CONFIG', 'CASE'), help=argparse.SUPPRESS)
  parser.add_argument('--_result', help=argparse.SUPPRESS)
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parser.parse_args(argv)
  if args._child:  # pylint: disable=protected-access
    result = run_child(*args._child, args)  # pylint: disable=protected-access
    with open(args._result, 'w') as f:  # pylint: disable=protected-access
      json.dump(result, f)
    return result
  names = [n for n in args.configs.split(',') if n]
  unknown = [n for n in names if n not in CONFIGS]
  if unknown or args.steps < 1 or args.repeats < 1 or args.score_n < 1:
    parser.error(f'--configs takes {", ".join(CONFIGS)} (got {unknown})' if unknown else
                 '--steps, --repeats and --score_n take whole numbers from 1')
  counts = [int(k) for k in args.score_devices.split(',') if k]
  import jax  # pylint: disable=g-import-not-at-top
  results: Dict[str, Any] = dict(
      command='python benchmarks/paper_scale.py ' + ' '.join(argv),
      machine=machine_info.describe(), steps=args.steps, score_n=args.score_n,
      devices=f'{jax.local_device_count()} × {jax.local_devices()[0].device_kind}', configs={})
  from l2r_jax import workdir  # pylint: disable=g-import-not-at-top
  os.makedirs(args.out, exist_ok=True)

  def write() -> str:
    """The report of what is measured so far: a run stopped at a time limit keeps its configs."""
    report = render(results)
    workdir.write_atomic(os.path.join(args.out, 'paper_scale.md'), report)
    workdir.write_atomic(os.path.join(args.out, 'paper_scale.json'), json.dumps(results, indent=1))
    return report

  for name in names:
    print(f'{name}: train, score', flush=True)
    results['configs'][name] = dict(run=sizes_of_a_run(name), train=spawn(name, 'train', args),
                                    score=spawn(name, 'score', args))
    write()
  if counts:
    results['score_devices'] = {}
    for name in names:
      results['score_devices'][name] = {str(k): spawn(name, 'score', args, devices=k)
                                        for k in counts}
      write()
  report = write()
  print(report)
  return results


if __name__ == '__main__':
  main()
