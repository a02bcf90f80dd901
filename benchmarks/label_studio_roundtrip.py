r"""A Label Studio round trip against a real Label Studio server, for each task.

    python -m venv /tmp/lsvenv && /tmp/lsvenv/bin/pip install label-studio 'sentry-sdk<3'
    python benchmarks/label_studio_roundtrip.py --label-studio /tmp/lsvenv/bin/label-studio

For classification (a digits image folder, ``examples/digits_folder.py``), pose and crowd
(``examples/synthetic_to_label.py``): ``label query --format=label-studio`` writes the tasks and the
labeling config; the script starts Label Studio (its own data folder, a user made for the run),
creates a project with that config through its REST API, imports the tasks, annotates each task
through the API as a person would in its editor (the truth for the digits, fixed points for joints
and heads), exports the project as JSON and gives the export to ``label answer``. It checks that
every imported task kept its image, id and prediction, that Label Studio accepted the labeling
config and the annotations, that the answers taught are those annotated (classes by name; joints
and heads as :mod:`l2r_jax.annotate` makes them from the percentages), and that the last task,
annotated with the config's ``set aside`` choice, is set aside. Writes
``benchmarks/results/label_studio_roundtrip.md``; about 5 minutes on 2 cores (most of it Label
Studio's start and the first round's training).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from examples import digits_folder  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples import synthetic_to_label  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position

TOKEN = 'l2r-jax-roundtrip-0123456789abcdef0123'


class LabelStudio:
  """A Label Studio server started for the run, and its REST API."""

  def __init__(self, executable: str, folder: str, port: int):
    self.url = f'http://127.0.0.1:{port}'
    env = dict(os.environ, LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED='false',
               DJANGO_DB='sqlite', LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK='true',
               # the token given at the start (newer releases make personal access tokens)
               LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN='true')
    self.log = open(os.path.join(folder, 'label_studio.log'), 'w')
    self.process = subprocess.Popen(
        [executable, 'start', '--no-browser', '--port', str(port), '--data-dir',
         os.path.join(folder, 'ls-data'), '--username', 'l2r@example.com', '--password',
         'l2r-jax-roundtrip', '--user-token', TOKEN],
        stdout=self.log, stderr=subprocess.STDOUT, env=env)
    started = time.time()
    while True:
      try:
        urllib.request.urlopen(self.url + '/health', timeout=5)
        break
      except (urllib.error.URLError, ConnectionError, OSError):
        if self.process.poll() is not None or time.time() - started > 600:
          raise RuntimeError(f'Label Studio did not start; see {self.log.name}') from None
        time.sleep(2)
    self.start_seconds = time.time() - started

  def api(self, method: str, path: str, body=None):
    request = urllib.request.Request(
        self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={'Authorization': f'Token {TOKEN}', 'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(request, timeout=300) as response:
        text = response.read().decode()
    except urllib.error.HTTPError as e:
      raise RuntimeError(f'{method} {path}: {e.code} {e.read().decode()[:2000]}') from None
    return json.loads(text) if text else None

  def close(self):
    self.process.terminate()
    try:
      self.process.wait(30)
    except subprocess.TimeoutExpired:
      self.process.kill()
    self.log.close()


def label_cli(*args: str, cwd: str) -> str:
  out = subprocess.run([sys.executable, '-m', 'l2r_jax.label', *args], cwd=cwd,
                       capture_output=True, text=True, timeout=1800)
  if out.returncode:
    raise RuntimeError(f'label {" ".join(args)}:\n{out.stdout}\n{out.stderr}')
  return out.stdout + out.stderr


def round_trip(ls: LabelStudio, name: str, flags, annotate_task, folder: str, aside_control: str):
  """One task's round trip, its last task set aside (the config's ``set aside`` choice, in
  ``aside_control``); returns the report's lines."""
  work = os.path.join(folder, f'{name}-work')
  flags = [*flags, f'--workdir={work}']
  started = time.time()
  label_cli('query', *flags, '--format=label-studio', cwd=ROOT)
  query_seconds = time.time() - started
  with open(os.path.join(work, 'query', 'label_studio_tasks.json')) as f:
    tasks = json.load(f)
  with open(os.path.join(work, 'query', 'label_studio_config.xml')) as f:
    config = f.read()
  project = ls.api('POST', '/api/projects', {'title': f'l2r-jax {name}', 'label_config': config})
  ls.api('POST', f'/api/projects/{project["id"]}/import', tasks)
  stored = ls.api('GET', f'/api/tasks?project={project["id"]}&page_size=1000')
  stored = stored['tasks'] if isinstance(stored, dict) else stored
  assert len(stored) == len(tasks), (len(stored), len(tasks))
  by_id = {t['data']['sample_id']: t for t in stored}
  predictions = sum(int(t.get('total_predictions') or len(t.get('predictions') or []))
                    for t in stored)
  expected = {}
  for task in tasks[:-1]:
    result, answer = annotate_task(task)
    ls.api('POST', f'/api/tasks/{by_id[task["data"]["sample_id"]]["id"]}/annotations',
           {'result': result, 'was_cancelled': False})
    expected[task['data']['sample_id']] = answer
  aside = tasks[-1]['data']['sample_id']   # no class fits, no joint can be told
  ls.api('POST', f'/api/tasks/{by_id[aside]["id"]}/annotations', {'result': [
      {'type': 'choices', 'from_name': aside_control, 'to_name': 'image',
       'value': {'choices': ['set aside']}}], 'was_cancelled': False})
  export = ls.api('GET', f'/api/projects/{project["id"]}/export?exportType=JSON')
  path = os.path.join(folder, f'{name}-export.json')
  with open(path, 'w') as f:
    json.dump(export, f, indent=2)
  printed = label_cli('answer', *flags, f'--answers={path}', cwd=ROOT)
  with open(os.path.join(work, 'answers.jsonl')) as f:
    taught = {r['id']: r['label'] for r in map(json.loads, f)}
  assert set(taught) == set(expected), (sorted(taught), sorted(expected))
  for sample_id, answer in expected.items():
    np.testing.assert_allclose(np.asarray(taught[sample_id], np.float64),
                               np.asarray(answer, np.float64), rtol=1e-6, atol=1e-6)
  with open(os.path.join(work, 'set_aside.json')) as f:
    set_aside = [s['id'] for s in json.load(f)['samples']]
  assert set_aside == [aside], (set_aside, aside)
  images = sum(t['data']['image'].startswith('data:image/png;base64,') for t in export)
  return [f'| {name} | {len(tasks)} | {predictions} | {images} | {len(export)} | '
          f'{len(taught)} | {len(set_aside)} | {query_seconds:.0f} s | '
          f'{printed.strip().splitlines()[-1][:90]} |']


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--label-studio', default=shutil.which('label-studio'),
                      help='the label-studio executable')
  parser.add_argument('--port', type=int, default=8089)
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                    'label_studio_roundtrip.md'))
  args = parser.parse_args()
  if not args.label_studio:
    sys.exit('give --label-studio: the label-studio executable (pip install label-studio '
             '\'sentry-sdk<3\', ideally in a virtual environment of its own)')
  # `label-studio --version` asks PyPI for the latest release: the package's metadata instead.
  python = os.path.join(os.path.dirname(args.label_studio), 'python')
  version = subprocess.run([python, '-c', 'import importlib.metadata as m; '
                            'print(m.version("label-studio"))'], capture_output=True, text=True)
  folder = tempfile.mkdtemp(prefix='l2r-ls-')
  truth = digits_folder.write_digits_folder(os.path.join(folder, 'digits'), labeled=20)
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  from l2r_jax import label_studio  # pylint: disable=g-import-not-at-top

  def digit(task):
    name = str(truth[task['data']['sample_id']])
    return [{'type': 'choices', 'from_name': 'label', 'to_name': 'image',
             'value': {'choices': [name]}}], name

  rng = np.random.default_rng(0)

  def joints(task):
    points = rng.uniform(10, 90, (16, 2))
    placed = np.arange(16) != 9       # the head top not placed: invisible
    result = [{'type': 'keypointlabels', 'from_name': 'joints', 'to_name': 'image',
               'original_width': 32, 'original_height': 32, 'image_rotation': 0,
               'value': {'x': float(x), 'y': float(y), 'width': 1.0,
                         'keypointlabels': [annotate.JOINT_NAMES[j]]}}
              for j, (x, y) in enumerate(points) if placed[j]]
    xy = label_studio.pixels(points, (32, 32)) * 8 / 32    # input 32, heatmap 8
    inside = np.all((xy >= -0.5) & (xy < 7.5), axis=1) & placed
    return result, np.c_[np.where(placed[:, None], xy, 0), inside]

  def heads(task):
    points = rng.uniform(5, 95, (int(rng.integers(0, 6)), 2))
    result = [{'type': 'keypointlabels', 'from_name': 'heads', 'to_name': 'image',
               'original_width': 32, 'original_height': 32, 'image_rotation': 0,
               'value': {'x': float(x), 'y': float(y), 'width': 1.0, 'keypointlabels': ['head']}}
              for x, y in points]
    from l2r_jax.data import density  # pylint: disable=g-import-not-at-top
    data = synthetic_to_label.get_config('crowd_smoke').data    # the loader's own settings
    side = data.image_size // data.density_stride
    return result, data.density_scale * density.density_map(
        label_studio.pixels(points, (32, 32)), (side, side), data.sigma, data.density_stride)

  ls = LabelStudio(args.label_studio, folder, args.port)
  try:
    rows = []
    rows += round_trip(ls, 'classification (digits folder)', [
        '--config=examples/image_folder.py', f'--config.data.root={folder}/digits'], digit, folder,
        'label')
    rows += round_trip(ls, 'pose (synthetic_to_label:pose_smoke)', [
        '--config=examples/synthetic_to_label.py:pose_smoke'], joints, folder, 'aside')
    rows += round_trip(ls, 'crowd (synthetic_to_label:crowd_smoke)', [
        '--config=examples/synthetic_to_label.py:crowd_smoke'], heads, folder, 'aside')
  finally:
    ls.close()
  lines = ['# A Label Studio round trip', '',
           f'Label Studio {version.stdout.strip() or version.stderr.strip()}, started in '
           f'{ls.start_seconds:.0f} s; {machine.describe()}',
           '', '`python benchmarks/label_studio_roundtrip.py`: tasks written by `label query '
           '--format=label-studio`, a project made with its labeling config, the tasks imported, '
           'each annotated through the REST API (the last with the config\'s "set aside" '
           'choice), the project exported as JSON and given to `label answer`; the answers '
           'taught equal those annotated (joints and heads as percentages of the image, back in '
           'input pixels), and the last task\'s sample is set aside.', '',
           '| task | tasks imported | predictions kept | images kept | exported | taught | '
           'set aside | query (with its round) | `label answer` said |',
           '|---|---|---|---|---|---|---|---|---|',
           *rows, '']
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, 'w') as f:
    f.write('\n'.join(lines))
  print('\n'.join(lines))
  shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
  main()
