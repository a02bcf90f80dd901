"""How a person's inputs become the model's: what a dataset records so that predictions on new
inputs see them as the training data was seen.

A loader that transforms its inputs says how in :attr:`Dataset.preprocessing
<l2r_jax.data.Dataset>`, a :class:`Preprocessing`; one that gives its inputs as the model takes
them leaves it None (:data:`IDENTITY`). Two kinds:

* ``'image'``: an image file (decoded by :func:`l2r_jax.data.image_folder.read_image`: EXIF
  orientation, colour profiles, transparency, 16-bit and float images, resized to ``image_size``) or
  pixels ``[n, h, w, channels]`` of that size, uint8 (0..255) or floats in [0, 1]; then
  ``(pixels - mean) / std`` per channel.
* ``'affine'``: arrays as the data came, ``(x - mean) / std`` (broadcast over a sample: per
  feature or one number); mean 0 and std 1 is the identity.

``value_range`` is the range of the training inputs before normalisation (pixels in [0, 1], or
the raw values): inputs far outside it (by more than the range's width) are refused, since a model
scores such inputs at chance without a word (pixels given as 0..255 floats, or values already
normalised once).
"""
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from l2r_jax import numerics
from l2r_jax.errors import ConfigError
from l2r_jax.errors import InputError

KINDS = ('image', 'affine')


class Preprocessing(NamedTuple):
  kind: str                                      # 'image' or 'affine'
  mean: Any = 0.0                                # per channel (image) or broadcast over a sample
  std: Any = 1.0
  value_range: Optional[Tuple[float, float]] = None   # training inputs before normalisation
  image_size: Optional[Tuple[int, int]] = None   # (h, w) of an 'image' input
  channels: Optional[int] = None

  def to_json(self) -> Dict[str, Any]:
    return {'kind': self.kind, 'mean': np.asarray(self.mean, np.float64).tolist(),
            'std': np.asarray(self.std, np.float64).tolist(),
            'value_range': None if self.value_range is None else list(map(float,
                                                                          self.value_range)),
            'image_size': None if self.image_size is None else list(self.image_size),
            'channels': self.channels}

  @classmethod
  def from_json(cls, spec: Dict[str, Any]) -> 'Preprocessing':
    if spec.get('kind') not in KINDS:
      raise ConfigError(f'preprocessing kind {spec.get("kind")!r}: one of {KINDS}.')
    return cls(spec['kind'], np.asarray(spec['mean'], np.float32),
               np.asarray(spec['std'], np.float32),
               None if spec.get('value_range') is None else tuple(spec['value_range']),
               None if spec.get('image_size') is None else tuple(spec['image_size']),
               spec.get('channels'))

  def sample_shape(self, model_shape: Sequence[int]) -> Tuple[int, ...]:
    """The shape of one input as given: an image's ``(h, w, channels)``, else the model's."""
    if self.kind == 'image':
      return (*self.image_size, self.channels)
    return tuple(model_shape)

  def problem(self, model_shape: Sequence[int]) -> Optional[str]:
    """Why this preprocessing cannot turn inputs into the model's of ``model_shape`` (checked
    when the dataset loads, not first met by a prediction), or None."""
    shape = self.sample_shape(model_shape)
    for name in ('mean', 'std'):
      try:
        value = np.asarray(getattr(self, name), np.float64)
        np.broadcast_to(value, shape)
      except (TypeError, ValueError):
        return (f'{name} of shape {np.shape(getattr(self, name))} is not numbers that broadcast '
                f'over an input of shape {shape}: give one number, or one per feature (or '
                'channel).')
      if not np.isfinite(value).all():
        return f'{name} holds NaN or infinities.'
    if (np.asarray(self.std, np.float64) <= 0).any():
      return ('std holds zeros or negatives: a feature of constant value has std 0; give it 1 '
              '(there is nothing to scale).')
    if self.value_range is not None:
      try:
        low, high = (float(v) for v in self.value_range)
      except (TypeError, ValueError):
        return ('value_range must be two numbers, (low, high): the training inputs\' range '
                'before normalisation (per-feature ranges: their smallest low and largest '
                'high).')
      if not (np.isfinite([low, high]).all() and low < high):
        return f'value_range=({low}, {high}) must be finite, low below high.'
    return None

  def apply(self, x: Any, model_shape: Sequence[int]) -> np.ndarray:
    """``x`` (``[n, ...]`` inputs as a person has them) as the model takes them (float32),
    refused (:class:`InputError`) in one line if its shape or value range is not the training
    data's."""
    x = np.asarray(x)
    expected = self.sample_shape(model_shape)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
      given = 'one sample' if x.ndim == len(expected) else f'shape {x.shape}'
      more = (' (a batch: [n, ...]; one sample is x[None])' if x.ndim == len(expected) else '')
      fix = (f', or give file paths (decoded and resized to {self.image_size[0]}x'
             f'{self.image_size[1]})' if self.kind == 'image' else '')
      raise InputError(f'inputs of {given}: the model takes [n, {", ".join(map(str, expected))}]'
                       f'{more}{fix}.')
    if self.kind == 'image':
      if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
      elif not np.issubdtype(x.dtype, np.floating):
        raise InputError(f'image inputs of dtype {x.dtype}: give uint8 pixels (0..255) or floats '
                         'in [0, 1], or file paths.')
    x = real_inputs(x)
    self._check_range(x)
    return ((x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(
        np.float32)

  def _check_range(self, x: np.ndarray) -> None:
    if self.value_range is None or not x.size:
      return
    low, high = self.value_range
    width = max(high - low, 1e-12)
    given = (float(x.min()), float(x.max()))
    if given[0] < low - width or given[1] > high + width:
      hint = (' Pixels as floats are in [0, 1] (uint8 pixels are scaled by 255).'
              if self.kind == 'image' else ' Give the values as the dataset\'s files hold them, '
              'before any normalisation (the model applies its own).')
      raise InputError(f'inputs range over [{given[0]:.4g}, {given[1]:.4g}], far from the '
                       f'training inputs\' [{low:.4g}, {high:.4g}]: the model would score them '
                       f'blind.{hint}')

  def read_files(self, paths: Sequence[str]) -> np.ndarray:
    """Image files as the model takes them (``'image'`` preprocessing only); a file that cannot
    be read is refused, naming it."""
    if self.kind != 'image':
      raise InputError('file paths: this model\'s data are not images; give an array of inputs.')
    from l2r_jax.data import image_folder  # pylint: disable=g-import-not-at-top  (Pillow)
    paths, pixels, unreadable = [str(p) for p in paths], [], []
    for path in paths:
      try:
        pixels.append(image_folder.read_image(path, self.image_size, self.channels))
      except Exception as e:  # pylint: disable=broad-except  (whatever Pillow raises)
        unreadable.append(f'{image_folder.shown(path)}: '
                          f'{image_folder.unreadable_reason(path, e)}')
    if unreadable:
      more = f'\n... and {len(unreadable) - 20} more' if len(unreadable) > 20 else ''
      raise InputError(f'{len(unreadable)} of the {len(paths)} files cannot be read as images; '
                       'nothing was predicted:\n' + '\n'.join(unreadable[:20]) + more)
    shape = (0, *self.image_size, self.channels)
    return self.apply(np.stack(pixels) if pixels else np.zeros(shape, np.float32), ())


IDENTITY = Preprocessing('affine')


def affine_from_data(x: Any) -> Preprocessing:
  """The identity, with the range of the inputs ``x`` (an array; None for an array-like read on
  demand, whose range would cost a full read)."""
  if not isinstance(x, np.ndarray) or not x.size:
    return IDENTITY
  return IDENTITY._replace(value_range=(float(np.min(x)), float(np.max(x))))


def real_inputs(x: Any) -> np.ndarray:
  """``x`` as float32, refused (:class:`InputError`) in one line if it holds anything but real
  numbers: text, objects, complex numbers, NaN or infinities."""
  x = np.asarray(x)
  if x.dtype.kind in 'USOVc':
    what = 'complex numbers' if x.dtype.kind == 'c' else f'{x.dtype} values, not numbers'
    raise InputError(f'inputs of {what}: give an array of real numbers (or file paths, for '
                     'images).')
  x = x.astype(np.float32)
  numerics.check_data(x, 'The inputs')
  return x
