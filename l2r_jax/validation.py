"""Checks of an experiment's config and workdir, run before anything is trained.

Each failure raises :class:`~l2r_jax.errors.ConfigError` (a ``ValueError``; a
:class:`~l2r_jax.workdir.WorkdirError` for the workdir) with one message that names the config
field and says how to fix it.
"""
import difflib
import json
import os
import sysconfig
import tempfile
import traceback

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from l2r_jax import augment as augment_lib
from l2r_jax import data as data_lib
from l2r_jax import defaults
from l2r_jax import fields
from l2r_jax import models as models_lib
from l2r_jax import optim
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import ConfigError
from l2r_jax import strategies as strategies_lib
from l2r_jax.data import pipeline
import sorter


LOOPS = ('auto', 'step', 'scan')
MAX_SEED = 2**31 - 1   # what every random generator the project seeds takes


def _unique(config, name):
  values = list(fields.get(config, name))
  repeated = sorted({v for v in values if values.count(v) > 1}, key=values.index)
  if repeated:
    raise ConfigError(f'config.{name} names {", ".join(map(repr, repeated))} more than once: each '
                      'run would train twice into one checkpoint; list each once.')




def check_config(config: ml_collections.ConfigDict) -> None:
  for old in defaults.RENAMED:
    if old in config:  # a config file that sets the section under its old name
      raise ConfigError(defaults.renamed_section(f'config.{old}', old))
  _check_known_fields(config)
  for name in ('al.initial', 'al.budget', 'al.cycles', 'train.batch_size', 'train.epochs',
               'loss_module.hidden', 'eval_batch_size'):
    fields.positive_int(config, name)
  if 'updates_per_step' in config.loss_module:
    fields.positive_int(config, 'loss_module.updates_per_step')
  fields.positive_int(config, 'al.subset', allow_none=True)
  for name in ('train.lr', 'train.lr_decay', 'train.weight_decay', 'train.momentum',
               'loss_module.lr', 'loss_module.lr_decay', 'loss_module.weight_decay',
               'loss_module.momentum'):
    fields.number(config, name)
  for section in ('train', 'loss_module'):
    fields.one_of(config, f'{section}.optimizer', optim.OPTIMIZERS)
    fields.epochs_within(config, f'{section}.lr_boundaries', config.train.epochs,
                         'the learning-rate steps')
  for name, example in (('strategies', '\'("random","l2r")\''), ('seeds', "'(0,1,2)'")):
    if not isinstance(config[name], (tuple, list)):
      raise ConfigError(f'config.{name} must be a list, got {config[name]!r}: e.g. '
                        f'--config.{name}={example}.')
  _unique(config, 'strategies')
  _unique(config, 'seeds')
  _check_augment(config)
  if not config.strategies:
    raise ConfigError('config.strategies is empty: name at least one of '
                     f'{sorted(strategies_lib.REGISTRY)}.')
  for s in config.strategies:
    if s not in strategies_lib.REGISTRY:
      raise ConfigError(f'config.strategies: unknown strategy {s!r}; choose from '
                       f'{sorted(strategies_lib.REGISTRY)}.')
  _check_strategies(config)
  if not config.seeds or not all(fields.is_whole(s) and 0 <= s <= MAX_SEED
                                 for s in config.seeds):
    raise ConfigError(f'config.seeds must be whole numbers 0 .. {MAX_SEED}, got '
                      f'{config.seeds!r}.')
  if config.train.get('loop', 'step') not in LOOPS:
    raise ConfigError(f'config.train.loop={config.train.loop!r}: choose one of {LOOPS}.')
  if config.train.get('feed', 'auto') not in pipeline.FEEDS:
    raise ConfigError(f'config.train.feed={config.train.feed!r}: choose one of {pipeline.FEEDS}.')
  if not isinstance(config.get('vmap_seeds', False), bool):
    raise ConfigError(f'config.vmap_seeds must be True or False, got {config.vmap_seeds!r}.')
  if config.model.name not in models_lib.TARGETS:
    raise ConfigError(f'config.model.name={config.model.name!r} is not a model; choose from '
                     f'{sorted(models_lib.TARGETS)}.')
  batch = config.train.batch_size
  n_dev = jax.device_count()
  if batch % n_dev:
    raise ConfigError(f'config.train.batch_size={batch} must be a multiple of the {n_dev} '
                     'devices it is split over.')
  ranking_losses = [(s, strategies_lib.get(s).loss_module.ranking_loss) for s in config.strategies
                    if strategies_lib.get(s).loss_module is not None]
  for s, ranking_loss in ranking_losses:
    if ranking_loss.pairs_the_batch and batch % 2:
      raise ConfigError(f'config.train.batch_size={batch} must be even for {s}, whose '
                       f'{ranking_loss.name} loss pairs the batch with its reverse.')
  if any(ranking_loss.needs_ranker for _, ranking_loss in ranking_losses):
    _check_sorter(config)


def _check_known_fields(config: ml_collections.ConfigDict) -> None:
  """Refuses a field the config's sections do not have (a config file's misspelt
  ``c.al.budjet = 5`` would otherwise make a new field that nothing reads), naming the nearest
  field; :data:`l2r_jax.defaults.OPEN_SECTIONS` take any, and so do a registered strategy's own
  options."""
  known = defaults.get_config()
  known.augment = {name: None for name in augment_lib.FIELDS}
  unknown = []

  def walk(section, reference, prefix):
    for key in section.keys():
      path = f'{prefix}{key}'
      if path in defaults.OPEN_SECTIONS:
        continue
      if key not in reference:
        unknown.append((path, list(reference.keys())))
      elif isinstance(section[key], ml_collections.ConfigDict) and isinstance(
          reference[key], ml_collections.ConfigDict):
        walk(section[key], reference[key], f'{path}.')

  # A strategy registered outside l2r_jax/defaults.py has its own options, config.<name>; a
  # loss module that trains the target, config.<options>.
  for name, strategy in strategies_lib.REGISTRY.items():
    if name not in known:
      known[name] = None
    module = strategy.loss_module
    if module is not None and module.options not in known:
      known[module.options] = None
  walk(config, known, '')
  if unknown:
    path, siblings = unknown[0]
    parent = path.rpartition('.')[0]
    close = difflib.get_close_matches(path.rpartition('.')[2], siblings, n=1, cutoff=0.6)
    near = f'did you mean config.{parent + "." if parent else ""}{close[0]}? ' if close else ''
    more = f' ({len(unknown) - 1} more: {", ".join(p for p, _ in unknown[1:4])})' if len(
        unknown) > 1 else ''
    raise ConfigError(
        f'config.{path} is not a field of the config{more}; {near}Nothing reads a field the '
        'config does not define (l2r_jax/defaults.py lists them; config.data, '
        'config.model.kwargs, config.loss_module.sorter_kwargs and a registered strategy\'s own '
        'options, config.<strategy>, take any).')


def _check_strategies(config) -> None:
  """Each configured strategy's own checks, then its loss module's (which check the module's
  options and its ranking loss's); a refusal is prefixed with the strategy it came from."""
  for name in config.strategies:
    strategy = strategies_lib.get(name)
    module = strategy.loss_module
    for check in (strategy.check, None if module is None else module.check):
      if check is None:
        continue
      try:
        check(config)
      except ValueError as e:
        raise ConfigError(f'config.strategies includes {name!r}: {e}') from None


def _check_sorter(config):
  p = config.loss_module
  if p.sorter not in sorter.RANKERS:
    raise ConfigError(f'config.loss_module.sorter={p.sorter!r}: choose one of {sorter.RANKERS}.')
  fields.positive_int(config, 'loss_module.sorter_len')
  if p.sorter_len < 2:
    raise ConfigError(f'config.loss_module.sorter_len={p.sorter_len}: a list of one sample has no '
                      'order to learn (the listwise loss ranks each mini-batch in lists of this '
                      'length). Give 2 or more.')
  if config.train.batch_size % p.sorter_len:
    raise ConfigError(
        f'config.train.batch_size={config.train.batch_size} is not a multiple of '
        f'config.loss_module.sorter_len={p.sorter_len}: the listwise loss ranks each mini-batch in '
        f'lists of the sorter\'s length. Make the batch size a multiple of {p.sorter_len}.')
  given = dict(p.get('sorter_kwargs', {}))
  takes = SORTER_ARGUMENTS[p.sorter]
  unknown = sorted(k for k in given if k not in takes)
  if unknown:
    raise ConfigError(f'config.loss_module.sorter_kwargs: {", ".join(unknown)} is not an argument '
                      f'of the {p.sorter!r} sorter (it takes {", ".join(takes)}).')
  if p.sorter == 'soft_rank':
    strength = given.get('regularization_strength', sorter.DEFAULT_SOFT_RANK_STRENGTH)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength > 0:
      raise ConfigError(f'config.loss_module.sorter_kwargs.regularization_strength={strength!r}: '
                        'give a positive number (in rank positions; '
                        f'{sorter.DEFAULT_SOFT_RANK_STRENGTH} by default).')
    if p.sorter_len == 2 and strength <= 4:
      raise ConfigError(
          'config.loss_module.sorter_len=2 with the soft_rank sorter: two scores, standardised and '
          'scaled by the length, always lie 4 rank positions apart, where a soft rank of strength '
          f'{strength} (at most 4) is flat and passes no gradient. Give sorter_len 3 or more, or '
          'config.loss_module.sorter_kwargs.regularization_strength above 4.')
  if p.get('sorter_path') and p.sorter != 'gru':
    raise ConfigError(f'config.loss_module.sorter_path is a pretrained GRU sorter\'s; the '
                      f'{p.sorter!r} sorter has none. Remove it, or use sorter=\'gru\'.')
  path = sorter_arguments(p).get('path')
  if p.sorter == 'gru' and path is None and p.sorter_len not in sorter.shipped_lengths():
    raise ConfigError(
        f'config.loss_module.sorter_len={p.sorter_len}: no pretrained GRU sorter of that length '
        f'ships (shipped: {sorter.shipped_lengths()}). Pretrain one with `python -m sorter.train '
        f'--config=configs/sorter.py --config.seq_len={p.sorter_len} --workdir=DIR` and set '
        f'--config.loss_module.sorter_path=DIR/export, or use '
        f"--config.loss_module.sorter=soft_rank.")
  if p.sorter == 'gru' and path is not None:
    record = os.path.join(str(path), 'training.json')
    try:
      with open(record, encoding='utf-8') as f:
        length = json.load(f)['seq_len']
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise ConfigError(f'config.loss_module.sorter_path={path!r}: not a sorter\'s export '
                        f'({record}: {getattr(e, "strerror", None) or e}); give the export folder '
                        'of `python -m sorter.train` (WORKDIR/export).') from None
    if length != p.sorter_len:
      raise ConfigError(f'config.loss_module.sorter_path={path!r} ranks lists of {length}, and '
                        f'config.loss_module.sorter_len={p.sorter_len}: set sorter_len={length} '
                        'with a batch size a multiple of it, or pretrain a sorter of '
                        f'{p.sorter_len}.')


# What each sorter takes in config.loss_module.sorter_kwargs (path: sorter_path's older spelling).
SORTER_ARGUMENTS = {'gru': ('path',), 'soft_rank': ('regularization_strength',)}


def sorter_arguments(loss_module: ml_collections.ConfigDict) -> dict:
  """What ``sorter.get_ranker`` is given beside the sorter's name and length."""
  kwargs = dict(loss_module.get('sorter_kwargs', {}))
  if loss_module.get('sorter_path'):
    kwargs['path'] = str(loss_module.sorter_path)
  return kwargs


def check_against_data(config: ml_collections.ConfigDict, dataset, simulation: bool = True
                       ) -> None:
  """The strategies apply to the data's task; for a simulated experiment (``simulation``), every
  pool label is known, there is a test split, and the schedule fits in the pool."""
  for name in config.strategies:
    try:
      strategies_lib.check_task(name, dataset.task)
    except ValueError as e:
      raise ConfigError(f'config.strategies, config.data.name={config.data.name!r}: {e}') from None
  if not simulation:
    return
  unknown = data_lib.unknown_labels(dataset.task, dataset.y_train)
  if unknown.any():
    raise ConfigError(f'config.data.name={config.data.name!r} has {int(unknown.sum())} pool '
                      'samples without a label; a simulated experiment reveals the labels of the '
                      'samples it queries. Label them with l2r_jax.ActiveLearner or '
                      '`python -m l2r_jax.label` (docs/your_data.md).')
  if not len(dataset.x_test):
    raise ConfigError(f'config.data.name={config.data.name!r} has no test split; a simulated '
                      'experiment scores every cycle on it.')
  al, n = config.al, dataset.pool_size
  if al.initial > n:
    raise ConfigError(f'config.al.initial={al.initial} is more than the pool of {n} samples of '
                      f'config.data.name={config.data.name!r}: lower it.')
  final = al.initial + (al.cycles - 1) * al.budget
  if final > n:
    raise ConfigError(f'config.al: initial {al.initial} + {al.cycles - 1} cycles x budget '
                     f'{al.budget} = {final} labels, more than the pool of {n}. Lower '
                     'config.al.cycles or config.al.budget.')
  if al.subset is not None and al.budget > al.subset:
    raise ConfigError(f'config.al.budget={al.budget} is larger than config.al.subset='
                     f'{al.subset}, the random subset it is chosen from.')
  if dataset.task == 'classification':
    absent = sorted(set(np.unique(dataset.y_test).tolist()) - set(
        np.unique(dataset.y_train).tolist()))
    if absent:   # a ceiling on every strategy's accuracy, not an error: said, once
      logging.warning('config.data.name=%r: the test split has classes %s that no pool sample '
                      'has; no strategy can query them, so every accuracy stays below %.4f.',
                      config.data.name, absent, float(np.mean(~np.isin(dataset.y_test, absent))))


def _check_augment(config: ml_collections.ConfigDict) -> None:
  """``config.augment``'s fields (:func:`l2r_jax.augment.make`), those it has."""
  aug = config.get('augment')
  if not aug:
    return
  if 'flip' in aug and not isinstance(aug.flip, bool):
    raise ConfigError(f'config.augment.flip must be True or False, got {aug.flip!r}.')
  if 'rotation' in aug:
    fields.number(config, 'augment.rotation')
  if 'scale' in aug:
    fields.number(config, 'augment.scale')
    if aug.scale >= 1:
      raise ConfigError(f'config.augment.scale={aug.scale!r}: the zoom is drawn within 1 ± scale, '
                        'so it must be below 1 (SimpleBaseline: 0.25).')
  if 'pad' in aug:
    fields.non_negative_int(config, 'augment.pad')


def check_model(config: ml_collections.ConfigDict, dataset, task) -> None:
  """The target model's predictions have the shape the dataset's task (a ``tasks.Task``) needs
  (traced, not run), and ``config.augment.crop`` fits the task's images."""
  dropout = config.model.get('dropout', 0.0)
  if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
    raise ConfigError(f'config.model.dropout must be a rate in [0, 1), got {dropout!r}.')
  model = models_lib.make_target(config.model, dataset.num_outputs)
  prediction = check_model_contract(model, models_lib.TARGETS[config.model.name],
                                    f'config.model.name={config.model.name!r}',
                                    dataset.x_train.shape[1:],
                                    f'config.data.name={config.data.name!r}', bool(dropout))
  if dropout and set(config.strategies) & set(strategies_lib.bayesian.MONTE_CARLO):
    _check_mc_dropout(model, config, dataset.x_train.shape[1:])
  expected = (2, *task.prediction_shape)
  if tuple(prediction.shape) != expected:
    fix = ('its last layer must have num_outputs units (the number of classes it is given)'
           if dataset.task == 'classification' else 'set config.model.kwargs so that its output '
           'resolution matches the targets (heatmap_size, density_stride)')
    raise ConfigError(
        f'config.model.name={config.model.name!r} predicts shape {tuple(prediction.shape)} for '
        f'a batch of 2, but the {dataset.task} data of {config.data.name!r} needs '
        f'{expected}. Choose a model for this task, or {fix}.')
  aug = config.get('augment')
  problem = task.crop_problem(aug.get('crop') if aug else None, dataset.x_train.shape[1:])
  if problem:
    raise ConfigError(f'config.augment.crop={tuple(aug.crop)} {problem}.')


def check_loss_modules(config: ml_collections.ConfigDict, dataset) -> None:
  """Each configured strategy's loss module is built as the trainer builds it
  (``architecture(hidden=config.loss_module.hidden)``) and maps the target's features to one
  predicted loss per sample (traced, not run): a module of one's own that does not is refused
  here, naming what to change, not by a traceback in the first training step."""
  modules = {}
  for name in config.strategies:
    module = strategies_lib.get(name).loss_module
    if module is not None:
      modules.setdefault(module, name)
  if not modules:
    return
  model = models_lib.make_target(config.model, dataset.num_outputs)
  x = jax.ShapeDtypeStruct((2, *dataset.x_train.shape[1:]), jnp.float32)
  key = jax.random.PRNGKey(0)
  variables = jax.eval_shape(lambda x: model.init(key, x, train=False), x)
  _, features = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  data = f'config.data.name={config.data.name!r}'
  stage = 'predicting a loss from config.model\'s features'
  for module, name in modules.items():
    where = f'The loss module of {name!r} ({getattr(module.architecture, "__qualname__", name)})'
    try:
      built = module.architecture(hidden=config.loss_module.hidden)
      out = jax.eval_shape(lambda f: built.init_with_output(key, f)[0], features)  # pylint: disable=cell-var-from-loop
    except TypeError as e:
      if 'hidden' in str(e):
        raise ConfigError(f'{where} is built as architecture(hidden=config.loss_module.hidden) '
                          f'and cannot be ({e}): give it a field `hidden: int` (the width of '
                          'its hidden layer; it may leave it unused).') from None
      raise ConfigError(_failed(where, dataset.x_train.shape[1:], data, stage, e)) from None
    except Exception as e:  # pylint: disable=broad-except  (whatever the user's module raises)
      raise ConfigError(_failed(where, dataset.x_train.shape[1:], data, stage, e)) from None
    if not hasattr(out, 'shape') or tuple(out.shape) != (2,) or not jnp.issubdtype(
        out.dtype, jnp.floating):
      raise ConfigError(f'{where} must return one predicted loss per sample, floating point of '
                        f'shape [batch]; for a batch of 2 it returns {_describe(out)} (a Dense(1) '
                        'gives [batch, 1]: take [:, 0]).')


def check_model_contract(model, constructor, where: str, sample_shape, data: str,
                         dropout: bool = False):
  """Traces ``model`` (built by ``constructor``; not run) on a batch of 2 inputs of
  ``sample_shape``, in inference and as a training step calls it, and refuses, saying what to
  change, a model that breaks the contract of :mod:`l2r_jax.models` (``dropout``: it trains with
  dropout); returns the prediction's shape and dtype."""
  x = jax.ShapeDtypeStruct((2, *sample_shape), jnp.float32)
  key = jax.random.PRNGKey(0)
  stage = 'init'
  try:
    variables = jax.eval_shape(lambda x: model.init(key, x, train=False), x)
    stage = 'inference'
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    stage = 'training'
    trained = jax.eval_shape(lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats'],
                                                      rngs={'dropout': key}), variables, x)
  except TypeError as e:
    if 'train' in str(e) and 'keyword' in str(e):
      raise ConfigError(f"{where}: its __call__ must accept the keyword argument `train` (True in "
                        f'a training step, False in inference): {e}') from None
    raise ConfigError(_failed(where, sample_shape, data, stage, e)) from None
  except Exception as e:  # pylint: disable=broad-except  (whatever the user's module raises)
    raise ConfigError(_failed(where, sample_shape, data, stage, e)) from None
  returns = ('must return (prediction, l2r_jax.models.Features(last=..., stages=(...))) from '
             '__call__')
  for mode, value in (('inference', out), ('training', trained[0])):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
      raise ConfigError(f'{where} {returns}; in {mode} it returned {_describe(value)}.')
    prediction, features = value
    if not isinstance(features, models_lib.Features):
      raise ConfigError(f'{where} {returns}; its second output in {mode} is '
                        f'{_describe(features)}.')
    if not hasattr(prediction, 'shape') or prediction.shape[:1] != (2,):
      raise ConfigError(f'{where}: its prediction must be one array with the batch first; for a '
                        f'batch of 2 it is {_describe(prediction)}.')
    if not jnp.issubdtype(prediction.dtype, jnp.floating):
      raise ConfigError(f'{where}: its prediction must be floating point (logits, heatmaps or a '
                        f'density map); it is {prediction.dtype}: leave out the cast or the '
                        'arg-max that made it so.')
    if not isinstance(features.stages, (tuple, list)):
      raise ConfigError(f'{where}: features.stages must be a tuple of every block\'s output, the '
                        f'last block\'s last (one block: stages=(last,)); it is '
                        f'{_describe(features.stages)}.')
    maps = [('features.last', features.last)] + [
        (f'features.stages[{i}]', f) for i, f in enumerate(tuple(features.stages))]
    if not features.stages:
      raise ConfigError(f'{where}: features.stages is empty; give every block\'s output, the '
                        'last block\'s last (one block: stages=(last,)).')
    for name, f in maps:
      if not hasattr(f, 'shape') or not 2 <= f.ndim <= 5 or f.shape[0] != 2:
        raise ConfigError(f'{where}: {name} must be [batch, channels] or channels-last [batch, '
                          f'..., channels] with up to 3 spatial axes; for a batch of 2 it is '
                          f'{_describe(f)}.')
    for name, f in [('its prediction', prediction)] + maps:
      if 0 in f.shape:
        raise ConfigError(f'{where}: {name} has an axis of size 0 ({tuple(f.shape)} for a batch '
                          f'of 2 inputs of shape {tuple(sample_shape)}): a pooling or a stride '
                          'shrank an axis to nothing. Are the inputs channels-last, [N, H, W, '
                          'C]? Else give the model larger inputs or fewer downsamplings.')
    if features.stages[-1].shape != features.last.shape:
      raise ConfigError(f'{where}: features.stages[-1] (shape {features.stages[-1].shape}) must '
                        f'be the last block\'s output, features.last (shape '
                        f'{features.last.shape}).')
  declared = models_lib.declared_arguments(constructor)
  if jax.device_count() > 1 and declared is not None and 'bn_axis_name' not in declared:
    uses = [what for what, used in (('BatchNorm', 'batch_stats' in variables),
                                    ('dropout', dropout)) if used]
    if uses:
      raise ConfigError(
          f'{where} has {" and ".join(uses)} but does not declare bn_axis_name, the devices\' '
          f'axis: over the {jax.device_count()} devices its '
          f'{"statistics" if "BatchNorm" in uses else "dropout masks"} would be each device\'s, '
          'and results would depend on the device count. Add a field `bn_axis_name: '
          'Optional[str] = None` and pass it to nn.BatchNorm(axis_name=self.bn_axis_name) and '
          'l2r_jax.MCDropout(rate, axis_name=self.bn_axis_name).')
  return out[0]


def _failed(where: str, sample_shape, data: str, stage: str, error: Exception) -> str:
  """What a model that raised ``error`` when traced at ``stage`` is told: the error, and the line
  of the model's own code it came from (the last frame outside the installed libraries, Python's
  own and this module), since
  it may be a fault of the code as much as of the inputs' shape."""
  frames = traceback.extract_tb(error.__traceback__)
  paths = sysconfig.get_paths()
  library = tuple({paths[k] + os.sep for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')} | {
      os.path.dirname(m.__file__) + os.sep for m in (jax, flax)})
  own = [f for f in frames if not f.filename.startswith(library) and f.filename != __file__
         and not f.filename.startswith('<')]
  at = f' (raised at {own[-1].filename}:{own[-1].lineno}, in {own[-1].name})' if own else ''
  return (f'{where} fails on a batch of inputs of shape {tuple(sample_shape)} from {data} '
          f'({stage}): {type(error).__name__}: {error}{at}')


def _check_mc_dropout(model, config, sample_shape) -> None:
  """With ``config.model.dropout`` above 0, two inference passes with different ``'dropout'``
  rngs must differ (BALD's Monte-Carlo passes): a dropout that is off whenever ``train`` is False
  (``nn.Dropout(deterministic=not train)``) would give every pass the same prediction."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, *sample_shape))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  a, b = (model.apply(variables, x, train=False, rngs={'dropout': jax.random.PRNGKey(k)})[0]
          for k in (2, 3))
  if bool(jnp.all(a == b)):
    raise ConfigError(
        f'config.model.name={config.model.name!r} with config.model.dropout='
        f'{config.model.dropout}: two inference passes with different dropout rngs predict the '
        'same, so Monte-Carlo dropout (BALD, BatchBALD, mc_variance) would see no spread. Drop '
        "units whenever a 'dropout' rng is given, in inference too: "
        'l2r_jax.MCDropout(rate=self.dropout).')


def _describe(value) -> str:
  if hasattr(value, 'shape'):
    return f'an array of shape {tuple(value.shape)}'
  if isinstance(value, (tuple, list)):
    return f'a {type(value).__name__} of {len(value)}'
  return f'a {type(value).__name__}'


def check_workdir(workdir: str) -> str:
  """Proves ``workdir`` can be written (it, or the folder it would be created in), without
  creating anything, and that nothing the project writes in it is a symbolic link
  (:func:`l2r_jax.workdir.check_no_links`); returns its absolute path."""
  if not str(workdir).strip():
    raise workdir_lib.WorkdirError('--workdir is empty: give the folder the run is kept in (it '
                                   'is created if it does not exist).')
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise workdir_lib.WorkdirError(f'--workdir={workdir} is a file, not a folder: give a folder '
                                   '(it is created if it does not exist).')
  existing = workdir
  while not os.path.exists(existing):
    if os.path.islink(existing):  # a link to nothing: creating the folder would follow it
      raise workdir_lib.WorkdirError(
          f'--workdir={workdir}: {existing} is a symbolic link to {os.readlink(existing)}, which '
          'does not exist; create that folder, remove the link, or give another --workdir.')
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise workdir_lib.WorkdirError(f'--workdir={workdir} cannot be created: {existing} is a '
                                   'file. Choose a folder you can write to.')
  try:
    with tempfile.NamedTemporaryFile(dir=existing):
      pass
  except OSError as e:
    raise workdir_lib.WorkdirError(f'--workdir={workdir} is not writable ({e.strerror}): choose '
                                   'a folder you can write to.') from e
  if os.path.isdir(workdir):
    workdir_lib.check_no_links(workdir)
  return workdir


def check_normalisation(config: ml_collections.ConfigDict, dataset, backbone) -> None:
  """Pretrained weights see inputs normalised as in their training, or the run is refused."""
  given = dataset.task_params.get('normalisation')
  if given != backbone.normalisation:
    raise ConfigError(
        f'config.model.pretrained={config.model.pretrained!r} expects inputs normalised as '
        f'{backbone.normalisation!r}, and the data {config.data.name!r} gives {given!r}: set '
        f'--config.data.normalize={backbone.normalisation} if its loader offers it (mpii, '
        f"shanghaitech and the synthetic stand-ins offer 'imagenet'), or start from other "
        f'weights (--config.model.pretrained=None: random).')
