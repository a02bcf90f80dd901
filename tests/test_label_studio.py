"""Label Studio in and out: the tasks and labeling config written, its JSON export read back through
the same checks as any answers file; marks made into labels as the loaders make them."""
import json
import os
import re
import shutil
from xml.etree import ElementTree

import numpy as np
import pytest

from examples import digits_folder
from examples import image_folder
from examples import synthetic_to_label
from l2r_jax import annotate
from l2r_jax import answers
from l2r_jax import errors
from l2r_jax import label
from l2r_jax import label_studio
from l2r_jax import learner as learner_lib
from l2r_jax.data import density


def _digits(tmp_path, n=60):
  """A digits folder with no label given (the first query is a random draw: nothing trains)."""
  truth = digits_folder.write_digits_folder(str(tmp_path / 'digits'), labeled=0, test=20)
  for sample_id in sorted(truth)[n:]:
    os.remove(tmp_path / 'digits' / sample_id)
  config = image_folder.get_config('smoke')
  config.data.root = str(tmp_path / 'digits')
  config.data.classes = tuple(str(k) for k in range(10))
  config.al.update(initial=6, budget=6)
  return config, {k: truth[k] for k in sorted(truth)[:n]}


def _annotated(tasks, results, cancelled=()):
  """An export as Label Studio writes it: the tasks, each with its annotation's ``result``."""
  out = []
  for k, (task, result) in enumerate(zip(tasks, results), 1):
    annotations = [] if result is None else [{
        'id': k, 'result': result, 'was_cancelled': False,
        'created_at': '2026-01-01T00:00:00Z', 'updated_at': '2026-01-01T00:00:00Z'}]
    if k in cancelled:   # skipped in Label Studio: not answered
      annotations = [{'id': 100 + k, 'result': result, 'was_cancelled': True,
                      'updated_at': '2026-02-01T00:00:00Z'}]
    out.append(dict(task, id=k, annotations=annotations))
  return out


def sid_of(task):
  return task['data']['sample_id']


def _choice(name):
  return [{'id': 'a', 'type': 'choices', 'from_name': 'label', 'to_name': 'image',
           'value': {'choices': [name]}}]


def _keypoints(points, names, control='joints', w=100, h=100):
  return [{'id': f'k{j}', 'type': 'keypointlabels', 'from_name': control,
           'to_name': 'image', 'original_width': w, 'original_height': h,
           'value': {'x': x, 'y': y, 'width': 0.5, 'keypointlabels': [names[j]]}}
          for j, (x, y) in enumerate(points)]


def test_a_classification_round_trip_teaches_what_a_table_of_the_same_answers_teaches(tmp_path):
  config, truth = _digits(tmp_path)
  work = str(tmp_path / 'work')
  with learner_lib.ActiveLearner(config, work) as learner:
    asked = learner.query()
    rows = label.query_rows(learner)
    geom = annotate.geometry(learner.dataset, learner.config.data)
    tasks_path, config_path = label_studio.write(learner, geom, rows,
                                                 os.path.join(work, 'query'))
  tasks = json.loads(open(tasks_path).read())
  assert [t['data']['sample_id'] for t in tasks] == [learner.pool.ids[i] for i in asked]
  assert all(t['data']['image'].startswith('data:image/png;base64,') for t in tasks)
  assert 'predictions' not in tasks[0]    # no model yet
  view = ElementTree.fromstring(open(config_path).read())
  assert [c.get('value') for c in view.iter('Choice')] == [str(k) for k in range(10)] + [
      'set aside']   # an image no class fits
  assert view.find('Choices').get('name') == 'label' and view.find('Image').get('name') == 'image'
  # Answered in Label Studio: the first four by the truth, the fifth skipped, the last untouched.
  results = [_choice(str(truth[t['data']['sample_id']])) for t in tasks[:5]] + [None]
  export = tmp_path / 'export.json'
  export.write_text(json.dumps(_annotated(tasks, results, cancelled=(5,)), indent=2))
  table = tmp_path / 'same.csv'
  table.write_text('id,label\n' + ''.join(f'{t["data"]["sample_id"]},{truth[t["data"]["sample_id"]]}\n'
                                          for t in tasks[:4]))
  twin = str(tmp_path / 'twin')
  shutil.copytree(work, twin)
  for workdir, path in ((work, str(export)), (twin, str(table))):
    with learner_lib.ActiveLearner(config, workdir) as learner:
      indices, labels, problems, _ = label.read_answers(path, learner)
      assert not problems
      label.teach_checked(learner, path, indices, labels, problems)
  assert open(os.path.join(work, 'answers.jsonl')).read() == open(
      os.path.join(twin, 'answers.jsonl')).read()
  assert len(open(os.path.join(work, 'answers.jsonl')).readlines()) == 4
  # Annotations by several people: those that agree give the answer, those that differ are
  # refused naming who made them, unless one is marked ground truth; skipped ones do not count.
  geom = annotate.geometry(learner.dataset, learner.config.data)
  a1 = {'id': 1, 'result': _choice('1'), 'completed_by': {'id': 7, 'email': 'ana@lab.org'}}
  a2 = {'id': 2, 'result': _choice('2'), 'completed_by': 8}
  a3 = {'id': 3, 'result': _choice('1'), 'completed_by': 9}
  skipped = {'id': 4, 'result': _choice('4'), 'was_cancelled': True}
  assert label_studio._answer([a1, a3, skipped], geom) == ('1', None)
  assert label_studio._answer([skipped], geom) == (None, None)
  assert label_studio._answer([], geom) == (None, None)
  _, problem = label_studio._answer([a1, a2, skipped], geom)
  assert problem == ('2 annotations differ (annotation 1 by ana@lab.org: 1, annotation 2 by user '
                     '8: 2). Mark the one to teach as ground truth in Label Studio (or delete the '
                     'others), then export again.')
  assert label_studio._answer([a1, dict(a2, ground_truth=True), a3], geom) == ('2', None)
  # The same export again: the answers are known, nothing to teach (as for a table).
  with learner_lib.ActiveLearner(config, work) as learner:
    assert label.read_answers(str(export), learner) == ([], [], [], set())


def test_an_export_is_refused_with_the_lines_of_a_table_and_a_task_line_each(tmp_path):
  config, truth = _digits(tmp_path)
  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    learner.query()
    geom = annotate.geometry(learner.dataset, learner.config.data)
    tasks = label_studio.tasks(learner, geom, label.query_rows(learner))
    unknown = dict(tasks[3], data=dict(tasks[3]['data'], sample_id='unlabeled/nope.png'))
    export = _annotated([tasks[0], tasks[1], tasks[2], unknown],
                        [_choice('eleven'), _choice('3') + _choice('4'), _choice('5'),
                         _choice('1')]) + [{'data': {'sample_id': sid_of(tasks[4])}}]
    path = tmp_path / 'export.json'
    path.write_text(json.dumps(export, indent=2))
    starts = [n for n, line in enumerate(path.read_text().split('\n'), 1) if line == '  {']
    _, _, problems, _ = label.read_answers(str(path), learner)
    sid = [t['data']['sample_id'] for t in tasks]
    table = tmp_path / 'table.csv'
    table.write_text(f'id,label\n{sid[0]},eleven\n')
    _, _, table_problems, _ = label.read_answers(str(table), learner)
  p = str(path)
  assert problems == [
      f'{p}, line {starts[0]}, task 1, index {learner.pool.index_of(sid[0])}: '
      + table_problems[0].split(': ', 1)[1],
      f'{p}, line {starts[1]}, task 2, id {sid[1]!r}: the annotation chooses 2 classes in "label"; '
      'choose '
      'one (a labeling config other than the one label query wrote?).',
      f"{p}, line {starts[3]}, task 4: id 'unlabeled/nope.png' is not a sample of this pool; the "
      f"picture answered is {sid_of(tasks[3])!r} now (the same file content: renamed or moved "
      "since). "
      'Write its new id in the line, or remove the line to carry the others.',
      f'{p}, line {starts[4]}: the task has no "annotations": export as "JSON" (not "JSON-MIN" or '
      'CSV), which keeps them.']
  assert "label 'eleven' is not a class" in problems[0]
  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    with pytest.raises(errors.Refusal, match='4 problems; nothing of it was taught'):
      label.teach_checked(learner, p, *label.read_answers(p, learner))
    assert not learner.labeled[0].size


def _first_query_as_tasks(tmp_path):
  """A digits folder's first query (a random draw) as Label Studio tasks: the config, the truth,
  the workdir, its (closed) learner and the tasks."""
  config, truth = _digits(tmp_path)
  work = str(tmp_path / 'work')
  with learner_lib.ActiveLearner(config, work) as learner:
    learner.query()
    geom = annotate.geometry(learner.dataset, learner.config.data)
    tasks = label_studio.tasks(learner, geom, label.query_rows(learner))
  return config, truth, work, learner, tasks


def test_an_export_of_tasks_imported_twice_of_replaced_files_or_as_csv_is_read_as_it_should_be(
    tmp_path):
  config, truth, work, learner, tasks = _first_query_as_tasks(tmp_path)
  sid = [sid_of(t) for t in tasks]
  assert all(t['data']['pool'] == learner.pool.fingerprint for t in tasks)
  assert [t['data']['file_sha256'] for t in tasks] == [
      learner.dataset.pool_file_sha256[t['data']['index']] for t in tasks]
  right = [_choice(str(truth[k])) for k in sid]
  # The tasks file imported twice (Label Studio keeps both copies), answered alike: one answer
  # each; a copy answered otherwise: refused as answered twice.
  path = tmp_path / 'twice.json'
  path.write_text(json.dumps(_annotated(tasks[:2] + tasks[:2], right[:2] * 2), indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    indices, labels, problems, _ = label.read_answers(str(path), learner)
    assert not problems and [learner.pool.ids[i] for i in indices] == sid[:2]
    wrong = [_choice(str((truth[sid[0]] + 1) % 10))]
    path.write_text(json.dumps(_annotated(tasks[:1] + tasks[:1], right[:1] + wrong), indent=2))
    _, _, problems, _ = label.read_answers(str(path), learner)
    # Named by Label Studio's task numbers as well as the lines: those a person finds them by.
    assert len(problems) == 1 and re.search(
        r'line \d+, task 2, index \d+: answered twice \(also line \d+, task 1\)\.$',
        problems[0]), problems
  # A file replaced under its name after the tasks were written: the task showed the old picture.
  shutil.copy(tmp_path / 'digits' / sid[1], tmp_path / 'digits' / sid[0])
  path.write_text(json.dumps(_annotated(tasks[:1], right[:1]), indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    _, _, problems, _ = label.read_answers(str(path), learner)
  assert len(problems) == 1 and f'{sid[0]!r} holds another file than the one answered' in (
      problems[0])
  # Label Studio's JSON-MIN, CSV and TSV exports (the task's data, its number as "id", one
  # annotation's choice): refused, naming JSON.
  record = {'image': 'x', 'sample_id': sid[0], 'index': 3, 'pool': tasks[0]['data']['pool'],
            'id': 17, 'label': '3', 'annotator': 1, 'annotation_id': 5, 'created_at': 'a',
            'updated_at': 'b', 'lead_time': 2.5}
  why = ('its "id" is Label Studio\'s task number, not the sample\'s, and it keeps one annotation '
         'per task, leaving out those skipped and who made each (two people who disagree go '
         'unseen). Export the project as "JSON" (Export > JSON) and give that file.')
  minimal = tmp_path / 'export-min.json'
  minimal.write_text(json.dumps([record]))
  with learner_lib.ActiveLearner(config, work) as learner:
    _, _, problems, _ = label.read_answers(str(minimal), learner)
  assert problems == [f'{minimal}: a Label Studio JSON-MIN export: {why}']
  for sep in (',', '\t'):
    table = tmp_path / 'export.csv'
    table.write_text(sep.join(record) + '\n' + sep.join(map(str, record.values())) + '\n')
    with learner_lib.ActiveLearner(config, work) as learner:
      _, _, problems, _ = label.read_answers(str(table), learner)
    assert problems == [f'{table}: a Label Studio CSV or TSV export: {why}']
  # The tasks file itself, given instead of the project's export: one line, naming it.
  path.write_text(json.dumps(tasks, indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    _, _, problems, _ = label.read_answers(str(path), learner)
  assert problems == [f'{path}: Label Studio tasks with no annotations, as label query '
                      f'--format=label-studio writes them ({label_studio.TASKS_FILE}), not a '
                      "project's export: import them into Label Studio, label them, then give the "
                      'file of Export > JSON.']


def test_a_project_exported_whole_after_an_answer_in_it_was_edited_is_taken_with_relabel(
    tmp_path):
  config, truth, work, learner, tasks = _first_query_as_tasks(tmp_path)
  sid = [sid_of(t) for t in tasks]
  right = [_choice(str(truth[k])) for k in sid]
  export = tmp_path / 'project.json'
  export.write_text(json.dumps(_annotated(tasks, right[:3] + [None] * 3), indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    done = label.teach_checked(learner, str(export), *label.read_answers(str(export), learner))
  assert done['taught'] == 3
  # A reviewer changes the first answer in Label Studio, and three more are answered; the whole
  # project is exported again. Without --relabel: refused whole, naming the fix.
  edited = str((truth[sid[0]] + 1) % 10)
  export.write_text(json.dumps(_annotated(tasks, [_choice(edited)] + right[1:]), indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    indices, labels, problems, _ = label.read_answers(str(export), learner)
    assert len(problems) == 1 and 'label answer --relabel' in problems[0]
    # With it, the file's labels win: the edit corrected, the new answers taught, the rest
    # (answered alike before) skipped; the log holds the history.
    done = label.teach_checked(learner, str(export),
                               *label.read_answers(str(export), learner, correcting=True),
                               relabel=True)
    assert (done['corrected'], done['taught']) == (1, 3)
    index = learner.pool.index_of
    assert [int(learner.dataset.y_train[index(k)]) for k in sid] == [int(edited)] + [
        truth[k] for k in sid[1:]]
    # Given again: nothing left to change.
    done = label.teach_checked(learner, str(export),
                               *label.read_answers(str(export), learner, correcting=True),
                               relabel=True)
    assert (done['corrected'], done['taught']) == (0, 0)
  log = [json.loads(l) for l in open(os.path.join(work, 'answers.jsonl'))]
  assert [(r['id'], r.get('correction', False)) for r in log] == [
      (k, False) for k in sid[:3]] + [(sid[0], True)] + [(k, False) for k in sid[3:]]


def test_an_image_set_aside_in_label_studio_or_in_another_workdir_is_set_aside_here(tmp_path):
  config, truth, work, learner, tasks = _first_query_as_tasks(tmp_path)
  sid = [sid_of(t) for t in tasks]
  geom = annotate.geometry(learner.dataset, learner.config.data)
  # The choice is a last class (none is named so), or beside the keypoints.
  names = [str(k) for k in range(10)]
  view = ElementTree.fromstring(label_studio.labeling_config(geom, [*names[:9], ' Set Aside']))
  assert [c.get('value') for c in view.iter('Choice')] == [*names[:9], ' Set Aside']
  pose = annotate.Geometry('pose', (32, 32), (8, 8), annotate.JOINT_NAMES)
  view = ElementTree.fromstring(label_studio.labeling_config(pose, []))
  assert [(c.get('name'), [x.get('value') for x in c.iter('Choice')])
          for c in view.iter('Choices')] == [('aside', ['set aside'])]
  aside = [{'id': 'b', 'type': 'choices', 'from_name': 'aside', 'to_name': 'image',
            'value': {'choices': ['set aside']}}]
  assert label_studio._label(aside, pose, []) == (answers.SET_ASIDE, None)
  assert 'both sets the image aside' in label_studio._label(
      aside + _keypoints([[5, 5]], ['head_top']), pose, [])[1]
  # The first two answered, the third set aside, by two people who agree.
  export = tmp_path / 'project.json'
  results = [_choice(str(truth[k])) for k in sid[:2]] + [_choice('set aside')] + [None] * 3
  export.write_text(json.dumps(_annotated(tasks, results), indent=2))
  with learner_lib.ActiveLearner(config, work) as learner:
    found, problems = label.read_file(str(export), learner)
    assert not problems and found[2].label is answers.SET_ASIDE
    kept, indices, problems, labeled = label.split_set_aside(found, learner)
    assert indices == [learner.pool.index_of(sid[2])] and not problems and not labeled
    assert [a.sample_id for a in kept] == sid[:2]
    label.teach_checked(learner, str(export), *label.checked(kept, [], learner))
    assert learner.set_aside(indices) == 1
    assert learner.pending.tolist() == [learner.pool.index_of(k) for k in sid[3:]]
    # Later a person tells the third's class after all: it is taught, and keeps its label when
    # the whole project is exported again (what set it aside is not a problem, as an answer
    # given again is not).
    third = learner.pool.index_of(sid[2])
    learner.teach([third], [truth[sid[2]]])
    _, indices, problems, labeled = label.split_set_aside(
        label.read_file(str(export), learner)[0], learner)
    assert (indices, problems, labeled) == ([], [], [third])
  # The workdir's set_aside.json carried to another workdir whose pool changed (a sample
  # removed): the samples it names are found by id, and it reads as the answers it holds.
  with learner_lib.ActiveLearner(config, work) as learner:
    learner.set_aside([learner.pool.index_of(k) for k in sid[3:5]])
  kept_file = os.path.join(work, answers.SET_ASIDE_FILE)
  os.remove(os.path.join(config.data.root, sid[0]))
  with learner_lib.ActiveLearner(config, str(tmp_path / 'new')) as other:
    found, problems = label.read_file(kept_file, other)
    assert not problems and all(a.label is answers.SET_ASIDE for a in found)
    lines = open(kept_file).read().splitlines()
    assert [(lines[a.line - 1].strip(), a.sample_id in lines[a.line + 1]) for a in found] == [
        ('{', True)] * 2   # each names the line its sample begins on
    _, indices, problems, labeled = label.split_set_aside(found, other)
    assert indices == [other.pool.index_of(k) for k in sid[3:5]] and not problems
    assert indices != [a.index for a in found]   # every index moved
  # A class named "set aside" is taught as a class from a table, never from set_aside.json.
  table = tmp_path / 'table.csv'
  table.write_text(f'id,label\n{sid[5]},set aside\n')
  with learner_lib.ActiveLearner(config, str(tmp_path / 'new')) as learner:
    learner.pool.class_index = lambda name: 0 if name.strip().casefold() == 'set aside' else None
    found = label.read_file(str(table), learner)[0] + label.read_file(kept_file, learner)[0]
    kept, indices, _, _ = label.split_set_aside(found, learner)
    assert [a.sample_id for a in kept] == [sid[5]] and len(indices) == 2


def test_an_image_address_is_encoded_for_the_web_and_kept_as_written_for_a_cloud_storage():
  sample_id = 'unlabeled/IMG 0001 é.jpg'
  assert label_studio.image_address('http://host:8081/digits/', sample_id) == (
      'http://host:8081/digits/unlabeled/IMG%200001%20%C3%A9.jpg')
  assert label_studio.image_address('/data/local-files/?d=digits/', sample_id) == (
      '/data/local-files/?d=digits/unlabeled/IMG%200001%20%C3%A9.jpg')
  for bucket in ('s3://team-bucket/digits/', 'gs://team-bucket/digits/',
                 'azure-blob://container/digits/'):
    assert label_studio.image_address(bucket, sample_id) == bucket + sample_id


def test_keypoints_become_the_loaders_labels():
  """Per cent of the image -> input pixels -> the loaders' labels, against the stand-ins' own
  conventions: heatmap x = input x * heatmap / input; a head one unit Gaussian of the loader's
  sigma on its stride."""
  pose = synthetic_to_label.load_hidden(synthetic_to_label.get_config('pose_smoke').data)
  geom = annotate.geometry(pose, synthetic_to_label.get_config('pose_smoke').data)
  (h, w), hm = geom.input_hw, geom.label_hw
  assert (h, w) == (32, 32) and hm == (8, 8) and len(geom.joint_names) == 16
  rng = np.random.default_rng(0)
  percent = rng.uniform(0, 100, (16, 2))
  placed = np.arange(16) != 9                  # the head top left out: invisible
  result = _keypoints(percent[placed], [n for n, p in zip(geom.joint_names, placed) if p])
  label_value, problem = label_studio._label(result, geom)
  assert problem is None
  expected = np.zeros((16, 3))
  xy = (percent / 100 * [w, h] - 0.5) * [hm[1] / w, hm[0] / h]
  inside = np.all((xy >= -0.5) & (xy < 7.5), axis=1)
  expected[placed] = np.c_[xy, inside][placed]
  np.testing.assert_allclose(label_value, expected, atol=1e-12)
  assert pose.task_params['heatmap_size'] == (8, 8)
  # The inverse of the tasks' percentages.
  np.testing.assert_allclose(label_studio.pixels(label_studio.percent(xy, (h, w)), (h, w)), xy)
  assert label_studio.percent([[-0.5, -0.5], [31.5, 31.5]], (32, 32)).tolist() == [[0, 0],
                                                                                   [100, 100]]
  # Twice placed, or a joint that is not one: refused.
  twice = _keypoints([[10, 10], [20, 20]], ['right ankle', 'right ankle'])
  assert label_studio._label(twice, geom)[1] == "the joint 'right ankle' is placed twice."
  crowd_config = synthetic_to_label.get_config('crowd_smoke').data
  crowd = synthetic_to_label.load_hidden(crowd_config)
  geom = annotate.geometry(crowd, crowd_config)
  heads = rng.uniform(0, 100, (7, 2))
  label_value, problem = label_studio._label(_keypoints(heads, ['head'] * 7, 'heads'), geom)
  stride = geom.input_hw[0] // geom.label_hw[0]
  reference = crowd.task_params['density_scale'] * density.density_map(
      heads / 100 * 32 - 0.5, geom.label_hw, crowd_config.sigma, stride)
  np.testing.assert_allclose(label_value, reference, rtol=1e-6)
  assert abs(np.sum(label_value) - 7 * crowd.task_params['density_scale']) < 1e-3
  assert label_studio._label([], geom) == (np.zeros(geom.label_hw).tolist(), None)
  assert 'heads are labeled' in label_studio._label(_keypoints([[5, 5]], ['hand'], 'heads'), geom)[1]


def test_the_shanghaitech_geometry_is_the_loaders_head_density():
  """Marks on ShanghaiTech B make the maps its loader makes: heads clamped inside, sigma in input
  pixels."""
  from l2r_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from l2r_jax.data import shanghaitech  # pylint: disable=g-import-not-at-top
  ds = data_lib.Dataset(np.zeros((2, 64, 96, 3), np.float32), np.zeros((2, 16, 24), np.float32),
                        np.zeros((0, 64, 96, 3), np.float32), np.zeros((0, 16, 24), np.float32),
                        1, 'crowd', task_params={'density_scale': 100.0})
  geom = annotate.geometry(ds, _config('shanghaitech'))
  heads = np.array([[10.0, 20.0], [95.4, 63.4], [-0.5, 5.0]])   # two on the border
  np.testing.assert_allclose(geom.label(heads),
                             shanghaitech.head_density(heads, (16, 24), 4, 4.0, 100.0))
  assert abs(np.sum(geom.label(heads)) - 300) < 1e-3        # a head on the border keeps its mass
  # A head placed past the input (another frame's pixels, a keypoint off the picture) is refused,
  # named, where the loader would clamp it unseen.
  with pytest.raises(ValueError, match=r'^head 2 at \(95.7, 63.9\), head 3 at \(-3, 5\) outside '
                     r'the 96 x 64 input \(x from -0.5 up to 95.5, y up to 63.5\)'):
    geom.label(np.array([[10.0, 20.0], [95.7, 63.9], [-3.0, 5.0]]))
  with pytest.raises(errors.ConfigError, match=r"task_params\['density_sigma'\]"):
    annotate.geometry(ds, _config('my_crowds'))


def _config(name):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict({'name': name})


@pytest.mark.slow
def test_a_pose_export_round_trip_through_a_learner(tmp_path):
  config = synthetic_to_label.get_config('pose_smoke')
  with learner_lib.ActiveLearner(config, str(tmp_path / 'work')) as learner:
    asked = learner.query()
    geom = annotate.geometry(learner.dataset, learner.config.data)
    tasks = label_studio.tasks(learner, geom, label.query_rows(learner))
    view = ElementTree.fromstring(label_studio.labeling_config(geom, []))
    assert [l.get('value') for l in view.iter('Label')] == list(annotate.JOINT_NAMES)
    points = np.random.default_rng(1).uniform(5, 95, (16, 2))
    export = tmp_path / 'export.json'
    export.write_text(json.dumps(_annotated(tasks[:2], [_keypoints(points, geom.joint_names)] * 2)))
    indices, labels, problems, _ = label.read_answers(str(export), learner)
    assert not problems and indices == [int(i) for i in asked[:2]]
    label.teach_checked(learner, str(export), indices, labels, problems)
    log = [json.loads(line) for line in open(tmp_path / 'work' / answers.ANSWERS_FILE)]
  xy = (points / 100 * 32 - 0.5) * 8 / 32
  np.testing.assert_allclose(np.asarray(log[0]['label'])[:, :2], xy)
  assert [r['id'] for r in log] == [t['data']['sample_id'] for t in tasks[:2]]
