"""The command line: bad input is one message on stderr and exit status 2, never a traceback."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('args, named', [
    (['--config.al.budgte=10'], 'unknown field config.al.budgte; did you mean config.al.budget?'),
    (['--config.nosuch=3'], 'unknown field config.nosuch.'),
    (['--config.data.num_outputs=2'], 'unknown field config.data.num_outputs: the config file '
     'does not set it, and the command line changes only the fields it sets (config.data takes '
     'any field: set it in the config file).'),
    (['--config.al.subsett=None'], 'unknown field config.al.subsett; did you mean config.al.subset?'),
    # None through the whole command line: the whole pool (480 for the smoke config) is then the
    # limit, not the subset of 200.
    (['--config.al.subset=None', '--config.al.budget=1000'], 'more than the pool of 480'),
    (['--config.predictor.lr=0.1'],  # the section's name before it was renamed
     'unknown field config.predictor: it is now config.loss_module, with the same fields'),
    (['--config.al.budget=1.5'], "flag --config.al.budget=1.5: '1.5' is not a whole number"),
    (['--config={bad}'], 'bad.py, line 1: invalid syntax: the config file must be Python'),
    (['--config={empty}'], 'empty: a folder; give a config file'),
    (['--config={typo}'], 'config.al.budjet is not a field of the config; did you mean '
                          'config.al.budget?'),
    (['--config.al.budget=300'], 'config.al.budget=300 is larger than config.al.subset=200'),
    (['--config.train.lr=nan'], 'config.train.lr must be a finite non-negative number'),
    (['--config.seeds=(0,0)'], 'config.seeds names 0 more than once'),
    (['--config.train.optimizer=rmsprop'], "config.train.optimizer='rmsprop': choose one of"),
    (["--config.strategies=('random','baldness')"], "config.strategies: unknown strategy 'baldness'"),
    (['--workdir={file}'], 'is a file, not a folder'),
    (['--workdir='], '--workdir is empty: give the folder'),
    (['--config.strategies=l2r', '--config.loss_module.sorter_path={empty}'],
     "sorter_path='{empty}': not a sorter's export"),
    (['--config.strategies=l2r', '--config.loss_module.sorter_path=sorter/pretrained/L32'],
     "sorter_path='sorter/pretrained/L32' ranks lists of 32, and config.loss_module.sorter_len=64"),
    (['--config.strategies=l2r', '--config.loss_module.sorter_kwargs={{"foo": 1}}'],
     "sorter_kwargs: foo is not an argument of the 'gru' sorter (it takes path)"),
    (['--config.seeds=(99999999999999999999999,)'], 'config.seeds must be whole numbers 0 .. 2147483647'),
    (['--config.seeds=(True,)'], 'config.seeds must be whole numbers'),
    (['--config.data.num_samples=0'], 'config.data.num_samples must be a positive integer'),
    (['--config=configs/nonexistent.py'], "--config=configs/nonexistent.py: [Errno 2] No such file"),
    (['--config=configs/mnist1d.py:bogus'], "Unknown variant 'bogus'"),
    (['--config=configs/cifar10.py', '--config.data.data_dir={empty}'],
     'tfds build cifar10 --file_format=array_record'),
])
def test_a_refusal_is_one_line_and_exit_status_2(tmp_path, args, named):
  (tmp_path / 'file').write_text('')
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'bad.py').write_text('def get_config(:\n')
  (tmp_path / 'typo.py').write_text(   # a config file's misspelt field: nothing would read it
      'from configs import mnist1d\n'
      'def get_config():\n'
      '  c = mnist1d.get_config("smoke")\n'
      '  c.al.budjet = 5\n'
      '  return c\n')
  args = [a.format(file=tmp_path / 'file', empty=tmp_path / 'empty', bad=tmp_path / 'bad.py',
                   typo=tmp_path / 'typo.py') for a in args]
  named = named.format(empty=tmp_path / 'empty')
  if not any(a.startswith('--config=') for a in args):
    args = ['--config=configs/mnist1d.py:smoke', *args]
  command = [sys.executable, '-m', 'l2r_jax.main', f'--workdir={tmp_path / "run"}', *args]
  out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert 'Traceback' not in out.stderr
  assert named in out.stderr.strip().splitlines()[-1] or named in out.stderr, out.stderr[-2000:]
  assert not (tmp_path / 'run').exists()  # a refused run creates nothing



def test_the_renamed_sections_advice_is_for_that_section_only():
  from l2r_jax import cli  # pylint: disable=g-import-not-at-top
  assert cli.flag_error(KeyError("'predictor'"), ['prog', '--config.al.predictor=1']) == (
      'unknown field config.al.predictor.')
  assert cli.flag_error(KeyError("'predictor'"), ['prog', '--config.predictor.lr=1']).startswith(
      'unknown field config.predictor: it is now config.loss_module')


@pytest.mark.parametrize('field, value, named', [
    ('seeds', None, "config.seeds must be a list, got None: e.g. --config.seeds='(0,1,2)'"),
    ('strategies', None, 'config.strategies must be a list, got None'),
    ('augment', {'scale': 1.5}, 'config.augment.scale=1.5: the zoom is drawn within 1 ± scale'),
    ('augment', {'flip': 'yes'}, 'config.augment.flip must be True or False'),
    ('augment', {'pad': -2}, 'config.augment.pad must be a non-negative integer'),
    ('augment', {'flipp': True}, 'config.augment.flipp is not a field of the config; did you '
                                 'mean config.augment.flip?'),
    ('strategy', ('random',), 'config.strategy is not a field of the config; did you mean '
                              'config.strategies?'),
])
def test_config_fields_that_would_raise_later_are_refused_first(field, value, named):
  import ml_collections  # pylint: disable=g-import-not-at-top
  from l2r_jax import defaults  # pylint: disable=g-import-not-at-top
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  from l2r_jax import validation  # pylint: disable=g-import-not-at-top
  config = defaults.get_config()
  config[field] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  with pytest.raises(errors.ConfigError, match=re.escape(named)):
    validation.check_config(config)


def test_none_on_the_command_line_sets_none_where_a_field_held_text_or_a_number():
  # What the refusals advise (--config.model.pretrained=None: random weights). absl parses an
  # override by the field's type: alone, it keeps the word as text on a string field and refuses
  # it on an integer field.
  from absl import flags  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from l2r_jax import cli  # pylint: disable=g-import-not-at-top

  def parse(argv, ours):
    config = ml_collections.ConfigDict({'model': {'pretrained': 'synthetic_shapes', 'name': 'mlp'},
                                        'al': {'subset': 200, 'budget': 10},
                                        'strategies': ('random',)})
    config.lock()
    flag_values = flags.FlagValues()
    kept, cleared = cli._none_overrides(argv) if ours else (argv, [])  # pylint: disable=protected-access
    config_flags.DEFINE_config_dict('config', config, flag_values=flag_values, sys_argv=kept)
    flag_values(kept)
    for path in cleared:
      cli._set_none(flag_values.config, path)  # pylint: disable=protected-access
    return flag_values.config

  assert parse(['prog', '--config.model.pretrained=None'], ours=False).model.pretrained == 'None'
  with pytest.raises(flags.IllegalFlagValueError):
    parse(['prog', '--config.al.subset=None'], ours=False)
  config = parse(['prog', '--config.model.pretrained=None', '--config.al.subset=None',
                  '--config.al.budget=20'], ours=True)
  assert config.model.pretrained is None and config.al.subset is None
  assert config.model.name == 'mlp' and config.al.budget == 20
  with pytest.raises(ValueError, match=r'unknown field config.al.subsett; did you mean '
                                       r'config.al.subset\?'):
    parse(['prog', '--config.al.subsett=None'], ours=True)
  with pytest.raises(ValueError, match=r'--config.al=None: that is a section'):
    parse(['prog', '--config.al=None'], ours=True)
  # The last override of a field wins, whichever of the two is None.
  assert parse(['prog', '--config.al.subset=None', '--config.al.subset=500'],
               ours=True).al.subset == 500
  assert parse(['prog', '--config.al.subset=500', '--config.al.subset=None'],
               ours=True).al.subset is None
  # Also of a tuple field, whose values absl alone would join.
  twice = ['prog', '--config.strategies=entropy', '--config.strategies=(\'l2r\',)']
  assert parse(twice, ours=False).strategies == ('entropy', 'l2r')
  assert parse(twice, ours=True).strategies == ('l2r',)


def test_a_full_disk_met_anywhere_is_one_line_and_the_same_command_resumes(tmp_path):
  # The disk fills as the first results line is appended (after the cycle's checkpoint).
  script = (
      'import errno, sys\n'
      'from absl import app\n'
      'from l2r_jax import main, workdir\n'
      'def full(path, text):\n'
      "  raise OSError(errno.ENOSPC, 'No space left on device', path)\n"
      'if sys.argv.pop(1) == "full":\n'
      '  workdir.append_synced = full\n'
      'app.run(main.main, flags_parser=main.parse_flags)\n')
  args = ['--config=configs/mnist1d.py:smoke', f'--workdir={tmp_path / "run"}',
          "--config.strategies=('random',)", '--config.al.cycles=1']
  out = subprocess.run([sys.executable, '-c', script, 'full', *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and 'Traceback' not in out.stderr, out.stderr[-2000:]
  assert out.stderr.strip().splitlines()[-1] == (
      f'l2r_jax: the disk is full (writing {tmp_path / "run" / "results.jsonl"}): nothing written '
      'is lost, every write is whole or absent. Free some space, then run the same command '
      'again: it resumes where it stopped.')
  out = subprocess.run([sys.executable, '-c', script, 'free', *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert len((tmp_path / 'run' / 'results.jsonl').read_text().splitlines()) == 1


def test_only_a_full_disk_is_taken_for_one():
  import errno  # pylint: disable=g-import-not-at-top
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  try:
    try:
      raise OSError(errno.EDQUOT, 'Disk quota exceeded')
    except OSError as e:
      raise RuntimeError('RESOURCE_EXHAUSTED while writing the checkpoint') from e
  except RuntimeError as chained:
    assert errors.out_of_space(chained).startswith('the disk is full: nothing written is lost')
  assert errors.out_of_space(ValueError('Tensor shapes do not match')) is None
  assert errors.out_of_space(OSError(errno.EACCES, 'Permission denied')) is None


def test_ctrl_c_ends_a_command_in_one_line_not_a_traceback(capsys):
  from l2r_jax import cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit) as ended:
    with cli.one_line_refusals('l2r_jax.label'):
      raise KeyboardInterrupt
  assert ended.value.code == 130
  assert capsys.readouterr().err == ('l2r_jax.label: interrupted; what was saved is kept, and the '
                                     'same command goes on from it.\n')
