"""NaN and infinity are refused where they enter, naming where: a dataset's arrays at load, files
read on demand batch by batch, a model's outputs wherever a strategy or the evaluation reads them
(with the run and the cycle), and the points of the distance-based selections."""
import os
import re
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image
import pytest

import l2r_jax
from l2r_jax import checkpoint
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import inference
from l2r_jax import protocol
from l2r_jax import state as state_lib
from l2r_jax import strategies
from l2r_jax import train
from l2r_jax.strategies import badge
from l2r_jax.strategies import coreset
from l2r_jax.strategies import simple
from examples import breast_cancer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = 100.0   # a first feature this large: the model below predicts NaN for the sample


class NaNForMarkedInputs(breast_cancer.TabularMLP):
  """The example's MLP, whose logits at inference are NaN for samples whose first feature is
  ``MARK`` or more: a model that trains on ordinary samples and breaks on some others."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    logits, features = breast_cancer.TabularMLP.__call__(self, x, train=train)
    if not train:
      logits = jnp.where(x[:, :1] >= MARK, jnp.nan, logits)
    return logits, features


l2r_jax.register_model('nan_for_marked_inputs', NaNForMarkedInputs)


# -- a dataset's arrays, at load ------------------------------------------------------------------

def _dataset(task: str, n: int = 6, n_test: int = 4) -> data_lib.Dataset:
  r = np.random.default_rng(0)
  x = r.normal(size=(n + n_test, 4, 4, 1)).astype(np.float32)
  if task == 'classification':
    y = r.integers(0, 2, n + n_test).astype(np.int32)
    return data_lib.Dataset(x[:n], y[:n], x[n:], y[n:], 2)
  if task == 'pose':
    y = r.uniform(0, 4, (n + n_test, 2, 3)).astype(np.float32)
    boxes = np.tile(np.array([[0.0, 0.0], [2.0, 2.0]], np.float32), (n_test, 1, 1))
    return data_lib.Dataset(x[:n], y[:n], x[n:], y[n:], 2, 'pose', {'head_boxes': boxes},
                            {'sigma': 1.0, 'heatmap_size': (4, 4)})
  y = r.uniform(0, 1, (n + n_test, 4, 4)).astype(np.float32)
  return data_lib.Dataset(x[:n], y[:n], x[n:], y[n:], 1, 'crowd',
                          task_params={'density_scale': 1.0})


def _set(array, index, value):
  array = np.array(array)
  array[index] = value
  return array


@pytest.mark.parametrize('task, field, index, value, named', [
    # A sample's places are named where few: a table's column, say.
    ('classification', 'x_train', (3, 1, 2), np.nan,
     r'Dataset.x_train: NaN or infinite values in 1 of 6 samples \(index 3\), at \[1, 2, 0\] '
     r'within a sample\. No model'),
    ('classification', 'x_test', ([0, 2], 0), np.inf,
     r'Dataset.x_test: NaN or infinite values in 2 of 4 samples \(indices 0, 2\)\. No model'),
    ('classification', 'x_train', 5, -np.inf, r'Dataset.x_train: .* 1 of 6 samples \(index 5\)'),
    ('pose', 'y_test', (1, 0, 0), np.inf, r'Dataset.y_test \(the test split.* 1 of 4 samples '
                                          r'\(index 1\)'),
    ('pose', 'y_test', (2, 1, 2), np.nan, r'Dataset.y_test .* 1 of 4 samples \(index 2\)'),
    ('crowd', 'y_train', (4, 0, 0), np.inf, r'Dataset.y_train \(NaN marks an unknown label; an '
                                            r'infinity is none\): .* 1 of 6 samples \(index 4\)'),
    ('crowd', 'y_test', (0, 3, 3), -np.inf, r'Dataset.y_test .* \(index 0\)'),
])
def test_check_dataset_refuses_nan_and_inf_naming_the_field_and_the_samples(task, field, index,
                                                                            value, named):
  dataset = _dataset(task)
  dataset = dataset._replace(**{field: _set(getattr(dataset, field), index, value)})
  with pytest.raises(errors.NumericsError, match=r"config.data.name='mine': " + named):
    data_lib.check_dataset(dataset, 'mine')


def test_check_dataset_refuses_a_nan_head_box_and_keeps_nan_as_the_unknown_pool_label():
  dataset = _dataset('pose')
  boxes = _set(dataset.test_meta['head_boxes'], (3, 1, 0), np.nan)
  with pytest.raises(errors.NumericsError, match=r"test_meta\['head_boxes'\]: .*\(index 3\)"):
    data_lib.check_dataset(dataset._replace(test_meta={'head_boxes': boxes}), None)
  unknown = _set(dataset.y_train, 2, np.nan)      # a pool sample not labeled yet
  assert data_lib.check_dataset(dataset._replace(y_train=unknown), None).y_train is unknown


# -- files read on demand, batch by batch ---------------------------------------------------------

def _tiff_images(folder, values):
  """Float32 TIFF files (Pillow's mode 'F', as microscopes and satellites write them), one per
  row of ``values`` ``[n, 4, 4]``, and a LazyImages reading them."""
  paths = []
  for i, image in enumerate(values):
    path = str(folder / f'{i:03d}.tif')
    Image.fromarray(np.asarray(image, np.float32), mode='F').save(path)
    paths.append(path)
  return data_lib.LazyImages(len(paths), (16,),
                             lambda i: np.asarray(Image.open(paths[i]), np.float32).reshape(16))


@pytest.fixture(scope='module')
def flat_state():
  """A target whose logits and embeddings are finite for finite inputs, on 16 features."""
  module = breast_cancer.TabularMLP(num_outputs=2, hidden=8)
  return train.create_state(jax.random.PRNGKey(0), module, optax.sgd(0.1), jnp.zeros((2, 16)))


def test_files_read_on_demand_are_refused_when_read_naming_the_split_and_index(tmp_path,
                                                                                flat_state):
  values = np.random.default_rng(0).uniform(size=(10, 4, 4))
  values[7, 2, 1] = np.nan              # one pixel of one file, as a sensor writes a dead pixel
  images = _tiff_images(tmp_path, values)
  with pytest.raises(errors.NumericsError,
                     match=r'^Dataset.x_train: NaN or infinite values in 1 of \d+ samples read '
                           r'together \(index 7\)'):
    inference.infer(flat_state, images, np.arange(10), chunk=4, split='pool')
  # Inputs given otherwise (a learner's predict): named as such.
  with pytest.raises(errors.NumericsError, match=r'^The inputs: .*\(index 7\)'):
    inference.infer(flat_state, images, np.arange(10), chunk=4)
  ok = inference.infer(flat_state, images, np.arange(7), chunk=4, split='pool')
  np.testing.assert_allclose(
      ok.prediction, flat_state.target.apply_fn({'params': flat_state.target.params},
                                                jnp.asarray(values[:7].reshape(7, 16)),
                                                train=False)[0], rtol=1e-5, atol=1e-6)


# -- a model's outputs, in every strategy that reads them and in evaluation -----------------------

@pytest.fixture(scope='module')
def marked():
  """The breast-cancer smoke experiment with the NaN-for-marked-inputs model; pool samples 5, 50
  and 300 (none of the initial labeled set) and test samples 1 and 20 marked."""
  config = breast_cancer.get_config('smoke')
  config.model.name = 'nan_for_marked_inputs'
  config.strategies = tuple(sorted(set(breast_cancer.STRATEGIES) - {'random', 'vaal'})) + (
      'oracle_loss', 'l2r_all_features')
  dataset = data_lib.load(config.data)
  initial = protocol.initial_labeled(0, dataset.pool_size, config.al.initial)
  assert not set(initial) & {5, 50, 300}
  dataset = dataset._replace(x_train=_set(dataset.x_train, ([5, 50, 300], 0), MARK),
                             x_test=_set(dataset.x_test, ([1, 20], 0), MARK))
  return experiment.make_experiment(config, dataset), initial


def _run_state(exp, strategy, labeled, cycle):
  return state_lib.RunState(strategy, 0, cycle, np.asarray(labeled, np.int64),
                            jax.random.PRNGKey(1),
                            state_lib.initial_train_state(exp, strategy, jax.random.PRNGKey(0)),
                            [])


@pytest.mark.parametrize('strategy', sorted(set(breast_cancer.STRATEGIES) - {'random', 'vaal'})
                         + ['oracle_loss', 'l2r_all_features'])
def test_every_strategy_that_reads_the_model_refuses_its_nan_outputs_naming_the_cycle(marked,
                                                                                        strategy):
  exp, initial = marked
  # The run has finished cycle 2; cycle 3's selection reads the model on the pool.
  al = _run_state(exp, strategy, initial, 2)
  name = 'Monte-Carlo dropout predictions' if strategy in ('bald', 'batchbald') else 'predictions'
  with pytest.raises(errors.NumericsError,
                     match=rf"^{strategy}, seed 0, cycle 3: the model's {name} are NaN or infinite "
                           r'on 3 of \d+ pool samples \(indices 5, 50, 300\)\. Its training '
                           r'diverged.* lower config.train.lr.*finished cycles stay saved\.$'):
    experiment.select(exp, al, 4)


def test_evaluation_refuses_nan_predictions_naming_the_cycle_and_saves_nothing(marked,
                                                                            monkeypatch):
  exp, initial = marked
  al = _run_state(exp, 'entropy', initial, -1)
  # The cycle's training as it stands (its own tests are elsewhere): the model as initialised.
  monkeypatch.setattr(experiment.cycle_lib, 'train_cycle',
                      lambda exp, runs, cycle, rngs: ([r.train_state for r in runs], [[]]))
  with pytest.raises(errors.NumericsError,
                     match=r"^entropy, seed 0, cycle 0: the model's predictions are NaN or "
                           r'infinite on 2 of 169 test samples \(indices 1, 20\)'):
    experiment.train_and_evaluate(exp, [al])


def test_predictions_for_a_person_name_the_samples_without_a_cycle(marked):
  exp, initial = marked
  state = _run_state(exp, 'entropy', initial, 0).train_state
  with pytest.raises(errors.NumericsError, match=r"^The model's predictions are NaN or infinite on "
                                                 r'1 of 3 samples \(index 1\)\. Its training'):
    inference.infer(state, exp.dataset.x_train[[0, 5, 1]], np.arange(3))


def test_the_command_line_refuses_a_model_that_breaks_at_cycle_1_and_keeps_cycle_0(tmp_path):
  config = tmp_path / 'marked.py'
  config.write_text(textwrap.dedent(f'''
      import numpy as np
      import l2r_jax
      from examples import breast_cancer
      from tests.test_numerics import MARK, NaNForMarkedInputs  # registers the model

      def load(data):
        ds = breast_cancer.load_breast_cancer(data)
        x = np.array(ds.x_train)
        x[[5, 50, 300], 0] = MARK
        return ds._replace(x_train=x)

      l2r_jax.register_dataset('breast_cancer_marked', load)

      def get_config():
        c = breast_cancer.get_config('smoke')
        c.data.name = 'breast_cancer_marked'
        c.model.name = 'nan_for_marked_inputs'
        c.strategies = ('entropy',)
        return c
  '''))
  out = subprocess.run([sys.executable, '-m', 'l2r_jax.main', f'--config={config}',
                        f'--workdir={tmp_path / "run"}'], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  assert 'Traceback' not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith(
      "l2r_jax: entropy, seed 0, cycle 1: the model's predictions are NaN or infinite on 3 of "
      '384 pool samples (indices 5, 50, 300).'), out.stderr[-3000:]
  records = checkpoint.read_results(str(tmp_path / 'run' / 'results.jsonl'))
  assert [r['cycle'] for r in records] == [0] and 0 < records[0]['value'] <= 1


# -- scores, and the points of the distance-based selections ---------------------------------------

def test_entropy_of_nan_logits_is_nan_and_the_ranking_refuses_it():
  logits = np.array([[0.0, 1.0], [np.nan, 0.0], [0.0, -np.inf], [np.inf, 0.0]], np.float32)
  entropy = np.asarray(simple.softmax_entropy(jnp.asarray(logits)))
  assert np.isnan(entropy[[1, 3]]).all() and entropy[2] == 0.0
  p = 1 / (1 + np.e)   # softmax([0, 1]) = [p, 1 - p]
  np.testing.assert_allclose(entropy[0], -p * np.log(p) - (1 - p) * np.log(1 - p), rtol=1e-6)
  state = strategies.SelectionState(
      infer=lambda idx: strategies.PoolOutputs(logits[np.asarray(idx) - 10], None, None),
      labeled=np.zeros(0, np.int64))
  with pytest.raises(errors.NumericsError, match=r"^Strategy 'entropy' scored 2 of 4 pool samples "
                                                 r'NaN \(indices 11, 13\)'):
    strategies.select(strategies.get('entropy'), state, np.arange(10, 14), 2, None)


def _k_center_float64(candidates, budget):
  """Farthest-point picks from a full float64 distance matrix, ties to the lower index."""
  d = ((candidates[:, None] - candidates[None]) ** 2).sum(-1)
  chosen, min_d = [0], d[0].copy()
  for _ in range(budget - 1):
    min_d[chosen] = -1
    chosen.append(int(np.argmax(min_d)))
    min_d = np.minimum(min_d, d[chosen[-1]])
  return chosen


@pytest.mark.parametrize('scale', [2.0**70, 2.0**-80, 1e20, 1e-25])
def test_k_center_greedy_picks_as_float64_at_magnitudes_float32_squares_overflow(scale):
  r = np.random.default_rng(0)
  points = r.normal(size=(40, 3))
  want = _k_center_float64(points, 10)
  got = coreset.k_center_greedy((points * scale).astype(np.float32), np.zeros((0, 3), np.float32),
                                10)
  assert got.tolist() == want


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf])
def test_k_center_greedy_refuses_nan_and_inf_points_by_name(value):
  candidates = np.arange(8, dtype=np.float32).reshape(4, 2)
  with pytest.raises(errors.NumericsError, match=r'^k_center_greedy, candidates: NaN or infinite '
                                                 r'values in 1 of 4 points \(index 2\)'):
    coreset.k_center_greedy(_set(candidates, (2, 0), value), np.zeros((0, 2), np.float32), 3)
  with pytest.raises(errors.NumericsError, match=r'^k_center_greedy, centers: .*1 of 1 points'):
    coreset.k_center_greedy(candidates, np.full((1, 2), value, np.float32), 3)


def test_kmeans_plus_plus_is_unchanged_by_a_power_of_two_and_refuses_nan():
  r = np.random.default_rng(1)
  points = r.normal(size=(30, 5)).astype(np.float32)
  key = jax.random.PRNGKey(3)
  want = np.asarray(badge.kmeans_plus_plus(points, 8, key))
  for scale in (2.0**80, 2.0**-90):
    assert np.asarray(badge.kmeans_plus_plus(points * np.float32(scale), 8, key)).tolist() == (
        want.tolist())
  with pytest.raises(errors.NumericsError, match=r'^badge, gradient embeddings: .*\(index 4\)'):
    badge.kmeans_plus_plus(_set(points, (4, 0), np.nan), 8, key)


def test_a_nan_training_metric_names_the_likelier_cause_by_when_it_came():
  from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
  from l2r_jax import cycle  # pylint: disable=g-import-not-at-top
  run = SimpleNamespace(strategy='l2r', seed=0)
  nan = [{'loss': float('nan')}]
  with pytest.raises(errors.NumericsError, match=re.escape(
      "l2r, seed 0, cycle 0, epoch 0: training produced {'loss': nan}. The run stops here; nothing "
      "of it was saved. In its first epoch, the cause is more often the model's own arithmetic")):
    cycle._check_finite([run], 0, [nan])
  with pytest.raises(errors.NumericsError, match=re.escape(
      "l2r, seed 0, cycle 2, epoch 1: training produced {'loss': nan}. The run stops here; the "
      'checkpoint of cycle 1 is kept. Lower config.train.lr (or config.loss_module.lr')):
    cycle._check_finite([run], 2, [[{'loss': 1.0}] + nan])
  cycle._check_finite([run], 2, [[{'loss': 1.0}]])   # finite: nothing to say
