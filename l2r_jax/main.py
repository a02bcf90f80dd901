r"""Runs an active-learning experiment.

    python -m l2r_jax.main --config=configs/mnist1d.py --workdir=runs/mnist1d

Any config field can be overridden, e.g. ``--config.seeds='(0,1,2)' --config.al.cycles=5``.
Running again with the same workdir resumes where the last run stopped.
"""
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from l2r_jax import cli
from l2r_jax.cli import parse_flags
from l2r_jax import experiment

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Folder for checkpoints, results.jsonl, curves and summary.')
flags.DEFINE_bool('distributed', False, 'Join a multi-process run (jax.distributed.initialize): '
                  'on GPU/TPU clusters the rest is detected; elsewhere give the three flags below.')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'Number of processes.')
flags.DEFINE_integer('process_id', None, 'This process, 0 .. num_processes - 1.')
flags.mark_flags_as_required(['config', 'workdir'])


def initialize_distributed() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  # Cross-process collectives on CPU go over gloo; GPUs and TPUs use their own.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  if FLAGS.distributed:
    initialize_distributed()
  with cli.one_line_refusals('l2r_jax'):
    experiment.run(FLAGS.config, FLAGS.workdir)
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:   # the one process that writes the report
    with open(os.path.join(FLAGS.workdir, 'summary.md'), encoding='utf-8') as f:
      print(f.read())


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
