"""What the command lines share: absl's flag parsing, its failures as one line, and refusals
(and a full disk) as one line and exit status 2."""
import contextlib
import difflib
import re
import sys
from typing import Iterator

from absl import flags

from l2r_jax import defaults
from l2r_jax import errors

FLAGS = flags.FLAGS


def _override_naming(argv, name: str):
  """The field of the override that names ``name`` (``config.a.name`` of ``--config.a.name.b=1``),
  or None."""
  for arg in argv[1:]:
    parts = arg.split('=')[0].lstrip('-').split('.')
    if parts[0] == 'config' and name in parts[1:]:
      return '.'.join(parts[:parts.index(name, 1) + 1])
  return None


def flag_error(error: Exception, argv) -> str:
  """One line for a command line that cannot be parsed, naming the override (a typo in a field's
  name gets the field ml_collections suggests)."""
  given = next((a for a in argv[1:] if a.split('=')[0].lstrip('-') == 'config'), '--config')
  if isinstance(error, SyntaxError):  # the config file is not Python: where, and what
    return (f'{given}: {error.filename}, line {error.lineno}: {error.msg}: the config file must '
            'be Python defining get_config().')
  text = str(error.args[0] if error.args else error).strip()
  loading = 'Configuration is not available because of an earlier failure to load: '
  if text.startswith(loading) and 'Is a directory' in text:
    return f'{given}: a folder; give a config file (a .py defining get_config()).'
  if text.startswith(loading) or 'Traceback (most recent call last)' in text or (
      'Attempted [' in text):
    # A config file that cannot be loaded or whose get_config raised: its own last line says why.
    lines = [line.strip() for line in text.replace(loading, '').splitlines() if line.strip()]
    return f'{given}: {lines[-1]}'
  suggestion = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', text)
  unknown = re.match(r"^'(\w+)'$", text.strip('"'))
  name = suggestion.group(2) if suggestion else unknown and unknown.group(1)
  if name:
    given = _override_naming(argv, name)
    if name in defaults.RENAMED and given in (None, f'config.{name}'):
      return defaults.renamed_section(
          f'unknown field {given or f"config.{name} (in the config file)"}', name)
    given = given or f'config...{name}'
    if suggestion:
      return f'unknown field {given}; did you mean {given.rsplit(".", 1)[0]}.{suggestion.group(1)}?'
    section = given.partition('.')[2].rpartition('.')[0]
    if section in defaults.OPEN_SECTIONS:
      return (f'unknown field {given}: the config file does not set it, and the command line '
              f'changes only the fields it sets (config.{section} takes any field: set it in the '
              'config file).')
    return f'unknown field {given}.'
  # Python's words for a value of the wrong kind, as the field's.
  text = re.sub(r"invalid literal for int\(\) with base 10: ('.*')", r'\1 is not a whole number',
                text)
  text = re.sub(r"could not convert string to float: ('.*')", r'\1 is not a number', text)
  return ' '.join(text.split())


def _none_overrides(argv):
  """``argv`` with only the last ``--config.a.b=...`` override of each field (absl would join the
  values given to a tuple field), without its ``--config.a.b=None`` overrides, and their fields'
  paths. absl parses an override by the field's type, so on a field holding text or a number the
  word ``None`` would be that text or refused; these are set to None after the parse instead."""
  def field(arg):
    name, eq, _ = arg.partition('=')
    return name.lstrip('-') if arg.startswith('-') and eq and name.lstrip('-').startswith(
        'config.') else None

  last = {field(arg): k for k, arg in enumerate(argv) if field(arg)}
  kept, cleared = [], []
  for k, arg in enumerate(argv):
    name = field(arg)
    if name and last[name] != k:
      continue    # the last override of a field wins
    if name and arg.partition('=')[2] == 'None':
      cleared.append(name.split('.')[1:])
      continue
    kept.append(arg)
  return kept, cleared


def _set_none(config, path) -> None:
  """Sets the field at ``path`` (``['model', 'pretrained']``) of ``config`` to None; an unknown
  field is refused as absl refuses one (:func:`flag_error`), and so is a whole section."""
  node = config
  for k, part in enumerate(path):
    keys = list(node.keys()) if hasattr(node, 'keys') else []
    if part not in keys:
      given = 'config.' + '.'.join(path[:k + 1])
      if k == 0 and part in defaults.RENAMED:
        raise ValueError(defaults.renamed_section(f'unknown field {given}', part))
      close = difflib.get_close_matches(part, keys, n=1)
      raise ValueError(f'unknown field {given}' + (
          f'; did you mean {given.rsplit(".", 1)[0]}.{close[0]}?' if close else '.'))
    if k < len(path) - 1:
      node = node[part]
    elif hasattr(node[part], 'keys'):
      raise ValueError(f'--config.{".".join(path)}=None: that is a section; None clears one '
                       'value: set the section\'s fields instead.')
    else:
      node[part] = None


def parse_flags(argv):
  """absl's flag parsing, its failures (a bad override, a missing flag) as one line, status 2."""
  argv, cleared = _none_overrides(argv)
  command_line = sys.argv
  sys.argv = argv  # what ml_collections reads the overrides from
  try:
    rest = FLAGS(argv)
    if FLAGS['config'].present:
      FLAGS.config.get('seeds')  # a config file that failed to load raises here, not at parse time
      for path in cleared:
        _set_none(FLAGS.config, path)
    return rest
  except Exception as e:  # pylint: disable=broad-except  (whatever the config overrides raise)
    print(f'l2r_jax: {flag_error(e, argv)}', file=sys.stderr)
    sys.exit(2)
  finally:
    sys.argv = command_line


@contextlib.contextmanager
def one_line_refusals(program: str) -> Iterator[None]:
  """A :class:`l2r_jax.errors.Refusal`, or a full disk met anywhere
  (:func:`l2r_jax.errors.out_of_space`), ends the command with one line on stderr, after
  ``program``'s name, and exit status 2; Ctrl+C with one line and status 130 (what was saved is
  kept: every write is atomic); a traceback is for bugs."""
  try:
    yield
  except KeyboardInterrupt:
    print(f'{program}: interrupted; what was saved is kept, and the same command goes on from it.',
          file=sys.stderr)
    sys.exit(130)
  except errors.Refusal as e:
    print(f'{program}: {e}', file=sys.stderr)
    sys.exit(2)
  except Exception as e:  # pylint: disable=broad-except  (a full disk, met anywhere)
    full = errors.out_of_space(e)
    if full is None:
      raise
    print(f'{program}: {full}', file=sys.stderr)
    sys.exit(2)
