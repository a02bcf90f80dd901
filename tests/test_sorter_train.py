import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sorter
from configs import sorter as sorter_config
from sorter import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke(**overrides):
  config = sorter_config.get_config('smoke')
  config.update(overrides)
  return config


def test_train_export_load_and_resume(tmp_path):
  info = train.train_and_export(_smoke(num_steps=10), str(tmp_path))
  assert info['steps'] == 10 and info['best_step'] == 10
  record = json.loads((tmp_path / 'export' / 'training.json').read_text())
  assert record['seq_len'] == 8 and record['config']['seed'] == 0 and record['wall_s'] > 0
  ranker = sorter.load_pretrained(path=str(tmp_path / 'export'))
  assert ranker.seq_len == 8 and ranker(np.arange(8.0)).shape == (8,)
  # Asking for more steps in the same workdir resumes at step 10, it does not start over.
  info = train.train_and_export(_smoke(num_steps=20), str(tmp_path))
  assert info['steps'] == 20 and info['lists_seen'] == 20 * 32
  with pytest.raises(ValueError, match='ranks lists of 8, not 4'):
    sorter.load_pretrained(seq_len=4, path=str(tmp_path / 'export'))
  # Resumed with another config, the export would not be what it says: refused, nothing touched.
  before = (tmp_path / 'export' / 'training.json').read_bytes()
  for field, value in (('seq_len', 16), ('model.hidden', 16)):
    changed = _smoke(num_steps=30)
    changed[field.split('.')[0]] = value if '.' not in field else dict(
        changed.model.to_dict(), hidden=value)
    with pytest.raises(train.SorterConfigError, match=(
        f'holds a sorter trained with another config .{field}: 8 -> 16.*only num_steps, '
        'eval_every_steps, log_every_steps may change')):
      train.train_and_export(changed, str(tmp_path))
  assert (tmp_path / 'export' / 'training.json').read_bytes() == before


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  train.train_and_export(_smoke(num_steps=10), str(tmp_path / 'a'))
  train.train_and_export(_smoke(num_steps=20), str(tmp_path / 'a'))
  train.train_and_export(_smoke(num_steps=20), str(tmp_path / 'b'))
  a = sorter.load_pretrained(path=str(tmp_path / 'a' / 'export'))
  b = sorter.load_pretrained(path=str(tmp_path / 'b' / 'export'))
  x = np.random.default_rng(0).normal(size=8).astype(np.float32)
  np.testing.assert_allclose(a(x), b(x), atol=1e-6)


@pytest.mark.parametrize('field, value, message', [
    ('seq_len', 1, 'config.seq_len must be at least 2'),
    ('batch_size', 0, 'config.batch_size must be a positive integer'),
    ('eval_every_steps', 0, 'config.eval_every_steps must be a positive integer'),
    ('decay_rate', 1.5, r'config.decay_rate must be in \(0, 1\]'),
])
def test_bad_config_is_named_before_training(tmp_path, field, value, message):
  config = _smoke()
  config[field] = value
  with pytest.raises(ValueError, match=message):
    train.train_and_export(config, str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_cli(tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'sorter.train', '--config=configs/sorter.py:smoke',
       '--config.num_steps=5', f'--workdir={tmp_path}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
  assert json.loads(out.stdout[out.stdout.index('{'):])['steps'] == 5
  assert 'sorter L=8' in out.stderr  # the progress display
