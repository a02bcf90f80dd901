"""A trained target model taken away: a folder that predicts on a person's inputs, with no workdir.

    learner.export('my_model')                       # or: python -m l2r_jax.label export ...
    model = l2r_jax.load_model('my_model')           # another process, another machine
    out = model.predict(['photo1.jpg', 'photo2.png'])
    out.class_names, out.probabilities

The folder holds ``model.json`` (the model's registered name and arguments, the task and what it
needs to decode predictions, the preprocessing of :mod:`l2r_jax.data.preprocessing`, the class
names, the package version, where the weights came from, and the weights' SHA-256) and
``variables.msgpack`` (the weights, Flax's msgpack serialisation: arrays only, nothing that runs
code when read). A folder missing a part, or whose weights do not match their hash, is refused
in one line naming what is wrong.

:class:`ExportedModel` is also what :meth:`l2r_jax.ActiveLearner.predict` runs, so the loaded
model's outputs equal the learner's bit for bit on the same machine.
"""
import collections.abc
import hashlib
import inspect
import json
import os
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import l2r_jax
from l2r_jax import checkpoint
from l2r_jax import errors
from l2r_jax import models as models_lib
from l2r_jax import numerics
from l2r_jax import tasks as tasks_lib
from l2r_jax import workdir as workdir_lib
from l2r_jax.data import preprocessing as preprocessing_lib
from l2r_jax.errors import ExportError

FORMAT = 1
MODEL_FILE = 'model.json'
VARIABLES_FILE = 'variables.msgpack'
# What a task's decoding needs, kept in model.json (JSON values only).
_TASK_PARAMS = ('sigma', 'heatmap_size', 'density_scale', 'normalisation')


class Predictions(NamedTuple):
  """What a prediction means, by task (the other fields None).

  classification: ``probabilities`` ``[n, C]`` (softmax), ``classes`` ``[n]`` (the most probable),
  ``class_names`` (theirs, where the data named its classes). pose: ``joints`` ``[n, K, 2]``
  (x, y in input pixels, pixel centres at integers) and ``joint_scores`` ``[n, K]`` (each
  heatmap's peak). crowd: ``counts`` ``[n]`` and ``density`` ``[n, H, W]`` (people per output
  pixel; sums to the count)."""
  task: str
  probabilities: Optional[np.ndarray] = None
  classes: Optional[np.ndarray] = None
  class_names: Optional[List[str]] = None
  joints: Optional[np.ndarray] = None
  joint_scores: Optional[np.ndarray] = None
  counts: Optional[np.ndarray] = None
  density: Optional[np.ndarray] = None


class ExportedModel:
  """A target model with its weights and what its predictions mean: :meth:`predict`."""

  def __init__(self, spec: Mapping[str, Any], variables: Mapping[str, Any]):
    self.spec = dict(spec)
    self.variables = variables
    self.module = _module(self.spec)
    self.preprocessing = preprocessing_lib.Preprocessing.from_json(self.spec['preprocessing'])
    self._forward = jax.jit(lambda v, x: self.module.apply(v, x, train=False)[0])

  @property
  def task(self) -> str:
    return self.spec['task']

  @property
  def class_names(self) -> Optional[List[str]]:
    return self.spec.get('class_names')

  @property
  def input_shape(self) -> tuple:
    """One input as the model takes it (after preprocessing)."""
    return tuple(self.spec['input_shape'])

  def inputs(self, x: Union[np.ndarray, Sequence[str]], preprocessed: bool = False) -> np.ndarray:
    """``x`` as the model takes it: file paths (a list, an array of text, a pandas column, a
    generator) or inputs as a person has them, preprocessed; or (``preprocessed``) inputs already
    as the model takes them (a dataset's ``x_train``)."""
    if isinstance(x, (str, os.PathLike)):
      raise preprocessing_lib.InputError('give a list of file paths (or an array of inputs), '
                                         'not one path.')
    if hasattr(x, 'to_numpy'):    # a pandas column or table
      x = x.to_numpy()
    elif isinstance(x, collections.abc.Iterator):   # a generator of paths or inputs
      x = list(x)
    if isinstance(x, np.ndarray) and x.ndim == 1 and x.dtype.kind in 'UO':
      x = x.tolist()   # an array of paths (a table's file column)
    if isinstance(x, (list, tuple)) and x:
      paths = sum(isinstance(p, (str, os.PathLike)) for p in x)
      if paths == len(x):
        return self.preprocessing.read_files(x)
      if paths:
        raise preprocessing_lib.InputError(
            f'{paths} file paths and {len(x) - paths} other inputs in one list: give file paths '
            'alone, or inputs alone (an array).')
    if preprocessed:
      x = preprocessing_lib.real_inputs(x)
      if tuple(x.shape[1:]) != self.input_shape:
        raise preprocessing_lib.InputError(f'inputs of shape {x.shape}: the model takes '
                                           f'[n, {", ".join(map(str, self.input_shape))}].')
      return x
    return self.preprocessing.apply(x, self.input_shape)

  def outputs(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's raw outputs (logits, heatmaps, density maps) on inputs as it takes them, in
    batches of ``batch_size`` (the last padded: one compiled program)."""
    x = np.asarray(x, np.float32)
    if not len(x):
      raise preprocessing_lib.InputError('no inputs given.')
    out = []
    for start in range(0, len(x), batch_size):
      chunk = x[start:start + batch_size]
      padded = np.concatenate([chunk, np.zeros((batch_size - len(chunk), *chunk.shape[1:]),
                                               np.float32)]) if len(chunk) < batch_size else chunk
      out.append(np.asarray(self._forward(self.variables, jnp.asarray(padded)))[:len(chunk)])
    outputs = np.concatenate(out)
    numerics.check_outputs([('outputs', outputs, numerics.TARGET_DIVERGED)], None, 'inputs')
    return outputs

  def predict(self, x: Union[np.ndarray, Sequence[str]], preprocessed: bool = False,
              batch_size: int = 256) -> Predictions:
    """What the model predicts on ``x``: a list of file paths, or inputs as a person has them
    (uint8 or [0, 1] pixels, raw values), preprocessed as the training data was
    (``preprocessed``: ``x`` is as the model takes it already). See :class:`Predictions`."""
    raw = self.outputs(self.inputs(x, preprocessed), batch_size)
    if self.task == 'classification':
      probabilities = np.asarray(jax.nn.softmax(jnp.asarray(raw, jnp.float32), axis=-1))
      classes = probabilities.argmax(-1)
      names = self.class_names
      return Predictions(self.task, probabilities=probabilities, classes=classes,
                         class_names=None if names is None else [names[c] for c in classes])
    if self.task == 'pose':
      joints = np.asarray(tasks_lib.decode_heatmaps(jnp.asarray(raw)))
      heatmap = np.asarray(raw.shape[1:3], np.float32)                  # (H, W)
      side = np.asarray(self.preprocessing.sample_shape(self.input_shape)[:2], np.float32)
      joints = joints * (side / heatmap)[::-1]                          # x by width, y by height
      return Predictions(self.task, joints=joints, joint_scores=raw.max(axis=(1, 2)))
    scale = float(self.spec['task_params']['density_scale'])
    density = raw[..., 0] / scale
    return Predictions(self.task, counts=density.sum(axis=(1, 2)), density=density)


def _source_file(constructor: Any) -> Optional[str]:
  """The file defining a model's constructor (a config file's module has a made-up name), or
  None where it has none."""
  try:
    return os.path.abspath(inspect.getsourcefile(constructor))
  except (TypeError, OSError):
    return None


def from_training(config: ml_collections.ConfigDict, dataset, target: Any,
                  provenance: Optional[Mapping[str, Any]] = None) -> ExportedModel:
  """The :class:`ExportedModel` of a trained target (a ``train.State``'s ``target``) of the
  experiment ``config`` on ``dataset``; ``provenance``: where it came from (saved with it)."""
  constructor = models_lib.TARGETS[config.model.name]
  preprocessing = dataset.preprocessing or preprocessing_lib.affine_from_data(dataset.x_train)
  spec = {
      'format': FORMAT, 'l2r_jax_version': l2r_jax.__version__, 'task': dataset.task,
      'task_params': {k: _json(v) for k, v in dataset.task_params.items() if k in _TASK_PARAMS},
      'model': {'name': config.model.name, 'qualified_name': errors.qualified_name(constructor),
                'defined_in': _source_file(constructor),
                'kwargs': _json(dict(config.model.get('kwargs', {}))),
                'dropout': float(config.model.get('dropout', 0.0) or 0.0),
                'num_outputs': int(dataset.num_outputs)},
      'input_shape': list(dataset.x_train.shape[1:]),
      'preprocessing': preprocessing.to_json(),
      'class_names': None if dataset.class_names is None else [str(c) for c in
                                                               dataset.class_names],
      'provenance': dict(provenance or {})}
  variables = {'params': target.params}
  if target.batch_stats:
    variables['batch_stats'] = target.batch_stats
  return ExportedModel(spec, jax.device_get(variables))


def _json(value: Any) -> Any:
  if isinstance(value, (np.ndarray, np.generic)):
    return value.tolist()
  if isinstance(value, (list, tuple)):
    return [_json(v) for v in value]
  if isinstance(value, (Mapping, ml_collections.ConfigDict)):   # a config's nested section
    return {str(k): _json(v) for k, v in value.items()}
  return value


def save(model: ExportedModel, path: str) -> str:
  """Writes ``model`` to the folder ``path`` (new, or empty); returns its absolute path. The
  weights first, ``model.json`` last: a folder cut off by a kill lacks it, and is refused."""
  path = os.path.abspath(path)
  data = flax.serialization.to_bytes(model.variables)
  spec = dict(model.spec, variables_sha256=hashlib.sha256(data).hexdigest())
  try:
    spec['spec_sha256'] = _spec_sha256(spec)
    text = json.dumps(spec, indent=1, sort_keys=True)
  except (TypeError, ValueError) as e:   # before anything is written
    raise ExportError(f'the model cannot be described in {MODEL_FILE} ({e}): '
                      'config.model.kwargs must hold numbers, text, lists and sections of them '
                      '(a function or a class: give its name, and let the model map it).') from None
  if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path)
                                or os.listdir(path)):
    what = ('a link' if os.path.islink(path) else 'a folder that holds files'
            if os.path.isdir(path) else 'a file')
    raise ExportError(f'{path} is {what}: give a new folder to export the model to (an export is '
                      'never written over anything).')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:  # a file among the folders above it, or no permission
    raise ExportError(f'{path} cannot be made a folder ({e.strerror}): give a new folder to '
                      'export the model to.') from None
  workdir_lib.write_atomic(workdir_lib.path_in(path, VARIABLES_FILE), data)
  workdir_lib.write_atomic(workdir_lib.path_in(path, MODEL_FILE), text)
  return path


def load_model(path: str) -> ExportedModel:
  """The model exported to the folder ``path`` (:func:`save`), ready to :meth:`~ExportedModel.
  predict`; refused (:class:`ExportError`) in one line if a part is missing or damaged, or its
  model is not registered in this process."""
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isdir(path):
    raise ExportError(f'{path} is not a folder: give the folder a model was exported to.')
  missing = [name for name in (MODEL_FILE, VARIABLES_FILE)
             if not os.path.isfile(os.path.join(path, name))]
  if missing:
    raise ExportError(f'{path} lacks {" and ".join(missing)}: it is not a whole exported model '
                      '(an export cut off before it finished lacks model.json). Export it again.')
  try:
    with open(os.path.join(path, MODEL_FILE), encoding='utf-8') as f:
      spec = json.load(f)
    model = spec['model']
    name, fmt = model['name'], spec['format']
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ExportError(f'{os.path.join(path, MODEL_FILE)} cannot be read ({type(e).__name__}: '
                      f'{e}). Export the model again.') from None
  if fmt != FORMAT:
    raise ExportError(f'{path} is in export format {fmt!r}; this l2r-jax (version '
                      f'{l2r_jax.__version__}) reads format {FORMAT}.')
  if name not in models_lib.TARGETS:
    module = model.get('qualified_name', '?').rsplit('.', 1)[0]
    where = (f'the file {model["defined_in"]}' if model.get('defined_in') else
             f'the module {module}')
    raise ExportError(f'{path}: its model {name!r} is not registered in this process: import '
                      f'{where}, which registers it, before load_model (a config file: '
                      'importlib.util.spec_from_file_location, or import it by its module name).')
  lacking = [k for k in ('input_shape', 'preprocessing', 'task', 'variables_sha256')
             if k not in spec]
  if lacking:
    raise ExportError(f'{os.path.join(path, MODEL_FILE)} lacks {", ".join(lacking)}: it is not '
                      'a whole exported model. Export the model again.')
  if 'spec_sha256' in spec and spec['spec_sha256'] != _spec_sha256(spec):  # (older: no hash)
    raise ExportError(f'{os.path.join(path, MODEL_FILE)} does not match its own hash: it was '
                      'changed or damaged since the export. Export the model again.')
  with open(os.path.join(path, VARIABLES_FILE), 'rb') as f:
    data = f.read()
  if hashlib.sha256(data).hexdigest() != spec.get('variables_sha256'):
    raise ExportError(f'{os.path.join(path, VARIABLES_FILE)} does not match the hash in '
                      f'{MODEL_FILE}: the weights were changed or damaged. Export the model again.')
  try:
    template = _template(spec)
  except Exception as e:  # pylint: disable=broad-except  (a part missing, or of another kind)
    raise ExportError(f'{os.path.join(path, MODEL_FILE)} does not describe a model this l2r-jax '
                      f'builds ({type(e).__name__}: {str(e)[:200]}). Export the model '
                      'again.') from None
  try:
    variables = flax.serialization.from_bytes(template, data)
  except Exception as e:  # pylint: disable=broad-except  (msgpack's and flax's errors alike)
    raise ExportError(f'{os.path.join(path, VARIABLES_FILE)} does not hold this model\'s '
                      f'weights ({type(e).__name__}: {str(e)[:200]}).') from None
  differs = checkpoint.shape_difference(checkpoint.array_shapes(variables),
                                        checkpoint.array_shapes(template))
  if differs:
    raise ExportError(f'{os.path.join(path, VARIABLES_FILE)} holds weights of other shapes than '
                      f'the model {name!r} builds now ({differs}): its code, or a default of its '
                      'fields, changed since the export. Load it with the model\'s code as it '
                      'was, or export the model again.')
  try:
    return ExportedModel(spec, variables)
  except (KeyError, TypeError, ValueError) as e:
    raise ExportError(f'{os.path.join(path, MODEL_FILE)} lacks a part or holds one of another '
                      f'kind ({type(e).__name__}: {str(e)[:200]}). Export the model '
                      'again.') from None


def _spec_sha256(spec: Mapping[str, Any]) -> str:
  """The hash of what ``model.json`` says, but this hash itself."""
  said = {k: v for k, v in spec.items() if k != 'spec_sha256'}
  return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


def _module(spec: Mapping[str, Any]):
  """The target model ``spec['model']`` names, built as the experiment built it."""
  model = spec['model']
  return models_lib.make_target(ml_collections.ConfigDict(
      dict(name=model['name'], kwargs=model['kwargs'], dropout=model['dropout'])),
      model['num_outputs'])


def _template(spec: Mapping[str, Any]) -> Dict[str, Any]:
  """The model's variables as initialised (their structure and shapes, for reading the file)."""
  module = _module(spec)
  sample = jnp.zeros((1, *spec['input_shape']), jnp.float32)
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), sample, train=False))
  return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                flax.core.unfreeze(variables))
