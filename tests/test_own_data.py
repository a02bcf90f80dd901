"""A user's own model and dataset: registration, the contracts' refusals, the image folder."""
import json
import os
import re

import chex
import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
import pytest

import l2r_jax
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import models as models_lib
from l2r_jax import validation
from l2r_jax import workdir as workdir_lib
from l2r_jax.data import image_folder
import smoke


class _Recorder(nn.Module):
  """Declares num_outputs and a width of its own, not bn_axis_name or dropout."""
  num_outputs: int
  width: int = 4

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.Dense(self.width)(x.reshape(x.shape[0], -1))
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


def _config(name, **kwargs):
  return ml_collections.ConfigDict(dict(name=name, kwargs=kwargs, dropout=0.0))


def test_a_constructor_receives_only_what_it_declares(monkeypatch):
  received = []

  def make(num_outputs, width=4):
    received.append(dict(num_outputs=num_outputs, width=width))
    return _Recorder(num_outputs=num_outputs, width=width)

  monkeypatch.setitem(models_lib.TARGETS, 'made', make)
  model = models_lib.make_target(_config('made', width=7), 3, bn_axis_name='batch')
  assert received == [{'num_outputs': 3, 'width': 7}] and model.width == 7
  # A constructor with **kwargs is offered everything.
  monkeypatch.setitem(models_lib.TARGETS, 'open', lambda **kw: received.append(kw) or _Recorder(3))
  models_lib.make_target(_config('open'), 3, bn_axis_name='batch')
  assert received[-1] == {'num_outputs': 3, 'bn_axis_name': 'batch'}


def test_constructors_that_cannot_take_the_drivers_arguments_are_refused(monkeypatch):
  monkeypatch.setitem(models_lib.TARGETS, 'recorder', _Recorder)
  with pytest.raises(errors.ConfigError, match=r'does not declare depth, given in '
                                               r"config.model.kwargs=\{'depth': 2\}.*declares "
                                               r'num_outputs, width\)'):   # not flax's parent, name
    models_lib.make_target(_config('recorder', depth=2), 3)
  monkeypatch.setitem(models_lib.TARGETS, 'fixed', lambda width=3: _Recorder(2, width))
  with pytest.raises(errors.ConfigError, match='does not declare num_outputs: add a field'):
    models_lib.make_target(_config('fixed'), 3)
  monkeypatch.setitem(models_lib.TARGETS, 'not_a_module', lambda num_outputs: 'a string')
  with pytest.raises(errors.ConfigError, match='returned a str, not a flax.linen.Module'):
    models_lib.make_target(_config('not_a_module'), 3)

  def raises(num_outputs):
    raise ValueError(f'{num_outputs} outputs? never')

  monkeypatch.setitem(models_lib.TARGETS, 'raises', raises)
  with pytest.raises(errors.ConfigError, match=r"cannot be built with \['num_outputs'\]: "
                                               r'ValueError: 3 outputs\? never'):
    models_lib.make_target(_config('raises'), 3)


class _Broken(nn.Module):
  """A model that breaks the contract in the way ``how`` says."""
  num_outputs: int
  how: str = 'fine'
  bn_axis_name: str = None

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.relu(nn.Dense(4)(x))
    logits = nn.Dense(self.num_outputs)(h)
    features = models_lib.Features(last=h, stages=(h,))
    if self.how == 'logits_only':
      return logits
    if self.how == 'dict_features':
      return logits, {'last': h}
    if self.how == 'flat_features':
      return logits, models_lib.Features(last=h[:, 0], stages=(h[:, 0],))
    if self.how == 'no_stages':
      return logits, models_lib.Features(last=h, stages=())
    if self.how == 'stages_end_elsewhere':
      return logits, models_lib.Features(last=h, stages=(h[:, :2],))
    if self.how == 'three_outputs':
      return logits, features, h
    if self.how == 'stages_an_array':
      return logits, models_lib.Features(last=h, stages=h)
    if self.how == 'integer_logits':
      return logits.astype(jnp.int32), features
    if self.how == 'pooled_to_nothing':   # channels-first inputs through a channels-last model
      empty = h[:, :0]
      return logits, models_lib.Features(last=empty, stages=(empty,))
    return logits, features


class _NoTrainArgument(nn.Module):
  num_outputs: int

  @nn.compact
  def __call__(self, x):
    h = nn.Dense(4)(x)
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


class _VectorsOnly(nn.Module):
  num_outputs: int

  @nn.compact
  def __call__(self, x, *, train):
    chex.assert_rank(x, 2)
    h = nn.Dense(4)(x)
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


def _line_of(text):
  """The number of the line of this file that holds ``text``."""
  with open(__file__) as f:
    return next(k for k, line in enumerate(f, 1) if text in line and 'line_of' not in line)


class _Misspelt(nn.Module):
  num_outputs: int

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.Dense(4)(x) if self.is_initializing() else hiden  # pylint: disable=undefined-variable
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


class _BatchNormWithoutAxis(nn.Module):
  num_outputs: int

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.BatchNorm(use_running_average=not train)(nn.Dense(4)(x))
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


@pytest.mark.parametrize('how, message', [
    ('logits_only', r'must return \(prediction, l2r_jax.models.Features\(last=..., stages=\(...\)'
                    r'\)\) from __call__; in inference it returned an array of shape \(2, 3\)'),
    ('three_outputs', r'in inference it returned a tuple of 3'),
    ('dict_features', r'its second output in inference is a dict'),
    ('flat_features', r'features.last must be \[batch, channels\] or channels-last .* it is an '
                      r'array of shape \(2,\)'),
    ('no_stages', r'features.stages is empty'),
    ('stages_end_elsewhere', r'features.stages\[-1\] \(shape \(2, 2\)\) must be the last block'),
    ('stages_an_array', r'features.stages must be a tuple of every block.s output.*it is an array '
                        r'of shape \(2, 4\)'),
    ('integer_logits', r'its prediction must be floating point .* it is int32'),
    ('pooled_to_nothing', r'features.last has an axis of size 0 \(\(2, 0\) for a batch of 2 '
                          r'inputs of shape \(5,\)\): a pooling or a stride shrank an axis to '
                          r'nothing. Are the inputs channels-last'),
])
def test_a_model_that_breaks_the_contract_is_refused_naming_what_to_change(how, message):
  model = _Broken(3, how)
  with pytest.raises(errors.ConfigError, match=message):
    validation.check_model_contract(model, _Broken, "config.model.name='broken'", (5,), 'data')
  assert validation.check_model_contract(_Broken(3), _Broken, 'x', (5,), 'data').shape == (2, 3)


def test_a_model_without_train_or_with_unshared_batchnorm_is_refused():
  with pytest.raises(errors.ConfigError, match='its __call__ must accept the keyword argument '
                                               '`train`'):
    validation.check_model_contract(_NoTrainArgument(3), _NoTrainArgument, 'm', (5,), 'data')
  # Two devices (tests/conftest.py): statistics per device would make results depend on them.
  with pytest.raises(errors.ConfigError, match='has BatchNorm but does not declare bn_axis_name'):
    validation.check_model_contract(_BatchNormWithoutAxis(3), _BatchNormWithoutAxis, 'm', (5,),
                                    'data')
  line = _line_of('chex.assert_rank(x, 2)')
  with pytest.raises(errors.ConfigError, match=r'^m fails on a batch of inputs of shape \(5, 2\) '
                                               r'from data \(init\): AssertionError: .* \(raised '
                                               rf'at {re.escape(__file__)}:{line}, in __call__\)$'):
    validation.check_model_contract(_VectorsOnly(3), _VectorsOnly, 'm', (5, 2), 'data')
  # A fault of the model's code, not of the inputs: the line it came from is named.
  line = _line_of('else hiden')
  with pytest.raises(errors.ConfigError, match=r"\(inference\): NameError: name 'hiden' is not "
                                               rf'defined \(raised at {re.escape(__file__)}:'
                                               rf'{line}, in __call__\)$'):
    validation.check_model_contract(_Misspelt(3), _Misspelt, 'm', (5,), 'data')


class _DeterministicDropout(nn.Module):
  """Flax's own dropout, off whenever train is False: no spread between Monte-Carlo passes."""
  num_outputs: int
  dropout: float = 0.0
  bn_axis_name: str = None

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(nn.Dense(8)(x)))
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


def test_dropout_that_is_off_in_inference_is_refused_for_monte_carlo_strategies(monkeypatch):
  monkeypatch.setitem(models_lib.TARGETS, 'deterministic_dropout', _DeterministicDropout)
  config = smoke.mnist1d(strategies=('bald',), **{'model.name': 'deterministic_dropout',
                                                  'model.dropout': 0.3})
  with pytest.raises(errors.ConfigError, match='two inference passes with different dropout rngs '
                                               'predict the same.*l2r_jax.MCDropout'):
    experiment.make_experiment(config)
  config.strategies = ('entropy',)   # plain dropout regularises; only MC strategies need more
  experiment.make_experiment(config)


def test_registration_is_public_and_refuses_taken_names():
  assert l2r_jax.register_model is models_lib.register_model
  assert l2r_jax.register_dataset is data_lib.register_dataset
  with pytest.raises(errors.ConfigError, match="'cnn1d' is a built-in model"):
    l2r_jax.register_model('cnn1d', _Recorder)
  with pytest.raises(errors.ConfigError, match="'digits' is a built-in dataset"):
    l2r_jax.register_dataset('digits', lambda c: None)
  for name in ('', 3, None):
    with pytest.raises(errors.ConfigError, match='the name must be non-empty text'):
      l2r_jax.register_model(name, _Recorder)
  with pytest.raises(errors.ConfigError, match=r'give the class, _Broken, not a module made of'):
    l2r_jax.register_model('an_instance', _Broken(3))
  with pytest.raises(errors.ConfigError, match='the loader must take one argument, config.data'):
    l2r_jax.register_dataset('no_argument', lambda: None)
  assert 'an_instance' not in models_lib.TARGETS and 'no_argument' not in data_lib.LOADERS
  try:
    l2r_jax.register_model('recorder_model', _Recorder)
    l2r_jax.register_model('recorder_model', _Recorder)   # the same class again: a cell re-run
    with pytest.raises(errors.ConfigError, match=r"'recorder_model' is registered already, as "
                                                 r'(tests.)?test_own_data._Recorder'):
      l2r_jax.register_model('recorder_model', _Broken)
  finally:
    models_lib.TARGETS.pop('recorder_model', None)


def test_one_file_imported_under_two_module_names_registers_once():
  # A config file loaded by path (importlib, as load_model's message suggests) after it was
  # imported by name: the same classes and loaders, not a clash of names.
  import importlib.util  # pylint: disable=g-import-not-at-top
  from examples import breast_cancer  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('breast_cancer_by_path', breast_cancer.__file__)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    assert models_lib.TARGETS['tabular_mlp'] is module.TabularMLP
  finally:
    l2r_jax.register_model('tabular_mlp', breast_cancer.TabularMLP)
    l2r_jax.register_dataset('breast_cancer', breast_cancer.load_breast_cancer)


EDITED_MODEL = '''
import flax.linen as nn
import l2r_jax


class EditedMLP(nn.Module):
  {docstring}
  num_outputs: int

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.{activation}(nn.Dense(8)(x))  {comment}
    return nn.Dense(self.num_outputs)(h), l2r_jax.Features(last=h, stages=(h,))


l2r_jax.register_model('edited_mlp', EditedMLP)
'''


def test_a_workdir_refuses_to_resume_with_its_models_code_edited(tmp_path):
  """The rounds of a workdir come from one model: its code edited since (what it does, not its
  comments, docstring or layout) is refused, as a changed config is."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  from examples import breast_cancer  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'edited_model.py'

  def load(**edits):
    path.write_text(EDITED_MODEL.format(**edits))
    spec = importlib.util.spec_from_file_location('edited_model', path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

  config = breast_cancer.get_config('unlabeled_smoke')
  config.model.name = 'edited_mlp'
  config.model.update(kwargs={}, dropout=0.0)
  work = str(tmp_path / 'work')
  try:
    load(docstring='"""One hidden layer."""', activation='relu', comment='')
    l2r_jax.ActiveLearner(config, work).close()
    first = json.loads((tmp_path / 'work' / 'experiment.json').read_text())['code']
    assert list(first) == ["model 'edited_mlp'"] and len(first["model 'edited_mlp'"]) == 16
    load(docstring='"""One hidden layer of 8."""', activation='relu',
         comment='# the features the loss module reads')
    l2r_jax.ActiveLearner(config, work).close()   # the same code: resumed
    load(docstring='"""One hidden layer."""', activation='tanh', comment='')
    with pytest.raises(errors.WorkdirError, match=re.escape(
        "Differences: the code of model 'edited_mlp' changed since (")):
      l2r_jax.ActiveLearner(config, work)
    l2r_jax.ActiveLearner(config, str(tmp_path / 'new')).close()   # a new workdir: the new code
  finally:
    models_lib.TARGETS.pop('edited_mlp', None)


def test_a_code_fingerprint_is_of_what_the_code_does(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top

  def fingerprint(k, source, name='scale'):
    path = tmp_path / f'version_{k}.py'   # loaded by path, as a script's module is
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f'version_{k}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return workdir_lib.code_fingerprint(getattr(module, name))

  first = fingerprint(0, 'def scale(x):\n  return 2 * x\n')
  edited = ('def scale(x):\n    """Doubles."""\n    # twice\n    return (2 *\n'
            '            x)  # as before\n')
  assert fingerprint(1, edited) == first   # comments, a docstring, the layout
  assert fingerprint(2, 'def scale(x):\n  return 3 * x\n') != first
  assert fingerprint(3, 'def scale(y):\n  return 2 * y\n') != first
  # What it calls in its own file counts: a helper, a class it builds on, a constant it reads.
  helper = ('WIDTH = 8\n\ndef _act(x):\n  return x * 2\n\nclass Base:\n  bias = 1\n\n'
            'class Model(Base):\n  def __call__(self, x):\n    return _act(x)[:WIDTH]\n\n'
            'def scale(x):\n  return Model()(x)\n')
  with_helper = fingerprint(4, helper)
  assert fingerprint(5, helper.replace('# ', '# ').replace('return x * 2', '''"""Twice."""
  return (x *  2)''')) == with_helper
  as_class = fingerprint(6, helper, 'Model')
  for k, (old, new) in enumerate([('return x * 2', 'return x * 3'), ('bias = 1', 'bias = 2'),
                                  ('WIDTH = 8', 'WIDTH = 16')]):
    assert fingerprint(10 + k, helper.replace(old, new)) != with_helper, new
    assert fingerprint(20 + k, helper.replace(old, new), 'Model') != as_class, new
  # Its own locals are not globals: a notebook's `i` or `_` changing leaves it as it was.
  local = 'i = {}\n\ndef scale(x):\n  for i in range(2):\n    _, x = x, x * 2\n  return x\n'
  assert fingerprint(30, local.format(1)) == fingerprint(31, local.format(5))
  # A function that names nothing of its file keeps the fingerprint of its own syntax alone.
  assert fingerprint(9, 'import math\n\nWIDTH = 3\n\ndef scale(x):\n  return 2 * x\n') == first
  namespace = {}
  exec('def made(x):\n  return x', namespace)  # pylint: disable=exec-used
  assert workdir_lib.code_fingerprint(namespace['made']) is None   # no source: not compared


def _dataset(**changes):
  x = np.zeros((6, 4), np.float32)
  fields = dict(x_train=x, y_train=np.array([0, 1, 2, 0, 1, -1], np.int32), x_test=x[:2],
                y_test=np.array([0, 1], np.int32), num_outputs=3)
  fields.update(changes)
  return data_lib.Dataset(**fields)


@pytest.mark.parametrize('changes, message', [
    (dict(y_train=np.zeros(5, np.int32)), 'x_train has 6 samples and y_train 5'),
    (dict(y_train=np.array([0, 1, 2, 3, 0, 1], np.int32)),
     r'y_train\[3\]=3 is not a class of num_outputs=3 \(0 .. 2; -1 marks an unknown label\)\.$'),
    (dict(y_train=np.array([1, 2, 3, 1, 2, -1], np.int32), y_test=np.array([1, 3], np.int32)),
     r'y_train\[2\]=3 is not a class .*\); the classes look counted from 1: give y - 1\.$'),
    (dict(y_test=np.array([1, 3], np.int32)),
     r'y_test\[1\]=3 is not a class of num_outputs=3 \(0 .. 2\)\.$'),
    (dict(y_test=np.array([0, -1], np.int32)), r'y_test\[1\]=-1 is not a class'),
    (dict(y_train=np.zeros(6, np.float32)), 'y_train is float32; classes are integers'),
    (dict(y_train=np.array(['cat', 'dog'] * 3), y_test=np.array(['cat', 'dog'])),
     r'y_train holds <U3 values \(class names\?\); classes are integers .* '
     r'Dataset\(class_names=names\)'),
    (dict(x_train=np.zeros(6, np.float32), x_test=np.zeros(2, np.float32)),
     r'x_train has shape \(6,\): a sample per row .* x.reshape\(-1, 1\)'),
    (dict(x_train=np.zeros((6, 4), np.uint8)), r'x_train is uint8.*x.astype\(np.float32\)'),
    (dict(x_test=np.zeros((2, 5), np.float32)), r'test inputs are \(5,\) and pool inputs \(4,\)'),
    (dict(x_train=np.zeros((6, 3, 32, 32), np.float32), x_test=np.zeros((2, 3, 32, 32),
                                                                         np.float32)),
     r'x_train has samples of shape \(3, 32, 32\): images channels-first \(3 channels of '
     r'32x32\)\? .* give x.transpose\(0, 2, 3, 1\), for the test split too\.$'),
    (dict(task='segmentation'), "task='segmentation'; choose one of"),
    (dict(num_outputs=0), 'num_outputs must be a positive int'),
    (dict(num_outputs=1, y_train=np.zeros(6, np.int32), y_test=np.zeros(2, np.int32)),
     'num_outputs=1 for classification: a classifier tells at least 2 classes apart'),
    (dict(y_train=[0, 1, 2, 0, 1, 1]), 'y_train must be a numpy array'),
    (dict(class_names=('a', 'b')), 'class_names has 2 names for num_outputs=3'),
    (dict(pool_ids=['a'] * 6), 'pool_ids must name each pool sample once'),
    (dict(pool_file_sha256=['0' * 16] * 5), r'pool_file_sha256 must give each pool sample.s file '
                                            r'content as a string \(6 of them\)'),
    (dict(pool_file_sha256=[1] * 6), 'pool_file_sha256 must give each'),
])
def test_a_dataset_that_breaks_its_contract_is_refused(changes, message):
  with pytest.raises(errors.ConfigError, match=message):
    data_lib.check_dataset(_dataset(**changes), 'mine')
  with pytest.raises(errors.ConfigError, match='returned a tuple, not an l2r_jax.data.Dataset'):
    data_lib.check_dataset((1, 2), 'mine')
  data_lib.check_dataset(_dataset(), 'mine')


def test_a_simulation_refuses_a_pool_with_unknown_labels(monkeypatch):
  monkeypatch.setitem(data_lib.LOADERS, 'partly_labeled', lambda c: _dataset())
  config = smoke.mnist1d(strategies=('random',))
  config.data = ml_collections.ConfigDict(dict(name='partly_labeled'))
  config.model.name = 'cnn1d'
  with pytest.raises(errors.ConfigError, match="'partly_labeled' has 1 pool samples without a "
                                               'label; a simulated experiment reveals'):
    experiment.make_experiment(config)


def _png(path, value, size=(10, 12), mode='RGB'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pixels = np.full((*size, 3), value, np.uint8)
  pixels[0, 0] = (value + 100) % 256     # not constant: a resize that mixed images would show
  Image.fromarray(pixels if mode == 'RGB' else pixels[..., 0], mode).save(path)


def test_the_image_folder_loader_reads_classes_pool_and_test(tmp_path):
  root = tmp_path / 'images'
  _png(root / 'labeled' / 'cat' / 'c1.png', 10)
  _png(root / 'labeled' / 'dog' / 'd1.png', 20)
  _png(root / 'unlabeled' / 'a.png', 30)
  _png(root / 'unlabeled' / 'batch2' / 'b.jpg', 40)
  _png(root / 'unlabeled' / 'notes.txt.png', 50, mode='L')
  (root / 'unlabeled' / 'notes.txt').write_text('not an image')
  _png(root / 'test' / 'dog' / 't1.png', 60)
  config = ml_collections.ConfigDict(dict(name='image_folder', root=str(root),
                                          image_size=(8, 6)))
  ds = data_lib.load(config)
  assert ds.class_names == ['cat', 'dog'] and ds.num_outputs == 2
  assert list(ds.pool_ids) == ['labeled/cat/c1.png', 'labeled/dog/d1.png', 'unlabeled/a.png',
                               'unlabeled/batch2/b.jpg', 'unlabeled/notes.txt.png']
  np.testing.assert_array_equal(ds.y_train, [0, 1, -1, -1, -1])
  np.testing.assert_array_equal(ds.y_test, [1])
  assert ds.x_train.shape == (5, 8, 6, 3) and ds.x_test.shape == (1, 8, 6, 3)
  # Pillow's own decode and bilinear resize, scaled to [0, 1], normalised by the pool's statistics.
  raw = np.stack([np.asarray(Image.open(root / p).convert('RGB').resize((6, 8), Image.BILINEAR),
                             np.float32) / 255 for p in ds.pool_ids])
  mean, std = raw.mean((0, 1, 2)), raw.std((0, 1, 2))
  np.testing.assert_allclose(ds.x_train[np.arange(5)], (raw - mean) / std, rtol=1e-5, atol=1e-5)
  # Declared classes: their order is the indices'; a class folder outside them is refused.
  config.classes = ('dog', 'cat', 'bird')
  ds = data_lib.load(config)
  np.testing.assert_array_equal(ds.y_train[:2], [1, 0])
  assert ds.num_outputs == 3
  config.classes = ('dog', 'bird')
  with pytest.raises(errors.ConfigError, match=r"'cat' is not in config.data.classes"):
    data_lib.load(config)
  with pytest.raises(errors.DataNotFoundError, match='is not a folder'):
    data_lib.load(ml_collections.ConfigDict(dict(name='image_folder', root=str(tmp_path / 'no'))))
  grey = image_folder.read_image(str(root / 'unlabeled' / 'notes.txt.png'), (4, 4), 1)
  assert grey.shape == (4, 4, 1) and np.all((grey >= 0) & (grey <= 1))


class _DropoutWithoutAxis(nn.Module):
  num_outputs: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train):
    h = l2r_jax.MCDropout(self.dropout)(nn.Dense(4)(x), train=train)
    return nn.Dense(self.num_outputs)(h), models_lib.Features(last=h, stages=(h,))


def test_dropout_without_the_devices_axis_is_refused_on_several_devices():
  with pytest.raises(errors.ConfigError, match=r"has dropout but does not declare bn_axis_name, "
                                               r"the devices' axis.*dropout masks"):
    validation.check_model_contract(_DropoutWithoutAxis(3, 0.2), _DropoutWithoutAxis, 'm', (5,),
                                    'data', dropout=True)
  validation.check_model_contract(_DropoutWithoutAxis(3), _DropoutWithoutAxis, 'm', (5,), 'data')


def test_a_user_strategy_is_one_registration_checked_like_the_others():
  from l2r_jax.strategies import base  # pylint: disable=g-import-not-at-top

  def lengths(state, pool_subset, rng):
    del state, rng
    return np.ones(len(pool_subset) + 1)

  with pytest.raises(errors.ConfigError, match=r"register_scores\('typo', ...\): no option "
                                               r'task; choose from check, loss_module'):
    l2r_jax.register_scoring_strategy('typo', task=('classification',))
  try:
    l2r_jax.register_scoring_strategy('too_many_scores')(lengths)
    l2r_jax.register_scoring_strategy('too_many_scores')(lengths)   # a notebook cell run again
    with pytest.raises(errors.ConfigError, match="'too_many_scores' is registered already"):
      l2r_jax.register_strategy('too_many_scores')(lambda *a: None)
    with pytest.raises(errors.StrategyError, match=r"Strategy 'too_many_scores' scored 3 samples "
                                                   r'with an array of shape \(4,\)'):
      base.select(base.get('too_many_scores'), None, np.arange(3), 1, None)
    # A score read from a loss module the strategy does not train: said so, not "shape ()".
    l2r_jax.register_scoring_strategy('no_module')(lambda *a: None)
    with pytest.raises(errors.StrategyError, match=re.escape(
        "Strategy 'no_module' scored the pool samples with None (a strategy registered without "
        'loss_module= has no predicted_loss: it is None)')):
      base.select(base.get('no_module'), None, np.arange(3), 1, None)
  finally:
    base.REGISTRY.pop('too_many_scores', None)
    base.REGISTRY.pop('no_module', None)


def test_a_user_strategys_own_options_are_fields_of_the_config(monkeypatch):
  # config.<name> for a registered strategy, config.<options> for its loss module: read, not
  # refused as unknown fields; a loss module's section left out is named, never a KeyError.
  from l2r_jax.strategies import base  # pylint: disable=g-import-not-at-top

  def tempered(state, pool_subset, rng):
    del rng
    return np.zeros(len(pool_subset)) / state.options.temperature

  monkeypatch.setitem(base.REGISTRY, 'tempered', base.Strategy('tempered', None, score=tempered))
  monkeypatch.setitem(base.REGISTRY, 'my_ll4al', base.get('ll4al')._replace(
      name='my_ll4al', loss_module=base.get('ll4al').loss_module._replace(options='my_ll4al')))
  config = smoke.mnist1d(strategies=('tempered', 'my_ll4al'))
  with pytest.raises(errors.ConfigError, match=r"^config.strategies includes 'my_ll4al': "
                                               r'config.my_ll4al is not set, and '
                                               r'config.my_ll4al.weight is needed'):
    validation.check_config(config)
  config.my_ll4al = ml_collections.ConfigDict(dict(weight=1.0, detach_epoch=1))
  config.tempered = ml_collections.ConfigDict(dict(temperature=2.0))
  validation.check_config(config)
  config.tempered_ = ml_collections.ConfigDict(dict(temperature=2.0))
  with pytest.raises(errors.ConfigError, match=r'config.tempered_ is not a field of the config; '
                                               r'did you mean config.tempered\?'):
    validation.check_config(config)


class _WideLossModule(nn.Module):
  """A loss module that forgets to drop the last axis of its Dense(1)."""
  hidden: int = 8

  @nn.compact
  def __call__(self, features):
    return nn.Dense(1)(features.last.reshape(features.last.shape[0], -1))


class _NoWidthLossModule(nn.Module):
  @nn.compact
  def __call__(self, features):
    return nn.Dense(1)(features.last.reshape(features.last.shape[0], -1))[:, 0]


@pytest.mark.parametrize('architecture, message', [
    (_WideLossModule, r"^The loss module of 'my_lm' \(_WideLossModule\) must return one predicted "
                      r'loss per sample, floating point of shape \[batch\]; for a batch of 2 it '
                      r'returns an array of shape \(2, 1\) \(a Dense\(1\) gives \[batch, 1\]: '
                      r'take \[:, 0\]\)\.$'),
    (_NoWidthLossModule, r"^The loss module of 'my_lm' \(_NoWidthLossModule\) is built as "
                         r'architecture\(hidden=config.loss_module.hidden\) and cannot be .*: '
                         r'give it a field `hidden: int`')])
def test_a_loss_module_of_ones_own_that_breaks_its_contract_is_refused_before_training(
    monkeypatch, tmp_path, architecture, message):
  from l2r_jax.strategies import base  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(base.REGISTRY, 'my_lm', base.get('l2r')._replace(
      name='my_lm', loss_module=base.get('l2r').loss_module._replace(architecture=architecture)))
  config = smoke.mnist1d(strategies=('my_lm',))
  with pytest.raises(errors.ConfigError, match=message):
    experiment.run(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()   # refused before anything is written


class DataFrame:
  """pandas' DataFrame as a dataset sees it: shape, len() and x[key] by column."""

  def __init__(self, values):
    self._values, self.shape = values, values.shape

  def __len__(self):
    return len(self._values)

  def __getitem__(self, key):
    raise KeyError(f'{key} not in index')

  def to_numpy(self, dtype=None):
    return self._values.astype(dtype)


def test_an_array_like_that_gives_rows_it_does_not_promise_is_refused_when_read():
  from l2r_jax import numerics  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ConfigError, match=re.escape(
      'Dataset.x_train is a pandas DataFrame, whose x[indices] picks columns, not rows: give its '
      'values, x.to_numpy(np.float32).')):
    data_lib.check_dataset(_dataset(x_train=DataFrame(np.zeros((6, 4), np.float32))), None)
  rows = np.arange(3)
  for given, got in [([np.zeros(4, np.float32)] * 3, 'list of shape (3, 4)'),
                     (np.zeros((3, 4), np.uint8), 'ndarray of shape (3, 4), uint8'),
                     (np.zeros((2, 4), np.float32), 'ndarray of shape (2, 4), float32')]:
    with pytest.raises(errors.ConfigError, match=re.escape(
        f'Dataset.x_train[indices] gave a {got} for 3 indices: an array-like dataset\'s '
        'x[indices] must give a float32 numpy array, one row per index')):
      numerics.checked_batch(given, rows, 'Dataset.x_train')
  assert numerics.checked_batch(np.ones((3, 4), np.float32), rows, 'Dataset.x_train').shape == (
      3, 4)


@pytest.mark.parametrize('picks, message', [
    ([12, 10], None),
    (np.array([12.0, 10.0]), r'returned picks of float64; select returns integer pool indices'),
    ([12, 10, 11], r'returned picks of shape \(3,\); select returns budget = 2 pool indices'),
    ([[12, 10]], r'returned picks of shape \(1, 2\)'),
    ([12, 12], r'returned index 12 more than once; select returns distinct pool indices'),
    ([12, 3], r'returned index 3, not in pool_subset \(the unlabeled samples it may pick from\)'
              r'\.$'),
    ([0, 2], r'returned indices 0, 2, not in pool_subset .* \(positions in pool_subset\? give '
             r'pool_subset\[positions\]\)'),
    ([12, 400], r'returned index 400, not in pool_subset'),
])
def test_a_user_strategys_picks_that_break_its_contract_are_refused(picks, message):
  # Whatever a select function returns is checked before it is taught or saved: budget distinct
  # members of the pool subset, as pool indices.
  from l2r_jax.strategies import base  # pylint: disable=g-import-not-at-top
  try:
    l2r_jax.register_strategy('fixed_picks')(lambda state, pool_subset, budget, rng: picks)
    strategy = base.get('fixed_picks')
    subset = np.array([10, 11, 12, 13])
    if message is None:
      chosen, scores = base.select(strategy, None, subset, 2, None)
      np.testing.assert_array_equal(chosen, picks)
      assert scores is None
    else:
      with pytest.raises(errors.StrategyError, match=r"^Strategy 'fixed_picks' " + message):
        base.select(strategy, None, subset, 2, None)
  finally:
    base.REGISTRY.pop('fixed_picks', None)


@pytest.mark.parametrize('preprocessing, message', [
    (dict(mean=np.zeros(3)), r'preprocessing.mean of shape \(3,\) is not numbers that broadcast '
                             r'over an input of shape \(4,\)'),
    (dict(std=np.array([1.0, 0.0, 1.0, 1.0])), 'preprocessing.std holds zeros or negatives'),
    (dict(value_range=(np.zeros(4), np.ones(4))), 'preprocessing.value_range must be two numbers'),
    (dict(value_range=(1.0, 1.0)), r'value_range=\(1.0, 1.0\) must be finite, low below high'),
])
def test_a_preprocessing_that_cannot_work_is_refused_when_the_data_loads(preprocessing, message):
  given = l2r_jax.Preprocessing('affine', **preprocessing)
  with pytest.raises(errors.ConfigError, match=message):
    data_lib.check_dataset(_dataset(preprocessing=given), 'mine')
  data_lib.check_dataset(_dataset(preprocessing=l2r_jax.Preprocessing(
      'affine', np.zeros(4), np.ones(4), (0.0, 1.0))), 'mine')


def test_a_test_class_no_pool_sample_has_is_said_with_the_ceiling_it_puts_on_accuracy(caplog):
  config = smoke.mnist1d(strategies=('random',))
  config.al.update(initial=2, budget=1, cycles=2)
  config.al.subset = None
  dataset = _dataset(y_train=np.array([0, 1, 0, 1, 0, 1], np.int32),
                     x_test=np.zeros((4, 4), np.float32), y_test=np.array([0, 2, 1, 2], np.int32))
  with caplog.at_level('WARNING'):
    validation.check_against_data(config, dataset)
  assert "the test split has classes [2] that no pool sample has; no strategy can query them, so " \
         'every accuracy stays below 0.5000.' in caplog.text
  caplog.clear()
  with caplog.at_level('WARNING'):
    validation.check_against_data(config, _dataset(y_train=np.array([0, 1, 2, 0, 1, 2], np.int32)))
  assert 'no pool sample has' not in caplog.text
