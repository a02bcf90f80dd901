"""Notebooks only drive the library: run them so they cannot rot."""
import json
import os
import tempfile

import matplotlib
import pytest

matplotlib.use('Agg')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, 'notebooks')


def _code_cells(name):
  """The notebook's code cells, which must be saved without outputs; IPython's ``!`` and ``%``
  lines (Colab setup) are left out."""
  with open(os.path.join(NOTEBOOKS, name)) as f:
    nb = json.load(f)
  cells = []
  for cell in nb['cells']:
    if cell['cell_type'] == 'code':
      assert not cell['outputs'] and cell['execution_count'] is None
      cells.append(''.join(line for line in cell['source']
                           if not line.lstrip().startswith(('!', '%'))))
  return cells


def _run(name):
  namespace = {}
  for source in _code_cells(name):
    exec(compile(source, name, 'exec'), namespace)  # pylint: disable=exec-used
  return namespace


@pytest.mark.slow  # a whole run of each notebook: .ci/run's slow suite
def test_sorter_tour(capsys):
  _run('sorter_tour.ipynb')
  out = capsys.readouterr().out
  # The listwise loss must have taught both rankers to order the scores like the losses.
  for ranker in ('gru', 'soft_rank'):
    final = float(out.split(f'{ranker}: Spearman rho ')[1].split('-> ')[1].split()[0])
    assert final > 0.95, out


@pytest.mark.slow  # a whole run of each notebook: .ci/run's slow suite
def test_quickstart_executes_in_a_kernel(tmp_path):
  """The quickstart as a user runs it: every cell in a fresh Jupyter kernel (nbclient)."""
  nbclient = pytest.importorskip('nbclient')
  nbformat = pytest.importorskip('nbformat')
  nb = nbformat.read(os.path.join(NOTEBOOKS, 'quickstart.ipynb'), as_version=4)
  assert not any(c.get('outputs') for c in nb.cells if c.cell_type == 'code')
  # The kernel inherits the environment: its temporary folder (the notebook's workdir) is
  # tmp_path, and it imports this checkout. Figures come back inline, as in Colab.
  env = dict(os.environ, TMPDIR=str(tmp_path),
             PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
  env.pop('MPLBACKEND', None)
  # On the one CPU device a user's kernel has, not the suite's two fake ones (whose all-reduce
  # XLA's CPU runtime abandons after 40 s when a loaded machine starves one of them).
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if not f.startswith('--xla_force_host_platform_device_count'))
  old = dict(os.environ)
  os.environ.update(env)
  try:
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': ROOT}}).execute()
  finally:
    os.environ.clear()
    os.environ.update(old)
  workdir = tmp_path / 'l2r-quickstart-quick'
  records = [json.loads(line) for line in (workdir / 'results.jsonl').read_text().splitlines()]
  strategies = {r['strategy'] for r in records}
  assert {'random', 'entropy', 'coreset', 'vaal', 'll4al', 'l2r'} <= strategies
  assert len(records) == 3 * len(strategies)  # the three cycles of the quick config
  # It learns: every strategy well above chance (0.1) by its last cycle.
  assert min(r['value'] for r in records if r['cycle'] == 2) > 0.6, records
  text = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
  assert '| l2r |' in text and 'picked' in text  # the summary table and the picks were shown
  images = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
            if 'image/png' in o.get('data', {})]
  assert len(images) == 2  # the curves and the picks


def test_paper_notebook_is_saved_clean_and_parses():
  cells = _code_cells('cifar10_paper.ipynb')
  for source in cells:
    compile(source, 'cifar10_paper.ipynb', 'exec')
  with open(os.path.join(NOTEBOOKS, 'cifar10_paper.ipynb')) as f:
    text = f.read()
  # It runs the paper config with its workdir on Drive, where a rerun resumes.
  assert 'python -m l2r_jax.main --config=configs/cifar10.py --workdir={WORKDIR}' in text


@pytest.mark.slow  # a whole run of each notebook: .ci/run's slow suite
def test_your_own_data_notebook(tmp_path, monkeypatch, capsys):
  """The worked example's notebook: a simulation, then a learner answered three times."""
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
  _run('your_own_data.ipynb')
  out = capsys.readouterr().out
  assert '| l2r |' in out and 'class TabularMLP' in out
  assert [line.split(':')[0] for line in out.splitlines() if line.startswith('round ')] == [
      'round 0', 'round 1', 'round 2']
  assert 'round 2: 48 labels' in out
  assert 'exported model predicts the same: True' in out and '1 correction(s)' in out
  assert (tmp_path / 'l2r-your-own-data-quick' / 'labels' / 'query' / 'query.csv').exists()
