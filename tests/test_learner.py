"""Active learning on a pool without labels: query, teach, resume, and labels from files."""
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from unittest import mock

import ml_collections
import numpy as np
from PIL import Image
import pytest

from examples import breast_cancer
import l2r_jax
from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax import experiment
from l2r_jax import label
from l2r_jax import answers as answers_lib
from l2r_jax import learner as learner_lib
from l2r_jax import strategies
from l2r_jax import workdir as workdir_lib
import smoke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _truth():
  """The example's pool labels, which its ':unlabeled' variant hides: the simulated annotator."""
  data = breast_cancer.get_config('smoke').data
  return breast_cancer.load_breast_cancer(data).y_train


def _config(strategy='l2r', **overrides):
  config = breast_cancer.get_config('unlabeled_smoke')
  config.strategies = (strategy,)
  return smoke.override(config, **overrides)


class _Killed(Exception):
  pass


def _session(workdir, rounds, stop_between_query_and_answer):
  """A session of ``rounds`` queries answered by the annotator; with ``stop_...``, every query is
  followed by a new learner (as a new process would make) before its answers, and the second query
  is first killed after its round's checkpoint and before the query is saved."""
  truth = _truth()
  learner = learner_lib.ActiveLearner(_config(), workdir)
  asked = []
  for k in range(rounds):
    if stop_between_query_and_answer and k == 1:
      def killed(*args):
        raise _Killed
      learner._write_query = killed  # pylint: disable=protected-access
      with pytest.raises(_Killed):
        learner.query()
      learner.close()
      learner = learner_lib.ActiveLearner(_config(), workdir)
      assert learner.rounds == 1 and not len(learner.pending)   # trained, not asked
    query = learner.query()
    if stop_between_query_and_answer:
      learner.close()
      learner = learner_lib.ActiveLearner(_config(), workdir)
      np.testing.assert_array_equal(learner.pending, query)
      np.testing.assert_array_equal(learner.query(), query)   # asked again, not a new query
    asked.append(query)
    learner.teach(query, truth[query])
  learner.train()
  with learner:
    return asked, learner.labeled, learner.results


def test_a_session_stopped_between_queries_and_answers_ends_as_an_uninterrupted_one(tmp_path):
  asked, (indices, labels), results = _session(str(tmp_path / 'straight'), 3, False)
  asked_r, (indices_r, labels_r), results_r = _session(str(tmp_path / 'stopped'), 3, True)
  for a, b in zip(asked, asked_r):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(indices, indices_r)
  np.testing.assert_array_equal(labels, labels_r)
  assert [(r['num_labeled'], r['value']) for r in results] == [
      (r['num_labeled'], r['value']) for r in results_r]
  # 16 random, then 16 of the strategy twice; each round trained on every label known.
  assert [len(a) for a in asked] == [16, 16, 16] and len(set(indices.tolist())) == 48
  assert [r['num_labeled'] for r in results] == [16, 32, 48]
  assert np.array_equal(labels, _truth()[indices])
  # Every answer is on disk, once, in the order taught.
  with open(tmp_path / 'stopped' / learner_lib.ANSWERS_FILE) as f:
    saved = [json.loads(line) for line in f]
  assert [r['index'] for r in saved] == indices.tolist()



def test_a_trained_on_answer_lost_from_the_log_is_left_out_of_the_next_round(tmp_path):
  # The log's last line cut off (a kill while it was written, or a hand edit) after its round
  # trained on it: the label is unknown again, and the next round trains without it.
  truth = _truth()
  workdir = str(tmp_path / 'work')
  with learner_lib.ActiveLearner(_config(), workdir) as learner:
    for _ in range(2):
      query = learner.query()
      learner.teach(query, truth[query])
    learner.train()
    lost = int(learner.labeled[0][-1])
  log = tmp_path / 'work' / learner_lib.ANSWERS_FILE
  log.write_bytes(log.read_bytes()[:-10])
  with learner_lib.ActiveLearner(_config(), workdir) as learner:
    assert not learner.is_labeled(lost)
    record = learner.train()
    assert record is not None and record['num_labeled'] == 31
    trained_on = learner._run.state.labeled   # pylint: disable=protected-access
  assert lost not in trained_on.tolist() and len(trained_on) == 31


def test_answers_that_cannot_be_taught_are_refused_whole_and_nothing_is_lost(tmp_path):
  truth = _truth()
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path)) as learner:
    query = learner.query()
    learner.teach(query[:4], truth[query[:4]])
    answers = (tmp_path / learner_lib.ANSWERS_FILE).read_bytes()
    free = int(learner.pending[0])
    with pytest.raises(errors.LabelError) as refused:
      learner.teach([free, free, 400, -1, int(query[0]), query[5], 7.0],
                    [1, 1, 0, 0, 0, 2, 1])
    assert str(refused.value).splitlines() == [
        '6 problems in the answers; none of them was taught:',
        f'answer 2, index {free}: answered twice (also answer 1).',
        'answer 3: index 400 is not a pool sample (whole numbers 0 .. 399).',
        'answer 4: index -1 is not a pool sample (whole numbers 0 .. 399).',
        f'answer 5, index {query[0]}: labeled already (as {truth[query[0]]}, '
        f'{learner.dataset.class_names[truth[query[0]]]!r}); correct a label with relabel '
        '(label answer --relabel), never by answering again.',
        f'answer 6, index {query[5]}: label 2 is not a class: 0 .. 1.',
        'answer 7: index 7.0 is not a pool sample (whole numbers 0 .. 399).']
    with pytest.raises(errors.LabelError, match='3 indices and 2 labels'):
      learner.teach([1, 2, 3], [0, 1])
    with pytest.raises(errors.LabelError, match=r"label 'benignant' is not a class \(an index 0 "
                                                r"\.\. 1 or a name of \['malignant', 'benign'\]\)\.$"):
      learner.teach([free], ['benignant'])
    # A disk that fills during the write: none of the answers is saved, or taught.
    labeled = learner.labeled
    write, room = os.write, [150]   # bytes left for the answers: part of the second one's line

    def full(fd, data):
      if b'"pool"' not in bytes(data):   # not the answers (the lock's record)
        return write(fd, data)
      if room[0] <= 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      written = write(fd, data[:room[0]])
      room[0] -= written
      return written

    with mock.patch.object(os, 'write', full):
      with pytest.raises(errors.LabelError, match='No space left on device.*none of them '
                                                       'was taught'):
        learner.teach(query[4:8], truth[query[4:8]])
    assert (tmp_path / learner_lib.ANSWERS_FILE).read_bytes() == answers
    np.testing.assert_array_equal(learner.labeled[0], labeled[0])
    np.testing.assert_array_equal(learner.labeled[1], labeled[1])
    np.testing.assert_array_equal(learner.pending, query[4:])
  # Regression labels: the task's shape, finite.
  pose = data_lib.Dataset(np.zeros((2, 4), np.float32), np.full((2, 3, 3), np.nan, np.float32),
                          np.zeros((0, 4), np.float32), np.zeros((0, 3, 3), np.float32), 3, 'pose')
  assert learner_lib.label_problem(pose, np.zeros((3, 3))) is None
  assert learner_lib.label_problem(pose, np.zeros((2, 3))) == (
      'label has shape (2, 3); the pose task needs (3, 3).')
  assert learner_lib.label_problem(pose, [[0, 0, np.inf]] * 3) == (
      'label has NaN or infinite values.')


def test_a_class_is_taught_by_its_name_as_by_its_index(tmp_path):
  truth = _truth()
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path)) as learner:
    names = learner.dataset.class_names
    assert names == ('malignant', 'benign')
    query = learner.query()
    # A name in another case is the class's (no other class's name differs only in case).
    assert learner.teach(query[:3], [names[y].upper() for y in truth[query[:3]]]) == 3
    np.testing.assert_array_equal(learner.labeled[1], truth[query[:3]])
    assert learner.has_held(int(query[0]), names[truth[query[0]]])
    assert not learner.has_held(int(query[0]), names[1 - truth[query[0]]])
    # The same answers again, by name or by index: taught already, left out.
    assert learner.teach(query[:3], [names[y] for y in truth[query[:3]]], skip_taught=True) == 0
    assert learner.teach(query[:2], truth[query[:2]], skip_taught=True) == 0
    learner.relabel([int(query[0])], [names[1 - truth[query[0]]]])
    assert learner.labeled[1][0] == 1 - truth[query[0]]
  lines = [json.loads(l) for l in open(tmp_path / learner_lib.ANSWERS_FILE)]
  assert [l['label'] for l in lines] == [names[y] for y in truth[query[:3]]] + [
      names[1 - truth[query[0]]]]


def test_samples_set_aside_are_never_asked_again_until_taken_back(tmp_path):
  # A picture no class fits: set aside, the query no longer waits for it and none asks it again.
  truth = _truth()
  with learner_lib.ActiveLearner(_config('entropy'), str(tmp_path)) as learner:
    first = learner.query()
    n = len(first)
    assert learner.set_aside(first) == n and not len(learner.pending)
    again = learner.query()          # nothing labeled yet: a random draw again, passing them over
    assert not set(again) & set(first) and len(again) == n
    assert learner.teach(again[:-2], truth[again[:-2]]) == n - 2
    assert learner.set_aside(again[-2:]) == 2 and not len(learner.pending)
    assert learner.status()['set_aside'] == n + 2
    with pytest.raises(errors.LabelError) as refused:
      learner.set_aside([int(again[0]), 400])
    assert str(refused.value).splitlines() == [
        '2 problems in the samples to set aside; none of them was:',
        f'sample 1, index {again[0]}: labeled already (as {truth[again[0]]}, '
        f"{learner.dataset.class_names[truth[again[0]]]!r}); a label known is corrected with "
        'relabel, never set aside.',
        'sample 2: index 400 is not a pool sample (whole numbers 0 .. 399).']
    picked = learner.query()         # trains on what was taught, then entropy's picks
    assert learner.rounds == 1 and not set(picked) & set(learner.set_aside_samples)
  with learner_lib.ActiveLearner(_config('entropy'), str(tmp_path)) as learner:   # a new process
    np.testing.assert_array_equal(learner.set_aside_samples, np.sort(
        np.concatenate([first, again[-2:]])))
    assert learner.set_aside(first[:2], aside=False) == 2   # taken back: asked again later
    assert learner.teach([int(first[2])], [truth[first[2]]]) == 1   # taught: no longer aside
    assert len(learner.set_aside_samples) == n - 1 and not learner.is_set_aside(int(first[2]))
  saved = json.loads((tmp_path / 'set_aside.json').read_text())
  assert {s['index'] for s in saved['samples']} == set(first[2:].tolist()) | set(
      again[-2:].tolist())
  assert all(s['id'] == learner.pool.ids[s['index']] for s in saved['samples'])
  # label status without the config reads as much from the files: answers, set aside, pending.
  with learner_lib.ActiveLearner(_config('entropy'), str(tmp_path)) as learner:
    st = learner.status()
  assert len(st['pending']) == len(picked) and st['set_aside'] == n - 1
  lines = label.status_from_files(str(tmp_path)).splitlines()
  assert lines[0] == (f'{tmp_path}, as its files stand: {n - 1} answers and 0 corrections in '
                      f'answers.jsonl, {n - 1} set aside, 1 round trained.')
  assert lines[1] == (f'pending query: {len(picked)} to answer (pool indices '
                      f'{", ".join(map(str, st["pending"]))}).')


def test_a_learner_refuses_what_it_cannot_do(tmp_path):
  with pytest.raises(errors.ConfigError, match='an active learner queries with one strategy'):
    learner_lib.ActiveLearner(_config('random', strategies=('random', 'l2r')), str(tmp_path))
  with pytest.raises(errors.ConfigError, match="'oracle_loss',\\) reads the labels"):
    learner_lib.ActiveLearner(_config('oracle_loss'), str(tmp_path / 'oracle'))
  assert not os.path.exists(tmp_path / 'oracle')
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path / 'w')) as learner:
    with pytest.raises(errors.LabelError, match=r'^n=500: a query asks for 1 .. 400 samples '
                       r'.*: ask for that many \(label query --n, or query\(n\)\)\.$'):
      learner.query(500)
    with pytest.raises(errors.LabelError, match='the model has not trained yet: answer a query'):
      learner.predict(learner.dataset.x_test)
  with learner_lib.ActiveLearner(_config('random', **{'al.initial': 1000}),
                                 str(tmp_path / 'big')) as learner:
    with pytest.raises(errors.LabelError, match=r'config.al.initial=1000: a query asks for '
                       r'1 .. 400 samples.*: ask for a number \(label query --n, or query\(n\)\), '
                       r'or set config.al.initial within that with a new workdir'):
      learner.query()
  # A pool whose every sample has a label: nothing to ask, and no workdir made for it.
  labeled = breast_cancer.load_breast_cancer(breast_cancer.get_config().data)
  with pytest.raises(errors.DataNotFoundError, match='every one of the 400 pool samples has a '
                     'label; an active learner needs samples to ask about'):
    learner_lib.ActiveLearner(_config('random'), str(tmp_path / 'labeled'), dataset=labeled)
  assert not os.path.exists(tmp_path / 'labeled')
  # Another pool, other given labels, another strategy in the same workdir: refused.
  pool = breast_cancer.load_breast_cancer(breast_cancer.get_config('unlabeled').data)
  for config, dataset, named in [
      (_config('random'), pool._replace(x_train=pool.x_train[:300], y_train=pool.y_train[:300]),
       'data pool_size: 400 -> 300'),
      (_config('random'), pool._replace(x_train=pool.x_train[::-1].copy()), 'data pool_sha256'),
      (_config('random'), pool._replace(y_train=np.where(np.arange(400) == 3, 1, -1).astype(
          np.int32)), 'data given_labels_sha256'),
      (_config('entropy'), None, 'data strategy: "random" -> "entropy"')]:
    with pytest.raises(errors.WorkdirError, match=named):
      learner_lib.ActiveLearner(config, str(tmp_path / 'w'), dataset)
  with pytest.raises(errors.ConfigError, match="Dataset.class_names names 'benign' twice"):
    learner_lib.ActiveLearner(_config('random'), str(tmp_path / 'named'),
                              pool._replace(class_names=('benign', 'benign')))
  assert not os.path.exists(tmp_path / 'named')
  with pytest.raises(errors.ConfigError, match='give x_test and y_test together'):
    learner_lib.unlabeled_pool(pool.x_train, 2, x_test=pool.x_test)
  with pytest.raises(errors.ConfigError, match=r'The dataset given: Dataset.y_train has shape '
                                               r'\(400, 2\)'):
    learner_lib.ActiveLearner(_config('random'), str(tmp_path / 'w2'),
                              pool._replace(y_train=np.zeros((400, 2), np.int32)))


def test_answer_files_name_samples_by_index_or_id_and_refuse_what_is_not_a_label(tmp_path):
  truth = _truth()
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path / 'w')) as learner:
    query = learner.query()
    learner.teach(query[:1], truth[query[:1]])
    a, b, c = (int(i) for i in query[1:4])
    names = learner.dataset.class_names
    # A pool without files: each sample's id is a fingerprint of its input.
    x = learner.dataset.x_train
    assert learner.pool.ids[a] == 'sha256:' + hashlib.sha256(x[a].tobytes()).hexdigest()[:16]
    ids = learner.pool.ids
    # A spreadsheet's CSV: a byte-order mark, ids only.
    answers = tmp_path / 'answers.csv'
    answers.write_text(f'\ufeffid,label\n{ids[a]},{names[truth[a]]}\n{ids[b]},{truth[b]}\n'
                       f'{ids[c]},\n', encoding='utf-8')
    assert label.read_answers(str(answers), learner) == ([a, b], [truth[a], truth[b]], [], set())
    lines = str(tmp_path / 'answers.jsonl')
    with open(lines, 'w') as f:
      f.write(f'{{"index": {a}, "label": 0.5}}\n{{"index": {int(query[0])}, '
              f'"label": {{"x": 1}}}}\n{{"index": {b}, "label": true}}\n')
    assert label.read_answers(lines, learner)[2] == [
        f'{lines}, line 1, index {a}: label 0.5 is not a class index (whole numbers 0 .. 1).',
        f"{lines}, line 2, index {query[0]}: label {{'x': 1}} is not a class index (whole "
        'numbers 0 .. 1).',
        f'{lines}, line 3, index {b}: label True is not a class index (whole numbers 0 .. 1).']


def test_a_damaged_answers_file_refuses_the_learner_naming_the_line(tmp_path):
  truth = _truth()
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path)) as learner:
    query = learner.query()
    learner.teach(query[:2], truth[query[:2]])
  path = tmp_path / learner_lib.ANSWERS_FILE
  good = path.read_text()
  # A line cut off by a kill (no newline) leaves the log for a file beside it; the next answer is
  # not glued to it.
  for cut in ('{"index": 5, "lab', '{"index": 6, "label": 1'):
    path.write_text(path.read_text() + cut)
    with learner_lib.ActiveLearner(_config('random'), str(tmp_path)) as learner:
      assert len(learner.labeled[0]) == 2
  assert (tmp_path / 'answers.cut_off.txt').read_text() == (
      '{"index": 5, "lab\n{"index": 6, "label": 1\n')
  with learner_lib.ActiveLearner(_config('random'), str(tmp_path)) as learner:
    learner.teach(query[2:3], truth[query[2:3]])
  assert path.read_text().count('\n') == 3 and path.read_text().startswith(good)
  first, second, third = path.read_text().splitlines(True)
  mismatch = json.loads(second)
  mismatch['index'] = int(query[5])
  for lines, named in [
      ([first, '{"index": 5, "lab\n', second, third], 'line 2: not JSON'),
      ([first, second, third, first], f'line 4, index {query[0]}: answered twice .also line 1.'),
      ([first, '{"index": 3, "label": 7}\n', second], 'line 2, index 3: label 7 is not a class'),
      ([first, second, '{"label": 1}\n', third], r'line 3: give \{"index": ..., "label": ...\}'),
      ([first, json.dumps(mismatch) + '\n', third],
       f"line 2: index {query[5]} is 'sha256:.*' in this pool, but the answer names id "
       f"'{mismatch['id']}' .index {query[1]}.; index and id of one answer disagree")]:
    path.write_text(''.join(lines))
    with pytest.raises(errors.LabelError, match=f'{path}: 1 problem; it holds every answer '
                                                     f'taught.*\n{path}, {named}'):
      learner_lib.ActiveLearner(_config('random'), str(tmp_path))
    assert path.read_text() == ''.join(lines)      # refused, not mended: nothing is dropped
  # Answers through a link, or without the record of their experiment: refused, nothing touched.
  path.write_text(first + second + third)
  shutil.move(path, tmp_path / 'kept.jsonl')
  os.symlink(tmp_path / 'kept.jsonl', path)
  with pytest.raises(errors.WorkdirError, match=f'{path} is a symbolic link'):
    learner_lib.ActiveLearner(_config('random'), str(tmp_path))
  assert (tmp_path / 'kept.jsonl').read_text() == first + second + third
  os.remove(path)
  shutil.move(tmp_path / 'kept.jsonl', path)
  os.remove(tmp_path / workdir_lib.IDENTITY_FILE)
  with pytest.raises(errors.WorkdirError, match='holds answers, but .*experiment.json'):
    learner_lib.ActiveLearner(_config('random'), str(tmp_path))
  assert not (tmp_path / workdir_lib.IDENTITY_FILE).exists()


# Every strategy for classification but the paper's Fig. 5 ablation and the diagnostic that reads
# the labels.
CLASSIFICATION = sorted(name for name, s in strategies.REGISTRY.items()
                        if not s.reads_labels and name != 'l2r_all_features'
                        and (s.tasks is None or 'classification' in s.tasks))


@pytest.mark.slow
def test_the_worked_example_simulated_and_answered_by_a_person_gives_the_same_runs(tmp_path):
  """docs/your_data.md's example: a user's MLP (no BatchNorm) on a dataset the project does not
  ship, every strategy for classification, first as a simulation, then as learners whose queries a
  person answers (here with the true labels): each learner's rounds are the simulation's cycles,
  the same picks and the same test accuracy, because a learner is a run of the driver whose
  labels come from ``teach``."""
  config = breast_cancer.get_config('smoke')
  assert set(config.strategies) == set(CLASSIFICATION) and len(CLASSIFICATION) >= 13
  records = experiment.run(config, str(tmp_path / 'sim'))
  simulated = {(r['strategy'], r['cycle']): r for r in records}
  assert len(simulated) == 2 * len(CLASSIFICATION)
  truth = _truth()
  for name in CLASSIFICATION:
    with learner_lib.ActiveLearner(_config(name), str(tmp_path / name)) as learner:
      first = learner.query()
      learner.teach(first, truth[first])
      picks = learner.query()                      # trains, then the strategy's picks
      assert len(picks) == 16 and len(set(picks.tolist())) == 16, name
      assert not set(picks.tolist()) & set(first.tolist()), name
      scores = learner.last_query['scores']
      assert (scores is None) == (strategies.get(name).score is None), name
      if scores is not None:                       # the highest first
        assert scores == sorted(scores, reverse=True), name
      learner.teach(picks, truth[picks])
      learner.train()
      for r in learner.results:
        expected = simulated[(name, r['cycle'])]
        assert (r['num_labeled'], r['value'], r['spearman']) == (
            expected['num_labeled'], expected['value'], expected['spearman']), (name, r)
      assert learner.predict(learner.dataset.x_test[:5], preprocessed=True).probabilities.shape == (
          5, 2)


def _image_folder(root, rng):
  """Ten unlabeled 8x8 images, bright or dark, and a test split of both classes."""
  def save(path, bright):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    base = 200 if bright else 40
    pixels = np.clip(base + rng.integers(-30, 30, (8, 8, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
  for k in range(3):
    save(root / 'test' / 'bright' / f't{k}.png', True)
    save(root / 'test' / 'dark' / f'u{k}.png', False)
  brightness = {}
  for k in range(10):
    brightness[f'unlabeled/u{k:02d}.png'] = bool(k % 2)
    save(root / 'unlabeled' / f'u{k:02d}.png', k % 2)
  return brightness


CONFIG_FILE = '''
from l2r_jax import defaults

def get_config():
  c = defaults.get_config()
  c.data = dict(name='image_folder', root={root!r}, image_size=(8, 8))
  c.model.name = 'cnn2d'
  c.strategies = ('entropy',)
  c.seeds = (0,)
  c.al.update(initial=4, budget=4, cycles=3)
  c.al.subset = None
  c.train.update(batch_size=4, epochs=2, lr_boundaries=())
  c.quiet = True
  return c
'''


def test_the_labels_written_out_are_every_label_known_and_teach_them_again_by_id(tmp_path):
  root = tmp_path / 'images'
  brightness = _image_folder(root, np.random.default_rng(0))
  Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(root / 'test' / 'dark' / 'g.png')
  os.makedirs(root / 'labeled' / 'dark')
  for name in ('g0.png', 'g1.png'):   # two given with the folder, as dark
    Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(root / 'labeled' / 'dark' / name)
  names = {}
  exec(CONFIG_FILE.format(root=str(root)), names)  # pylint: disable=exec-used
  config = names['get_config']()
  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    index = learner.pool.index_of
    truth = {k: 'bright' if v else 'dark' for k, v in brightness.items()}
    answered = ['unlabeled/u00.png', 'unlabeled/u03.png', 'unlabeled/u05.png']
    learner.teach([index(k) for k in answered], [truth[k] for k in answered])
    learner.relabel([index('unlabeled/u05.png'), index('labeled/dark/g1.png')], ['dark', 'bright'])
    learner.set_aside([index('unlabeled/u07.png')])
    for name in ('labels.csv', 'labels.jsonl'):
      counts = label.write_labels(learner, str(tmp_path / name))
      assert counts == {'given': 1, 'answered': 2, 'corrected': 2, 'set aside': 1}
    records = [json.loads(line) for line in open(tmp_path / 'labels.jsonl')]
    table = (tmp_path / 'labels.csv').read_text(encoding='utf-8-sig').splitlines()
    fingerprint = learner.pool.fingerprint
  expected = [   # in the pool's order: labeled/ first, then unlabeled/
      ('labeled/dark/g0.png', 'dark', 'given'), ('labeled/dark/g1.png', 'bright', 'corrected'),
      ('unlabeled/u00.png', 'dark', 'answered'), ('unlabeled/u03.png', 'bright', 'answered'),
      ('unlabeled/u05.png', 'dark', 'corrected'), ('unlabeled/u07.png', 'set aside', 'set aside')]
  ids = sorted(['labeled/dark/g0.png', 'labeled/dark/g1.png'] + list(brightness))
  content = {k: hashlib.sha256((root / k).read_bytes()).hexdigest()[:16] for k in ids}
  assert table == ['index,id,file,label,source,correction,pool,file_sha256'] + [
      f'{ids.index(k)},{k},{root / k},{y},{source},{"true" if k.endswith("g1.png") else ""},'
      f'{fingerprint},{content[k] if source != "set aside" else ""}' for k, y, source in expected]
  assert [(r['id'], r['label'], r['source'], r['pool'], r.get('correction', False))
          for r in records] == [(k, y, source, fingerprint, k == 'labeled/dark/g1.png')
                                for k, y, source in expected]   # a given label's correction
  assert all(r['file_sha256'] == hashlib.sha256((root / r['id']).read_bytes()).hexdigest()[:16]
             for r in records if r['source'] != 'set aside')
  # Another workdir takes either back whole: the same labels, corrections and set aside.
  def state(learner):
    return (sorted((learner.pool.ids[i], learner.dataset.class_names[y])
                   for i, y in zip(*learner.labeled)),
            learner.set_aside_samples.tolist(), learner.corrected_samples.tolist())

  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    before = state(learner)
  for name in ('labels.jsonl', 'labels.csv'):
    with learner_lib.ActiveLearner(config, str(tmp_path / name.replace('.', '-'))) as learner:
      done = label.answer_file(learner, str(tmp_path / name))
      assert (done['taught'], done['corrected'], len(done['set_aside'])) == (3, 1, 1)
      assert state(learner) == before[:2] + ([index('labeled/dark/g1.png')],)
  # A picture replaced under its name since: its label is refused, as the log's would be.
  Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(root / 'unlabeled' / 'u03.png')
  for name in ('labels.jsonl', 'labels.csv'):
    with learner_lib.ActiveLearner(config, str(tmp_path / f'replaced-{name}')) as learner:
      with pytest.raises(errors.LabelError, match="'unlabeled/u03.png' holds another file than"):
        label.answer_file(learner, str(tmp_path / name))
  with learner_lib.ActiveLearner(config, str(tmp_path / 'table')) as learner:
    # An earlier file of labels is replaced; any other file is never written over.
    (tmp_path / 'notes.csv').write_text('who,what\nana,dogs\n')
    with pytest.raises(errors.ConfigError, match='is not a file of labels this command wrote'):
      label.write_labels(learner, str(tmp_path / 'notes.csv'))
    assert (tmp_path / 'notes.csv').read_text() == 'who,what\nana,dogs\n'
    with pytest.raises(errors.ConfigError, match=r'give a file named \.csv .* or \.jsonl'):
      label.write_labels(learner, str(tmp_path / 'labels.txt'))
    assert label.write_labels(learner, str(tmp_path / 'labels.jsonl')) == {   # replaced
        'given': 2, 'answered': 0, 'corrected': 0, 'set aside': 0}


@pytest.mark.parametrize('inside', ['unlabeled/session', 'test/session', 'link/session'])
def test_a_workdir_among_the_images_is_never_read_as_images(tmp_path, inside):
  root = tmp_path / 'images'
  _image_folder(root, np.random.default_rng(0))
  (tmp_path / 'elsewhere').mkdir()
  os.symlink(tmp_path / 'elsewhere', root / 'unlabeled' / 'link')   # a folder of photos, linked
  names = {}
  exec(CONFIG_FILE.format(root=str(root)), names)  # pylint: disable=exec-used
  workdir = str(root / 'unlabeled' / inside) if inside.startswith('link') else str(root / inside)
  for _ in range(2):    # the second finds the first's experiment.json, query and contact sheet
    with learner_lib.ActiveLearner(names['get_config'](), workdir) as learner:
      assert learner.pool_size == 10 and learner.dataset.class_names == ['bright', 'dark']
      assert len(learner.dataset.y_test) == 6
      learner.query()
      label.write_query(learner, os.path.join(workdir, 'query'))
  assert os.path.isfile(os.path.join(workdir, 'query', 'contact_sheet.png'))


def test_an_answer_never_passes_to_another_file_put_under_its_name(tmp_path):
  root = tmp_path / 'images'
  _image_folder(root, np.random.default_rng(0))
  names = {}
  exec(CONFIG_FILE.format(root=str(root)), names)  # pylint: disable=exec-used
  work = tmp_path / 'work'
  with learner_lib.ActiveLearner(names['get_config'](), str(work)) as learner:
    first = learner.pool.index_of('unlabeled/u01.png')
    learner.teach([first], [0])
  answered = json.loads((work / learner_lib.ANSWERS_FILE).read_text())
  photo = root / 'unlabeled' / 'u01.png'
  assert answered['file_sha256'] == hashlib.sha256(photo.read_bytes()).hexdigest()[:16]
  original = photo.read_bytes()
  Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(photo)   # another photo, the same name
  # In the learner's own log: the answer left out (its sample asked again), said once, and kept.
  with mock.patch.object(answers_lib.logging, 'warning') as warned:
    with learner_lib.ActiveLearner(names['get_config'](), str(work)) as learner:
      assert not learner.is_labeled(first) and not len(learner.labeled[0])
      learner.status()
  assert warned.call_count == 1 and warned.call_args[0][1] == (
      f"{work / learner_lib.ANSWERS_FILE}, line 1, index {first}: 'unlabeled/u01.png' holds another file than the one answered: the "
      'answer is left out, and the sample asked again (restore the file to have it back).')
  assert json.loads((work / learner_lib.ANSWERS_FILE).read_text()) == answered
  # Carried into a new workdir, the answer is refused alike.
  with learner_lib.ActiveLearner(names['get_config'](), str(tmp_path / 'new')) as learner:
    indices, _, problems, _ = label.read_answers(str(work / learner_lib.ANSWERS_FILE), learner)
    assert not indices and 'holds another file than the one answered' in problems[0]
  photo.write_bytes(original)
  with learner_lib.ActiveLearner(names['get_config'](), str(work)) as learner:
    assert learner.labeled[0].tolist() == [first]
    # Replaced while the session is open: which picture an answer is for cannot be told.
    second = learner.pool.index_of('unlabeled/u03.png')
    (root / 'unlabeled' / 'u03.png').write_bytes(original)
    with pytest.raises(errors.LabelError, match=(
        f"answer 1, index {second}: 'unlabeled/u03.png' holds another file than when the pool "
        'was loaded .*Start again')):
      learner.teach([second], [1])
    assert learner.labeled[0].tolist() == [first]
  with learner_lib.ActiveLearner(names['get_config'](), str(work)) as learner:
    learner.teach([second], [1])       # the pool read anew: the picture there now is answered
    assert json.loads((work / learner_lib.ANSWERS_FILE).read_text().splitlines()[-1])[
        'file_sha256'] == answered['file_sha256']      # the same bytes as u01.png's
  # A photo added: another pool, and the way to take the answers along.
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'unlabeled' / 'new.png')
  with pytest.raises(errors.WorkdirError, match=(
      r'Differences: .*data pool_ids_sha256: .* The pool changed \(samples added, removed or '
      r'renamed\): its answers go with their samples into a new workdir, by id: python -m '
      r'l2r_jax.label answer --config=\.\.\. --workdir=NEW --answers=' +
      re.escape(str(work / learner_lib.ANSWERS_FILE)))):
    learner_lib.ActiveLearner(names['get_config'](), str(work))


@pytest.mark.slow
def test_labels_from_files_on_an_image_folder_carried_by_id_when_it_changes(tmp_path):
  root = tmp_path / 'images'
  brightness = _image_folder(root, np.random.default_rng(0))
  config_path = tmp_path / 'my_config.py'
  config_path.write_text(CONFIG_FILE.format(root=str(root)))
  workdir = tmp_path / 'work'
  command = [sys.executable, '-m', 'l2r_jax.label', f'--config={config_path}',
             f'--workdir={workdir}']

  def run(*extra):
    return subprocess.run([*command, *extra], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)

  # Nothing is labeled: the first query is a random draw of config.al.initial.
  asked = run('query')
  assert asked.returncode == 0, asked.stderr
  assert '4 samples to label (random, after 0 labels)' in asked.stdout
  assert (f'python -m l2r_jax.label answer --config={config_path} --workdir={workdir} '
          f'--answers={workdir / "query" / "query.csv"}') in asked.stdout
  raw = (workdir / 'query' / 'query.csv').read_bytes()
  assert raw.startswith(b'\xef\xbb\xbf')   # UTF-8, as a spreadsheet is told by the mark
  rows = raw.decode('utf-8-sig').splitlines()
  assert rows[0] == 'index,id,file,score,label' and len(rows) == 5
  sheet = Image.open(workdir / 'query' / 'contact_sheet.png')
  assert sheet.size[0] > 100 and sheet.size[1] > 50
  # The person answers three by class name, leaves one blank, and makes two mistakes in a file.
  answered = []
  for k, row in enumerate(rows[1:]):
    index, sample_id, path, score, _ = row.split(',')
    assert path == str(root / sample_id) and score == ''   # a random draw has no scores
    answered.append(','.join([index, sample_id, path, score,
                              ('bright' if brightness[sample_id] else 'dark') if k < 3 else '']))
  good = tmp_path / 'answers.csv'
  good.write_text('\n'.join([rows[0], *answered]) + '\n')
  bad = tmp_path / 'answers.jsonl'
  bad.write_text('{"id": "unlabeled/u00.png", "label": "grey"}\n{"index": 3\n'
                 '{"id": "nowhere.png", "label": "dark"}\n')
  refused = run('answer', f'--answers={bad}')
  assert refused.returncode == 2 and 'Traceback' not in refused.stderr
  assert refused.stderr.splitlines() == [
      f'l2r_jax.label: {bad}: 3 problems; nothing of it was taught:',
      f"{bad}, line 1, index 0: label 'grey' is not a class (an index 0 .. 1 or a name of "
      "['bright', 'dark']).",
      f'{bad}, line 2: not JSON (Expecting \',\' delimiter, column 12).',
      f"{bad}, line 3: id 'nowhere.png' is not a sample of this pool."]
  assert not (workdir / learner_lib.ANSWERS_FILE).exists()
  # Classes typed into the model's column, the label column left empty: nothing read, and said.
  unfilled = run('answer', f'--answers={workdir / "query" / "query.csv"}')
  assert unfilled.returncode == 0 and unfilled.stderr.splitlines()[-1].startswith(
      f'note: {workdir / "query" / "query.csv"} holds no answer yet: every row\'s label is empty')
  taught = run('answer', f'--answers={good}')
  assert taught.returncode == 0, taught.stderr
  assert ('3 labels taught (3 in all); 1 of the query left to answer: 7 (unlabeled/u07.png)'
          in taught.stdout)
  again = run('query', '--n=2')    # what is left of the query, and why not 2 new ones
  assert again.returncode == 0, again.stderr
  assert again.stdout.startswith('--n=2 is not used: 1 sample of the last query is not answered '
                                 'yet') and '1 sample to label' in again.stdout
  assert '("set aside" for an image no class fits: never asked again)' in again.stdout
  # The one left fits no class: set aside, in the file's label column.
  aside = tmp_path / 'aside.csv'
  aside.write_text('id,label\nunlabeled/u07.png, Set Aside\n')
  set_aside = run('answer', f'--answers={aside}')
  assert set_aside.returncode == 0, set_aside.stderr
  assert set_aside.stdout.splitlines()[0] == '1 set aside (never asked again): 7 (unlabeled/u07.png)'
  assert 'the query is answered' in set_aside.stdout
  assert '(0 corrections, 1 set aside), 0 rounds trained' in run('status').stdout
  config = ml_collections.ConfigDict(l2r_jax_config(config_path))
  with learner_lib.ActiveLearner(config, str(workdir)) as learner:
    # Given again, the same answers are left out, not refused.
    assert label.read_answers(str(good), learner) == ([], [], [], set())
    ids = learner.dataset.pool_ids
    indices, labels = learner.labeled
    assert len(indices) == 3
    for i, y in zip(indices, labels):
      assert learner.dataset.class_names[y] == ('bright' if brightness[ids[i]] else 'dark')
    assert not len(learner.pending) and learner.set_aside_samples.tolist() == [7]
    table = workdir / 'query' / 'query.csv'
    table.write_text('id,label\nunlabeled/u07.png,set aside\n')
    label.write_query(learner, str(workdir / 'query'))   # the row that set it aside was taken
    free = min(set(ids) - {ids[i] for i in indices} - {'unlabeled/u07.png'})
    table.write_text(f'id,label\n{free},set aside\n')   # typed in, not given yet: kept
    with pytest.raises(errors.LabelError, match='holds 1 label.s. typed in and not taught'):
      label.write_query(learner, str(workdir / 'query'))
  # The pool changes (an image deleted, two added before the rest), so a new workdir: the old
  # workdir's log, carried, puts each answer on its own image, by id, though every index moved.
  answered = [ids[i] for i in indices]
  os.remove(root / min(set(ids) - set(answered) - {'unlabeled/u07.png'}))
  for name in ('a00.png', 'a01.png'):
    Image.open(root / answered[0]).save(root / 'unlabeled' / name)
  new_ids = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, files in os.walk(root / 'unlabeled') for f in files)
  new = tmp_path / 'new'
  carried = subprocess.run([*command[:-1], f'--workdir={new}', 'answer',
                            f'--answers={workdir / learner_lib.ANSWERS_FILE}'],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert carried.returncode == 0, carried.stderr
  assert '3 labels taught (3 in all)' in carried.stdout
  kept = workdir / 'set_aside.json'
  assert carried.stderr.splitlines()[-1] == (
      f'note: {workdir} also sets samples aside; to carry them: python -m l2r_jax.label answer '
      f'--config={config_path} --workdir={new} --answers={kept}')
  # The sample set aside there is set aside here too, by id, though its index moved.
  carried = subprocess.run([*command[:-1], f'--workdir={new}', 'answer', f'--answers={kept}'],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert carried.returncode == 0, carried.stderr
  moved = new_ids.index('unlabeled/u07.png')
  assert moved != 7 and carried.stdout.splitlines()[0] == (
      f'1 set aside (never asked again): {moved} (unlabeled/u07.png)')
  assert json.loads((new / 'set_aside.json').read_text())['samples'] == [
      {'index': moved, 'id': 'unlabeled/u07.png'}]
  records = [json.loads(line) for line in (new / learner_lib.ANSWERS_FILE).read_text().splitlines()]
  assert [r['id'] for r in records] == answered
  for r in records:
    assert r['index'] == new_ids.index(r['id']) > ids.index(r['id'])
    assert r['label'] == ('bright' if brightness[r['id']] else 'dark')


def l2r_jax_config(path):
  """The config a config file returns (as ``--config=path`` loads it)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('user_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().to_dict()


def test_the_public_api_is_importable_from_the_package():
  assert l2r_jax.ActiveLearner is learner_lib.ActiveLearner
  assert l2r_jax.register_strategy is strategies.base.register
  for name in l2r_jax.__all__:
    assert getattr(l2r_jax, name) is not None
  with pytest.raises(AttributeError):
    l2r_jax.no_such_thing  # pylint: disable=pointless-statement
