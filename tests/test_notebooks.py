"""Notebooks only drive the library: run their code cells so they cannot rot."""
import json
import os

import matplotlib

matplotlib.use('Agg')

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'notebooks')


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


def test_sorter_tour(capsys):
  _run('sorter_tour.ipynb')
  out = capsys.readouterr().out
  # The listwise loss must have taught both rankers to order the scores like the losses.
  for ranker in ('gru', 'soft_rank'):
    final = float(out.split(f'{ranker}: Spearman rho ')[1].split('-> ')[1].split()[0])
    assert final > 0.95, out


def test_quickstart(monkeypatch, tmp_path):
  monkeypatch.setattr('tempfile.gettempdir', lambda: str(tmp_path))
  ns = _run('quickstart.ipynb')
  config, records, finals = ns['config'], ns['records'], ns['finals']
  assert set(finals) == set(config.strategies) and 'vaal' in finals
  assert {(r['strategy'], r['cycle']) for r in records} == {
      (s, c) for s in config.strategies for c in range(config.al.cycles)}
  final_size = config.al.initial + (config.al.cycles - 1) * config.al.budget
  assert all(len(set(al.labeled.tolist())) == final_size for al in finals.values())
  assert (tmp_path / 'l2r-quickstart' / 'summary.md').exists()


def test_paper_notebook_is_saved_clean_and_parses():
  cells = _code_cells('cifar10_paper.ipynb')
  for source in cells:
    compile(source, 'cifar10_paper.ipynb', 'exec')
  with open(os.path.join(NOTEBOOKS, 'cifar10_paper.ipynb')) as f:
    text = f.read()
  # It runs the paper config with its workdir on Drive, where a rerun resumes.
  assert 'python -m l2r_jax.main --config=configs/cifar10.py --workdir={WORKDIR}' in text
