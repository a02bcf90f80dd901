"""Your own images, from a folder: ``config.data.name='image_folder'``.

    ROOT/labeled/<class>/*.png     images whose class is known (optional; may be empty)
    ROOT/unlabeled/*.png           images to label (subfolders are read too)
    ROOT/test/<class>/*.png        a labeled test split (optional: without it, no evaluation)

The pool is every image under ``labeled/`` and ``unlabeled/``, in the order of their paths; the
labels of ``unlabeled/`` are unknown (-1) until answered (:class:`~l2r_jax.learner.ActiveLearner`,
``python -m l2r_jax.label``). Each pool sample's id is its path relative to ``ROOT``. The classes
are ``config.data.classes`` in that order, or else the sorted names of the class folders under
``labeled/`` and ``test/``; a class folder not among ``config.data.classes`` is refused.

**Which files.** Those whose names end in :data:`EXTENSIONS` (any case; HEIC and HEIF, the
photos of phones, through the ``pillow-heif`` plugin); other files are not read, and their count by
extension is given as a warning (a photo in a format not read is not left out silently). Links to
files and to folders are followed alike, in all three folders; a link to a folder that holds it (a
loop) is refused. Names that start with ``.`` are hidden and never read, files and folders alike: macOS
writes a ``._name.png`` beside every image on some drives (AppleDouble, the image's metadata,
never an image), and hidden folders are caches (``.ipynb_checkpoints``, ``.thumbnails``); so is
``__MACOSX/``, what unzipping a zip made on macOS leaves, and a workdir (a folder holding
``experiment.json``), however it is reached. An image
directly in ``labeled/`` or ``test/``, outside a class folder, is refused.

**Every file is decoded once, at load.** Files that cannot be (damaged, truncated, empty, not an
image, a broken link, more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``, Pillow's guard against
decompression bombs) are refused together, each with its reason, before anything trains; with
``config.data.skip_unreadable=True`` they are left out of the pool and the test split instead,
and listed as a warning.

**How a file becomes an input** (:func:`read_image`): its first frame, turned as its EXIF
orientation says; its colours converted to sRGB where it carries a colour profile (ICC: a phone's
Display P3, a CMYK print profile); transparency composited on white; 8-bit images converted to RGB
(or grey, ``config.data.channels=1``), resized to ``config.data.image_size`` (h, w) (bilinear) and
scaled to [0, 1] by 255; 16-bit images by 65535; float images kept where they lie in [0, 1], else
scaled by their own minimum and maximum (docs/your_data.md). JPEGs are decoded at the smallest 1/2,
1/4 or 1/8 of their size that is at least twice the input size (libjpeg's DCT scaling, as Pillow's
``thumbnail()`` does). Then normalised: per channel by the mean and std of up to ``stats_sample``
pool images (``normalize='train_statistics'``, the default), or as ImageNet's weights expect
(``'imagenet'``, for a pretrained backbone).
"""
import collections
from concurrent import futures
import contextlib
import hashlib
import io
import os
import string
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union
import warnings

from absl import logging
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageCms
from PIL import ImageOps
from PIL import features

from l2r_jax.data import preprocessing
from l2r_jax.data.base import class_key
from l2r_jax.data.base import Dataset
from l2r_jax.data.base import IMAGENET_MEAN
from l2r_jax.data.base import IMAGENET_STD
from l2r_jax.data.base import LazyImages
from l2r_jax.data.base import normalisation
from l2r_jax.errors import ConfigError
from l2r_jax.errors import DataNotFoundError
from l2r_jax.errors import ImageFolderError
from l2r_jax.workdir import IDENTITY_FILE

try:   # HEIC/HEIF (phones' photos): Pillow reads them once the plugin registers its opener
  import pillow_heif
except ImportError:  # pragma: no cover  (a dependency; its absence is named where a file needs it)
  pillow_heif = None
else:
  pillow_heif.register_heif_opener()

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.jpe', '.jfif', '.bmp', '.gif', '.tif', '.tiff', '.webp',
              '.avif', '.heic', '.heif')
HEIF_EXTENSIONS = ('.heic', '.heif')
SHOWN = 20                 # unreadable files named in a message; the rest are counted
MARKED_TASKS = ('pose', 'crowd')   # config.data.task's whose labels are marks on the pictures
JPEG_REDUCING_GAP = 2      # a JPEG is decoded at >= this many times the size it is resized to
THUMBNAIL_SIDE = 256       # pixels; a contact sheet shows its images 160 pixels wide
SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N')
Problem = Tuple[str, str]  # (path, why it cannot be read)


class _Unreadable(Exception):
  """Why one file's pixels cannot be used (collected into an :class:`ImageFolderError`)."""


def _hidden(name: str) -> bool:
  return name.startswith('.') or name == '__MACOSX'   # the second: macOS's zip metadata


def _images(folder: str, problems: List[Problem], passed_over: List[str],
            above: Tuple[str, ...] = ()) -> List[str]:
  """Image files under ``folder`` and its subfolders (links followed, hidden names left out);
  a subfolder that cannot be listed is added to ``problems``, a file whose name is not an image's
  to ``passed_over``."""
  if not above and not os.path.isdir(folder):
    return []
  try:
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
  except OSError as e:
    problems.append((folder, f'the folder cannot be listed ({e.strerror or e})'))
    return []
  here = os.path.realpath(folder)
  above = (*above, here)
  found = []
  if any(e.name == IDENTITY_FILE for e in entries):
    return []    # a workdir (its curves, contact sheets) among the images: not part of them
  for entry in entries:
    if _hidden(entry.name):
      continue
    if entry.is_dir():
      target = os.path.realpath(entry.path)
      if target in above or here.startswith(os.path.join(target, '')):
        raise ImageFolderError(f'{entry.path} is a link to {target}, a folder it is in: '
                               'following it would never end. Remove the link.')
      found += _images(entry.path, problems, passed_over, above)
    elif entry.name.lower().endswith(EXTENSIONS):
      found.append(entry.path)
    else:
      passed_over.append(entry.path)
  return found


def _class_folders(folder: str) -> List[str]:
  if not os.path.isdir(folder):
    return []
  return sorted(d for d in os.listdir(folder)
                if not _hidden(d) and os.path.isdir(os.path.join(folder, d))
                and not os.path.exists(os.path.join(folder, d, IDENTITY_FILE)))   # a workdir


def _labeled(folder: str, classes: Sequence[str], problems: List[Problem],
             passed_over: List[str]) -> Tuple[List[str], List[int]]:
  files, labels = [], []
  outside = [n for n in (os.listdir(folder) if os.path.isdir(folder) else [])
             if not _hidden(n) and n.lower().endswith(EXTENSIONS)
             and not os.path.isdir(os.path.join(folder, n))]
  if outside:
    raise ConfigError(f'{folder} holds {len(outside)} images outside a class folder '
                      f'({", ".join(sorted(outside)[:5])}{", ..." if len(outside) > 5 else ""}): '
                      f'their class is unknown. Move each into its class folder, '
                      f'{folder}/<class>/.')
  for name in _class_folders(folder):
    if name not in classes:
      raise ConfigError(f'{os.path.join(folder, name)} is a class folder, but {name!r} is not in '
                        f'config.data.classes={list(classes)}: add it there, or move the folder.')
    found = _images(os.path.join(folder, name), problems, passed_over)
    files += found
    labels += [classes.index(name)] * len(found)
  order = np.argsort(files, kind='stable')
  return [files[i] for i in order], [labels[i] for i in order]


BOMB_FIX = ('shrink it, or set PIL.Image.MAX_IMAGE_PIXELS higher in the process that reads it '
            '(training: in the config file; predict: before calling it)')


def _check_pixel_count(image: Image.Image) -> None:
  """Pillow's guard against decompression bombs, on the pixels that will be decoded (a JPEG's
  after its reduced decoding: a 108-megapixel photo shown at a few hundred pixels passes)."""
  limit = Image.MAX_IMAGE_PIXELS
  width, height = image.size
  if limit and width * height > limit:
    raise _Unreadable(f'{width} x {height} pixels, more than PIL.Image.MAX_IMAGE_PIXELS={limit} '
                      f"(Pillow's guard against decompression bombs): {BOMB_FIX}")


def _on_white(image: Image.Image) -> Image.Image:
  """``image`` (with transparency) composited on a white background, as RGB."""
  rgba = image.convert('RGBA')
  return Image.alpha_composite(Image.new('RGBA', rgba.size, 'white'), rgba).convert('RGB')


def _deep_values(image: Image.Image) -> np.ndarray:
  """A single-channel image of more than 8 bits as float32 ``[h, w]`` in [0, 1]: 16-bit by 65535
  (a transparent value white, as transparency is composited);
  32-bit integers by 65535 where they lie in [0, 65535] (16-bit data), else by their minimum and
  maximum; floats as they are where they lie in [0, 1], else by their minimum and maximum."""
  values = np.asarray(image)
  if image.mode in SIXTEEN_BIT_MODES:
    scaled = values.astype(np.float32) / 65535.0
    transparent = image.info.get('transparency')   # a grey PNG's one transparent value: on white
    if isinstance(transparent, int) and not isinstance(transparent, bool):
      scaled[values == transparent] = 1.0
    return scaled
  values = values.astype(np.float64)
  if not np.isfinite(values).all():
    raise _Unreadable('its pixels include NaN or infinite values')
  low, high = float(values.min()), float(values.max())
  top = 1.0 if image.mode == 'F' else 65535.0
  if low >= 0 and high <= top:
    return (values / top).astype(np.float32)
  return ((values - low) / max(high - low, np.finfo(np.float32).tiny)).astype(np.float32)


@contextlib.contextmanager
def _decoded(path: Union[str, BinaryIO], side: int) -> Iterator[Image.Image]:
  """The image at ``path`` (or in a file object), decoded (a JPEG, or a phone's multi-picture
  JPEG, at the smallest DCT scale that keeps both sides at least ``side``) and turned as its EXIF
  orientation says. A path is read through a file object, as the bytes checked at load time are:
  Pillow maps an uncompressed file given by path, and turns a single-channel TIFF of orientation
  5-8 on that map with the wrong row length."""
  with contextlib.ExitStack() as stack:
    source = stack.enter_context(open(path, 'rb')) if isinstance(path, str) else path
    image = stack.enter_context(Image.open(source))
    if image.format in ('JPEG', 'MPO'):
      image.draft(None, (side, side))
    _check_pixel_count(image)
    ImageOps.exif_transpose(image, in_place=True)
    yield image


def _eight_bit(image: Image.Image) -> Image.Image:
  """An 8-bit image in a mode Pillow converts to 'L' and 'RGB' as it is: colours in sRGB
  (:func:`_in_srgb`), transparency on white, deeper images scaled to [0, 255]
  (:func:`_deep_values`)."""
  if image.mode in SIXTEEN_BIT_MODES + ('I', 'F'):
    return Image.fromarray(np.round(_deep_values(image) * 255).astype(np.uint8))
  image = _in_srgb(image)
  return _on_white(image) if image.has_transparency_data else image


COLOUR_MODES = ('RGB', 'RGBA', 'CMYK')   # the modes whose colour profile is applied


def _in_srgb(image: Image.Image) -> Image.Image:
  """``image`` in sRGB where it carries a colour profile (ICC) of its own: a phone's Display P3
  photo, a print's CMYK, a camera's Adobe RGB (relative colorimetric, as a browser shows them);
  as it is without one, in grey, or where the profile cannot be read or applied (a damaged
  profile: the pixels as if it were sRGB, as a browser shows them too)."""
  icc = image.info.get('icc_profile')
  if not icc:
    return image
  if image.mode == 'P':   # a palette's colours, in the profile's space
    image = image.convert('RGBA' if image.has_transparency_data else 'RGB')
  if image.mode not in COLOUR_MODES:
    return image
  try:
    return ImageCms.profileToProfile(
        image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile('sRGB'),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode='RGBA' if image.mode == 'RGBA' else 'RGB')
  except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
    return image


def read_image(path: Union[str, BinaryIO], size: Tuple[int, int], channels: int
               ) -> np.ndarray:
  """The image at ``path`` (or in a file object) as float32 ``[h, w, channels]`` in [0, 1], resized (bilinear) to
  ``size`` (h, w); the module's docstring says how. Raises whatever Pillow raises for a file it
  cannot decode."""
  with _decoded(path, JPEG_REDUCING_GAP * max(size)) as image:
    if image.mode in SIXTEEN_BIT_MODES + ('I', 'F'):  # resized before it is rounded to 8 bits
      values = np.asarray(Image.fromarray(_deep_values(image)).resize((size[1], size[0]),
                                                                      Image.BILINEAR))
      return np.repeat(values[..., None], channels, axis=-1)
    image = _eight_bit(image).convert('L' if channels == 1 else 'RGB')
    pixels = np.asarray(image.resize((size[1], size[0]), Image.BILINEAR), np.float32) / 255.0
  return pixels[..., None] if channels == 1 else pixels


def thumbnail(path: str, side: int = THUMBNAIL_SIDE) -> np.ndarray:
  """The image at ``path`` as uint8 RGB ``[h, w, 3]``, its aspect kept and its longer side at most
  ``side``: decoded as :func:`read_image` decodes it, but at about the size shown (a photo of
  6000 x 4000 is never decoded whole)."""
  try:
    with _decoded(path, JPEG_REDUCING_GAP * side) as image:
      image = _eight_bit(image).convert('RGB')
      image.thumbnail((side, side))
      return np.asarray(image)
  except Exception as e:  # pylint: disable=broad-except  (see _pixels_or_reason)
    raise no_longer_readable(path, e) from None


def no_longer_readable(path: str, error: BaseException) -> ImageFolderError:
  """The refusal of a pool or test file that reading raised ``error`` on after the pool was
  loaded."""
  return ImageFolderError(
      f'{shown(path)} can no longer be read ({unreadable_reason(path, error)}); it could be when '
      'the pool was loaded. Restore it; or, to leave it out, remove it: the pool then changes, '
      'and a learner\'s answers go into a new workdir (label answer --workdir=NEW '
      '--answers=OLD/answers.jsonl).')


def shown(path: str) -> str:
  """``path`` printable whatever bytes its name holds (a name that is not UTF-8 as escapes)."""
  return os.fsencode(path).decode('utf-8', 'backslashreplace')


def unreadable_reason(path: str, error: BaseException) -> str:
  """Why ``path`` could not be read, in words, from what reading it raised."""
  if isinstance(error, _Unreadable):
    return str(error)
  if isinstance(error, FileNotFoundError) and os.path.islink(path):
    return f'a link to {shown(os.readlink(path))}, which does not exist'
  if isinstance(error, Image.DecompressionBombError):
    return f"refused by Pillow's guard against decompression bombs ({error}): {BOMB_FIX}"
  if isinstance(error, Image.UnidentifiedImageError):
    try:
      with open(path, 'rb') as f:
        start = f.read(64)
    except OSError:
      start = b'\0'
    if not start:
      return 'empty (0 bytes)'
    if all(chr(b) in string.printable for b in start):
      return f'text, not an image (it starts {start[:24].decode()!r})'
    if path.lower().endswith(HEIF_EXTENSIONS) and pillow_heif is None:
      return ('a HEIC/HEIF photo, which Pillow reads through the pillow-heif plugin: '
              'pip install pillow-heif')
    if path.lower().endswith('.avif') and not features.check('avif'):
      return ('an AVIF image, which this Pillow cannot read (recent ones do): '
              'pip install --upgrade pillow')
    return 'not an image Pillow can read (damaged, or of another format)'
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  if 'truncated' in str(error).lower():
    return f'truncated: its data ends early ({error})'
  return f'{error}' or type(error).__name__


def _pixels_or_reason(path: str, size: Tuple[int, int], channels: int
                      ) -> Tuple[Union[np.ndarray, str], Optional[str]]:
  """:func:`read_image`'s pixels and the :func:`file_sha256` of the bytes they were decoded from
  (the file read once), or why the file cannot be read and None."""
  try:
    path.encode('utf-8')
  except UnicodeEncodeError:
    return 'its name is not UTF-8 (made on another system?): rename it', None
  try:
    with open(path, 'rb') as f:
      data = f.read()
    return read_image(io.BytesIO(data), size, channels), _sha256(data)
  # A damaged file makes Pillow's decoders raise errors of many kinds (OSError, SyntaxError,
  # ValueError, EOFError, struct.error...): every one means the file cannot be used.
  except Exception as e:  # pylint: disable=broad-except
    return unreadable_reason(path, e), None


def file_sha256(path: str) -> str:
  """16 hex digits of the SHA-256 of the file's bytes: what its content is."""
  with open(path, 'rb') as f:
    return _sha256(f.read())


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()[:16]


def _decode_all(files: Sequence[str], size: Tuple[int, int], channels: int, keep: Set[str]
                ) -> Tuple[Dict[str, np.ndarray], Dict[str, str], List[Problem]]:
  """Decodes every file once (in threads): the pixels of those in ``keep``, every readable
  file's :func:`file_sha256`, and the files that cannot be read, with why."""
  kept, digests, problems = {}, {}, []

  def decode(path):
    return (path, *_pixels_or_reason(path, size, channels))

  with warnings.catch_warnings():
    # Pillow warns of images above its pixel limit as it opens them; they are refused by name.
    warnings.simplefilter('ignore', Image.DecompressionBombWarning)
    with futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
      for path, result, digest in pool.map(decode, files):
        if isinstance(result, str):
          problems.append((path, result))
          continue
        digests[path] = digest
        if path in keep:
          kept[path] = result
  return kept, digests, problems


def passed_over_text(root: str, passed_over: Sequence[str]) -> str:
  """The files under ``root`` that are not read (their names not images'), counted by extension."""
  kinds = collections.Counter(os.path.splitext(p)[1].lower() or 'no extension'
                              for p in passed_over)
  counted = ', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items(),
                                                          key=lambda k: (-k[1], k[0])))
  first = shown(os.path.relpath(sorted(passed_over)[0], root))
  return (f'{len(passed_over)} of the files under {root} are not read, their names not '
          f'those of images ({counted}; the first: {first}). Images are read by names ending in '
          f'{" ".join(EXTENSIONS)}: convert any other image to one of these (PNG, or JPEG for '
          'photos).')


def _problems_text(root: str, problems: Sequence[Problem], total: int) -> str:
  lines = [f'  {shown(os.path.relpath(p, root))}: {why}' for p, why in problems[:SHOWN]]
  if len(problems) > SHOWN:
    lines.append(f'  and {len(problems) - SHOWN} more.')
  return (f'{len(problems)} of the {total} image files under {root} cannot be read:\n' +
          '\n'.join(lines))


def _options(config: ml_collections.ConfigDict) -> Tuple[Tuple[int, int], int, bool]:
  """``(image_size, channels, skip_unreadable)`` from ``config``, refused by field."""
  size = tuple(int(v) for v in config.get('image_size', (64, 64)))
  channels = int(config.get('channels', 3))
  if len(size) != 2 or min(size) < 1 or channels not in (1, 3):
    raise ConfigError(f'config.data.image_size={size} must be (height, width) and '
                      f'config.data.channels={channels} 1 or 3.')
  skip = config.get('skip_unreadable', False)
  if not isinstance(skip, (bool, np.bool_)):
    raise ConfigError(f'config.data.skip_unreadable={skip!r} must be True (leave out the files '
                      'that cannot be read) or False (refuse them).')
  return size, channels, bool(skip)


def _classes(root: str, config: ml_collections.ConfigDict) -> List[str]:
  """A classification folder's classes: ``config.classes``, or the class folders' names; refused
  where two differ only in case or in how a letter is written, or fewer than 2 are named."""
  classes = list(config.get('classes') or sorted(
      set(_class_folders(os.path.join(root, 'labeled'))) |
      set(_class_folders(os.path.join(root, 'test')))))
  alike = collections.defaultdict(list)
  for name in classes:
    alike[class_key(name).casefold()].append(name)
  for names in alike.values():
    if len(names) < 2:
      continue
    twins = len({class_key(n) for n in names}) < len(names)   # one name, written twice
    if twins or not config.get('classes'):
      raise ConfigError(
          f'{os.path.join(root, "labeled")} and {os.path.join(root, "test")}: the class folders '
          f'{" and ".join(map(repr, names))} differ only in '
          f'{"spaces or accents written two ways" if twins else "case"}, so they would be two '
          'classes: rename them to one name' + ('.' if twins else
                                                ' (or, if they are two classes, name them in '
                                                'config.data.classes).'))
  if len(classes) < 2:
    loose = [n for n in os.listdir(root) if not _hidden(n) and n.lower().endswith(EXTENSIONS)]
    where = (f' ({len(loose)} images lie directly in {root}, where none is read: the images to '
             f'label go in {os.path.join(root, "unlabeled")})' if loose else '')
    raise ConfigError(f'config.data.classes={classes}: name at least 2 classes, in a config '
                      "file of your own (c.data.classes = ('cat', 'dog')), or make a folder per "
                      f'class under {os.path.join(root, "labeled")}{where}.')
  return classes


def _refuse_classes(root: str, task: str) -> None:
  """Refuses a pose or crowd folder with class folders or images under ``labeled/`` or
  ``test/``: its labels come from marks, never from a folder's name."""
  for split in ('labeled', 'test'):
    folder = os.path.join(root, split)
    held = [n for n in (os.listdir(folder) if os.path.isdir(folder) else []) if not _hidden(n)]
    if held:
      raise ConfigError(f'config.data.task={task!r}: {folder} holds {", ".join(sorted(held)[:3])}'
                        f'{", ..." if len(held) > 3 else ""}, but a {task}\'s labels are marks '
                        f'({"joints" if task == "pose" else "heads"}) placed on the pictures, not '
                        f'folders: put every picture under {os.path.join(root, "unlabeled")}.')


def load_image_folder(config: ml_collections.ConfigDict) -> Dataset:
  """The dataset of images under ``config.root`` (see the module's docstring). ``config``:
  ``root``; ``classes`` (names, optional); ``image_size`` (h, w; default (64, 64)); ``channels``
  (3 or 1); ``normalize``; ``stats_sample`` (default 1,000); ``skip_unreadable`` (default False:
  files that cannot be read are refused)."""
  root = config.get('root')
  if not root or not os.path.isdir(root):
    raise DataNotFoundError(f'config.data.root={root!r} is not a folder: give the folder that '
                            'holds labeled/<class>/, unlabeled/ and optionally test/<class>/.')
  root = os.path.abspath(root)
  task = config.get('task', 'classification')
  if task not in MARKED_TASKS and task != 'classification':
    raise ConfigError(f'config.data.task={task!r}: give \'classification\' (class folders), '
                      "'pose' or 'crowd' (pictures under unlabeled/ whose joints or heads are "
                      'marked).')
  if task in MARKED_TASKS:
    _refuse_classes(root, task)
    classes = []
  else:
    classes = _classes(root, config)
  size, channels, skip = _options(config)
  method = normalisation(config, 'image_folder', ('train_statistics', 'imagenet'))
  if method == 'imagenet' and channels != 3:
    raise ConfigError("config.data.normalize='imagenet' needs RGB: config.data.channels=3.")
  problems, passed_over = [], []
  labeled, labels = _labeled(os.path.join(root, 'labeled'), classes, problems, passed_over)
  unlabeled = _images(os.path.join(root, 'unlabeled'), problems, passed_over)
  pool = sorted(zip(labeled + unlabeled, labels + [-1] * len(unlabeled)))
  test = list(zip(*_labeled(os.path.join(root, 'test'), classes, problems, passed_over)))
  if passed_over:
    logging.warning('%s', passed_over_text(root, passed_over))
  stats_sample = int(config.get('stats_sample', 1000))

  def sample_of(files):
    return [files[i] for i in np.linspace(0, len(files) - 1,
                                          min(len(files), stats_sample)).astype(int)]

  files = [f for f, _ in pool]
  kept, digests, unreadable = _decode_all(
      files + [f for f, _ in test], size, channels,
      set(sample_of(files)) if method != 'imagenet' else set())
  problems += unreadable
  if problems and not skip:
    raise ImageFolderError(
        _problems_text(root, problems, len(pool) + len(test)) + '\nRepair or remove them, or '
        'leave them out: config.data.skip_unreadable = True in the config file.')
  if problems:
    logging.warning('%s\nThey are left out (config.data.skip_unreadable=True).',
                    _problems_text(root, problems, len(pool) + len(test)))
    bad = {p for p, _ in problems}
    pool = [(f, y) for f, y in pool if f not in bad]
    test = [(f, y) for f, y in test if f not in bad]
  if not pool:
    raise DataNotFoundError(
        f'No {"readable " if problems else ""}images under {os.path.join(root, "labeled")} or '
        f'{os.path.join(root, "unlabeled")} (extensions {EXTENSIONS}).')
  pool_files = [f for f, _ in pool]
  if method == 'imagenet':
    mean, std = IMAGENET_MEAN, IMAGENET_STD
  else:
    pixels = np.stack([kept[f] if f in kept else read_image(f, size, channels)
                       for f in sample_of(pool_files)])
    mean, std = pixels.mean((0, 1, 2)), np.maximum(pixels.std((0, 1, 2)), 1e-6)

  def images(files):
    def read(i):
      try:
        return (read_image(files[i], size, channels) - mean) / std
      except Exception as e:  # pylint: disable=broad-except  (see _pixels_or_reason)
        raise no_longer_readable(files[i], e) from None
    return LazyImages(len(files), (*size, channels), read)

  common = dict(pool_ids=[os.path.relpath(f, root) for f in pool_files], source_root=root,
                pool_file_sha256=[digests[f] for f in pool_files],
                preprocessing=preprocessing.Preprocessing('image', mean, std, (0.0, 1.0), size,
                                                          channels))
  params = {'mean': mean, 'std': std, 'normalisation': method}
  if task in MARKED_TASKS:
    return _to_mark(task, config, images(pool_files), size, params, common)
  return Dataset(images(pool_files), np.array([y for _, y in pool], np.int32),
                 images([f for f, _ in test]), np.array([y for _, y in test], np.int32),
                 len(classes), task_params=params, class_names=classes, **common)


def _to_mark(task: str, config: ml_collections.ConfigDict, x: LazyImages, size: Tuple[int, int],
             params: Dict[str, Any], common: Dict[str, Any]) -> Dataset:
  """A pose's or crowd's pool of pictures ``x``, every label unknown until marked (no test split:
  no evaluation), with what marking and training need: pose ``heatmap_size`` (the input divided
  by ``config.heatmap_stride``, 4), ``sigma`` (``config.sigma`` heatmap pixels, 1), the joints'
  names (``config.joints``; MPII's 16 by default, with its bones and left/right pairs) and
  ``flip_pairs`` (``config.flip_pairs`` for joints of your own: pairs of their indices); crowd
  density maps of the input divided by ``config.density_stride`` (8), ``density_scale``
  (``config.density_scale``, 100) times a Gaussian of ``config.sigma`` map pixels (1) per head."""
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  n, empty = len(x), np.zeros((0, *size, x.shape[-1]), np.float32)
  stride = int(config.get('heatmap_stride' if task == 'pose' else 'density_stride',
                          4 if task == 'pose' else 8))
  if stride < 1 or size[0] % stride or size[1] % stride:
    field = 'heatmap_stride' if task == 'pose' else 'density_stride'
    raise ConfigError(f'config.data.{field}={stride} must divide config.data.image_size={size} '
                      'into whole map pixels.')
  maps = (size[0] // stride, size[1] // stride)
  sigma = float(config.get('sigma', 1.0))
  if task == 'crowd':
    return Dataset(x, np.full((n, *maps), np.nan, np.float32), empty,
                   np.zeros((0, *maps), np.float32), 1, task='crowd',
                   task_params=dict(params, density_scale=float(config.get('density_scale', 100.0)),
                                    density_sigma=sigma), **common)
  joints = tuple(config.get('joints') or annotate.JOINT_NAMES)
  mpii = joints == annotate.JOINT_NAMES
  pairs = config.get('flip_pairs')
  from l2r_jax.data import synthetic_pose  # pylint: disable=g-import-not-at-top  (MPII's order)
  pose = dict(params, heatmap_size=maps, sigma=sigma, joint_names=joints)
  if pairs is not None or mpii:
    pose['flip_pairs'] = tuple(tuple(p) for p in (
        synthetic_pose.FLIP_PAIRS if pairs is None else pairs))
  if mpii:
    pose['skeleton'] = annotate.SKELETON
  return Dataset(x, np.full((n, len(joints), 3), np.nan, np.float32), empty,
                 np.zeros((0, len(joints), 3), np.float32), len(joints), task='pose',
                 test_meta={'head_boxes': np.zeros((0, 2, 2), np.float32)}, task_params=pose,
                 **common)
