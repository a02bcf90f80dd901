"""Notebooks only drive the library: run their code cells so they cannot rot."""
import json
import os

import matplotlib
import pytest

matplotlib.use('Agg')

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'notebooks')


@pytest.mark.parametrize('name', ['sorter_tour.ipynb'])
def test_notebook_runs_and_is_saved_without_outputs(name, capsys):
  with open(os.path.join(NOTEBOOKS, name)) as f:
    nb = json.load(f)
  namespace = {}
  for cell in nb['cells']:
    if cell['cell_type'] == 'code':
      assert not cell['outputs'] and cell['execution_count'] is None
      exec(compile(''.join(cell['source']), name, 'exec'), namespace)  # pylint: disable=exec-used
  out = capsys.readouterr().out
  # The listwise loss must have taught both rankers to order the scores like the losses.
  for ranker in ('gru', 'soft_rank'):
    final = float(out.split(f'{ranker}: Spearman rho ')[1].split('-> ')[1].split()[0])
    assert final > 0.95, out
