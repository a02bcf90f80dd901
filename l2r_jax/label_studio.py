r"""Label Studio in and out: the query as tasks to import, its export read back as answers.

    python -m l2r_jax.label query  --config=C --workdir=W --format=label-studio
    python -m l2r_jax.label answer --config=C --workdir=W --answers=EXPORT.json

``query --format=label-studio`` writes, beside ``query.csv``, ``WORKDIR/query/``:

* ``label_studio_tasks.json``: one task per queried sample, in Label Studio's JSON task format
  (its "Import pre-annotated data" guide): ``data.image`` (the image as a ``data:`` URI, a PNG
  decoded as the loader reads the sample, or ``--image_url`` followed by the sample's id, for a
  folder served elsewhere), ``data.sample_id`` (our id: what maps the answer back), ``data.index``
  and ``data.score``; from the second round on, ``predictions``: the model's class with its
  probability as the prediction's ``score`` (classification), or its joints as keypoints (pose);
* ``label_studio_config.xml``: the labeling config to paste into the project's settings: an
  ``Image`` named ``image`` and ``Choices`` named ``label`` (one ``Choice`` per class),
  ``KeyPointLabels`` named ``joints`` (one ``Label`` per joint, in the dataset's order) or
  ``KeyPointLabels`` named ``heads`` (one ``Label``, ``head``); and a choice ``set aside``, for an
  image no class fits or none can be told (a last ``Choice`` of ``label``, or ``Choices`` named
  ``aside`` beside the keypoints): the sample is set aside, never asked again.

``answer --answers=EXPORT.json`` reads Label Studio's JSON export (Export, "JSON": a JSON array of
tasks, each with its ``annotations``), mapped by ``data.sample_id`` (and checked, as any answer
is, against the pool and the file content the task carries: ``data.pool``, ``data.file_sha256``).
A task's annotations not cancelled (skipped), or of them those marked ground truth if any are,
give its answer when they agree; annotations that differ are refused, naming who made them (mark
one as ground truth); a task without one is not answered yet, and a task imported twice and
answered alike is one answer. Its
``choices`` give the class; its keypoints, at ``x``, ``y`` per cent of the image's width and height
(Label Studio's unit), become marks in input pixels, ``x / 100 * W - 0.5`` (pixel centres at
integers), and the label as :mod:`l2r_jax.annotate` makes it: a joint not placed is invisible
(weight 0), each head one Gaussian. Then the same checks and refusals as any answers file
(:func:`l2r_jax.answers.check`), each problem naming the export's line where its task begins.
"""
import base64
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib import parse as urlparse
from xml.sax import saxutils

import numpy as np

from l2r_jax import annotate
from l2r_jax import answers as answers_lib
from l2r_jax import workdir as workdir_lib

TASKS_FILE = 'label_studio_tasks.json'
CONFIG_FILE = 'label_studio_config.xml'
IMAGE, CONTROL = 'image', {'classification': 'label', 'pose': 'joints', 'crowd': 'heads'}
SAMPLE_ID = 'sample_id'
POOL, FILE_SHA256 = 'pool', 'file_sha256'   # what the answer's checks read back (answers.py)
HEAD = 'head'
ASIDE = 'aside'   # beside the keypoints: the choice to set an image aside
ASIDE_HINT = 'no class fits, or none can be told: never asked again'
# Colours for the joints' labels: right side warm, left side cool, the trunk grey (MPII's order).
_SIDES = {'right': '#e4572e', 'left': '#17bebb'}


def labeling_config(geom: annotate.Geometry, class_names: Sequence[str]) -> str:
  """The labeling config (Label Studio's XML) for the task of ``geom``, with a choice to set an
  image aside (no class fits, or none can be told): a last class choice ``set aside`` (unless a
  class has that name), or a ``Choices`` named ``aside`` beside the keypoints."""
  q = saxutils.quoteattr
  lines = ['<View>', f'  <Header value="${SAMPLE_ID}"/>']
  aside = f'    <Choice value={q(answers_lib.SET_ASIDE_LABEL)} hint={q(ASIDE_HINT)}/>'
  if geom.task == 'classification':
    lines += [f'  <Image name="{IMAGE}" value="${IMAGE}" zoom="true"/>',
              f'  <Choices name="{CONTROL["classification"]}" toName="{IMAGE}" choice="single" '
              'showInline="true" required="true">',
              *[f'    <Choice value={q(str(n))}/>' for n in class_names],
              *([aside] if _sets_aside(answers_lib.SET_ASIDE_LABEL, class_names) else []),
              '  </Choices>']
  else:
    labels = geom.joint_names if geom.task == 'pose' else (HEAD,)
    lines += [f'  <KeyPointLabels name="{CONTROL[geom.task]}" toName="{IMAGE}" smart="false">',
              *[f'    <Label value={q(n)} background={q(_colour(n))}/>' for n in labels],
              '  </KeyPointLabels>',
              f'  <Image name="{IMAGE}" value="${IMAGE}" zoom="true" zoomControl="true"/>',
              f'  <Choices name="{ASIDE}" toName="{IMAGE}" choice="single" showInline="true">',
              aside, '  </Choices>']
  return '\n'.join(lines + ['</View>', ''])


def _colour(name: str) -> str:
  return next((c for side, c in _SIDES.items() if name.startswith(side)), '#f4d35e')


def percent(xy: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
  """Input pixels -> per cent of the image (Label Studio's unit): ``(x + 0.5) / W * 100``."""
  return (np.asarray(xy, np.float64) + 0.5) / np.array([hw[1], hw[0]]) * 100


def pixels(xy: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
  """Per cent of the image -> input pixels: the inverse of :func:`percent`."""
  return np.asarray(xy, np.float64) / 100 * np.array([hw[1], hw[0]]) - 0.5


# Label Studio's cloud storages: it signs the key as written in the task (spaces and all).
CLOUD_SCHEMES = ('s3://', 'gs://', 'azure-blob://')


def image_address(image_url: str, sample_id: str) -> str:
  """``image_url`` followed by the sample's id: percent-encoded for a web address, as written for
  a cloud storage's key (``s3://``, ``gs://``, ``azure-blob://``)."""
  if image_url.lower().startswith(CLOUD_SCHEMES):
    return image_url + sample_id
  return image_url + urlparse.quote(sample_id)


def tasks(learner, geom: annotate.Geometry, rows: Sequence[Dict[str, Any]],
          image_url: Optional[str] = None) -> List[Dict[str, Any]]:
  """The query's ``rows`` (:func:`l2r_jax.label.write_query`'s) as Label Studio tasks."""
  ds = learner.dataset
  joints = None
  if rows and learner.rounds and ds.task == 'pose':
    joints = learner.predict(ds.x_train[np.asarray([r['index'] for r in rows])],
                             preprocessed=True).joints
  out = []
  for k, row in enumerate(rows):
    if image_url is not None and row['file']:
      image = image_address(image_url, row['id'])
    else:
      image = 'data:image/png;base64,' + base64.b64encode(annotate.sample_png(
          ds, row['index'], row['file'] or None)).decode()
    task = {'data': {IMAGE: image, SAMPLE_ID: row['id'], 'index': int(row['index']),
                     'score': row['score'], POOL: learner.pool.fingerprint}}
    if ds.pool_file_sha256 is not None:   # the picture the task shows: an answer is for it
      task['data'][FILE_SHA256] = ds.pool_file_sha256[row['index']]
    version = f'l2r-jax round {learner.rounds - 1}'
    if row.get('predicted'):
      task['predictions'] = [{
          'model_version': version, 'score': float(row['probability']),
          'result': [{'id': f'p{row["index"]}', 'type': 'choices', 'from_name': CONTROL[ds.task],
                      'to_name': IMAGE, 'value': {'choices': [row['predicted']]}}]}]
    elif joints is not None:
      xy = percent(joints[k], geom.input_hw)
      task['predictions'] = [{'model_version': version, 'result': [
          {'id': f'p{row["index"]}j{j}', 'type': 'keypointlabels', 'from_name': CONTROL['pose'],
           'to_name': IMAGE, 'original_width': geom.input_hw[1],
           'original_height': geom.input_hw[0], 'image_rotation': 0,
           'value': {'x': float(x), 'y': float(y), 'width': 1.0,
                     'keypointlabels': [geom.joint_names[j]]}}
          for j, (x, y) in enumerate(xy)]}]
    out.append(task)
  return out


def class_names(dataset) -> List[str]:
  """The classes as the labeling config names them (their indices where the dataset names none);
  none for a regression task."""
  if dataset.task != 'classification':
    return []
  return [str(n) for n in (dataset.class_names or range(dataset.num_outputs))]


def write(learner, geom: annotate.Geometry, rows: Sequence[Dict[str, Any]], folder: str,
          image_url: Optional[str] = None) -> Tuple[str, str]:
  """Writes the tasks and the labeling config into ``folder`` (a :func:`l2r_jax.workdir.path_in`
  folder), atomically; returns their paths."""
  names = class_names(learner.dataset)
  os.makedirs(folder, exist_ok=True)
  tasks_path = workdir_lib.path_in(folder, TASKS_FILE)
  config_path = workdir_lib.path_in(folder, CONFIG_FILE)
  workdir_lib.write_atomic(tasks_path, json.dumps(tasks(learner, geom, rows, image_url),
                                                  indent=1))
  workdir_lib.write_atomic(config_path, labeling_config(geom, names))
  return tasks_path, config_path


# -- the export back ------------------------------------------------------------------------------


def read_export(tasks: Sequence[Tuple[int, Any]], problems: List[answers_lib.Problem], path: str,
                geom: annotate.Geometry, class_names: Sequence[str] = ()
                ) -> Tuple[List[answers_lib.Answer], List[answers_lib.Problem]]:
  """The answers in Label Studio's JSON export read from ``path``, its ``tasks`` as
  :func:`l2r_jax.answer_files.json_array_items` gives them (``problems``: where reading them
  stopped), and a line per task that cannot be read (the module's docstring); ``class_names``:
  the dataset's, which say whether ``set aside`` is a class or sets the image aside."""
  answers, problems, seen = [], list(problems), {}
  if tasks and not any(isinstance(t, dict) and 'annotations' in t for _, t in tasks) and all(
      isinstance(t, dict) and isinstance(t.get('data'), dict) and SAMPLE_ID in t['data']
      for _, t in tasks):
    return [], problems + [(0, f'{path}: Label Studio tasks with no annotations, as label query '
                               f'--format=label-studio writes them ({TASKS_FILE}), not a '
                               'project\'s export: import them into Label Studio, label them, '
                               'then give the file of Export > JSON.')]
  for line, task in tasks:
    number = task.get('id') if isinstance(task, dict) and isinstance(
        task.get('id'), (int, str)) else None   # Label Studio's task number, as its pages show
    where = f'{path}, line {line}' + ('' if number is None else f', task {number}')
    if not isinstance(task, dict) or not isinstance(task.get('data'), dict):
      problems.append((line, f'{where}: not a Label Studio task (an object with "data"); give '
                             'the export in Label Studio\'s "JSON" format.'))
      continue
    if 'annotations' not in task:
      problems.append((line, f'{where}: the task has no "annotations": export as "JSON" (not '
                             '"JSON-MIN" or CSV), which keeps them.'))
      continue
    sample_id = task['data'].get(SAMPLE_ID)
    if not isinstance(sample_id, str):
      problems.append((line, f'{where}: the task has no data.{SAMPLE_ID}: import the tasks '
                             f'that label query --format=label-studio writes ({TASKS_FILE}).'))
      continue
    label, problem = _answer(task['annotations'], geom, class_names)
    if problem:
      problems.append((line, f'{where}, id {sample_id!r}: {problem}'))
      continue
    if label is None:
      continue   # not answered yet (or only skipped)
    if sample_id in seen and _same(seen[sample_id], label):
      continue   # a task imported twice, answered alike: one answer
    seen.setdefault(sample_id, label)
    data = task['data']
    answers.append(answers_lib.Answer(
        path, line, None, sample_id, label,
        pool=data.get(POOL) if isinstance(data.get(POOL), str) else None,
        file_sha256=data.get(FILE_SHA256) if isinstance(data.get(FILE_SHA256), str) else None,
        task=number))
  return answers, problems


def _answer(annotations: Any, geom: annotate.Geometry, class_names: Sequence[str] = ()
            ) -> Tuple[Any, Optional[str]]:
  """A task's answer from its ``annotations``: those not cancelled (skipped), or of them those
  marked ground truth if any are; their label if they agree, else why not (two people who
  disagree are told, never one of them taken silently). ``(None, None)``: not answered."""
  kept = [a for a in annotations if isinstance(a, dict) and not a.get('was_cancelled')] if (
      isinstance(annotations, list)) else []
  kept = [a for a in kept if a.get('ground_truth')] or kept
  labels = []
  for a in kept:
    label, problem = _label(a.get('result'), geom, class_names)
    if problem:
      return None, problem
    labels.append(label)
  if all(_same(labels[0], y) for y in labels[1:]):
    return (labels[0] if labels else None), None
  shown = ', '.join(f'annotation {a.get("id", "?")} by {_who(a)}'
                    + (f': {y}' if isinstance(y, str) else '') for a, y in zip(kept, labels))
  return None, (f'{len(kept)} annotations differ ({shown}). Mark the one to teach as ground truth '
                'in Label Studio (or delete the others), then export again.')


def _sets_aside(choice: Any, class_names: Sequence[str]) -> bool:
  """Whether a class ``choice`` is the config's ``set aside`` (no class has that name)."""
  def folded(name):
    return str(name).strip().casefold()
  return folded(choice) == answers_lib.SET_ASIDE_LABEL and not any(
      folded(n) == answers_lib.SET_ASIDE_LABEL for n in class_names)


def _same(a: Any, b: Any) -> bool:
  return a == b if isinstance(a, str) or isinstance(b, str) else bool(np.array_equal(a, b))


def _who(annotation: Dict[str, Any]) -> str:
  """Who made ``annotation``, as the export names them (an e-mail, or a user number)."""
  by = annotation.get('completed_by')
  if isinstance(by, dict):
    by = by.get('email') or by.get('id')
  return f'user {by}' if isinstance(by, int) else str(by or 'someone')


def _label(result: Any, geom: annotate.Geometry, class_names: Sequence[str] = ()
           ) -> Tuple[Any, Optional[str]]:
  """The answer's label from an annotation's ``result`` (:data:`~l2r_jax.answers.SET_ASIDE`
  where it sets the image aside), or why it holds none."""
  control = CONTROL[geom.task]
  items = [r for r in (result if isinstance(result, list) else [])
           if isinstance(r, dict) and r.get('from_name') == control]
  if geom.task == 'classification':
    choices = [c for r in items if r.get('type') == 'choices'
               for c in (r.get('value') or {}).get('choices') or []]
    if len(choices) != 1:
      return None, (f'the annotation chooses {len(choices)} classes in "{control}"; choose one '
                    '(a labeling config other than the one label query wrote?).')
    if _sets_aside(choices[0], class_names):
      return answers_lib.SET_ASIDE, None
    return str(choices[0]), None
  aside = [c for r in (result if isinstance(result, list) else [])
           if isinstance(r, dict) and r.get('from_name') == ASIDE and r.get('type') == 'choices'
           for c in (r.get('value') or {}).get('choices') or []]
  if aside and items:
    return None, (f'the annotation both sets the image aside ("{ASIDE}") and places keypoints; '
                  'do one of them.')
  if aside:
    return answers_lib.SET_ASIDE, None
  points, names = [], []
  for r in items:
    value = r.get('value') or {}
    labels = value.get('keypointlabels') or []
    if r.get('type') != 'keypointlabels' or len(labels) != 1:
      return None, f'a result in "{control}" is not one keypoint with one label.'
    try:
      xy = pixels([float(value['x']), float(value['y'])], geom.input_hw)
    except (KeyError, TypeError, ValueError):
      return None, f'a keypoint in "{control}" has no numbers x and y.'
    points.append(xy)
    names.append(labels[0])
  if geom.task == 'crowd':
    strange = sorted(set(names) - {HEAD})
    if strange:
      return None, f'keypoints labeled {strange}; heads are labeled {HEAD!r}.'
    marks = np.reshape(points, (-1, 2))
  else:
    marks, problem = _joints(names, points, geom)
    if problem is not None:
      return None, problem
  try:
    return geom.label(marks), None
  except ValueError as e:   # a keypoint outside the picture
    return None, str(e)


def _joints(names: Sequence[str], points: Sequence[Any], geom: annotate.Geometry
            ) -> Tuple[Optional[np.ndarray], Optional[str]]:
  """A pose's marks ``[K, 3]`` from keypoints named by their joints, or why they make none."""
  marks = np.zeros((len(geom.joint_names), 3))
  for name, xy in zip(names, points):
    if name not in geom.joint_names:
      return None, f'keypoint label {name!r} is not a joint ({list(geom.joint_names)}).'
    j = geom.joint_names.index(name)
    if marks[j, 2]:
      return None, f'the joint {name!r} is placed twice.'
    marks[j] = (*xy, 1.0)
  if not names:
    return None, ('the annotation places no joint: place those that can be seen, choose '
                  f'"{answers_lib.SET_ASIDE_LABEL}" for a picture where none can, or skip the task '
                  'in Label Studio (a skipped task stays unanswered).')
  return marks, None
