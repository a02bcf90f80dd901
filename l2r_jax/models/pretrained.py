"""Pretrained backbones: torchvision's ImageNet ResNets, and backbones exported by this package.

``config.model.pretrained`` says where a target model's :class:`ResNetBackbone` starts from:

* ``None``: random initialisation.
* ``'imagenet'``: torchvision's published ImageNet weights for ResNet-18 or ResNet-50 (the
  weights SimpleBaseline and the C^3 framework start from), found in the weights cache, else
  downloaded into it on first use and checked against the SHA-256 prefix in the file's name.
* a shipped backbone's name (:data:`SHIPPED`, e.g. ``'synthetic_shapes'``).
* a path: a PyTorch state dict (``.pth``/``.pt``, torchvision's names; reading it needs
  ``torch``), the same tensors in an ``.npz`` (``python -m l2r_jax.models.pretrained IN.pth
  OUT.npz`` converts one), or a folder exported by :func:`export` (Flax variables and
  ``backbone.json``).

Only the backbone is loaded; heads (classifier, deconvolutions, decoders) stay freshly
initialised. Every backbone tensor is mapped by name and shape, and a mismatch is refused by name.
Nothing but tensors is unpickled (``torch.load(weights_only=True)``, ``allow_pickle=False``); an
``.npz`` is read lazily, each array's shape checked from its header before it is decompressed
(:mod:`l2r_jax.models.state_dict_files`).
Conversion from PyTorch: convolution kernels OIHW -> HWIO, BatchNorm ``weight``/``bias`` ->
``scale``/``bias`` (params), ``running_mean``/``running_var`` -> ``mean``/``var``
(``batch_stats``).

Weights carry the input normalisation they were trained with (:attr:`Backbone.normalisation`):
torchvision's need ImageNet's (``'imagenet'``), which the datasets that can be used with them
apply (``config.data.normalize``).
"""
import functools
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import flax
import jax
import numpy as np

from l2r_jax import workdir
from l2r_jax.models import state_dict_files
from l2r_jax.errors import ConfigError
from l2r_jax.errors import Refusal
from l2r_jax.errors import WeightsNotFoundError

# torchvision's ImageNet weights (IMAGENET1K_V1), the eight hex digits in each name the start of
# the file's SHA-256. The older names (torchvision < 0.10) hold the same weights, pickled in
# PyTorch's legacy format: SimpleBaseline loads resnet50-19c8e357.pth.
IMAGENET = {
    'resnet18': ('resnet18-f37072fd.pth', 'resnet18-5c106cde.pth'),
    'resnet50': ('resnet50-0676ba61.pth', 'resnet50-19c8e357.pth'),
}
DOWNLOAD_ROOT = 'https://download.pytorch.org/models/'
# Backbone architectures of the published weights: (block, stage sizes).
ARCHITECTURES = {'resnet18': ('basic', (2, 2, 2, 2)), 'resnet50': ('bottleneck', (3, 4, 6, 3))}
IMAGENET_NORMALISATION = 'imagenet'
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained_weights')
EXPORT_FORMAT = 1


class Backbone(NamedTuple):
  """A backbone's variables in this package's layout, and where they came from."""
  params: Mapping[str, Any]         # the ResNetBackbone's params subtree
  batch_stats: Mapping[str, Any]    # its BatchNorm statistics
  normalisation: str                # the input normalisation the weights expect
  source: str                       # file or folder read


def weights_dir() -> str:
  """Where downloaded weights are kept: ``$L2R_JAX_WEIGHTS``, else ``~/.cache/l2r_jax/weights``."""
  return os.path.expanduser(os.environ.get('L2R_JAX_WEIGHTS', '~/.cache/l2r_jax/weights'))


def _torch_hub_dir() -> str:
  """torchvision's own cache, where a user of torchvision already has the files."""
  torch_home = os.environ.get('TORCH_HOME', os.path.join(
      os.environ.get('XDG_CACHE_HOME', '~/.cache'), 'torch'))
  return os.path.expanduser(os.path.join(torch_home, 'hub', 'checkpoints'))


def sha256_prefix(filename: str) -> Optional[str]:
  """The SHA-256 prefix in a file name (torchvision's convention, ``name-<hex>.pth``)."""
  m = re.search(r'-([a-f0-9]{8,})\.', os.path.basename(filename))
  return m.group(1) if m else None


def _check_hash(path: str, prefix: Optional[str] = None) -> None:
  """Refuses a file whose SHA-256 does not start with ``prefix`` (default: the one in its name)."""
  prefix = prefix or sha256_prefix(path)
  if prefix is None:
    return
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  if not digest.hexdigest().startswith(prefix):
    raise ConfigError(f'{path} is damaged or not the published file: its SHA-256 starts with '
                     f'{digest.hexdigest()[:len(prefix)]}, its name says {prefix}. Delete it and '
                     f'run again to download it anew.')


def _download(url: str, target: str) -> None:
  """``url`` to ``target`` through a temporary file, kept only if its SHA-256 matches the prefix
  in ``target``'s name."""
  folder = os.path.dirname(target)
  os.makedirs(folder, exist_ok=True)
  fd, part = tempfile.mkstemp(dir=folder, prefix=os.path.basename(target) + '.', suffix='.part')
  try:
    with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=60) as response:
      shutil.copyfileobj(response, out)
      out.flush()
      os.fsync(out.fileno())  # on disk before the rename makes it the cached file
    _check_hash(part, sha256_prefix(target))
    os.replace(part, target)
  finally:
    if os.path.exists(part):
      os.remove(part)


def imagenet_file(arch: str, download: bool = True) -> str:
  """The path of torchvision's ImageNet weights for ``arch`` (``'resnet18'``, ``'resnet50'``):
  from the weights cache or torch hub's, else downloaded into the cache."""
  names = IMAGENET[arch]
  for folder in (weights_dir(), _torch_hub_dir()):
    for name in names:
      path = os.path.join(folder, name)
      if os.path.exists(path):
        _check_hash(path)
        return path
  target = os.path.join(weights_dir(), names[0])
  url = DOWNLOAD_ROOT + names[0]
  reason = 'downloads are off'
  if download:
    try:
      _download(url, target)
      return target
    except (urllib.error.URLError, OSError) as e:
      reason = f'the download from {url} failed ({getattr(e, "reason", e)})'
  raise WeightsNotFoundError(
      f"config.model.pretrained='imagenet' needs torchvision's ImageNet {arch} weights, and "
      f'{reason}. Download {url} where there is network access and put it at {target} (or in '
      f'{_torch_hub_dir()}; $L2R_JAX_WEIGHTS sets the first folder), or give the file: '
      f'--config.model.pretrained=/path/to/{names[0]}.')


def _torch_name(path: Tuple[str, ...], stage_sizes) -> Tuple[str, bool]:
  """The torchvision tensor behind a Flax backbone leaf, and whether it is a convolution kernel."""
  *modules, leaf = path
  if modules[0] in ('stem_conv', 'stem_bn'):
    prefix, module = '', {'stem_conv': 'conv1', 'stem_bn': 'bn1'}[modules[0]]
  else:
    k = int(modules[0].rsplit('_', 1)[1])  # blocks are numbered across stages
    ends = np.cumsum(stage_sizes)
    stage = int(np.searchsorted(ends, k, side='right'))
    prefix = f'layer{stage + 1}.{k - (ends[stage - 1] if stage else 0)}.'
    name = modules[1]
    if name == 'shortcut_conv':
      module = 'downsample.0'
    elif name == 'shortcut_bn':
      module = 'downsample.1'
    else:
      kind, i = name.rsplit('_', 1)
      module = {'Conv': 'conv', 'BatchNorm': 'bn'}[kind] + str(int(i) + 1)
  torch_leaf = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
                'var': 'running_var'}[leaf]
  return f'{prefix}{module}.{torch_leaf}', leaf == 'kernel'


def _flat(tree: Mapping[str, Any]) -> Dict[Tuple[str, ...], Any]:
  return flax.traverse_util.flatten_dict(flax.core.unfreeze(tree))


def from_torchvision(state_dict: Mapping[str, np.ndarray], template: Mapping[str, Any],
                     stage_sizes) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
  """torchvision ResNet tensors as the ``params`` and ``batch_stats`` of a backbone whose
  variables have the shapes of ``template`` (``{'params': ..., 'batch_stats': ...}``).

  Returns ``(params, batch_stats, unused)``, ``unused`` the checkpoint's tensors no backbone leaf
  took (its classifier, stages the backbone does not have). Raises ValueError listing every
  missing tensor and every shape mismatch, by name.
  """
  out, problems, used = {}, [], set()
  for collection in ('params', 'batch_stats'):
    for path, leaf in _flat(template.get(collection, {})).items():
      name, is_kernel = _torch_name(path, stage_sizes)
      flax_name = '/'.join(path)
      if name not in state_dict:
        problems.append(f'{flax_name}: the checkpoint has no {name}')
        continue
      tensor = state_dict[name]  # an .npz's is read below, once its shape and dtype fit
      shape = tuple(np.shape(tensor))
      if is_kernel and len(shape) == 4:
        shape = shape[2:] + shape[1::-1]  # OIHW -> HWIO
      if shape != tuple(leaf.shape):
        problems.append(f'{flax_name}: the model needs {tuple(leaf.shape)}, {name} gives '
                        f'{shape}')
        continue
      dtype = np.dtype(tensor.dtype if hasattr(tensor, 'dtype') else np.asarray(tensor).dtype)
      if dtype.kind != 'f':
        problems.append(f'{flax_name}: {name} holds {dtype} values, not floating-point weights')
        continue
      value = np.asarray(tensor, np.float32)
      if not np.isfinite(value).all():
        problems.append(f'{flax_name}: {name} holds NaN or infinite values')
        continue
      if is_kernel and value.ndim == 4:
        value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
      used.add(name)
      out[(collection, *path)] = value
  if problems:
    hint = ''
    stem = _flat(template.get('params', {})).get(('stem_conv', 'kernel'))
    if any(p.startswith('stem_conv') for p in problems) and (
        stem is None or tuple(stem.shape[:2]) != (7, 7)):
      hint = (" (ImageNet weights need the ImageNet stem, 7x7 stride 2 and max-pooling: "
              "--config.model.kwargs=\"{'stem': 'imagenet'}\", or stem='imagenet' among "
              "config.model.kwargs in the config file)")
    raise ConfigError(f'The pretrained weights do not fit the backbone{hint}: ' +
                     '; '.join(problems[:8]) +
                     (f'; and {len(problems) - 8} more' if len(problems) > 8 else '') + '.')
  nested = flax.traverse_util.unflatten_dict(out)
  unused = sorted(k for k in state_dict if k not in used and not k.endswith('num_batches_tracked'))
  return nested.get('params', {}), nested.get('batch_stats', {}), unused


def _check_tree(loaded: Mapping[str, Any], template: Mapping[str, Any],
                source: str) -> Dict[str, Any]:
  """``loaded`` restricted to the model's blocks (a backbone may use the first stages of an
  exported one, as C^3 uses ResNet-50's first three); refuses any other difference, by name."""
  problems, kept = [], {}
  for collection in ('params', 'batch_stats'):
    want = _flat(template.get(collection, {}))
    modules = {path[0] for path in want}
    got = {p: v for p, v in _flat(loaded.get(collection, {})).items() if p[0] in modules}
    kept[collection] = flax.traverse_util.unflatten_dict(got) if got else {}
    for path, leaf in want.items():
      name = '/'.join((collection, *path))
      if path not in got:
        problems.append(f'{name} is missing')
      elif tuple(np.shape(got[path])) != tuple(leaf.shape):
        problems.append(f'{name}: the model needs {tuple(leaf.shape)}, the file has '
                        f'{tuple(np.shape(got[path]))}')
    problems += [f'{"/".join((collection, *p))} is not in the model' for p in got if p not in want]
  if problems:
    raise ConfigError(f'The backbone in {source} does not fit the model: ' +
                     '; '.join(problems[:8]) +
                     (f'; and {len(problems) - 8} more' if len(problems) > 8 else '') + '.')
  return kept


def export(directory: str, params: Mapping[str, Any], batch_stats: Mapping[str, Any],
           normalisation: str, info: Mapping[str, Any]) -> None:
  """Writes a backbone's variables (orbax, ``variables/``) and ``backbone.json`` (its input
  normalisation and ``info``: how it was made) to ``directory``, loadable by :func:`load`."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (slow import)
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.join(directory, 'variables'),
             jax.device_get({'params': params, 'batch_stats': batch_stats}), force=True)
  ckptr.wait_until_finished()
  # Written last, whole or not at all: a folder without it is an export that did not finish.
  workdir.write_atomic(os.path.join(directory, 'backbone.json'), json.dumps(
      {'format': EXPORT_FORMAT, 'normalisation': normalisation, **info}, indent=2,
      sort_keys=True))


def _missing_parts(directory: str) -> List[str]:
  """The parts of an :func:`export` (orbax's OCDBT layout) that ``directory`` lacks."""
  variables = os.path.join(directory, 'variables')
  if not os.path.isdir(variables):
    return ['variables/ (the weights)']
  missing = [f'variables/{name}' for name in ('_METADATA', 'manifest.ocdbt')
             if not os.path.isfile(os.path.join(variables, name))]
  for folder in ['.'] + sorted(d for d in os.listdir(variables) if d.startswith('ocdbt.process_')):
    arrays = os.path.normpath(os.path.join(variables, folder, 'd'))
    if not (os.path.isdir(arrays) and os.listdir(arrays)):
      missing.append(f'{os.path.relpath(arrays, directory)}/ (the arrays)')
  return missing


def _export_record(directory: str) -> Dict[str, Any]:
  """``backbone.json`` of an export, refused unless it says which normalisation its weights
  expect, in a format this package reads."""
  path = os.path.join(directory, 'backbone.json')
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f'{path} cannot be read ({e}): export the backbone again.') from None
  if not isinstance(record, dict) or not isinstance(record.get('normalisation'), str):
    raise ConfigError(f'{path} does not say which input normalisation its weights expect (a '
                      '"normalisation" string): export the backbone again.')
  if not isinstance(record.get('format', EXPORT_FORMAT), int) or (
      record.get('format', EXPORT_FORMAT) > EXPORT_FORMAT):
    raise ConfigError(f'{path} is in export format {record.get("format")!r}; this l2r-jax reads '
                      f'format {EXPORT_FORMAT} and earlier: upgrade l2r-jax.')
  return record


def _read_export(directory: str) -> Tuple[Dict[str, Any], str]:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  missing = _missing_parts(directory)
  if missing:
    raise ConfigError(f'{directory} is not a whole exported backbone: it lacks '
                      f'{", ".join(missing)}. Export it again, or copy it whole.')
  record = _export_record(directory)
  # Every process reads the files on its own: no cross-process barrier for a read-only load.
  this_process = ocp.options.MultiprocessingOptions(
      primary_host=jax.process_index(), active_processes={jax.process_index()})
  try:
    variables = ocp.StandardCheckpointer(multiprocessing_options=this_process).restore(
        os.path.join(directory, 'variables'))
  except (ValueError, OSError) as e:
    array = re.search(r'"([\w.]+)[/"]', str(e))
    raise ConfigError(
        f'{directory}/variables cannot be restored'
        f'{f" (its array {array.group(1)})" if array else ""}: {str(e).split(":")[0]}. The '
        'export is damaged or incomplete: export it again, or copy it whole.') from None
  return variables, record['normalisation']


def shipped() -> Tuple[str, ...]:
  """Names of the backbones that ship with the package."""
  if not os.path.isdir(SHIPPED_DIR):
    return ()
  return tuple(sorted(d for d in os.listdir(SHIPPED_DIR)
                      if os.path.exists(os.path.join(SHIPPED_DIR, d, 'backbone.json'))))


def imagenet_architecture(block: str, stage_sizes, width: int) -> str:
  """The torchvision ResNet whose ImageNet weights fit a backbone (its first stages suffice)."""
  for arch, (arch_block, arch_sizes) in ARCHITECTURES.items():
    if (block == arch_block and width == 64 and
        tuple(stage_sizes) == arch_sizes[:len(stage_sizes)]):
      return arch
  raise ConfigError(
      f"config.model.pretrained='imagenet': no ImageNet weights are published for a backbone of "
      f'{block} blocks {tuple(stage_sizes)}, width {width} (there are for ResNet-18: basic '
      f'(2, 2, 2, 2), and ResNet-50: bottleneck (3, 4, 6, 3) or its first stages, width 64). '
      f'Give a file of weights that fit it, or set --config.model.pretrained=None.')


def load(spec: str, template: Mapping[str, Any], *, block: str, stage_sizes, width: int,
         download: bool = True) -> Backbone:
  """The backbone weights ``spec`` names (see the module docstring), checked against
  ``template``, the backbone's variables as initialised (shapes are enough)."""
  if spec == 'imagenet':
    source = imagenet_file(imagenet_architecture(block, stage_sizes, width), download)
  elif spec in shipped():
    source = os.path.join(SHIPPED_DIR, spec)
  else:
    source = os.path.abspath(os.path.expanduser(spec))
    if not os.path.exists(source):
      raise WeightsNotFoundError(
          f'config.model.pretrained={spec!r} is not a file or folder, nor a shipped backbone '
          f"({', '.join(shipped()) or 'none'}) or 'imagenet'.")
  if os.path.isdir(source):
    if not os.path.exists(os.path.join(source, 'backbone.json')):
      raise ConfigError(f'config.model.pretrained={spec!r}: the folder {source} has no '
                       f'backbone.json; give a folder written by l2r_jax.models.pretrained.export '
                       f'or a .pth/.npz file.')
    variables, normalisation = _read_export(source)
    variables = _check_tree(variables, template, source)
    return Backbone(variables['params'], variables['batch_stats'], normalisation, source)
  # A torchvision-style state dict; its weights are taken to expect ImageNet's normalisation.
  with state_dict_files.open_state_dict(source) as tensors:
    params, batch_stats, _ = from_torchvision(tensors, template, stage_sizes)
  return Backbone(params, batch_stats, IMAGENET_NORMALISATION, source)


def load_for_model(spec: str, model, sample_input, download: bool = True) -> Backbone:
  """The weights ``spec`` names for ``model``'s ResNet backbone (its submodule ``backbone``; the
  model declares ``block``, ``stage_sizes`` and ``width``, as every ResNet target here does)."""
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                             sample_input)
  if ('backbone' not in variables.get('params', {}) or
      not all(hasattr(model, a) for a in ('block', 'stage_sizes', 'width'))):
    raise ConfigError(
        f'config.model.pretrained={spec!r}: pretrained weights load into a ResNet backbone (the '
        f'submodule named "backbone" of resnet18, simple_baseline and crowd_counter); the target '
        f'model {type(model).__name__} has none. Set --config.model.pretrained=None.')
  template = {c: variables[c]['backbone'] for c in ('params', 'batch_stats')
              if 'backbone' in variables.get(c, {})}
  return load(spec, template, block=model.block, stage_sizes=model.stage_sizes,
              width=model.width, download=download)


def with_backbone(variables: Mapping[str, Any], backbone: Backbone) -> Dict[str, Any]:
  """A model's initial ``variables`` with its ``backbone`` subtrees replaced by ``backbone``'s
  (as device arrays); everything else, the heads, as initialised."""
  out = {c: dict(flax.core.unfreeze(v)) for c, v in variables.items()}
  out['params']['backbone'] = jax.tree.map(jax.numpy.asarray, dict(backbone.params))
  if backbone.batch_stats:
    out['batch_stats']['backbone'] = jax.tree.map(jax.numpy.asarray, dict(backbone.batch_stats))
  return out


def main(argv):
  """``python -m l2r_jax.models.pretrained IN.pth OUT.npz``: a PyTorch state dict as numpy."""
  if len(argv) != 3 or not argv[2].endswith('.npz'):
    raise SystemExit('usage: python -m l2r_jax.models.pretrained IN.pth OUT.npz')
  try:
    with state_dict_files.open_state_dict(argv[1]) as tensors:
      arrays = io.BytesIO()
      np.savez(arrays, **tensors)
  except Refusal as e:
    print(f'l2r_jax.models.pretrained: {e}', file=sys.stderr)
    sys.exit(2)
  workdir.write_atomic(os.path.abspath(argv[2]), arrays.getvalue())
  print(f'wrote {argv[2]}')


if __name__ == '__main__':
  main(sys.argv)
