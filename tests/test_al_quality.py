"""The quality report's arithmetic (benchmarks/al_quality.py), on hand-made results."""
import importlib.util
import os

import numpy as np
import pytest

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, 'benchmarks', 'al_quality.py')
_spec = importlib.util.spec_from_file_location('al_quality', _PATH)
al_quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(al_quality)


def test_auc_is_the_mean_height_of_the_piecewise_linear_curve():
  # (0.5 + 0.7) / 2 * 100 + (0.7 + 0.8) / 2 * 200 = 210 over a range of 300.
  assert al_quality.auc([100, 200, 400], [0.5, 0.7, 0.8]) == pytest.approx(0.7)
  assert al_quality.auc([100], [0.4]) == 0.4


def _records(metric, curves, rhos=None):
  """curves: {(strategy, seed): values at 10, 20, 30 labels}."""
  out = []
  for (strategy, seed), values in curves.items():
    for k, v in enumerate(values):
      rho = None if rhos is None or strategy not in rhos else rhos[strategy][seed]
      out.append({'strategy': strategy, 'seed': seed, 'cycle': k, 'num_labeled': 10 * (k + 1),
                  'metric': metric, 'value': v, 'spearman': rho, 'wall_s': 20.0})
  return out


def test_summary_skips_unfinished_runs_and_reads_the_last_rho():
  records = _records('accuracy', {('random', 0): [0.1, 0.2, 0.3], ('random', 1): [0.1, 0.2],
                                  ('l2r', 0): [0.1, 0.4, 0.4]}, rhos={'l2r': {0: 0.5}})
  records[-1]['spearman'] = 0.7  # the last cycle's rho is the one reported
  s = al_quality.task_summary(records)
  assert list(s['random']['auc']) == [0]
  assert s['random']['auc'][0] == pytest.approx(0.2)
  assert s['l2r']['auc'][0] == pytest.approx((0.25 + 0.4) / 2)
  assert s['l2r']['rho'] == {0: 0.7}


def test_the_bar_signs_margins_by_the_metric_direction():
  curves = {('random', 0): [10, 8, 6], ('random', 1): [10, 8, 6.2],
            ('l2r', 0): [10, 7, 5], ('l2r', 1): [10, 7, 5.2],
            ('entropy', 0): [10, 9, 8], ('entropy', 1): [10, 9, 8]}
  summary = al_quality.task_summary(_records('mae', curves))
  rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in
          al_quality.bar(summary, 'crowd', higher_is_better=False)[2:]}
  # Lower MAE is better. AUCs (mean heights): random 8.0 and 8.05, l2r 7.25 and 7.3, entropy 9.0:
  # l2r is 0.75 below random and 1.725 below entropy.
  assert float(rows['AUC: L2R-AL beats random'][1]) == pytest.approx(0.75)
  assert rows['AUC: L2R-AL beats random'][3:] == ['2 of 2', 'met |']
  assert float(rows['AUC: L2R-AL beats entropy'][1]) == pytest.approx(1.725)
  # Entropy is a rival on regression tasks only; absent rivals are not claimed.
  classification = al_quality.bar(summary, 'classification', higher_is_better=True)
  assert not any('entropy' in line for line in classification)
  assert not any('ll4al' in line for line in classification)
  assert float(classification[2].split(' | ')[1]) == pytest.approx(-0.75)
  assert classification[2].endswith('| 0 of 2 | not met |')
  # Seeds are paired: L2R-AL ahead of random on seed 0 only (AUC 7.25 against 8.0 lower-better,
  # 8.725 against 8.05 on seed 1), over the seeds both ran (random's seed 2 is not counted).
  curves.update({('l2r', 1): [10, 8.3, 8.3], ('random', 2): [1, 1, 1]})
  summary = al_quality.task_summary(_records('mae', curves))
  row = al_quality.bar(summary, 'crowd', higher_is_better=False)[2].split(' | ')
  assert row[0] == '| AUC: L2R-AL beats random' and row[3] == '1 of 2'


def test_task_section_marks_the_best_area():
  curves = {('random', 0): [0.1, 0.2, 0.3], ('l2r', 0): [0.1, 0.3, 0.4],
            ('ll4al', 0): [0.1, 0.2, 0.2], ('oracle_loss', 0): [0.1, 0.5, 0.6]}
  md = al_quality.task_markdown('toy', _records('accuracy', curves,
                                                {'l2r': {0: 0.6}, 'll4al': {0: 0.2}}),
                                'classification', 120.0)
  # The diagnostic oracle reads the labels: never the best, and said to be a diagnostic.
  # Each run's wall time is its cycles' (20 s each here): 1 minute.
  assert '| l2r | **0.2750 ± 0.0000** | 0.6000 ± 0.0000 | 1 | 1.0 |' in md
  assert '| oracle_loss | 0.4250 ± 0.0000 |  | 1 | 1.0 |' in md and 'is a diagnostic' in md
  # One seed: no verdict on a margin without a spread.
  assert '`oracle_loss` against random: one seed' in md and 'pays here' not in md
  # Two seeds: the oracle's AUC (0.425 and 0.475) against random's (0.2 and 0.25), a margin of
  # 0.225 in seed stds of 0.025: it pays.
  two = {**curves, ('random', 1): [0.15, 0.25, 0.35], ('oracle_loss', 1): [0.15, 0.55, 0.65]}
  md_two = al_quality.task_markdown('toy', _records('accuracy', two), 'classification', 60.0)
  assert '`oracle_loss` beats random by 0.2250 AUC (+9.0 seed stds)' in md_two
  assert 'highest losses pays here' in md_two
  assert '| rho: L2R-AL > LL4AL | +0.4000 |' in md
  # In a partial report the best is among the strategies with the most seeds: random (0.225 over
  # two), not l2r's higher area over one.
  assert '| random | **0.2250 ± 0.0250** |' in md_two and '| l2r | 0.2750 ± 0.0000 |' in md_two
  assert 'quality_toy.png' in md and '2.0 min' in md
  assert np.isfinite(al_quality.auc([1, 2], [0.0, 1.0]))
  named = al_quality.task_markdown('toy', _records('accuracy', curves), 'classification', 60.0,
                                   command='`python x.py`', measured_on='Some CPU on cpu')
  assert named.startswith('## toy\n\nCommand: `python x.py`.\n\nMachine: Some CPU on cpu.\n\n')
  assert 'Command:' not in md and 'Machine:' not in md


def test_update_replaces_only_the_rerun_tasks_and_keeps_their_commands():
  old = ('# Active-learning quality on the offline tasks\n\n'
         '`python benchmarks/al_quality.py --tasks mnist1d,digits --seeds 5`; AMD EPYC, AVX512F '
         '(x86_64), 2 CPU cores, jax 0.10.2 on cpu.\n'
         '\n## mnist1d\n\nold mnist1d table\n\n## digits\n\nold digits table\n')
  new = {'digits': '## digits\n\nCommand: `python benchmarks/al_quality.py --tasks digits '
                   '--seeds 3`.\n\nMachine: Intel Xeon on cpu.\n\nnew digits table\n',
         'synthetic_crowd': '## synthetic_crowd\n\nCommand: `x`.\ncrowd table\n'}
  merged = al_quality.merge_sections(old, new)
  assert [s.splitlines()[0] for s in merged] == ['## mnist1d', '## digits', '## synthetic_crowd']
  # The kept section gets the old header's command and machine, the rerun one keeps its own.
  assert merged[0] == ('## mnist1d\n\nCommand: `python benchmarks/al_quality.py --tasks '
                       'mnist1d,digits --seeds 5`.\n\nMachine: AMD EPYC, AVX512F (x86_64), 2 CPU '
                       'cores, jax 0.10.2 on cpu.\n\nold mnist1d table\n')
  assert merged[1] == new['digits'] and 'old digits' not in ''.join(merged)
  # Merging again, under the header an update writes, keeps every section as it is (nothing
  # added twice).
  again = al_quality.merge_sections(
      '# header\n\nEach section names its command and the machine it ran on.\n\n'
      + '\n'.join(merged), {})
  assert again == merged
  # A merged report's header names the machine of its last update only: no section is given it.
  merged_header = al_quality.merge_sections(
      '# h\n\nEach section names its command; AMD EPYC on cpu.\n\n## digits\n\nCommand: `y`.'
      '\n\ntable\n', {})
  assert merged_header == ['## digits\n\nCommand: `y`.\n\ntable\n']


def test_penalty_matrix_counts_significant_paired_wins_per_cycle():
  # Three cycles, four seeds. Cycle 0 is the shared start (all equal: no win). At cycles 1 and 2,
  # 'a' is above 'b' by exactly 0.1 on every seed (paired differences constant: p = 0); 'c'
  # differs from 'b' by +0.1, -0.1, +0.1, -0.1 (mean 0: no win either way); 'a' vs 'c' at cycle 1
  # differs by 0, 0.2, 0, 0.2 (t = 1.73, p = 0.18: no win).
  base = {0: [0.5, 0.6, 0.7], 1: [0.5, 0.6, 0.7], 2: [0.5, 0.6, 0.7], 3: [0.5, 0.6, 0.7]}
  curves = {}
  for seed, values in base.items():
    curves[('b', seed)] = values
    curves[('a', seed)] = [values[0]] + [v + 0.1 for v in values[1:]]
    flip = 0.1 if seed % 2 == 0 else -0.1
    curves[('c', seed)] = [values[0]] + [v + flip for v in values[1:]]
  records = _records('accuracy', curves)
  names, matrix = al_quality.penalty_matrix(records, higher_is_better=True)
  assert names == ['b', 'a', 'c']
  a, b, c = names.index('a'), names.index('b'), names.index('c')
  assert matrix[a, b] == pytest.approx(2 / 3) and matrix[b, a] == 0
  assert matrix[c, b] == matrix[b, c] == 0
  assert matrix[a, c] == matrix[c, a] == 0
  # Lower is better: the same differences make 'b' the winner.
  _, lower = al_quality.penalty_matrix(records, higher_is_better=False)
  assert lower[b, a] == pytest.approx(2 / 3) and lower[a, b] == 0
  table = al_quality.penalty_markdown(names, matrix)
  assert table[0] == '| beats → | b | a | c | wins |'
  assert table[3] == '| a | 0.67 |  | 0.00 | 0.67 |'
  assert table[-1].startswith('Ranked by losses (fewest first; ties by wins): a (0.00), c (0.00), '
                              'b (0.67)')


def _task_config(strategies=('random', 'l2r'), seeds=(0, 1), cycles=3):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(
      {'strategies': strategies, 'seeds': seeds, 'al': {'cycles': cycles}})


def _write_results(folder, curves):
  import json  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'results.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in _records('accuracy', curves))


def test_a_task_begun_on_another_machine_is_refused_unless_finished(tmp_path):
  root = str(tmp_path)
  amd, intel = 'AMD EPYC, AVX512F (x86_64), 2 CPU cores on cpu', 'Intel Xeon, AVX512F on cpu'
  configs = {'digits': _task_config(), 'mnist1d': _task_config()}
  # First runs: each task's machine recorded beside its workdir.
  assert al_quality.machines(root, configs, amd) == {'digits': amd, 'mnist1d': amd}
  assert open(tmp_path / 'digits.machine').read() == amd + '\n'
  # digits finished on the AMD machine (2 strategies x 2 seeds x 3 cycles); mnist1d half done.
  _write_results(tmp_path / 'digits', {(s, seed): [0.5, 0.6, 0.7]
                                       for s in ('random', 'l2r') for seed in (0, 1)})
  _write_results(tmp_path / 'mnist1d', {('random', 0): [0.5, 0.6, 0.7], ('l2r', 0): [0.5]})
  # On another machine: the finished task is read back under its own machine; the unfinished one
  # is refused, naming both machines and what to move aside, and nothing is recorded.
  assert al_quality.machines(root, {'digits': configs['digits']}, intel) == {'digits': amd}
  configs['pose'] = _task_config()
  with pytest.raises(SystemExit) as refused:
    al_quality.machines(root, configs, intel)
  message = str(refused.value)
  assert message.startswith('mnist1d: its runs in ') and amd in message and intel in message
  assert str(tmp_path / 'mnist1d.machine') in message and 'digits' not in message
  assert not (tmp_path / 'pose.machine').exists()
  # More seeds make the finished task unfinished again: refused too.
  with pytest.raises(SystemExit, match='^digits: '):
    al_quality.machines(root, {'digits': _task_config(seeds=(0, 1, 2))}, intel)
  # On its own machine every task goes on; an older workdir without a record takes this machine.
  assert al_quality.machines(root, configs, amd) == {'digits': amd, 'mnist1d': amd, 'pose': amd}
  _write_results(tmp_path / 'crowd', {('random', 0): [0.5]})
  assert al_quality.machines(root, {'crowd': _task_config()}, intel) == {'crowd': intel}
  assert open(tmp_path / 'crowd.machine').read() == intel + '\n'


def test_a_task_list_naming_nothing_or_an_unknown_variant_is_refused_and_writes_nothing(tmp_path):
  out = tmp_path / 'results'
  with pytest.raises(SystemExit, match='^--tasks names no task: give one or more of mnist1d, '):
    al_quality.main(['--tasks', ',', '--out', str(out), '--workdir', str(tmp_path / 'runs')])
  with pytest.raises(SystemExit, match="^--tasks=mnist1d:nosuch: Unknown variant 'nosuch'"):
    al_quality.main(['--tasks', 'mnist1d:nosuch', '--out', str(out),
                     '--workdir', str(tmp_path / 'runs')])
  assert not out.exists() and not (tmp_path / 'runs').exists()


def _seeds_config(seeds):
  """The config of the smoke digits task the test below runs, with ``seeds``."""
  config = al_quality.load_config('digits', smoke=True)
  config.seeds = seeds
  config.strategies = tuple(config.strategies)
  return config


def test_finished_runs_are_kept_beside_the_report_and_a_fresh_checkout_runs_only_the_rest(
    tmp_path, monkeypatch):
  import json  # pylint: disable=g-import-not-at-top
  from l2r_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  out, runs = tmp_path / 'results', tmp_path / 'runs'
  argv = ['--tasks', 'digits', '--smoke', '--seeds', '2', '--out', str(out), '--workdir', str(runs)]
  calls, kill_after = [], [2]

  def value(strategy, seed, cycle):  # a distinct, known result per run and cycle
    return round(0.5 + 0.1 * cycle + 0.01 * seed + 0.001 * len(strategy), 6)

  def fake_run(config, workdir, after_run=None):  # the driver's files and calls
    calls.append((config.strategies, tuple(config.seeds)))
    os.makedirs(workdir, exist_ok=True)
    workdir_lib.write_identity(workdir, workdir_lib.identity(config))
    for strategy in config.strategies:
      for seed in config.seeds:
        for cycle in range(config.al.cycles):
          if len(calls) > kill_after[0] and seed == 1:  # killed in its second seed's first cycle
            raise KeyboardInterrupt
          with open(os.path.join(workdir, 'results.jsonl'), 'a') as f:
            f.write(json.dumps({'strategy': strategy, 'seed': seed, 'cycle': cycle,
                                'num_labeled': 8 * (cycle + 1), 'metric': 'accuracy',
                                'value': value(strategy, seed, cycle), 'spearman': None,
                                'wall_s': 1.0}) + '\n')
        if after_run:
          after_run(strategy, seed)
    return []

  monkeypatch.setattr(al_quality.experiment, 'run', fake_run)
  monkeypatch.setattr(al_quality.machine, 'describe', lambda: 'AMD EPYC')
  with pytest.raises(KeyboardInterrupt):
    al_quality.main(argv)
  strategies = [c[0][0] for c in calls]
  assert len(strategies) == 3 and all(c[1] == (0, 1) for c in calls)
  kept = out / 'records' / 'digits'
  kept_runs = {(r['strategy'], r['seed']) for r in al_quality.report.read_records(str(kept))}
  # The runs that finished are kept, each as it finished; the one killed is not.
  assert kept_runs == {(s, seed) for s in strategies[:2] for seed in (0, 1)} | {
      (strategies[2], 0)}
  assert open(f'{kept}.machine').read() == 'AMD EPYC on cpu\n'
  assert json.load(open(kept / 'experiment.json')) == json.load(
      open(runs / 'digits' / 'experiment.json'))
  # A fresh checkout (the workdir gone): only the runs not kept are run, then the report.
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(runs)
  calls.clear()
  kill_after[0] = 10 ** 6
  text = al_quality.main(argv)
  assert calls[0] == ((strategies[2],), (1,)) and all(c[1] == (0, 1) for c in calls[1:])
  assert not {c[0][0] for c in calls} & set(strategies[:2])
  everything = {(s, seed) for s in [c[0][0] for c in calls] + strategies[:2] for seed in (0, 1)}
  records = al_quality.report.read_records(str(kept))
  assert {(r['strategy'], r['seed']) for r in records} == everything
  assert all(r['value'] == value(r['strategy'], r['seed'], r['cycle']) for r in records)
  assert '## digits' in text and f'| {strategies[0]} |' in text
  # Everything kept: nothing runs, the same report; a strategy the task lacks is refused.
  with pytest.raises(SystemExit, match=r'^--strategies: nosuch not among the strategies of '
                     r'digits: random, '):
    al_quality.main(argv + ['--strategies', f'{strategies[0]},nosuch'])
  calls.clear()
  assert al_quality.main(argv) == text and not calls
  # On another CPU the finished task is read back; with a third seed it is refused, naming the
  # folder kept and its machine, unless only reported.
  monkeypatch.setattr(al_quality.machine, 'describe', lambda: 'Intel Xeon')
  assert al_quality.main(argv) == text and not calls
  more = argv[:4] + ['3'] + argv[5:]
  with pytest.raises(SystemExit, match=r'^digits: its runs in .*records/digits were made on AMD '
                     r'EPYC on cpu, and this is Intel Xeon on cpu'):
    al_quality.main(more)
  # The report of what is kept names the runs not done, in the order they run.
  order = list(dict.fromkeys(r['strategy'] for r in records))
  machine_line = 'Machine: AMD EPYC on cpu.\n\n'
  expected = text.replace('--seeds 2', '--seeds 3').replace(
      machine_line, machine_line + 'A partial report; not done yet: '
      + '; '.join(f'{s} seed 2' for s in order) + '.\n\n', 1)
  assert al_quality.main(more + ['--report-only']) == expected
  assert not calls
  # Finished runs of a workdir made on another machine are not kept beside these.
  # Only the strategies asked for run; the report names the others not done.
  with monkeypatch.context() as m:
    m.setattr(al_quality.machine, 'describe', lambda: 'AMD EPYC')
    only = al_quality.main(more + ['--strategies', f'{strategies[1]},{strategies[0]}'])
  assert calls == [((strategies[0],), (2,)), ((strategies[1],), (2,))]
  assert only.count(' seed 2') == len(order) - 2
  calls.clear()
  fake_run(_seeds_config((2,)), str(runs / 'digits'))
  workdir_lib.write_atomic(str(runs / 'digits.machine'), 'Intel Xeon on cpu\n')
  for report_only in ([], ['--report-only']):
    with pytest.raises(SystemExit, match=r'^digits: the runs in .*runs/digits were made on Intel '
                       r'Xeon on cpu and those in .*records/digits were made on AMD EPYC on cpu; '
                       r'results compare only within one machine: move one of the two aside'):
      al_quality.main(more + report_only)
  shutil.rmtree(runs)
  # Runs of another experiment are not mixed with those kept.
  identity = json.load(open(kept / 'experiment.json'))
  identity['fields']['train.epochs'] = 99
  workdir_lib.write_atomic(str(kept / 'experiment.json'), json.dumps(identity))
  monkeypatch.setattr(al_quality.machine, 'describe', lambda: 'AMD EPYC')
  with pytest.raises(SystemExit, match=r'^digits: .*records/digits holds the runs of another '
                     r'experiment \(config.train.epochs: 99 -> 2\); move it and '
                     r'.*records/digits.machine aside to run digits again.$'):
    al_quality.main(argv)
  # So are a workdir's: its finished runs are not kept, whatever the folder kept.
  shutil.rmtree(kept)
  os.remove(f'{kept}.machine')
  config = _seeds_config((0,))
  config.train.epochs = 99
  fake_run(config, str(runs / 'digits'))
  with pytest.raises(SystemExit, match=r'^digits: .*runs/digits holds the runs of another '
                     r'experiment \(config.ll4al.detach_epoch: 59 -> 1; '   # it follows the epochs
                     r'config.train.epochs: 99 -> 2\)'):
    al_quality.main(argv + ['--report-only'])
  assert not kept.exists()


def test_a_run_kept_with_fewer_cycles_is_replaced_by_its_longer_self(tmp_path):
  kept, workdir = tmp_path / 'records' / 'toy', tmp_path / 'runs' / 'toy'
  _write_results(workdir, {('random', 0): [0.5, 0.6], ('l2r', 0): [0.5]})
  al_quality.keep_finished('toy', _task_config(seeds=(0,), cycles=2), str(workdir), str(kept),
                           'AMD EPYC on cpu')
  assert sorted((r['strategy'], r['cycle']) for r in al_quality._records(str(kept))) == [
      ('random', 0), ('random', 1)]
  # A third cycle asked (al.cycles may grow on resume) and run: the kept run grows with it.
  _write_results(workdir, {('random', 0): [0.5, 0.6, 0.7], ('l2r', 0): [0.5, 0.6, 0.8]})
  three = _task_config(seeds=(0,), cycles=3)
  al_quality.keep_finished('toy', three, str(workdir), str(kept), 'AMD EPYC on cpu')
  records = al_quality.kept_records(three, str(kept))
  assert sorted((r['strategy'], r['cycle'], r['value']) for r in records) == [
      ('l2r', 0, 0.5), ('l2r', 1, 0.6), ('l2r', 2, 0.8),
      ('random', 0, 0.5), ('random', 1, 0.6), ('random', 2, 0.7)]
  assert len(al_quality._records(str(kept))) == 6
