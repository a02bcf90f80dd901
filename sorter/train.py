r"""Pretrains the GRU sorter on synthetic lists and exports it in the shipped format.

    python -m sorter.train --config=configs/sorter.py --config.seq_len=64 --workdir=/tmp/sorter64

The run resumes from ``WORKDIR/checkpoints`` if it was interrupted. When it ends, the best
parameters by validation L1 are exported to ``WORKDIR/export`` (``params/`` and
``training.json``), loadable with ``sorter.load_pretrained(path=WORKDIR + '/export')``; copying
that folder to ``sorter/pretrained/L<seq_len>`` ships it with the package.
"""
import json
import os
import sys
import time
from typing import Any, Dict, Tuple

from absl import app
from absl import flags
from absl import logging
import chex
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from sorter import data
from sorter import model as model_lib
from sorter import ranking

EXPORT_FORMAT = 1
CONFIG_FILE = 'config.json'    # the config a workdir's run was trained with
# Fields a run may change when it resumes: how long it trains, how often it reports.
RESUMABLE = ('num_steps', 'eval_every_steps', 'log_every_steps')


class SorterConfigError(ValueError):
  """A config or workdir the training refuses, before it trains; the message says what to change."""


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises :class:`SorterConfigError` naming the first bad field, before anything is trained."""
  positive_ints = ['seq_len', 'batch_size', 'num_steps', 'decay_every_steps', 'num_val_lists',
                   'eval_every_steps', 'log_every_steps', 'model.hidden', 'model.num_layers']
  for name in positive_ints:
    value = config
    for part in name.split('.'):
      value = value[part]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise SorterConfigError(f'config.{name} must be a positive integer, got {value!r}.')
  if config.seq_len < 2:
    raise SorterConfigError(f'config.seq_len must be at least 2 (a list to rank), got '
                            f'{config.seq_len}.')
  if not 0 < config.decay_rate <= 1:
    raise SorterConfigError(f'config.decay_rate must be in (0, 1], got {config.decay_rate}.')
  if not config.learning_rate > 0:
    raise SorterConfigError(f'config.learning_rate must be positive, got {config.learning_rate}.')
  smoothing = config.get('target_smoothing', 0.0)
  if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < float('inf')):
    raise SorterConfigError(
        f'config.target_smoothing must be a finite number >= 0 (the noise, in standardised score '
        f'units, whose expected ranks are the targets; 0 for exact ranks), got {smoothing!r}.')


def make_model(config: ml_collections.ConfigDict) -> model_lib.GRUSorter:
  return model_lib.GRUSorter(**config.model)


def create_train_state(config, rng: chex.PRNGKey) -> train_state.TrainState:
  model = make_model(config)
  params = model.init(rng, jnp.zeros((1, config.seq_len), jnp.float32))['params']
  schedule = optax.exponential_decay(
      config.learning_rate, transition_steps=config.decay_every_steps,
      decay_rate=config.decay_rate, staircase=True)
  return train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=optax.adam(schedule))


def train_step(state: train_state.TrainState,
               batch: Tuple[chex.Array, chex.Array]) -> Tuple[train_state.TrainState, Dict]:
  """One Adam step on the L1 distance between predicted and exact ranks (SoDeep's loss)."""
  scores, ranks = batch

  def loss_fn(params):
    return jnp.mean(jnp.abs(state.apply_fn({'params': params}, scores) - ranks))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {'train_l1': loss}


def evaluate(apply_fn, params, scores: chex.Array, ranks: chex.Array,
             chunk: int = 2048) -> Dict[str, float]:
  """Validation L1 between the sorter's output and its training targets ``ranks`` (exact or
  smoothed), and the mean Spearman rho between its output and the exact ranks."""
  l1, rho = [], []
  for i in range(0, scores.shape[0], chunk):
    pred = apply_fn({'params': params}, scores[i:i + chunk])
    l1.append(jnp.abs(pred - ranks[i:i + chunk]).mean(-1))
    rho.append(ranking.spearman(pred, -scores[i:i + chunk]))
  return {'val_l1': float(jnp.concatenate(l1).mean()),
          'val_spearman': float(jnp.concatenate(rho).mean())}


def export(directory: str, params: Any, config: ml_collections.ConfigDict,
           info: Dict[str, Any]) -> None:
  """Writes ``params/`` (orbax) and ``training.json`` (how it was trained) to ``directory``."""
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.join(directory, 'params'), params, force=True)
  ckptr.wait_until_finished()
  record = {'format': EXPORT_FORMAT, 'seq_len': config.seq_len, 'model': dict(config.model),
            'config': config.to_dict(), **info}
  # Written last, whole or not at all: a folder without it is an export that did not finish.
  _write_atomic(os.path.join(directory, 'training.json'),
                json.dumps(record, indent=2, sort_keys=True))


def train_and_export(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, Any]:
  """Trains (resuming from ``workdir`` when possible), exports the best parameters, returns its
  ``training.json`` record."""
  validate_config(config)
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise SorterConfigError(f'--workdir={workdir} is a file: give a folder.')
  _check_same_config(config, workdir)
  os.makedirs(workdir, exist_ok=True)
  _write_atomic(os.path.join(workdir, CONFIG_FILE),
                config.to_json_best_effort(indent=1, sort_keys=True))
  rng_init, rng_data, rng_val = jax.random.split(jax.random.PRNGKey(config.seed), 3)

  state = create_train_state(config, rng_init)
  # Scalars as 0-d arrays: orbax restores arrays, not numpy scalar types.
  ckpt = {'state': state, 'best_params': state.params, 'best_val_l1': np.array(np.inf),
          'best_step': np.array(0), 'wall_s': np.array(0.0)}
  manager = ocp.CheckpointManager(
      os.path.join(workdir, 'checkpoints'), options=ocp.CheckpointManagerOptions(max_to_keep=1))
  if manager.latest_step() is not None:
    ckpt = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(ckpt))
    logging.info('Resumed from step %d.', manager.latest_step())
  state = ckpt['state']

  sample = jax.jit(data.sample_batch, static_argnums=(1, 2, 3))
  smoothing = float(config.get('target_smoothing', 0.0))
  val_scores, val_ranks = sample(rng_val, config.num_val_lists, config.seq_len,
                                smoothing)
  p_train_step = jax.jit(train_step, donate_argnums=0)

  start_step = int(state.step)
  wall_offset, t0 = float(ckpt['wall_s']), time.time()
  running, last_eval = None, {}
  bar = tqdm.tqdm(total=config.num_steps, initial=start_step, desc=f'sorter L={config.seq_len}',
                  dynamic_ncols=True, mininterval=1.0)
  for step in range(start_step + 1, config.num_steps + 1):
    batch = sample(jax.random.fold_in(rng_data, step), config.batch_size, config.seq_len,
                   smoothing)
    state, metrics = p_train_step(state, batch)
    if step % config.log_every_steps == 0 or step == config.num_steps:
      loss = float(metrics['train_l1'])
      if not np.isfinite(loss):
        raise FloatingPointError(f'Sorter training loss became {loss} at step {step}; the last '
                                 f'good checkpoint in {workdir}/checkpoints is kept.')
      running = loss if running is None else 0.9 * running + 0.1 * loss
      bar.set_postfix(l1=f'{running:.4f}', **{k: f'{v:.4f}' for k, v in last_eval.items()})
    bar.update(1)
    if step % config.eval_every_steps == 0 or step == config.num_steps:
      last_eval = evaluate(state.apply_fn, state.params, val_scores, val_ranks)
      bar.write(f'step {step}: ' + ', '.join(f'{k}={v:.5f}' for k, v in last_eval.items()))
      if last_eval['val_l1'] < ckpt['best_val_l1']:
        ckpt.update(best_params=state.params, best_val_l1=np.array(last_eval['val_l1']),
                    best_step=np.array(step))
      ckpt.update(state=state, wall_s=np.array(wall_offset + time.time() - t0))
      manager.save(step, args=ocp.args.StandardSave(ckpt))
  bar.close()
  manager.wait_until_finished()

  best = evaluate(state.apply_fn, ckpt['best_params'], val_scores, val_ranks)
  info = {'seed': config.seed, 'steps': config.num_steps, 'best_step': int(ckpt['best_step']),
          'lists_seen': config.num_steps * config.batch_size,
          'wall_s': round(wall_offset + time.time() - t0, 1), **best,
          'jax_version': jax.__version__, 'flax_version': flax.__version__,
          'device': jax.devices()[0].device_kind}
  export(os.path.join(workdir, 'export'), ckpt['best_params'], config, info)
  logging.info('Exported to %s: %s', os.path.join(workdir, 'export'), info)
  return info


def _flat(tree: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
  out = {}
  for key, value in tree.items():
    out.update(_flat(value, f'{prefix}{key}.') if isinstance(value, dict)
               else {f'{prefix}{key}': value})
  return out


def _check_same_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses to resume ``workdir``'s run with a config that differs from the one it was trained
  with but in :data:`RESUMABLE` (the weights or the export would not be what the config says)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    return
  try:
    with open(path, encoding='utf-8') as f:
      old = _flat(json.load(f))
  except (OSError, ValueError, AttributeError) as e:
    raise SorterConfigError(f'{path} cannot be read ({e}): it records the config this workdir '
                            'was trained with. Restore it, or give a new --workdir.') from None
  new = _flat(json.loads(config.to_json_best_effort(sort_keys=True)))
  changed = [f'{k}: {old.get(k, "(absent)")} -> {new.get(k, "(absent)")}'
             for k in sorted(set(old) | set(new)) if k not in RESUMABLE and old.get(k) != new.get(k)]
  if changed:
    raise SorterConfigError(f'--workdir={workdir} holds a sorter trained with another config '
                            f'({"; ".join(changed)}): run with the config it was made with (only '
                            f'{", ".join(RESUMABLE)} may change), or give a new --workdir.')


def _write_atomic(path: str, text: str) -> None:
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Sorter config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Folder for checkpoints and the exported sorter.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  try:
    info = train_and_export(FLAGS.config, FLAGS.workdir)
  except SorterConfigError as e:    # its message names what to change; a traceback is for bugs
    print(f'sorter.train: {e}', file=sys.stderr)
    sys.exit(2)
  print(json.dumps(info, indent=2))


if __name__ == '__main__':
  app.run(main)
