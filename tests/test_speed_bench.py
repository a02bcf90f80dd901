"""The speed benchmark's references and report (benchmarks/speed.py), on small hand-made inputs."""
import json
import importlib.util
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from l2r_jax.strategies import coreset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PATH = os.path.join(ROOT, 'benchmarks', 'speed.py')
_spec = importlib.util.spec_from_file_location('speed', _PATH)
speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(speed)


def _brute_force_k_center(candidates, centers, budget):
  """Farthest-first, from the definition: each step, the candidate whose nearest centre (initial
  or picked) is farthest."""
  picked = []
  for _ in range(budget):
    best, best_d = None, -1.0
    for i, p in enumerate(candidates):
      if i in picked:
        continue
      d = min(float(np.linalg.norm(p - c)) for c in list(centers) + [candidates[j] for j in picked])
      if d > best_d:
        best, best_d = i, d
    picked.append(best)
  return picked


def test_numpy_k_center_picks_the_farthest_candidate_each_time():
  # Squared distances to the centre (0, 0): 0, 1, 25, 9, 200, 8 -> (10, 10) first; then (5, 0)
  # (25 from the centre), then (0, 3) (9), then (2, 2) (5 from (0, 3)).
  candidates = np.array([[0, 0], [1, 0], [5, 0], [0, 3], [10, 10], [2, 2]], np.float32)
  centers = np.zeros((1, 2), np.float32)
  np.testing.assert_array_equal(speed.k_center_greedy_numpy(candidates, centers, 4), [4, 2, 3, 5])
  r = np.random.default_rng(1)
  candidates, centers = r.normal(size=(12, 3)), r.normal(size=(3, 3))
  assert speed.k_center_greedy_numpy(candidates, centers, 6).tolist() == _brute_force_k_center(
      candidates, centers, 6)


@pytest.mark.parametrize('num_centers', [0, 37])
def test_numpy_k_center_picks_what_the_jax_one_picks(num_centers):
  r = np.random.default_rng(0)
  candidates = r.normal(size=(300, 16)).astype(np.float32)
  centers = r.normal(size=(num_centers, 16)).astype(np.float32)
  # chunk 16: the initial centres are reduced in several blocks (the last one padded in JAX).
  expected = np.asarray(coreset.k_center_greedy(jnp.asarray(candidates), jnp.asarray(centers),
                                                40, chunk=16))
  np.testing.assert_array_equal(speed.k_center_greedy_numpy(candidates, centers, 40, chunk=16),
                                expected)


def test_the_pytorch_children_draw_the_protocol_without_jax():
  """speed.py's PyTorch children import the driver's protocol module, which must not load JAX."""
  code = ('import sys; sys.path.insert(0, %r); from benchmarks import speed; '
          'assert speed.epoch_order is protocol.epoch_order; '
          'print(sorted(m for m in sys.modules if m == "jax" or m.startswith("jax.")))')
  out = subprocess.run([sys.executable, '-c', 'from l2r_jax import protocol; ' + code % ROOT],
                       capture_output=True, text=True, check=True, cwd=ROOT).stdout
  assert out.strip() == '[]'


def test_sizes_quick_cuts_the_heavy_cases():
  full, quick = speed.sizes(False), speed.sizes(True, seeds=2)
  assert (full['score_n'], full['kcenter_n'], full['kcenter_budget']) == (10000, 10000, 1000)
  assert (quick['score_n'], quick['kcenter_n']) == (2048, 2048)
  assert full['cycles'] is None and quick['cycles'] == 2 and quick['seeds'] == 2
  assert '2,048 images' in speed.what('c', quick)
  assert 'first 2 cycles of 20 epochs' in speed.what('e', quick)


def test_a_shorter_schedule_keeps_the_lr_step_and_the_detach_in_place():
  config = speed.mnist1d_config(speed.sizes(True, seeds=2))
  assert config.train.epochs == 20 and config.al.cycles == 2 and config.seeds == (0, 1)
  # configs/mnist1d.py: 60 epochs, the step at 45, the detach at 36 (LL4AL's 60%).
  assert tuple(config.train.lr_boundaries) == (15,) and config.ll4al.detach_epoch == 12
  assert config.strategies == speed.STRATEGIES and config.quiet
  full = speed.mnist1d_config(speed.sizes(False))
  assert full.train.epochs == 60 and full.ll4al.detach_epoch == 36 and full.al.cycles == 8


def test_times_are_formatted_in_a_readable_unit():
  assert speed.fmt_time(0.0123) == '12.3 ms'
  assert speed.fmt_time(3.456) == '3.46 s'
  assert speed.fmt_time(600.0) == '10.0 min'
  assert speed.fmt_time(None) == '—'


def _results():
  run = lambda t, mib, **kw: {'median_s': t, 'times_s': [t], 'peak_mib': mib, **kw}  # noqa: E731
  return {
      'machine': {'processor': 'x86_64', 'cpus': 2, 'python': '3.11', 'jax': '0.1',
                  'jaxlib': '0.1', 'torch': '2.0', 'numpy': '2.0'},
      'command': 'python benchmarks/speed.py --quick', 'quick': True,
      'cases': {
          'a': {'what': 'one step', 'runs': {
              'jax': run(0.5, 900.4, compile_s=12.0), 'torch': run(1.0, 500.0),
              'torch_cl': run(0.75, 510.0)}},
          'd': {'what': 'k-center', 'runs': {
              'jax': run(0.02, 300.0, compile_s=0.4, picks=[3, 1, 2]),
              'torch': run(0.04, 310.0, picks=[3, 1, 2]),
              'numpy': run(0.1, 100.0, picks=[3, 2, 1])}},
          'e': {'what': 'experiment', 'runs': {
              'jax': run(60.0, 1000.0, final_accuracy={'random': 0.5, 'l2r': 0.7},
                         cycles_s=50.0),
              'torch': {'skipped': 'torch not installed'}}},
      }}


def test_the_table_reports_medians_ratios_memory_and_checks():
  rows = {line.split(' | ')[0]: line.split(' | ')
          for line in speed.render_table(_results()).splitlines()[2:]}
  a, d, e = rows['| (a)'], rows['| (d)'], rows['| (e)']
  # JAX, torch NCHW, torch channels_last, numpy; torch / JAX per format; numpy / JAX; compile.
  assert a[2:9] == ['500.0 ms', '1.00 s', '750.0 ms', '', '2.00× / 1.50×', '—', '12.00 s']
  assert a[9] == '900 / 500 / 510 / —'
  assert d[2:8] == ['20.0 ms', '40.0 ms', '', '100.0 ms', '2.00×', '5.00×']
  assert d[9] == '300 / 310 / — / 100'
  assert d[10] == 'numpy differs from jax from pick 1 |'
  assert e[3] == 'skipped' and e[6] == '—'
  assert e[10] == 'jax cycles alone 50.00 s; jax final acc 0.600 |'
  results = _results()
  results['cases']['d']['runs']['numpy']['picks'] = [3, 1, 2]
  assert speed.render_table(results).splitlines()[3].endswith(
      '| same 3 picks: jax, torch, numpy |')


def test_the_scanned_epoch_and_the_vmapped_seeds_are_reported_against_their_baselines():
  run = lambda t, **kw: {'median_s': t, 'times_s': [t], 'peak_mib': 100.0, **kw}  # noqa: E731
  b = {'jax': run(0.2, compile_s=1.0), 'jax_scan': run(1.0, compile_s=3.0),
       'jax_host': run(0.25), 'torch': run(1.6)}
  e = {'jax': run(100.0), 'jax_host': run(110.0), 'jax_vmap': run(150.0), 'torch': run(600.0)}
  assert speed._notes('b', b) == (
      'jax epoch as one lax.scan 1.00 s (5.00× the step-by-step time), compile 3.00 s; '
      'jax fed from the host 250.0 ms (1.25× the time of the device feed)')
  assert speed._notes('e', e) == (
      'jax fed from the host 110.00 s (1.10× the time of the device feed); '
      'jax with vmap_seeds 2.5 min, peak 100 MiB, torch / it 4.00×')


def test_update_keeps_the_rows_not_rerun(tmp_path, monkeypatch):
  old = _results()
  (tmp_path / 'speed.json').write_text(json.dumps(old))
  monkeypatch.setattr(speed, 'spawn', lambda case, framework, args, inputs: {
      'median_s': 0.5, 'times_s': [0.5], 'peak_mib': 10.0, 'compile_s': 0.0})
  monkeypatch.setattr(speed, 'export_inputs', lambda folder, cases: None)
  new = speed.main(['--cases', 'd', '--update', '--out', str(tmp_path)])
  assert list(new['cases']) == ['a', 'd', 'e']
  assert new['cases']['a']['runs'] == old['cases']['a']['runs']
  assert new['cases']['a']['command'] == 'python benchmarks/speed.py --quick'
  assert new['cases']['d']['runs']['jax']['median_s'] == 0.5
  text = (tmp_path / 'speed.md').read_text()
  assert "Rows kept from earlier runs (`--update`), each from its own command: (a): " in text


def test_the_report_names_the_machine_and_the_accuracies():
  text = speed.markdown(_results())
  assert '`python benchmarks/speed.py --quick`; x86_64, 2 CPU cores' in text
  assert 'torch 2.0' in text
  assert '| l2r | 0.7000 |' in text and '| ll4al | — |' in text


def test_unknown_cases_are_refused(tmp_path):
  with pytest.raises(SystemExit, match='unknown'):
    speed.main(['--cases', 'a,z', '--out', str(tmp_path)])


def test_the_torch_sorter_and_losses_match_the_jax_ones():
  torch = pytest.importorskip('torch')
  import jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import losses  # pylint: disable=g-import-not-at-top
  import sorter  # pylint: disable=g-import-not-at-top
  lib = speed.torch_lib()
  ranker = sorter.get_ranker('gru', 64)
  torch_ranker = lib.load_sorter(speed.sorter_weights(64))
  r = np.random.default_rng(0)
  scores = r.lognormal(size=(3, 64)).astype(np.float32)
  scores[0, :9] = scores[0, 0]  # ties get one averaged estimate
  np.testing.assert_allclose(torch_ranker(torch.from_numpy(scores)).numpy(),
                             jax.jit(jax.vmap(ranker))(jnp.asarray(scores)), atol=1e-5)
  predicted = r.normal(size=128).astype(np.float32)
  true = r.exponential(size=128).astype(np.float32)
  true[:4] = true[0]
  loss, grad = jax.jit(jax.value_and_grad(lambda p: losses.listwise_ranking_loss(
      p, jnp.asarray(true), ranker)))(jnp.asarray(predicted))
  p = torch.from_numpy(predicted).requires_grad_(True)
  torch_loss = lib.listwise_loss(p, torch.from_numpy(true), torch_ranker)
  torch_loss.backward()
  assert float(torch_loss.detach()) == pytest.approx(float(loss), rel=1e-5)
  np.testing.assert_allclose(p.grad.numpy(), grad, atol=1e-6)
  assert float(lib.pairwise_loss(torch.from_numpy(predicted), torch.from_numpy(true))) == (
      pytest.approx(float(losses.pairwise_margin_loss(jnp.asarray(predicted),
                                                      jnp.asarray(true)))))
