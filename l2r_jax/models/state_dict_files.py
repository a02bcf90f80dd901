"""Reading a PyTorch state dict from a file, with nothing but tensors unpickled: a ``.pth``/``.pt``
(``torch.load(weights_only=True)``; reading it needs ``torch``) or the same tensors in an ``.npz``
(``allow_pickle=False``), read lazily, each array's shape known from its header before it is
decompressed (:class:`NpzArrays`). Used by :mod:`l2r_jax.models.pretrained`.
"""
import collections.abc
import contextlib
import os
import pickle
import re
from typing import Any, Iterator, Mapping, Optional, Tuple
import zipfile

import numpy as np

from l2r_jax.errors import ConfigError


class NpzArrays(collections.abc.Mapping):
  """The arrays of an ``.npz`` by name, each decompressed only when converted (``np.asarray``):
  its ``shape`` and ``dtype`` come from the array's header, so that an array that cannot fit is
  refused before it is read. Pickled (object) arrays are never loaded."""

  def __init__(self, path: str):
    self.path = path
    problem = _not_an_npz(path)
    if problem:
      raise ConfigError(f'{path} {problem}: give an .npz of the state dict\'s tensors by name '
                        f'(python -m l2r_jax.models.pretrained IN.pth OUT.npz writes one).')
    try:
      self._npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise ConfigError(f'{path} cannot be read as an .npz: {e}.') from None

  def __getitem__(self, name: str) -> '_NpzMember':
    if name not in self._npz.files:
      raise KeyError(name)
    return _NpzMember(self, name)

  def __iter__(self) -> Iterator[str]:
    return iter(self._npz.files)

  def __len__(self) -> int:
    return len(self._npz.files)

  def header(self, name: str) -> Tuple[Tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of the array ``name``, from its header alone."""
    member = name + '.npy' if name + '.npy' in self._npz.zip.namelist() else name
    try:
      with self._npz.zip.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(f)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise ConfigError(f'{self.path}: its array {name} cannot be read ({e}).') from None
    return tuple(shape), dtype

  def read(self, name: str) -> np.ndarray:
    try:
      return self._npz[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise ConfigError(f'{self.path}: its array {name} cannot be read ({e}); the file is '
                        'damaged.') from None

  def close(self) -> None:
    self._npz.close()


def _not_an_npz(path: str) -> Optional[str]:
  """Why ``path`` is not a zip of arrays, or None if it is one."""
  try:
    if zipfile.is_zipfile(path):
      return None
    with open(path, 'rb') as f:
      start = f.read(6)
  except OSError as e:
    return f'cannot be read ({e.strerror or e})'
  if start.startswith(b'\x93NUMPY'):
    return 'is a single array (.npy), not arrays by name'
  return 'is a damaged or truncated zip' if start.startswith(b'PK') else 'is not a zip of arrays'


class _NpzMember:
  """One array of an :class:`NpzArrays`: shape and dtype known, values read on conversion."""

  def __init__(self, arrays: NpzArrays, name: str):
    self._arrays, self._name = arrays, name
    self.shape, self.dtype = arrays.header(name)

  def __array__(self, dtype=None, copy=None):  # pylint: disable=unused-argument
    values = self._arrays.read(self._name)
    return values if dtype is None else values.astype(dtype)


def _torch_problem(error: Exception) -> str:
  """What a weights-only ``torch.load`` failure means, in a line."""
  found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(error))
  if found:
    return (f'it holds a pickled {found.group(1)}, and only tensors are read (weights_only): '
            'save model.state_dict(), not the model or other objects')
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  return 'it is not a PyTorch file, or it is damaged'


def read_state_dict(path: str) -> Mapping[str, Any]:
  """A PyTorch state dict (``.pth``/``.pt``; needs ``torch``; read with ``weights_only``) as numpy
  arrays by name, or an ``.npz``'s arrays (:class:`NpzArrays`: read when converted; close it). A
  checkpoint that wraps it (``{'state_dict': ...}``) and DataParallel's ``module.`` prefix are
  unwrapped; floating-point tensors become float32."""
  if path.endswith('.npz'):
    return NpzArrays(path)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConfigError(
        f'Reading {path} needs PyTorch (a CPU wheel is enough): pip install torch. Or, where '
        f'PyTorch is installed, convert it once to numpy with `python -m '
        f'l2r_jax.models.pretrained {path} {os.path.splitext(path)[0]}.npz` and give the .npz.'
    ) from None
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
    raise ConfigError(f'{path} cannot be read as a PyTorch state dict: {_torch_problem(e)}.'
                      ) from None
  if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
    state = state['state_dict']
  if not isinstance(state, dict):
    raise ConfigError(f'{path} holds a {type(state).__name__}, not a state dict (tensors by '
                      'name): save model.state_dict().')
  return {k[len('module.'):] if k.startswith('module.') else k: _numpy(v)
          for k, v in state.items() if hasattr(v, 'detach')}


def _numpy(tensor) -> np.ndarray:
  tensor = tensor.detach().cpu()
  return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


@contextlib.contextmanager
def open_state_dict(path: str) -> Iterator[Mapping[str, Any]]:
  tensors = read_state_dict(path)
  try:
    yield tensors
  finally:
    if isinstance(tensors, NpzArrays):
      tensors.close()
