r"""Speed of l2r-jax against an equivalent eager PyTorch implementation, on one machine, in one run.

    pip install -e '.[bench]'                                # PyTorch (CPU), for this script only
    python benchmarks/speed.py                               # every case; (e) with 5 seeds
    python benchmarks/speed.py --quick --cases a,b,c,d       # minutes
    python benchmarks/speed.py --cases e --seeds 1 --out /tmp/speed

The cases, each the work one part of an active-learning run does:

* (a) one training step of ResNet-18 (CIFAR stem) and the L2R-AL loss module at batch 64: the
  target's cross-entropy, the module on detached last-block features, the listwise loss through
  the frozen GRU sorter (lists of 64), SGD 0.1 (momentum 0.9, weight decay 5e-4) for the target
  and Adam 1e-3 for the module, with the pad-2 crop and flip augmentation of configs/cifar10.py.
  JAX: the driver's pmapped step (the experiment's ``train.Trainer`` for L2R-AL) on the state of
  ``state.initial_train_state``.
* (b) one epoch of the mnist1d 1-D CNN with its L2R module on 4,000 samples (63 batches of 64, SGD
  0.05): JAX through ``cycle.train_cycle`` itself (its batch feeding included), with the
  default feed (the labeled set on the device) and with ``train.feed='host'``.
* (c) scoring a pool subset: ResNet-18 and the L2R module forward on 10,000 32×32×3 images in
  chunks of 512 (``inference.infer``: logits, pooled embeddings, predicted losses back on the
  host).
* (d) k-center greedy (core-set) picking 1,000 of 10,000 candidates, 512-d, with 1,000 labeled
  centres: ``strategies.coreset.k_center_greedy`` against PyTorch and a vectorised numpy loop;
  whether all three pick the same indices.
* (e) a whole mnist1d experiment (configs/mnist1d.py, every cycle) for random, entropy, core-set,
  LL4AL and L2R-AL over ``--seeds`` seeds: JAX through ``experiment.run``, PyTorch through a compact
  eager re-implementation of the same protocol; the last-cycle test accuracies as a sanity check.
  JAX also runs it fed from the host (``train.feed='host'``) and with ``vmap_seeds``.
  (b) and (e) give the loss modules one update per step, as the papers and their PyTorch code do
  (configs/mnist1d.py itself gives them 20, ``loss_module.updates_per_step``).
* (f) BALD's Monte-Carlo scoring against a plain forward pass, JAX only: the mnist1d 1-D CNN with
  dropout 0.1 on 10,000 sequences in chunks of 512, ``inference.infer`` (one deterministic pass)
  against ``inference.sample_predictions`` with T = 20 dropout passes (vmapped) and the mutual
  information of the passes (``strategies.bayesian.mutual_information``).

PyTorch runs in both memory formats where it matters (NCHW and channels_last, for 2-D images).
Every (case, framework) runs in a fresh subprocess, which reports its own peak resident memory
(``VmHWM``, or ``ru_maxrss`` where /proc is missing), so one framework's allocations never count
against the other. (a)-(d) report the
median of several timed repeats after untimed warm-up calls; the JAX compile time is reported
separately (the first call's time minus the median). ``--quick`` cuts (c) and (d) to 2,048 samples
(and (d)'s picks and centres to 200), (e) to its first 2 cycles of 20 epochs, and takes fewer
repeats.

Writes ``OUT/speed.md`` (the table, with a header naming the machine and the command) and
``OUT/speed.json`` (every raw time); OUT is ``--out`` (default benchmarks/results).
"""
import argparse
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: benchmarks/ importable
from benchmarks import machine as machine_info  # pylint: disable=g-import-not-at-top,wrong-import-position
# numpy only: the PyTorch children draw the driver's protocol without loading JAX.
from l2r_jax.protocol import epoch_order, initial_labeled, pool_subset, top_k  # pylint: disable=g-import-not-at-top,wrong-import-position
CASES = ('a', 'b', 'c', 'd', 'e', 'f')
# The frameworks each case runs on; 'torch_cl' is PyTorch with channels_last tensors, 'jax_scan'
# the epoch as one lax.scan (config.train.loop='scan'; 'jax' dispatches step by step), 'jax_host'
# the batches fed from the host (config.train.feed='host'; 'jax' gathers them on the device),
# 'jax_vmap' the driver with config.vmap_seeds (each strategy's seeds trained as one
# vmapped program).
FRAMEWORKS = {'a': ('jax', 'torch', 'torch_cl'), 'b': ('jax', 'jax_scan', 'jax_host', 'torch'),
              'c': ('jax', 'torch', 'torch_cl'), 'd': ('jax', 'torch', 'numpy'),
              'e': ('jax', 'jax_host', 'jax_vmap', 'torch'), 'f': ('jax', 'jax_bald')}
TORCH_FRAMEWORKS = ('torch', 'torch_cl')
STRATEGIES = ('random', 'entropy', 'coreset', 'll4al', 'l2r')
SORTER_LEN = 64
TORCH_HINT = ("PyTorch is not installed: the torch columns are skipped. Install it with "
              "`pip install -e '.[bench]'` (or `pip install torch --index-url "
              "https://download.pytorch.org/whl/cpu` for the CPU-only build).")


def sizes(quick: bool, seeds: int = 5) -> Dict[str, Any]:
  """The problem sizes and repeat counts of every case."""
  n = 2048 if quick else 10000
  picks = 200 if quick else 1000
  return {
      'batch': 64, 'step_repeats': 3 if quick else 5, 'step_warmup': 2,
      'epoch_repeats': 2 if quick else 3,
      'score_n': n, 'score_chunk': 512, 'score_repeats': 2 if quick else 3,
      'kcenter_n': n, 'kcenter_centres': picks, 'kcenter_budget': picks, 'kcenter_dim': 512,
      'kcenter_repeats': 3 if quick else 5,
      # (e): None keeps configs/mnist1d.py's value
      'cycles': 2 if quick else None, 'epochs': 20 if quick else None,
      'seeds': seeds,
      'bald_n': n, 'bald_passes': 20, 'bald_repeats': 2 if quick else 3,
  }


def what(case: str, s: Dict[str, Any]) -> str:
  """What a case times, for the table."""
  cycles = f'first {s["cycles"]} cycles' if s['cycles'] else 'all cycles'
  if s['epochs']:
    cycles += f' of {s["epochs"]} epochs'
  return {
      'a': f'ResNet-18 + L2R module, one train step, batch {s["batch"]}, GRU sorter '
           f'L={SORTER_LEN}, crop+flip (median of {s["step_repeats"]}, compile excluded)',
      'b': f'mnist1d CNN + L2R module, one epoch of 4,000 samples, batch {s["batch"]} '
           f'(median of {s["epoch_repeats"]}, compile excluded)',
      'c': f'ResNet-18 + L2R module forward on {s["score_n"]:,} images, chunks of '
           f'{s["score_chunk"]}, outputs on host (median of {s["score_repeats"]}, '
           'compile excluded)',
      'd': f'k-center greedy, {s["kcenter_budget"]:,} of {s["kcenter_n"]:,} candidates, '
           f'{s["kcenter_dim"]}-d, {s["kcenter_centres"]:,} centres (median of '
           f'{s["kcenter_repeats"]}, compile excluded)',
      'e': f'mnist1d experiment, 5 strategies × {s["seeds"]} seed(s), {cycles}, one run '
           '(JAX: experiment.run, compile and checkpoints included)',
      'f': f'mnist1d CNN (dropout 0.1) forward on {s["bald_n"]:,} sequences, chunks of 512, '
           f'outputs on host (median of {s["bald_repeats"]}, compile excluded); notes: BALD with '
           f'T = {s["bald_passes"]} passes',
  }[case]


# ------------------------------------------------------------------------------------------------


def k_center_greedy_numpy(candidates: np.ndarray, centers: np.ndarray, budget: int,
                          chunk: int = 512) -> np.ndarray:
  """Greedy farthest-point selection in numpy: a vector of each candidate's squared distance to
  its nearest centre, its argmax picked and the vector updated, ``budget`` times.

  Args:
    candidates: ``[n, d]``.
    centers: ``[m, d]`` initial centres (``m >= 0``), reduced ``chunk`` at a time.
    budget: how many to pick.

  Returns:
    ``[budget]`` indices into ``candidates``, in the order they were picked.
  """
  x = np.asarray(candidates, np.float32)
  sq = np.sum(x * x, -1)
  min_d = np.full(x.shape[0], np.inf, np.float32)
  centers = np.asarray(centers, np.float32)
  for start in range(0, centers.shape[0], chunk):
    c = centers[start:start + chunk]
    d = sq[:, None] - 2 * x @ c.T + np.sum(c * c, -1)
    min_d = np.minimum(min_d, np.maximum(d, 0).min(-1))
  chosen = np.empty(budget, np.int64)
  for k in range(budget):
    i = int(np.argmax(min_d))
    chosen[k] = i
    min_d = np.minimum(min_d, np.maximum(sq - 2 * (x @ x[i]) + sq[i], 0))
    min_d[i] = -1.0
  return chosen


def kcenter_problem(s: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
  """Gaussian candidates and centres (seeded: every framework gets the same arrays)."""
  r = np.random.default_rng(0)
  candidates = r.normal(size=(s['kcenter_n'], s['kcenter_dim'])).astype(np.float32)
  centres = r.normal(size=(s['kcenter_centres'], s['kcenter_dim'])).astype(np.float32)
  return candidates, centres


def random_images(n: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """``n`` 32×32×3 standard-normal images and labels."""
  r = np.random.default_rng(seed)
  return (r.normal(size=(n, 32, 32, 3)).astype(np.float32),
          r.integers(0, 10, n).astype(np.int32))


# ------------------------------------------------------------------------------------------------
# Timing.


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> Dict[str, Any]:
  """Times ``fn()``, which must block until its work is done: ``warmup`` calls first (their times
  kept apart: ``first_s``, ``warmup_s``), then ``repeats`` calls whose median is ``median_s``."""
  warm = []
  for _ in range(warmup):
    t0 = time.perf_counter()
    fn()
    warm.append(time.perf_counter() - t0)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  median = statistics.median(times)
  return {'median_s': median, 'times_s': times, 'first_s': warm[0] if warm else None,
          'warmup_s': warm}


def _with_compile(result: Dict[str, Any], steady_s: float) -> Dict[str, Any]:
  """Adds ``compile_s``: the first call's time beyond a steady-state call's."""
  result['compile_s'] = max(result['first_s'] - steady_s, 0.0)
  return result


# ------------------------------------------------------------------------------------------------
# JAX: the project's own code paths.


def load_config(name: str, variant: Optional[str] = None):
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'configs_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config() if variant is None else module.get_config(variant)


def _cifar_experiment():
  """The CIFAR-10 config's models, ranker, task and augmentation, on its ``:random`` variant's
  random images."""
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  config = load_config('cifar10', 'random')
  return config, experiment.make_experiment(config)


def jax_train_step(s: Dict[str, Any]) -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import cycle  # pylint: disable=g-import-not-at-top
  from l2r_jax import devices  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  config, exp = _cifar_experiment()
  rng = jax.random.PRNGKey(0)
  state = devices.replicate(state_lib.initial_train_state(exp, 'l2r', rng))
  p_step = exp.trainers['l2r'].program(cycle.LOOPS['step'])
  n_dev = jax.local_device_count()
  x, y = random_images(s['batch'])
  batch = jax.device_put({'x': x.reshape(n_dev, -1, *x.shape[1:]), 'y': y.reshape(n_dev, -1)},
                         devices.device_sharding())
  keys = np.broadcast_to(np.asarray(rng), (n_dev, *rng.shape))  # one key per step, every device
  epochs = np.zeros(n_dev, np.int32)
  holder = [state]

  def step():
    holder[0], m = p_step(holder[0], batch, keys, epochs)
    jax.block_until_ready((holder[0], m))

  r = timed(step, s['step_repeats'], s['step_warmup'])
  return _with_compile(r, r['median_s'])


def jax_epoch(s: Dict[str, Any], loop: str = 'step', feed: str = 'auto') -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import cycle  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  config = mnist1d_papers_protocol()
  config.train.epochs = 1   # one epoch: no schedule step or detachment within it
  config.train.lr_boundaries = config.loss_module.lr_boundaries = ()
  config.ll4al.detach_epoch = 0
  config.train.loop = loop
  config.train.feed = feed
  config.quiet = True
  exp = experiment.make_experiment(config)
  rng_init, rng = jax.random.split(jax.random.PRNGKey(0))
  train_state = state_lib.initial_train_state(exp, 'l2r', rng_init)
  labeled = np.arange(exp.dataset.pool_size)
  al = state_lib.RunState('l2r', 0, -1, labeled, rng, train_state, [])

  def epoch():
    trained, histories = cycle.train_cycle(exp, [al], 0, [rng])
    jax.block_until_ready(trained)
    return histories[0]

  r = timed(epoch, s['epoch_repeats'])
  r['samples'] = int(len(labeled))
  return _with_compile(r, r['median_s'])


def jax_score(s: Dict[str, Any]) -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import inference  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  config, exp = _cifar_experiment()
  train_state = state_lib.initial_train_state(exp, 'l2r', jax.random.PRNGKey(0))
  x, _ = random_images(s['score_n'])
  chunk = s['score_chunk']
  out = []

  def score(n):
    out[:] = inference.infer(train_state, x, np.arange(n), chunk)

  # The first call compiles the one chunk shape every later call uses; the second is steady.
  warm = timed(lambda: score(chunk), 1, warmup=1)
  r = timed(lambda: score(s['score_n']), s['score_repeats'], warmup=0)
  r['first_s'] = warm['first_s']
  r['shapes'] = [list(np.shape(o)) for o in out]
  return _with_compile(r, warm['median_s'])


def jax_kcenter(s: Dict[str, Any]) -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from l2r_jax.strategies import coreset  # pylint: disable=g-import-not-at-top
  candidates, centres = kcenter_problem(s)
  cand, cent = jnp.asarray(candidates), jnp.asarray(centres)
  picks = []

  def run():
    picks[:] = [np.asarray(jax.block_until_ready(
        coreset.k_center_greedy(cand, cent, s['kcenter_budget'])))]

  r = timed(run, s['kcenter_repeats'])
  r['picks'] = picks[0].tolist()
  return _with_compile(r, r['median_s'])


def jax_bald(s: Dict[str, Any], bald: bool = False) -> Dict[str, Any]:
  """Case (f): one deterministic forward pass over the subset, or BALD's T dropout passes and
  their mutual information."""
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  from l2r_jax import inference  # pylint: disable=g-import-not-at-top
  from l2r_jax import state as state_lib  # pylint: disable=g-import-not-at-top
  from l2r_jax.strategies import bayesian  # pylint: disable=g-import-not-at-top
  config = load_config('mnist1d', 'smoke')
  config.model.dropout = 0.1
  config.strategies = ('bald',)
  exp = experiment.make_experiment(config)
  train_state = state_lib.initial_train_state(exp, 'bald', jax.random.PRNGKey(0))
  x = np.random.default_rng(0).normal(size=(s['bald_n'], 40)).astype(np.float32)
  indices, chunk, passes = np.arange(s['bald_n']), 512, s['bald_passes']
  out = []

  def score(n):
    if bald:
      logits = inference.sample_predictions(train_state, x, indices[:n], passes,
                                            jax.random.PRNGKey(1), chunk)
      out[:] = [np.asarray(bayesian.mutual_information(jax.nn.log_softmax(logits, -1)))]
    else:
      out[:] = [inference.infer(train_state, x, indices[:n], chunk).prediction]

  warm = timed(lambda: score(chunk), 1, warmup=1)
  r = timed(lambda: score(s['bald_n']), s['bald_repeats'], warmup=0)
  r['first_s'] = warm['first_s']
  r['shape'] = list(out[0].shape)
  r['passes'] = passes if bald else 1
  return _with_compile(r, warm['median_s'])


def mnist1d_papers_protocol():
  """configs/mnist1d.py with one loss-module update per step, as in the papers and their PyTorch
  code (the offline config gives the loss modules more): (b) and (e) compare frameworks on one
  protocol."""
  config = load_config('mnist1d')
  config.loss_module.updates_per_step = 1
  return config


def mnist1d_config(s: Dict[str, Any]):
  """configs/mnist1d.py for case (e): the five strategies, ``s['seeds']`` seeds and, if ``s`` says
  so, fewer cycles or epochs (the learning-rate step and LL4AL's detach epoch then keep their
  place in the schedule)."""
  config = mnist1d_papers_protocol()
  config.strategies = STRATEGIES
  config.seeds = tuple(range(s['seeds']))
  config.quiet = True
  if s['cycles']:
    config.al.cycles = s['cycles']
  if s['epochs']:
    scale = s['epochs'] / config.train.epochs
    detach = config.ll4al.detach_epoch   # read before the epochs change: it follows them
    config.train.epochs = s['epochs']
    config.train.lr_boundaries = tuple(round(b * scale) for b in config.train.lr_boundaries)
    config.ll4al.detach_epoch = round(detach * scale)
  return config


def jax_experiment(s: Dict[str, Any], vmap_seeds: bool = False,
                   feed: str = 'auto') -> Dict[str, Any]:
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  config = mnist1d_config(s)
  config.vmap_seeds = vmap_seeds
  config.train.feed = feed
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    records = experiment.run(config, os.path.join(workdir, 'run'))
    total = time.perf_counter() - t0
  return {'median_s': total, 'times_s': [total], 'cycles_s': sum(r['wall_s'] for r in records),
          'final_accuracy': _final_accuracy(records)}


def _final_accuracy(records: Sequence[Dict[str, Any]]) -> Dict[str, float]:
  """Per strategy, the mean over seeds of the last cycle's test accuracy."""
  last = max(r['cycle'] for r in records)
  out = {}
  for strategy in dict.fromkeys(r['strategy'] for r in records):
    out[strategy] = float(np.mean([r['value'] for r in records
                                   if r['strategy'] == strategy and r['cycle'] == last]))
  return out


# ------------------------------------------------------------------------------------------------
# Inputs the PyTorch runs share with the JAX ones, exported once by the parent process (so that a
# PyTorch child never imports JAX): the pretrained GRU sorter's weights and the mnist1d data.


def export_inputs(folder: str, cases: Sequence[str]) -> None:
  if {'a', 'b', 'e'} & set(cases):
    np.savez(os.path.join(folder, 'sorter.npz'), **sorter_weights(SORTER_LEN))
  if {'b', 'e'} & set(cases):
    from l2r_jax import data as data_lib  # pylint: disable=g-import-not-at-top
    ds = data_lib.load(load_config('mnist1d').data)
    np.savez(os.path.join(folder, 'mnist1d.npz'), x_train=ds.x_train, y_train=ds.y_train,
             x_test=ds.x_test, y_test=ds.y_test)


def sorter_weights(seq_len: int) -> Dict[str, np.ndarray]:
  """The shipped GRU sorter's parameters, flattened to ``'GRUCell_0/ir/kernel'``-style keys, and
  its architecture (``hidden``, ``num_layers``)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import sorter  # pylint: disable=g-import-not-at-top
  path = os.path.join(sorter.PRETRAINED_DIR, f'L{seq_len}')
  with open(os.path.join(path, 'training.json')) as f:
    record = json.load(f)
  model = sorter.GRUSorter(**record['model'])
  abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, seq_len)))
  params = ocp.StandardCheckpointer().restore(os.path.join(path, 'params'), abstract['params'])
  flat = {'/'.join(k.key for k in keys): np.asarray(v)
          for keys, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  flat['hidden'] = np.asarray(record['model']['hidden'])
  flat['num_layers'] = np.asarray(record['model']['num_layers'])
  flat['seq_len'] = np.asarray(seq_len)
  return flat


# ------------------------------------------------------------------------------------------------
# PyTorch: the same models, losses, optimisers and protocol, eager.


@functools.lru_cache(maxsize=None)
def torch_lib() -> types.SimpleNamespace:
  """The PyTorch models and functions, defined on first use (so that JAX runs never import
  torch)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  def flax_init(module: nn.Module) -> nn.Module:
    """Flax's default initialisation: truncated-normal LeCun weights, zero biases."""
    for m in module.modules():
      if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        std = (1.0 / m.weight[0].numel()) ** 0.5 / 0.87962566103423978
        nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
        if m.bias is not None:
          nn.init.zeros_(m.bias)
    return module

  def bn(channels: int, dims: int = 2) -> nn.Module:
    # Flax's momentum 0.9 (kept share of the running average) is PyTorch's 0.1.
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=1e-5, momentum=0.1)

  def pool(x):
    """Global average pooling over every spatial axis: ``[B, C, ...] -> [B, C]``."""
    return x.mean(dim=tuple(range(2, x.dim())))

  class BasicBlock(nn.Module):

    def __init__(self, cin: int, cout: int, stride: int):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.bn1 = bn(cout)
      self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.bn2 = bn(cout)
      self.shortcut = None
      if stride != 1 or cin != cout:
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))

    def forward(self, x):
      y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
      return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))

  class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3×3 stem, no max-pool, two BasicBlocks per stage of 64-128-256-512."""

    def __init__(self, num_outputs: int = 10):
      super().__init__()
      self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), bn(64), nn.ReLU())
      stages, cin = [], 64
      for i, width in enumerate((64, 128, 256, 512)):
        stages.append(nn.Sequential(BasicBlock(cin, width, 1 if i == 0 else 2),
                                    BasicBlock(width, width, 1)))
        cin = width
      self.stages = nn.ModuleList(stages)
      self.fc = nn.Linear(512, num_outputs)

    def forward(self, x):
      x = self.stem(x)
      stages = []
      for stage in self.stages:
        x = stage(x)
        stages.append(x)
      return self.fc(pool(x)), stages

  class CNN1D(nn.Module):
    """mnist1d's model: three blocks of conv(5) → BatchNorm → ReLU (→ max-pool 2 after the 2nd
    and 3rd), 32 channels, global average pooling, a linear classifier."""

    def __init__(self, num_outputs: int = 10, width: int = 32):
      super().__init__()
      self.convs = nn.ModuleList([nn.Conv1d(1 if i == 0 else width, width, 5, padding=2,
                                            bias=False) for i in range(3)])
      self.bns = nn.ModuleList([bn(width, 1) for _ in range(3)])
      self.pool_after = (False, True, True)
      self.fc = nn.Linear(width, num_outputs)

    def forward(self, x):
      x = x[:, None, :]
      stages = []
      for conv, norm, pool_after in zip(self.convs, self.bns, self.pool_after):
        x = F.relu(norm(conv(x)))
        if pool_after:
          x = F.max_pool1d(x, 2)
        stages.append(x)
      return self.fc(pool(x)), stages

  class L2RLossModule(nn.Module):
    """Last block → GAP → Linear → LeakyReLU(0.01) → Linear(1)."""

    def __init__(self, channels: int, hidden: int = 128):
      super().__init__()
      self.fc1 = nn.Linear(channels, hidden)
      self.fc2 = nn.Linear(hidden, 1)

    def forward(self, stages):
      return self.fc2(F.leaky_relu(self.fc1(pool(stages[-1])), 0.01))[:, 0]

  class LL4ALLossModule(nn.Module):
    """Every stage → GAP → Linear → ReLU; concatenated → Linear(1)."""

    def __init__(self, channels: Sequence[int], hidden: int = 128):
      super().__init__()
      self.fcs = nn.ModuleList([nn.Linear(c, hidden) for c in channels])
      self.out = nn.Linear(hidden * len(channels), 1)

    def forward(self, stages):
      return self.out(torch.cat([F.relu(fc(pool(f))) for fc, f in zip(self.fcs, stages)],
                                -1))[:, 0]

  def robust_standardise(scores):
    """``arcsinh((x - median) / MAD)`` per list, the median of an even list the mean of its two
    middle values (as ``jnp.median``)."""
    def median(v):
      s = torch.sort(v, -1).values
      n = s.shape[-1]
      return ((s[..., (n - 1) // 2] + s[..., n // 2]) / 2)[..., None]

    med = median(scores)
    dev = (scores - med).abs()
    mad = median(dev)
    scale = torch.where(mad > 0, mad, dev.mean(-1, keepdim=True))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.asinh((scores - med) / scale)

  class GRUSorter(nn.Module):
    """SoDeep's sorter as in sorter/model.py: robust standardisation → stacked bidirectional GRU
    → linear read-out → sigmoid, then tied scores' estimates averaged. Frozen."""

    def __init__(self, seq_len: int, hidden: int = 32, num_layers: int = 2):
      super().__init__()
      self.seq_len = seq_len
      self.gru = nn.GRU(1, hidden, num_layers, batch_first=True, bidirectional=True)
      self.readout = nn.Linear(2 * hidden, 1)
      self.requires_grad_(False)

    def forward(self, scores):
      """``[B, L]`` scores → ``[B, L]`` rank estimates in (0, 1), largest score smallest."""
      x, _ = self.gru(robust_standardise(scores)[..., None])
      ranks = torch.sigmoid(self.readout(x)[..., 0])
      same = (scores[:, :, None] == scores[:, None, :]).to(ranks.dtype)
      return (same @ ranks[..., None])[..., 0] / same.sum(-1)

  def load_sorter(weights: Dict[str, np.ndarray]) -> nn.Module:
    """A :class:`GRUSorter` carrying flax GRU weights (``sorter_weights``). Flax's cell is
    PyTorch's with the reset and update gates' two biases merged into the input one."""
    hidden, layers = int(weights['hidden']), int(weights['num_layers'])
    model = GRUSorter(int(weights['seq_len']), hidden, layers)
    t = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
    with torch.no_grad():
      for layer in range(layers):
        for direction, suffix in enumerate(('', '_reverse')):
          cell = f'GRUCell_{2 * layer + direction}'
          w = lambda name, part, cell=cell: weights[f'{cell}/{name}/{part}']  # noqa: E731
          p = lambda name, layer=layer, suffix=suffix: getattr(  # noqa: E731
              model.gru, f'{name}_l{layer}{suffix}')
          p('weight_ih').copy_(t(np.concatenate([w(g, 'kernel').T for g in ('ir', 'iz', 'in')])))
          p('weight_hh').copy_(t(np.concatenate([w(g, 'kernel').T for g in ('hr', 'hz', 'hn')])))
          p('bias_ih').copy_(t(np.concatenate([w(g, 'bias') for g in ('ir', 'iz', 'in')])))
          p('bias_hh').copy_(t(np.concatenate([np.zeros(2 * hidden), w('hn', 'bias')])))
      model.readout.weight.copy_(t(weights['readout/kernel'].T))
      model.readout.bias.copy_(t(weights['readout/bias']))
    return model

  def descending_ranks(x):
    """Exact average ranks along the last axis, largest first, scaled to (0, 1]."""
    x = x.detach().contiguous()
    neg_sorted = torch.sort(-x, -1).values
    first = torch.searchsorted(neg_sorted, -x, right=False)
    last = torch.searchsorted(neg_sorted, -x, right=True)
    return (first + last + 1).to(x.dtype) / 2 / x.shape[-1]

  def listwise_loss(predicted, true, ranker):
    """L2R-AL's loss: the mean squared difference of the sorter's ranks of the predicted losses
    and the exact ranks of the true ones, list by list."""
    length = ranker.seq_len
    soft = ranker(predicted.reshape(-1, length)).reshape(-1)
    exact = descending_ranks(true.reshape(-1, length)).reshape(-1)
    return ((exact - soft) ** 2).mean()

  def pairwise_loss(predicted, true, margin: float = 1.0):
    """LL4AL's margin loss on the batch paired with its reverse."""
    n = predicted.shape[0]
    true = true.detach()
    diff_pred = (predicted - predicted.flip(0))[:n // 2]
    diff_true = (true - true.flip(0))[:n // 2]
    sign = torch.where(diff_true > 0, 1.0, -1.0)
    return torch.clamp(margin - sign * diff_pred, min=0).mean()

  def crop_flip(x, pad: int = 2, memory_format=torch.contiguous_format):
    """Per image of ``[B, C, H, W]``: a random crop of the zero-padded image, a random flip."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,))
    ox = torch.randint(0, 2 * pad + 1, (b,))
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    out = padded.permute(0, 2, 3, 1)[torch.arange(b)[:, None, None], rows, cols]
    out = out.permute(0, 3, 1, 2)
    flip = torch.rand(b) < 0.5
    out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out.contiguous(memory_format=memory_format)

  def optimisers(target, loss_module, lr: float, loss_module_lr: float = 1e-3):
    """SGD (momentum 0.9, weight decay 5e-4) for the target, Adam for the loss module."""
    sgd = torch.optim.SGD(target.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    adam = None if loss_module is None else torch.optim.Adam(loss_module.parameters(),
                                                            lr=loss_module_lr)
    return sgd, adam

  def train_step(target, loss_module, ranker, opts, x, y, ranking_loss: Optional[str],
                 detach: bool = True, augment=None, weight: float = 1.0, margin: float = 1.0):
    """One step of the target and (if any) its loss-prediction module; the metrics."""
    if augment is not None:
      x = augment(x)
    logits, stages = target(x)
    per_sample = F.cross_entropy(logits, y, reduction='none')
    loss = per_sample.mean()
    metrics = {'train_loss': loss.detach(),
               'train_accuracy': (logits.argmax(-1) == y).float().mean()}
    total = loss
    if ranking_loss is not None:
      feats = [f.detach() for f in stages] if ranking_loss == 'listwise' or detach else stages
      predicted = loss_module(feats)
      if ranking_loss == 'listwise':
        pred_loss = listwise_loss(predicted, per_sample.detach(), ranker)
        total = loss + pred_loss
      else:
        pred_loss = pairwise_loss(predicted, per_sample.detach(), margin)
        total = loss + weight * pred_loss
      metrics['train_pred_loss'] = pred_loss.detach()
    for opt in opts:
      if opt is not None:
        opt.zero_grad(set_to_none=True)
    total.backward()
    for opt in opts:
      if opt is not None:
        opt.step()
    return metrics

  return types.SimpleNamespace(**{k: v for k, v in locals().items() if not k.startswith('_')})


def _torch_setup(framework: str):
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(0)
  fmt = torch.channels_last if framework == 'torch_cl' else torch.contiguous_format
  return torch, torch_lib(), fmt


def _load_npz(path: str) -> Dict[str, np.ndarray]:
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def torch_train_step(s: Dict[str, Any], framework: str, inputs: str) -> Dict[str, Any]:
  torch, lib, fmt = _torch_setup(framework)
  target = lib.flax_init(lib.ResNet18()).to(memory_format=fmt).train()
  loss_module = lib.flax_init(lib.L2RLossModule(512))
  ranker = lib.load_sorter(_load_npz(os.path.join(inputs, 'sorter.npz')))
  opts = lib.optimisers(target, loss_module, lr=0.1)
  x, y = random_images(s['batch'])
  # NHWC on the host, like the JAX pool: the permuted view is channels_last already.
  x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
  y = torch.from_numpy(y).long()
  augment = functools.partial(lib.crop_flip, memory_format=fmt)

  def step():
    lib.train_step(target, loss_module, ranker, opts, x, y, 'listwise', augment=augment)

  r = timed(step, s['step_repeats'], s['step_warmup'])
  r['threads'] = torch.get_num_threads()
  return r


def torch_epoch(s: Dict[str, Any], framework: str, inputs: str) -> Dict[str, Any]:
  torch, lib, _ = _torch_setup(framework)
  data = _load_npz(os.path.join(inputs, 'mnist1d.npz'))
  x_all, y_all = torch.from_numpy(data['x_train']), torch.from_numpy(data['y_train']).long()
  target = lib.flax_init(lib.CNN1D()).train()
  loss_module = lib.flax_init(lib.L2RLossModule(32))
  ranker = lib.load_sorter(_load_npz(os.path.join(inputs, 'sorter.npz')))
  n, b = len(x_all), s['batch']
  batches = torch.from_numpy(epoch_order(0, 0, 0, n, b).reshape(-1, b))

  def epoch():
    opts = lib.optimisers(target, loss_module, lr=0.05)
    ms = [lib.train_step(target, loss_module, ranker, opts, x_all[idx], y_all[idx], 'listwise')
          for idx in batches]
    return {k: float(torch.stack([m[k] for m in ms]).mean()) for k in ms[0]}

  r = timed(epoch, s['epoch_repeats'])
  r['samples'] = int(n)
  return r


def torch_score(s: Dict[str, Any], framework: str, inputs: str) -> Dict[str, Any]:
  del inputs
  torch, lib, fmt = _torch_setup(framework)
  target = lib.flax_init(lib.ResNet18()).to(memory_format=fmt).eval()
  loss_module = lib.flax_init(lib.L2RLossModule(512)).eval()
  x, _ = random_images(s['score_n'])
  out = []

  @torch.no_grad()
  def score(n):
    parts = []
    for i in range(0, n, s['score_chunk']):
      xb = torch.from_numpy(x[i:i + s['score_chunk']]).permute(0, 3, 1, 2).contiguous(
          memory_format=fmt)
      logits, stages = target(xb)
      parts.append((logits.numpy(), lib.pool(stages[-1]).numpy(), loss_module(stages).numpy()))
    out[:] = [np.concatenate(p) for p in zip(*parts)]

  t0 = time.perf_counter()
  score(s['score_chunk'])
  first = time.perf_counter() - t0
  r = timed(lambda: score(s['score_n']), s['score_repeats'], warmup=0)
  r['first_s'] = first
  r['shapes'] = [list(o.shape) for o in out]
  r['threads'] = torch.get_num_threads()
  return r


def torch_k_center_greedy(torch, candidates, centers, budget: int, chunk: int = 512):
  """:func:`k_center_greedy_numpy` on PyTorch tensors."""
  x = candidates.float()
  sq = (x * x).sum(-1)
  min_d = torch.full((x.shape[0],), float('inf'))
  for c in centers.float().split(chunk):
    d = (sq[:, None] - 2 * x @ c.T + (c * c).sum(-1)).clamp_min(0).min(-1).values
    min_d = torch.minimum(min_d, d)
  chosen = torch.empty(budget, dtype=torch.long)
  for k in range(budget):
    i = int(torch.argmax(min_d))
    chosen[k] = i
    min_d = torch.minimum(min_d, (sq - 2 * (x @ x[i]) + sq[i]).clamp_min(0))
    min_d[i] = -1.0
  return chosen


def torch_kcenter(s: Dict[str, Any], framework: str, inputs: str) -> Dict[str, Any]:
  del inputs
  torch, _, _ = _torch_setup(framework)
  candidates, centres = (torch.from_numpy(a) for a in kcenter_problem(s))
  picks = []

  def run():
    picks[:] = [torch_k_center_greedy(torch, candidates, centres, s['kcenter_budget']).numpy()]

  r = timed(run, s['kcenter_repeats'])
  r['picks'] = picks[0].tolist()
  return r


def numpy_kcenter(s: Dict[str, Any]) -> Dict[str, Any]:
  candidates, centres = kcenter_problem(s)
  picks = []

  def run():
    picks[:] = [k_center_greedy_numpy(candidates, centres, s['kcenter_budget'])]

  r = timed(run, s['kcenter_repeats'])
  r['picks'] = picks[0].tolist()
  return r


def torch_experiment(s: Dict[str, Any], framework: str, inputs: str) -> Dict[str, Any]:
  """configs/mnist1d.py's protocol, eager: per strategy and seed, the same initial set, subset and
  batch orders as the driver; each cycle restarts the optimisers, trains 60 epochs (SGD 0.05,
  ×0.1 from epoch 45; Adam 1e-3 for the module; LL4AL's loss reaching the target until epoch 45),
  evaluates on the test set."""
  torch, lib, _ = _torch_setup(framework)
  config = _mnist1d_protocol(s)
  data = _load_npz(os.path.join(inputs, 'mnist1d.npz'))
  x_pool, y_pool = torch.from_numpy(data['x_train']), torch.from_numpy(data['y_train']).long()
  x_test, y_test = torch.from_numpy(data['x_test']), data['y_test']
  ranker = lib.load_sorter(_load_npz(os.path.join(inputs, 'sorter.npz')))
  cycles = config['cycles']
  pool_size = len(x_pool)

  @torch.no_grad()
  def infer(target, loss_module, idx):
    target.eval()
    logits, emb, losses = [], [], []
    for i in range(0, len(idx), 512):
      out, stages = target(x_pool[idx[i:i + 512]])
      logits.append(out)
      emb.append(lib.pool(stages[-1]))
      if loss_module is not None:
        losses.append(loss_module(stages))
    target.train()
    return (torch.cat(logits), torch.cat(emb),
            torch.cat(losses).numpy() if loss_module is not None else None)

  def select(strategy, seed, cycle, target, loss_module, labeled, subset, budget):
    if strategy == 'random':
      return subset[np.random.default_rng([seed, 3, cycle]).permutation(len(subset))[:budget]]
    logits, emb, predicted = infer(target, loss_module, subset)
    if strategy == 'entropy':
      logp = torch.log_softmax(logits, -1)
      return top_k(-(logp.exp() * logp).sum(-1).numpy(), subset, budget)
    if strategy == 'coreset':
      centres = infer(target, None, labeled)[1]
      return subset[torch_k_center_greedy(torch, emb, centres, budget).numpy()]
    return top_k(predicted, subset, budget)

  @torch.no_grad()
  def accuracy(target):
    target.eval()
    pred = np.concatenate([target(x_test[i:i + 512])[0].argmax(-1).numpy()
                           for i in range(0, len(x_test), 512)])
    target.train()
    return float(np.mean(pred == y_test))

  results = {}
  t0 = time.perf_counter()
  for strategy in STRATEGIES:
    for seed in range(s['seeds']):
      torch.manual_seed(seed)  # every strategy of a seed starts from the same target
      target = lib.flax_init(lib.CNN1D()).train()
      loss_module = None
      if strategy == 'l2r':
        loss_module = lib.flax_init(lib.L2RLossModule(32))
      elif strategy == 'll4al':
        loss_module = lib.flax_init(lib.LL4ALLossModule((32, 32, 32)))
      loss_kind = {'l2r': 'listwise', 'll4al': 'pairwise'}.get(strategy)
      labeled = initial_labeled(seed, pool_size, config['initial'])
      for cycle in range(cycles):
        if cycle > 0:
          mask = np.ones(pool_size, bool)
          mask[labeled] = False
          subset = pool_subset(seed, cycle, mask, config['subset'])
          chosen = select(strategy, seed, cycle, target, loss_module, labeled, subset,
                          config['budget'])
          labeled = np.concatenate([labeled, np.asarray(chosen, labeled.dtype)])
        x_lab, y_lab = x_pool[labeled], y_pool[labeled]
        opts = lib.optimisers(target, loss_module, lr=config['lr'])
        for epoch in range(config['epochs']):
          lr = config['lr'] * 0.1 ** sum(epoch >= b for b in config['lr_boundaries'])
          for group in opts[0].param_groups:
            group['lr'] = lr
          detach = strategy != 'll4al' or epoch > config['detach_epoch']
          order = torch.from_numpy(
              epoch_order(seed, cycle, epoch, len(labeled), config['batch_size']))
          for idx in order.reshape(-1, config['batch_size']):
            lib.train_step(target, loss_module, ranker, opts, x_lab[idx], y_lab[idx], loss_kind,
                           detach=detach)
        results[(strategy, seed, cycle)] = accuracy(target)
  total = time.perf_counter() - t0
  last = cycles - 1
  final = {st: float(np.mean([results[(st, seed, last)] for seed in range(s['seeds'])]))
           for st in STRATEGIES}
  return {'median_s': total, 'times_s': [total], 'final_accuracy': final}


def _mnist1d_protocol(s: Dict[str, Any]) -> Dict[str, Any]:
  """The numbers of :func:`mnist1d_config` (read without importing JAX)."""
  c = mnist1d_config(s)
  return {'initial': c.al.initial, 'budget': c.al.budget, 'cycles': c.al.cycles,
          'subset': c.al.subset, 'epochs': c.train.epochs, 'batch_size': c.train.batch_size,
          'lr': c.train.lr, 'lr_boundaries': tuple(c.train.lr_boundaries),
          'detach_epoch': c.ll4al.detach_epoch}


# ------------------------------------------------------------------------------------------------
# The parent: one subprocess per (case, framework), the table.

RUNNERS = {
    ('a', 'jax'): jax_train_step, ('b', 'jax'): jax_epoch, ('c', 'jax'): jax_score,
    ('d', 'jax'): jax_kcenter, ('e', 'jax'): jax_experiment, ('d', 'numpy'): numpy_kcenter,
    ('e', 'jax_vmap'): functools.partial(jax_experiment, vmap_seeds=True),
    ('e', 'jax_host'): functools.partial(jax_experiment, feed='host'),
    ('b', 'jax_scan'): functools.partial(jax_epoch, loop='scan'),
    ('b', 'jax_host'): functools.partial(jax_epoch, feed='host'),
    ('f', 'jax'): jax_bald, ('f', 'jax_bald'): functools.partial(jax_bald, bald=True),
    ('a', 'torch'): torch_train_step, ('b', 'torch'): torch_epoch, ('c', 'torch'): torch_score,
    ('d', 'torch'): torch_kcenter, ('e', 'torch'): torch_experiment,
}


def run_child(case: str, framework: str, s: Dict[str, Any], inputs: str) -> Dict[str, Any]:
  """One (case, framework) in this process; its result and this process's peak memory."""
  runner = RUNNERS[(case, 'torch' if framework in TORCH_FRAMEWORKS else framework)]
  if framework in TORCH_FRAMEWORKS:
    result = runner(s, framework, inputs)
  else:
    result = runner(s)
  result['peak_mib'] = peak_rss_mib()
  return result


def peak_rss_mib() -> float:
  """This process's peak resident set size, MiB.

  Linux's ``ru_maxrss`` survives ``exec``: a child started from a large parent would report the
  parent's size. ``VmHWM`` (/proc/self/status) is the high-water mark of this program's own
  memory, so it is read where it exists, ``ru_maxrss`` elsewhere.
  """
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024.0  # kB
  except OSError:
    pass
  # ru_maxrss is in KiB on Linux, in bytes on macOS.
  scale = 1.0 if sys.platform == 'darwin' else 1024.0
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def spawn(case: str, framework: str, args: argparse.Namespace, inputs: str) -> Dict[str, Any]:
  """Runs one (case, framework) in a fresh Python process."""
  cmd = [sys.executable, os.path.abspath(__file__), '--_child', case, framework,
         '--_inputs', inputs, '--seeds', str(args.seeds)]
  if args.quick:
    cmd.append('--quick')
  return run_in_process(cmd)


def run_in_process(cmd: List[str], env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
  """Runs ``cmd + ['--_result', PATH]``, a child that writes its result as JSON to PATH: that
  result with ``process_wall_s``, or ``error`` and the tail of what the child printed."""
  with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as f:
    path = f.name
  t0 = time.perf_counter()
  proc = subprocess.run([*cmd, '--_result', path], capture_output=True, text=True, cwd=ROOT,
                        env=env, check=False)
  wall = time.perf_counter() - t0
  try:
    if proc.returncode:
      tail = (proc.stderr or proc.stdout).strip().splitlines()
      return {'error': f'exit {proc.returncode}: {tail[-1] if tail else ""}',
              'stderr_tail': tail[-30:]}
    with open(path) as f:
      result = json.load(f)
  finally:
    os.unlink(path)
  result['process_wall_s'] = wall
  return result


def fmt_time(seconds: Optional[float]) -> str:
  if seconds is None:
    return '—'
  if seconds < 1:
    return f'{seconds * 1e3:.1f} ms'
  if seconds < 120:
    return f'{seconds:.2f} s'
  return f'{seconds / 60:.1f} min'


def _cell(run: Optional[Dict[str, Any]]) -> str:
  if not run:
    return ''
  if 'skipped' in run:
    return 'skipped'
  if 'error' in run:
    return 'failed'
  return fmt_time(run['median_s'])


def ratio(run: Optional[Dict[str, Any]], base: Optional[Dict[str, Any]]) -> Optional[float]:
  """``run``'s median time over ``base``'s (above 1: ``base`` is faster); None when either lacks
  one."""
  if not run or not base or 'median_s' not in run or 'median_s' not in base:
    return None
  return run['median_s'] / base['median_s']


def _notes(case: str, runs: Dict[str, Dict[str, Any]]) -> str:
  notes = []
  if case == 'd':
    picks = {k: r['picks'] for k, r in runs.items() if 'picks' in r}
    if len(picks) > 1:
      ref_name, ref = next(iter(picks.items()))
      same = all(p == ref for p in picks.values())
      if same:
        notes.append(f'same {len(ref)} picks: {", ".join(picks)}')
      else:
        for name, p in picks.items():
          if p != ref:
            first = next((i for i, (u, v) in enumerate(zip(ref, p)) if u != v), len(ref))
            notes.append(f'{name} differs from {ref_name} from pick {first}')
  if case == 'b' and 'median_s' in runs.get('jax_scan', {}):
    scan = runs['jax_scan']
    notes.append(f'jax epoch as one lax.scan {fmt_time(scan["median_s"])} '
                 f'({ratio(scan, runs.get("jax")):.2f}× the step-by-step time), compile '
                 f'{fmt_time(scan["compile_s"])}')
  if case == 'f' and 'median_s' in runs.get('jax_bald', {}):
    bald = runs['jax_bald']
    notes.append(f'BALD, {bald["passes"]} dropout passes and their mutual information '
                 f'{fmt_time(bald["median_s"])} ({ratio(bald, runs.get("jax")):.2f}× the plain '
                 f'forward), compile {fmt_time(bald["compile_s"])}, peak {bald["peak_mib"]:.0f} '
                 f'MiB')
  if case in ('b', 'e') and 'median_s' in runs.get('jax_host', {}):
    notes.append(f'jax fed from the host {fmt_time(runs["jax_host"]["median_s"])} '
                 f'({ratio(runs["jax_host"], runs.get("jax")):.2f}× the time of the device feed)')
  if case == 'e':
    if 'cycles_s' in runs.get('jax', {}):
      notes.append(f'jax cycles alone {fmt_time(runs["jax"]["cycles_s"])}')
    vmapped = runs.get('jax_vmap', {})
    if 'median_s' in vmapped:
      speedup = ratio(runs.get('torch'), vmapped)
      notes.append(f'jax with vmap_seeds {fmt_time(vmapped["median_s"])}, peak '
                   f'{vmapped["peak_mib"]:.0f} MiB'
                   + (f', torch / it {speedup:.2f}×' if speedup is not None else ''))
    for name, r in runs.items():
      if 'final_accuracy' in r:
        accs = r['final_accuracy']
        notes.append(f'{name} final acc {np.mean(list(accs.values())):.3f}')
  for name, r in runs.items():
    if 'error' in r:
      notes.append(f'{name}: {r["error"][:200]}')
  return '; '.join(notes).replace('|', '\\|')


def render_table(results: Dict[str, Any]) -> str:
  """The markdown table of ``results`` (``speed.json``'s layout): one row per case."""
  lines = ['| case | what is timed | JAX | torch NCHW | torch channels_last | numpy | '
           'torch / JAX | numpy / JAX | JAX compile | peak MiB (JAX / torch / torch CL / numpy) | '
           'notes |', '|---|---|---|---|---|---|---|---|---|---|---|']
  for case, entry in results['cases'].items():
    runs = entry['runs']
    jax_run = runs.get('jax')
    ratios = [f'{r:.2f}×' for r in (ratio(runs.get(k), jax_run) for k in TORCH_FRAMEWORKS)
              if r is not None]
    np_ratio = ratio(runs.get('numpy'), jax_run)
    compile_s = (jax_run or {}).get('compile_s')
    mem = ' / '.join(f'{runs[k]["peak_mib"]:.0f}' if 'peak_mib' in runs.get(k, {}) else '—'
                     for k in ('jax', 'torch', 'torch_cl', 'numpy'))
    lines.append(' | '.join([
        f'| ({case})', entry['what'], _cell(jax_run), _cell(runs.get('torch')),
        _cell(runs.get('torch_cl')), _cell(runs.get('numpy')), ' / '.join(ratios) or '—',
        f'{np_ratio:.2f}×' if np_ratio is not None else '—',
        fmt_time(compile_s) if compile_s is not None else '—', mem,
        _notes(case, runs)]) + ' |')
  return '\n'.join(lines)


def accuracy_table(results: Dict[str, Any]) -> str:
  """(e)'s last-cycle test accuracy per strategy, mean over seeds, per framework."""
  runs = results['cases'].get('e', {}).get('runs', {})
  accs = {k: r['final_accuracy'] for k, r in runs.items() if 'final_accuracy' in r}
  if not accs:
    return ''
  lines = ['| strategy | ' + ' | '.join(accs) + ' |', '|---' * (len(accs) + 1) + '|']
  for strategy in STRATEGIES:
    lines.append(f'| {strategy} | ' + ' | '.join(
        f'{a[strategy]:.4f}' if strategy in a else '—' for a in accs.values()) + ' |')
  return '\n'.join(lines)


def machine() -> Dict[str, Any]:
  def version(name):
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      return None

  return {'processor': machine_info.cpu_model(), 'cpus': os.cpu_count(),
          'python': platform.python_version(), 'jax': version('jax'),
          'jaxlib': version('jaxlib'), 'torch': version('torch'), 'numpy': np.__version__}


def markdown(results: Dict[str, Any]) -> str:
  m = results['machine']
  lines = ['# Speed: l2r-jax against eager PyTorch', '',
           f'`{results["command"]}`; {m["processor"]}, {m["cpus"]} CPU cores, python '
           f'{m["python"]}, jax {m["jax"]}, torch {m["torch"] or "not installed"}, numpy '
           f'{m["numpy"]}.', '',
           'Times are medians of the timed repeats after warm-up; "torch / JAX" above 1 means '
           'JAX is faster (one ratio per PyTorch memory format). "JAX compile" is the first '
           "call's time beyond a steady-state call. Peak MiB is each run's own subprocess's "
           'maximum resident set size. In (c) JAX pads the last chunk to 512 (one compiled '
           'shape). In (e) "jax cycles alone" sums the driver\'s per-cycle wall times (query, '
           'training, evaluation), without data generation, checkpoints and the report.', '',
           render_table(results), '']
  kept = [f'({c}): `{e["command"]}`' for c, e in results['cases'].items() if e.get('command')]
  if kept:
    lines += ['Rows kept from earlier runs (`--update`), each from its own command: '
              + '; '.join(kept) + '.', '']
  acc = accuracy_table(results)
  if acc:
    lines += ['Case (e), last-cycle test accuracy (mean over seeds), a sanity check of the '
              'PyTorch re-implementation:', '', acc, '']
  return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--cases', default=','.join(CASES), help='comma list of a,b,c,d,e,f')
  parser.add_argument('--seeds', type=int, default=5, help='seeds of case (e)')
  parser.add_argument('--quick', action='store_true', help='smaller sizes, fewer repeats')
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results'))
  parser.add_argument('--update', action='store_true',
                      help="keep the other cases of OUT/speed.json (with their own 'command')")
  parser.add_argument('--_child', nargs=2, metavar=('CASE', 'FRAMEWORK'), help=argparse.SUPPRESS)
  parser.add_argument('--_result', help=argparse.SUPPRESS)
  parser.add_argument('--_inputs', help=argparse.SUPPRESS)
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parser.parse_args(argv)
  if args.seeds < 1:
    raise SystemExit('--seeds must be at least 1.')
  s = sizes(args.quick, args.seeds)
  if args._child:  # pylint: disable=protected-access
    result = run_child(*args._child, s, args._inputs)  # pylint: disable=protected-access
    with open(args._result, 'w') as f:  # pylint: disable=protected-access
      json.dump(result, f)
    return result

  cases = [c for c in args.cases.split(',') if c]
  unknown = sorted(set(cases) - set(CASES))
  if unknown:
    raise SystemExit(f'--cases: unknown {unknown}; choose from {",".join(CASES)}.')
  have_torch = importlib.util.find_spec('torch') is not None
  if not have_torch:
    print(TORCH_HINT, flush=True)
  results = {'machine': machine(), 'command': 'python benchmarks/speed.py ' + ' '.join(argv),
             'quick': args.quick, 'sizes': s, 'cases': {}}
  os.makedirs(args.out, exist_ok=True)
  with tempfile.TemporaryDirectory() as inputs:
    if have_torch:
      export_inputs(inputs, cases)
    for case in cases:
      entry = results['cases'][case] = {'what': what(case, s), 'runs': {}}
      for framework in FRAMEWORKS[case]:
        if framework in TORCH_FRAMEWORKS and not have_torch:
          entry['runs'][framework] = {'skipped': 'torch not installed'}
          continue
        run = spawn(case, framework, args, inputs)
        entry['runs'][framework] = run
        status = (f'failed: {run["error"]}' if 'error' in run
                  else f'{fmt_time(run["median_s"])}, peak {run["peak_mib"]:.0f} MiB')
        print(f'({case}) {framework}: {status}', flush=True)
        if 'stderr_tail' in run:
          print('\n'.join(run['stderr_tail']), flush=True)
  json_path = os.path.join(args.out, 'speed.json')
  if args.update and os.path.exists(json_path):
    with open(json_path) as f:
      previous = json.load(f)
    for case, entry in previous['cases'].items():
      if case not in results['cases']:
        entry.setdefault('command', previous.get('command'))
        results['cases'][case] = entry
    results['cases'] = {c: results['cases'][c] for c in CASES if c in results['cases']}
  text = markdown(results)
  with open(os.path.join(args.out, 'speed.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(args.out, 'speed.json'), 'w') as f:
    json.dump(results, f, indent=1)
  print(text)
  return results


if __name__ == '__main__':
  main()
