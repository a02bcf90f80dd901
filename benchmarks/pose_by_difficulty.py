r"""PCKh of a trained pose stand-in model by the renderer's latent difficulty of each test pose.

    python benchmarks/pose_by_difficulty.py --config=configs/synthetic_pose.py:paper_regime \
        --workdir=runs/calib/pose-ceiling-5000 [--strategy=random --seed=0] [overrides]

Reads the latest checkpoint of ``<strategy>-seed<seed>`` in ``--workdir`` (made with the same
config and overrides: the workdir's identity is checked), scores the test set and writes one table
row per quintile of the test poses' ``difficulty`` knob (PCKh at 0.5 head sizes, the metric, and
at 1.0) (``l2r_jax/data/synthetic_pose.py``: it
raises clutter, occluders, noise, camouflage and background contrast together), and the mean
clutter and occluder counts of each, to ``benchmarks/results/pose_by_difficulty.md``. Shows where
a model's errors are: in the hard tail or everywhere.
"""
import os
import sys

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import inference
from l2r_jax import metrics
from l2r_jax import runs
from l2r_jax import tasks
from l2r_jax import workdir as workdir_lib
from l2r_jax.data import synthetic_pose

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position

config_flags.DEFINE_config_file('config', None, 'The pose stand-in config the workdir was run with.')
flags.DEFINE_string('workdir', None, 'The workdir holding the run.')
flags.DEFINE_string('strategy', 'random', 'The run to read: its strategy ...')
flags.DEFINE_integer('seed', 0, '... and its seed.')
flags.DEFINE_string('out', os.path.join(ROOT, 'benchmarks', 'results'), 'Report folder.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  try:
    report(FLAGS.config, FLAGS.workdir, FLAGS.strategy, FLAGS.seed, FLAGS.out)
  except errors.Refusal as e:
    print(f'pose_by_difficulty: {e}', file=sys.stderr)
    sys.exit(2)


def report(config, workdir: str, strategy: str, seed: int, out: str) -> str:
  """The table (also written to ``out/pose_by_difficulty.md``). The workdir is only read, under
  its lock, so a run still writing it is refused rather than read half-way."""
  if not os.path.isfile(os.path.join(workdir, workdir_lib.IDENTITY_FILE)):
    raise errors.WorkdirError(f'--workdir={workdir} holds no experiment (no '
                              f'{workdir_lib.IDENTITY_FILE}); give the workdir of a pose run.')
  with workdir_lib.lock(workdir):
    workdir_lib.check_identity(workdir, config)
    exp = experiment.make_experiment(config)
    run_state = runs.read_run(exp, workdir, strategy, seed)
  if run_state is None:
    raise errors.WorkdirError(f'{workdir}: no finished cycle of {strategy}-seed{seed}.')
  return _table(config, exp, run_state, workdir, out)


def _table(config, exp, run_state, workdir: str, out: str) -> str:
  ds, data = exp.dataset, config.data
  strategy, seed = run_state.strategy, run_state.seed
  rows = np.arange(len(ds.x_test))
  heatmaps = inference.infer(run_state.train_state, ds.x_test, rows, split='test').prediction
  pred = np.asarray(tasks.decode_heatmaps(np.asarray(heatmaps)))
  truth = np.asarray(ds.y_test)
  rendered = synthetic_pose.make_pose(len(rows), data.seed, 'test', data.image_size,
                                      data.heatmap_size)
  if not np.array_equal(rendered['joints'], truth):
    raise errors.ConfigError(f'config.data: the test poses rendered again from seed {data.seed} '
                             'are not the test set the run read; give the config it ran with.')
  knobs = rendered['knobs']
  head_boxes = ds.test_meta['head_boxes']
  edges = np.quantile(knobs['difficulty'], np.linspace(0, 1, 6))
  lines = [f'# PCKh@0.5 by difficulty: `{workdir}` ({strategy}, seed {seed}, '
           f'after cycle {run_state.cycle}, {len(run_state.labeled)} labels)', '',
           f'Machine: {machine.describe()}.', '',
           '| difficulty | poses | clutter (mean) | occluders (mean) | PCKh@0.5 | PCKh@1.0 |',
           '|---|---|---|---|---|---|']

  def scores(rows_in):
    return tuple(metrics.pckh(pred[rows_in], truth[rows_in, :, :2], truth[rows_in, :, 2] > 0,
                              head_boxes[rows_in], threshold=t)[1] for t in (0.5, 1.0))

  # Each pose in one quintile: [lo, hi), the last one closed.
  quintile = np.clip(np.searchsorted(edges, knobs['difficulty'], side='right') - 1, 0, 4)
  quintiles = [quintile == k for k in range(5)]
  names = [f'{lo:.2f}-{hi:.2f}' for lo, hi in zip(edges[:-1], edges[1:])] + ['all']
  for name, rows_in in zip(names, quintiles + [np.ones(len(rows), bool)]):
    half, whole = scores(rows_in)
    lines.append(f'| {name} | {rows_in.sum()} | {knobs["clutter"][rows_in].mean():.1f} | '
                 f'{knobs["occluders"][rows_in].mean():.2f} | {half:.2f} % | {whole:.2f} % |')
  table = '\n'.join(lines) + '\n'
  print(table)
  os.makedirs(out, exist_ok=True)
  workdir_lib.write_atomic(os.path.join(out, 'pose_by_difficulty.md'), table)
  return table


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
