"""``python -m l2r_jax.report`` and ``summary.md`` on results files written here: the numbers
against numpy, the rounds and seeds they stand for, and the folders it refuses to write in."""
import json
import os

import numpy as np
import pytest

from l2r_jax import report


def _workdir(path, records):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'results.jsonl'), 'w') as f:
    for r in records:
      f.write((r if isinstance(r, str) else json.dumps(r)) + '\n')
  return str(path)


def _record(strategy, seed, cycle, labels, value, spearman=None):
  return {'strategy': strategy, 'seed': seed, 'cycle': cycle, 'num_labeled': labels,
          'metric': 'accuracy', 'value': value, 'spearman': spearman}


def _row(table, name):
  line = next(l for l in table.splitlines() if l.startswith(f'| {name} |'))
  return [c.strip() for c in line.strip('|').split('|')][1:]


def test_each_cell_is_numpys_mean_and_std_over_the_seeds_there_and_says_when_some_are_missing(
    tmp_path):
  values = {0: [0.50, 0.61, 0.70], 1: [0.52, 0.66, 0.71], 2: [0.47, 0.58]}   # seed 2: running
  records = [_record('l2r', seed, c, 10 * (c + 1), v, spearman=0.5 + 0.1 * seed)
             for seed, vs in values.items() for c, v in enumerate(vs)]
  table = report.summary_markdown(records)
  cells = _row(table, 'l2r')
  for c in range(2):
    column = [values[s][c] for s in values]
    assert cells[c] == f'{np.mean(column):.4f} ± {np.std(column):.4f}'
  last = [values[0][2], values[1][2]]
  assert cells[2] == f'{np.mean(last):.4f} ± {np.std(last):.4f} (n=2)'
  assert 'over 3 seed(s) (0, 1, 2)' in table
  # rho: the last cycle's, over the seeds that reached it.
  assert cells[3] == f'{np.mean([0.5, 0.6]):.3f} ± {np.std([0.5, 0.6]):.3f} (n=2)'


def test_a_learners_round_after_corrections_replaces_the_round_before_at_as_many_labels():
  # Round 2 trained again on the 120 labels of round 1, three of them corrected: one learner,
  # one seed; its cell is round 2's, not the two rounds' mean and spread as if they were seeds.
  records = [_record('entropy', 0, 0, 100, 0.30), _record('entropy', 0, 1, 120, 0.3823),
             _record('entropy', 0, 2, 120, 0.2897)]
  cells = _row(report.summary_markdown(records), 'entropy')
  assert cells == ['0.3000 ± 0.0000', '0.2897 ± 0.0000', '']


def test_the_report_refuses_a_folder_it_would_write_over_and_a_workdir_given_twice(
    tmp_path, capsys):
  a = _workdir(tmp_path / 'a', [_record('random', 0, 0, 10, 0.5)])
  b = _workdir(tmp_path / 'b', [_record('random', 0, 0, 10, 0.6)])
  os.symlink(a, tmp_path / 'a_link')
  for out in (a, str(tmp_path / 'a_link'), os.path.join(a, 'sub'), b):
    before = {w: open(os.path.join(w, 'results.jsonl')).read() for w in (a, b)}
    assert report.main([a, '--out', out]) == 2, out
    assert {w: open(os.path.join(w, 'results.jsonl')).read() for w in (a, b)} == before
    assert not os.path.exists(os.path.join(a, 'summary.md'))
  err = capsys.readouterr().err
  assert 'is ' in err and 'or a folder in it, and the workdirs are only read' in err
  assert 'holds results.jsonl: give a new or empty folder' in err
  assert report.main([a, str(tmp_path / 'a_link'), '--out', str(tmp_path / 'x')]) == 2
  assert 'one workdir given twice' in capsys.readouterr().err
  # A folder a report wrote before is written again; a new one is made.
  out = str(tmp_path / 'compared')
  assert report.main([a, b, '--out', out]) == 0
  assert report.main([a, b, '--out', out]) == 0
  assert sorted(os.listdir(out)) == ['curves.png', 'summary.md']


def test_a_line_edited_into_another_kind_is_left_out_in_one_line(tmp_path, capsys):
  good = _record('l2r', 0, 0, 10, 0.5, spearman=0.7)
  w = _workdir(tmp_path / 'w', [good, json.dumps(dict(good, cycle=1, num_labeled=20,
                                                       spearman='high'))])
  assert report.read_records(w) == [good]
  assert 'line 2: not a result record; left out.' in capsys.readouterr().err
  assert report.main([w]) == 0
