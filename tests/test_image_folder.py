"""The image-folder dataset on files as people have them: damaged, 16-bit, float, turned, with
transparency, behind links, hidden; every file made for real with Pillow."""
import io
import json
import logging
import os
import re
import struct
import unicodedata
import warnings
import zlib

import ml_collections
import numpy as np
from PIL import Image
import pytest

from l2r_jax import data as data_lib
from l2r_jax import errors
from l2r_jax.data import image_folder


def _png(path, value, size=(6, 8)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pixels = np.full((*size, 3), value, np.uint8)
  pixels[0, 0] = (value + 100) % 256
  Image.fromarray(pixels).save(path)


def _jpeg_bytes(width, height, **save):
  """A JPEG of smooth colours (a photo's content, not noise), ``width`` x ``height``."""
  y, x = np.mgrid[0:height, 0:width]
  pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
  out = io.BytesIO()
  Image.fromarray(pixels.astype(np.uint8)).save(out, 'JPEG', quality=95, **save)
  return out.getvalue()


def _bomb_png(width=100_000, height=100_000):
  """A PNG of a few hundred bytes whose header declares ``width`` x ``height`` pixels."""
  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body +
            struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff))
  return (b'\x89PNG\r\n\x1a\n' +
          chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)) +
          chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))


def _folder(tmp_path):
  """Two labeled classes, an unlabeled image and a test image, all readable."""
  root = tmp_path / 'images'
  _png(root / 'labeled' / 'cat' / 'c.png', 10)
  _png(root / 'labeled' / 'dog' / 'd.png', 200)
  _png(root / 'unlabeled' / 'u.png', 90)
  _png(root / 'test' / 'cat' / 't.png', 50)
  return root


def _config(root, **fields):
  return ml_collections.ConfigDict(dict(dict(name='image_folder', root=str(root),
                                             image_size=(4, 4)), **fields))


def _damaged(root):
  """Files no decoder can use, each beside the readable ones, and what the refusal says of each."""
  unlabeled = root / 'unlabeled'
  png = io.BytesIO()
  Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(png, 'PNG')
  files = {
      'corrupt.png': (os.urandom(64) + b'\0' * 64, 'not an image Pillow can read'),
      'empty.png': (b'', 'empty (0 bytes)'),
      'cut.jpg': (_jpeg_bytes(40, 30)[:-300], 'truncated: its data ends early'),
      'cut.png': (png.getvalue()[:len(png.getvalue()) // 2], 'truncated: its data ends early'),
      'notes.png': (b'shopping list: milk, eggs\n', "text, not an image (it starts 'shopping"),
      'bomb.png': (_bomb_png(), "Pillow's guard against decompression bombs"),
  }
  for name, (content, _) in files.items():
    (unlabeled / name).write_bytes(content)
  (root / 'test' / 'cat' / 'cut.png').write_bytes(png.getvalue()[:40])
  os.symlink(root / 'nowhere.png', unlabeled / 'moved.png')
  reasons = {f'unlabeled/{name}': why for name, (_, why) in files.items()}
  reasons['test/cat/cut.png'] = 'not an image Pillow can read'   # cut inside its header
  reasons['unlabeled/moved.png'] = f'a link to {root / "nowhere.png"}, which does not exist'
  return reasons


@pytest.mark.parametrize('normalize', ['imagenet', 'train_statistics'])
def test_files_that_cannot_be_decoded_are_refused_at_load_each_with_its_reason(tmp_path,
                                                                               normalize):
  root = _folder(tmp_path)
  reasons = _damaged(root)
  # macOS's AppleDouble companion of an image: hidden, never an image, never named.
  (root / 'unlabeled' / '._u.png').write_bytes(b'\x00\x05\x16\x07' + b'\0' * 80)
  with pytest.raises(errors.ImageFolderError) as refusal:
    data_lib.load(_config(root, normalize=normalize))
  message = str(refusal.value)
  assert isinstance(refusal.value, errors.Refusal)
  assert message.startswith(f'{len(reasons)} of the {4 + len(reasons)} image files under {root} '
                            'cannot be read:\n')
  lines = message.splitlines()[1:-1]
  assert len(lines) == len(reasons)
  for line in lines:
    name, why = line.strip().split(': ', 1)
    assert reasons[name] in why, line
  assert 'config.data.skip_unreadable = True' in message.splitlines()[-1]
  assert '._u.png' not in message


def test_unreadable_files_are_left_out_with_a_warning_when_asked(tmp_path, caplog):
  root = _folder(tmp_path)
  reasons = _damaged(root)
  with caplog.at_level(logging.WARNING):
    ds = data_lib.load(_config(root, skip_unreadable=True))
  assert list(ds.pool_ids) == ['labeled/cat/c.png', 'labeled/dog/d.png', 'unlabeled/u.png']
  np.testing.assert_array_equal(ds.y_train, [0, 1, -1])
  assert ds.x_test.shape == (1, 4, 4, 3)
  assert np.isfinite(ds.x_train[np.arange(3)]).all()
  warned = '\n'.join(r.getMessage() for r in caplog.records)
  assert all(name in warned for name in reasons) and 'left out' in warned
  with pytest.raises(errors.ConfigError, match=r"skip_unreadable='yes' must be True"):
    data_lib.load(_config(root, skip_unreadable='yes'))


def test_a_long_list_of_unreadable_files_shows_twenty_and_counts_the_rest(tmp_path):
  root = _folder(tmp_path)
  for i in range(25):
    (root / 'unlabeled' / f'bad{i:02d}.png').write_bytes(b'\0' * 10)
  with pytest.raises(errors.ImageFolderError) as refusal:
    data_lib.load(_config(root))
  lines = str(refusal.value).splitlines()
  assert lines[0].startswith('25 of the 29 image files')
  assert sum(line.startswith('  unlabeled/bad') for line in lines) == 20
  assert '  and 5 more.' in lines


def test_an_image_above_pillows_pixel_limit_is_refused_without_decoding_it(tmp_path,
                                                                           monkeypatch):
  root = _folder(tmp_path)
  _png(root / 'unlabeled' / 'big.png', 30, size=(20, 30))
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 500)   # 600 pixels: Pillow only warns of it
  with warnings.catch_warnings():
    warnings.simplefilter('error')    # Pillow's own warning must not escape either
    with pytest.raises(errors.ImageFolderError,
                       match=r'unlabeled/big.png: 30 x 20 pixels, more than '
                             r'PIL.Image.MAX_IMAGE_PIXELS=500'):
      data_lib.load(_config(root))


def _read_as_is(array, name, tmp_path, channels=1):
  """``array`` saved as ``name`` and read back at its own size (no resampling)."""
  path = str(tmp_path / name)
  Image.fromarray(array).save(path)
  return image_folder.read_image(path, array.shape[:2], channels)


def test_sixteen_bit_and_float_images_are_scaled_by_their_real_range(tmp_path):
  deep = np.array([[0, 1000, 30000], [40000, 65535, 7]], np.uint16)
  read = _read_as_is(deep, 'deep.png', tmp_path, channels=3)
  assert Image.open(tmp_path / 'deep.png').mode == 'I;16'
  np.testing.assert_allclose(read, np.repeat(deep[..., None] / 65535, 3, -1), atol=1e-6)
  # 32-bit integers within 16 bits are 16-bit data; beyond, their own range.
  np.testing.assert_allclose(_read_as_is(deep.astype(np.int32), 'deep.tif', tmp_path)[..., 0],
                             deep / 65535, atol=1e-6)
  wide = np.array([[-5, 0], [100_000, 95]], np.int32)
  np.testing.assert_allclose(_read_as_is(wide, 'wide.tif', tmp_path)[..., 0],
                             (wide + 5) / 100_005, atol=1e-6)
  # Floats in [0, 1] as they are; others by their minimum and maximum.
  unit = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
  np.testing.assert_allclose(_read_as_is(unit, 'unit.tif', tmp_path)[..., 0], unit, atol=1e-6)
  kelvin = np.array([[250.0, 300.0], [275.0, 350.0]], np.float32)
  np.testing.assert_allclose(_read_as_is(kelvin, 'kelvin.tif', tmp_path)[..., 0],
                             (kelvin - 250) / 100, atol=1e-6)


def test_a_float_image_with_nan_is_refused(tmp_path):
  root = _folder(tmp_path)
  Image.fromarray(np.array([[0.5, np.nan], [0.1, 0.2]], np.float32)).save(
      root / 'unlabeled' / 'gap.tif')
  with pytest.raises(errors.ImageFolderError,
                     match='unlabeled/gap.tif: its pixels include NaN or infinite values'):
    data_lib.load(_config(root))


def test_exif_orientation_is_applied(tmp_path):
  exif = Image.Exif()
  exif[0x0112] = 6   # the camera was turned: show the stored image rotated 90 degrees clockwise
  path = tmp_path / 'turned.jpg'
  path.write_bytes(_jpeg_bytes(40, 30, exif=exif.tobytes()))
  stored = np.asarray(Image.open(path).convert('RGB'), np.float32) / 255   # 30 rows, 40 columns
  read = image_folder.read_image(str(path), (40, 30), 3)
  np.testing.assert_array_equal(read, np.rot90(stored, k=-1))
  thumb = image_folder.thumbnail(str(path), 20)
  assert thumb.shape == (20, 15, 3)


def test_transparency_is_composited_on_white(tmp_path):
  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[0, 0] = (0, 0, 0, 0)          # transparent black: white
  rgba[0, 1] = (255, 0, 0, 255)      # opaque red
  rgba[1, 0] = (0, 0, 255, 102)      # 40% blue over white
  rgba[1, 1] = (0, 255, 0, 255)
  read = _read_as_is(rgba, 'alpha.png', tmp_path, channels=3)
  expected = np.array([[[255, 255, 255], [255, 0, 0]],
                       [[153, 153, 255], [0, 255, 0]]], np.float32) / 255
  np.testing.assert_allclose(read, expected, atol=1.5 / 255)
  palette = Image.new('P', (2, 1), 0)
  palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
  palette.putpixel((1, 0), 1)
  palette.save(tmp_path / 'palette.png', transparency=0)
  np.testing.assert_allclose(image_folder.read_image(str(tmp_path / 'palette.png'), (1, 2), 3),
                             [[[1, 1, 1], [200 / 255, 10 / 255, 10 / 255]]], atol=1e-6)
  grey = np.array([[[0, 0], [0, 255]]], np.uint8)   # LA: a black pixel, transparent then opaque
  np.testing.assert_allclose(_read_as_is(grey, 'la.png', tmp_path)[..., 0],
                             [[1.0, 0.0]], atol=1e-6)
  deep = np.array([[0, 1000], [30000, 1000]], np.uint16)   # 16-bit grey, 1000 transparent
  Image.fromarray(deep).save(tmp_path / 'deep.png', transparency=1000)
  np.testing.assert_allclose(image_folder.read_image(str(tmp_path / 'deep.png'), (2, 2), 1)[..., 0],
                             [[0.0, 1.0], [30000 / 65535, 1.0]], atol=1e-6)


def _matrix_profile(red, green, blue, gamma):
  """An ICC v2 display profile (the format of ICC.1:2001-04) of three colorants (XYZ, D50) and one
  gamma for every channel: what a camera's or phone's RGB profile is, written field by field."""
  def s15(v):
    return struct.pack('>i', int(round(v * 65536)))

  def xyz(v):
    return b'XYZ ' + bytes(4) + b''.join(s15(c) for c in v)

  curve = b'curv' + bytes(4) + struct.pack('>IH', 1, int(round(gamma * 256))) + bytes(2)
  name = b'test RGB\0'
  tags = {b'desc': b'desc' + bytes(4) + struct.pack('>I', len(name)) + name + bytes(78),
          b'wtpt': xyz(D50), b'rXYZ': xyz(red), b'gXYZ': xyz(green), b'bXYZ': xyz(blue),
          b'rTRC': curve, b'gTRC': curve, b'bTRC': curve, b'cprt': b'text' + bytes(4) + b'-\0'}
  start, table, body = 128 + 4 + 12 * len(tags), b'', b''
  for tag, data in tags.items():
    data += bytes(-len(data) % 4)
    table += tag + struct.pack('>II', start + len(body), len(data))
    body += data
  header = (struct.pack('>I', start + len(body)) + bytes(4) + struct.pack('>I', 0x02100000)
            + b'mntrRGB XYZ ' + bytes(12) + b'acsp' + bytes(28) + b''.join(s15(c) for c in D50)
            + bytes(48))
  return header + struct.pack('>I', len(tags)) + table + body


D50 = (0.9642, 1.0, 0.8249)
# Display P3's colorants adapted to D50 (Apple's profile), and sRGB's (IEC 61966-2-1, as ICC
# profiles of it give them).
P3 = ((0.5151, 0.2412, -0.0011), (0.2919, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
SRGB = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def _in_srgb(values, colorants):
  """Pixels of a gamma-2.2 profile of ``colorants`` in sRGB, by the colorimetry: linear light,
  XYZ, sRGB's linear light (clipped to its gamut), sRGB's curve."""
  linear = (np.asarray(values, np.float64) / 255) ** 2.2
  srgb = np.clip(linear @ np.asarray(colorants) @ np.linalg.inv(np.asarray(SRGB)), 0, 1)
  return np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)


def test_a_photo_with_a_colour_profile_is_read_in_srgb(tmp_path):
  """A phone's Display P3 photo is read in sRGB, as a browser shows it, so it and an sRGB photo
  of the same colours become the same input; without a profile, or with one that cannot be read,
  the pixels are taken as they are."""
  pixels = np.array([[[200, 40, 40], [30, 180, 60], [50, 60, 190], [128, 128, 128]],
                     [[250, 250, 250], [0, 0, 0], [90, 120, 30], [10, 200, 220]]], np.uint8)
  profile = _matrix_profile(*P3, gamma=2.2)
  Image.fromarray(pixels).save(tmp_path / 'p3.png', icc_profile=profile)
  expected = _in_srgb(pixels, P3)
  read = image_folder.read_image(str(tmp_path / 'p3.png'), (2, 4), 3)
  np.testing.assert_allclose(read, expected, atol=1.5 / 255)   # 8-bit rounding, in and out
  assert np.abs(read - pixels / 255).max() > 20 / 255   # the profile changed the colours
  np.testing.assert_allclose(image_folder.thumbnail(str(tmp_path / 'p3.png'), 4) / 255, expected,
                             atol=1.5 / 255)
  rgba = np.dstack([pixels, np.full((2, 4), 255, np.uint8)])
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'p3a.png', icc_profile=profile)
  np.testing.assert_allclose(image_folder.read_image(str(tmp_path / 'p3a.png'), (2, 4), 3),
                             expected, atol=1.5 / 255)
  Image.fromarray(pixels).save(tmp_path / 'plain.png')
  Image.fromarray(pixels).save(tmp_path / 'damaged.png', icc_profile=profile[:200])
  Image.fromarray(pixels).save(tmp_path / 'srgb.png', icc_profile=_matrix_profile(*SRGB, 2.2))
  for name in ('plain.png', 'damaged.png'):
    np.testing.assert_array_equal(image_folder.read_image(str(tmp_path / name), (2, 4), 3),
                                  pixels / np.float32(255))
  # A profile of sRGB's colorants keeps the hues: only its curve (gamma 2.2) differs.
  np.testing.assert_allclose(image_folder.read_image(str(tmp_path / 'srgb.png'), (2, 4), 3),
                             _in_srgb(pixels, SRGB), atol=1.5 / 255)


def test_links_to_folders_and_files_are_followed_in_labeled_and_unlabeled(tmp_path):
  root = _folder(tmp_path)
  elsewhere = tmp_path / 'elsewhere'
  _png(elsewhere / 'birds' / 'b.png', 60)
  _png(elsewhere / 'batch' / 'x.png', 70)
  _png(elsewhere / 'single.png', 80)
  os.symlink(elsewhere / 'birds', root / 'labeled' / 'bird')      # a class folder
  os.symlink(elsewhere / 'batch', root / 'unlabeled' / 'batch')   # a folder to label
  os.symlink(elsewhere / 'single.png', root / 'unlabeled' / 'single.png')
  ds = data_lib.load(_config(root))
  assert ds.class_names == ['bird', 'cat', 'dog']
  assert list(ds.pool_ids) == ['labeled/bird/b.png', 'labeled/cat/c.png', 'labeled/dog/d.png',
                               'unlabeled/batch/x.png', 'unlabeled/single.png', 'unlabeled/u.png']
  np.testing.assert_array_equal(ds.y_train, [0, 1, 2, -1, -1, -1])
  os.symlink(root, root / 'unlabeled' / 'batch2')   # a loop: the root holds unlabeled/
  with pytest.raises(errors.ImageFolderError,
                     match=r'unlabeled/batch2 is a link to .*images, a folder it is in'):
    data_lib.load(_config(root))


def test_a_phones_heic_photo_is_read_and_files_not_named_as_images_are_counted(tmp_path, caplog):
  import pillow_heif  # pylint: disable=g-import-not-at-top  (a dependency, here for its decoder)
  root = _folder(tmp_path)
  y, x = np.mgrid[0:48, 0:64]
  photo = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
  heif = pillow_heif.from_bytes('RGB', (64, 48), photo.tobytes())
  heif.save(str(root / 'unlabeled' / 'IMG_0001.HEIC'), quality=90)
  # The reference: the file decoded by libheif through pillow-heif's own API, kept as a PNG.
  decoded = np.asarray(pillow_heif.open_heif(str(root / 'unlabeled' / 'IMG_0001.HEIC')))
  Image.fromarray(decoded).save(tmp_path / 'reference.png')
  (root / 'unlabeled' / 'saved.jfif').write_bytes(_jpeg_bytes(16, 12))   # a browser's JPEG
  for name in ('notes.txt', 'layers.xcf', 'more.xcf', 'README'):
    (root / 'unlabeled' / name).write_text('not an image')
  with caplog.at_level(logging.WARNING):
    ds = data_lib.load(_config(root, image_size=(12, 16)))
  assert list(ds.pool_ids) == ['labeled/cat/c.png', 'labeled/dog/d.png',
                               'unlabeled/IMG_0001.HEIC', 'unlabeled/saved.jfif',
                               'unlabeled/u.png']
  np.testing.assert_array_equal(
      image_folder.read_image(str(root / 'unlabeled' / 'IMG_0001.HEIC'), (12, 16), 3),
      image_folder.read_image(str(tmp_path / 'reference.png'), (12, 16), 3))
  warned = '\n'.join(r.getMessage() for r in caplog.records)
  assert f'4 of the files under {root} are not read' in warned
  assert '(2 .xcf, 1 .txt, 1 no extension; the first: unlabeled/README)' in warned


def test_a_heic_file_without_its_plugin_is_refused_naming_the_plugin(tmp_path, monkeypatch):
  root = _folder(tmp_path)
  (root / 'unlabeled' / 'IMG_0002.heic').write_bytes(bytes(range(256)) * 4)
  monkeypatch.setattr(image_folder, 'pillow_heif', None)
  with pytest.raises(errors.ImageFolderError, match=r'unlabeled/IMG_0002\.heic: a HEIC/HEIF '
                     r'photo, which Pillow reads through the pillow-heif plugin: pip install '
                     r'pillow-heif'):
    data_lib.load(_config(root))


def test_hidden_files_and_folders_are_not_read(tmp_path):
  root = _folder(tmp_path)
  (root / 'labeled' / 'cat' / '._c.png').write_bytes(b'\x00\x05\x16\x07')
  _png(root / 'labeled' / '.ipynb_checkpoints' / 'c-checkpoint.png', 10)
  _png(root / 'unlabeled' / '.thumbnails' / 'u.png', 90)
  _png(root / 'unlabeled' / '.u.png', 90)
  # What unzipping a macOS zip leaves: __MACOSX/ with an AppleDouble file per image.
  for split in ('labeled', 'unlabeled'):
    (root / split / '__MACOSX').mkdir()
    (root / split / '__MACOSX' / '._c.png').write_bytes(b'\x00\x05\x16\x07')
  ds = data_lib.load(_config(root))
  assert ds.class_names == ['cat', 'dog']
  assert list(ds.pool_ids) == ['labeled/cat/c.png', 'labeled/dog/d.png', 'unlabeled/u.png']


@pytest.mark.parametrize('other', ['Cat', 'CAT', 'cat ', 'cafe\u0301'])
def test_class_folders_whose_names_differ_only_in_case_spaces_or_accents_are_refused(tmp_path,
                                                                                   other):
  root = _folder(tmp_path)
  base = 'caf\u00e9' if other.startswith('caf') else 'cat'   # the accent composed, and not
  if base != 'cat':
    _png(root / 'labeled' / base / 'f.png', 30)
  _png(root / 'test' / other / 'e.png', 20)
  twins = other.strip() == base or other != unicodedata.normalize('NFC', other)
  names = ' and '.join(map(repr, sorted([base, other])))
  why = 'spaces or accents written two ways' if twins else 'case'
  with pytest.raises(errors.ConfigError,
                     match=f'the class folders {re.escape(names)} differ only in {why}.*rename'):
    data_lib.load(_config(root))
  named = _config(root, classes=tuple(sorted({'cat', 'dog', base, other})))
  if twins:    # one name written twice: two classes could never be told apart in an answer
    with pytest.raises(errors.ConfigError, match='rename them to one name.$'):
      data_lib.load(named)
  else:        # named as two classes, they are two
    assert data_lib.load(named).class_names == list(named.classes)


def test_an_image_outside_a_class_folder_is_refused(tmp_path):
  root = _folder(tmp_path)
  _png(root / 'labeled' / 'stray.png', 10)
  with pytest.raises(errors.ConfigError, match=r'holds 1 images outside a class folder '
                                               r'\(stray.png\).*Move each into'):
    data_lib.load(_config(root))


def test_one_class_is_refused_with_where_the_classes_are_named(tmp_path):
  root = tmp_path / 'one'
  _png(root / 'labeled' / 'cat' / 'a.png', 10)
  _png(root / 'unlabeled' / 'b.png', 20)
  with pytest.raises(errors.ConfigError, match=r"config.data.classes=\['cat'\]: name at least 2 "
                     r"classes, in a config file of your own \(c.data.classes = \('cat', 'dog'\)"
                     r"\), or make a folder per class under .*labeled"):
    data_lib.load(_config(root))
  _png(root / 'IMG_1.png', 30)    # a flat folder: images in ROOT itself are named
  with pytest.raises(errors.ConfigError, match=r'make a folder per class under .*labeled \(1 '
                     r'images lie directly in .*one, where none is read: the images to label go '
                     r'in .*unlabeled\)'):
    data_lib.load(_config(root))


def test_a_file_damaged_after_load_is_refused_by_name(tmp_path):
  root = _folder(tmp_path)
  ds = data_lib.load(_config(root, normalize='imagenet'))
  (root / 'unlabeled' / 'u.png').write_bytes(b'')
  with pytest.raises(errors.ImageFolderError,
                     match=r'unlabeled/u.png can no longer be read \(empty \(0 bytes\)\)'):
    ds.x_train[np.arange(3)]


def _spy_on_resizes(monkeypatch):
  """The sizes of the images resized from here on (each resize's source), as a list."""
  resized_from = []
  resize = Image.Image.resize

  def spy(self, size, *args, **kwargs):
    resized_from.append(self.size)
    return resize(self, size, *args, **kwargs)

  monkeypatch.setattr(Image.Image, 'resize', spy)
  return resized_from


def test_a_photo_is_decoded_at_a_fraction_of_its_size(tmp_path, monkeypatch):
  path = str(tmp_path / 'photo.jpg')
  with open(path, 'wb') as f:
    f.write(_jpeg_bytes(1600, 1200))
  full = np.asarray(Image.open(path).convert('RGB').resize((32, 32), Image.BILINEAR),
                    np.float32) / 255
  resized_from = _spy_on_resizes(monkeypatch)
  read = image_folder.read_image(path, (32, 32), 3)
  assert resized_from == [(200, 150)]   # decoded at 1/8: both sides still above 2 x 32
  # libjpeg's scaled decode is a fair downsampling: the same input within a grey level or two.
  assert np.abs(read - full).mean() < 1 / 255 and np.abs(read - full).max() < 6 / 255


def test_a_grey_tiff_turned_by_its_orientation_reads_the_same_from_its_path_and_its_bytes(
    tmp_path):
  # A scanner's or microscope's 16-bit grey TIFF, uncompressed, stored turned (orientation 6):
  # training and predict read the path, the load-time check its bytes; both see it turned.
  values = (np.arange(7 * 5, dtype=np.uint16).reshape(7, 5) * 1800)
  path = str(tmp_path / 'scan.tif')
  Image.fromarray(values).save(path, tiffinfo={0x0112: 6})
  expected = np.rot90(values, k=-1).astype(np.float32) / 65535     # 5 rows, 7 columns
  from_path = image_folder.read_image(path, (5, 7), 1)[..., 0]
  with open(path, 'rb') as f:
    from_bytes = image_folder.read_image(io.BytesIO(f.read()), (5, 7), 1)[..., 0]
  np.testing.assert_allclose(from_bytes, expected, atol=1e-6)
  np.testing.assert_allclose(from_path, expected, atol=1e-6)
  eight = np.rot90(values, k=-1)
  Image.fromarray((values // 257).astype(np.uint8)).save(path, tiffinfo={0x0112: 6})
  np.testing.assert_array_equal(image_folder.thumbnail(path, 7), (eight // 257).astype(np.uint8)[
      ..., None].repeat(3, -1))


def test_a_phone_photo_above_pillows_pixel_limit_is_read_at_the_fraction_decoded(tmp_path,
                                                                                  monkeypatch):
  # A 108-megapixel photo (above Pillow's limit of 89 million) is decoded at 1/8 of its sides:
  # the pixels decoded are what the guard weighs, for a JPEG and a phone's multi-picture JPEG.
  first, second = (Image.fromarray(np.full((1200, 1600, 3), v, np.uint8)) for v in (90, 200))
  first.save(tmp_path / 'photo.jpg', quality=90)
  first.save(tmp_path / 'photo_mpo.jpg', format='MPO', save_all=True, append_images=[second])
  assert Image.open(tmp_path / 'photo_mpo.jpg').format == 'MPO'
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1600 * 1200 - 1)
  resized_from = _spy_on_resizes(monkeypatch)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', Image.DecompressionBombWarning)
    for name in ('photo.jpg', 'photo_mpo.jpg'):
      read = image_folder.read_image(str(tmp_path / name), (32, 32), 3)
      assert np.abs(read - 90 / 255).max() < 3 / 255, name
    assert resized_from == [(200, 150), (200, 150)]
    # A PNG of as many pixels is decoded whole: refused, naming the setting that lets it in.
    Image.fromarray(np.zeros((1200, 1600), np.uint8)).save(tmp_path / 'scan.png')
    reason = image_folder._pixels_or_reason(str(tmp_path / 'scan.png'), (32, 32), 1)[0]
  assert reason.startswith('1600 x 1200 pixels, more than PIL.Image.MAX_IMAGE_PIXELS=1919999')
  assert reason.endswith('set PIL.Image.MAX_IMAGE_PIXELS higher in the process that reads it '
                         '(training: in the config file; predict: before calling it)')


def test_an_avif_image_this_pillow_cannot_read_names_the_fix(tmp_path, monkeypatch):
  path = tmp_path / 'photo.avif'
  path.write_bytes(b'\x00\x00\x00\x1cftypavif' + bytes(range(200)))
  monkeypatch.setattr(image_folder.features, 'check', lambda feature: False)
  error = Image.UnidentifiedImageError('cannot identify image file')
  assert image_folder.unreadable_reason(str(path), error) == (
      'an AVIF image, which this Pillow cannot read (recent ones do): pip install --upgrade pillow')


def test_the_contact_sheet_shows_thumbnails_turned_as_the_camera_says(tmp_path, monkeypatch):
  from matplotlib import axes  # pylint: disable=g-import-not-at-top
  from l2r_jax import label  # pylint: disable=g-import-not-at-top
  exif = Image.Exif()
  exif[0x0112] = 6
  photo = tmp_path / 'photo.jpg'
  photo.write_bytes(_jpeg_bytes(1200, 800, exif=exif.tobytes()))
  damaged = tmp_path / 'damaged.png'
  damaged.write_bytes(b'junk')
  shown = []
  imshow = axes.Axes.imshow
  monkeypatch.setattr(axes.Axes, 'imshow',
                      lambda self, x, **kw: shown.append(np.shape(x)) or imshow(self, x, **kw))

  def read(i):
    if i == 2:
      raise errors.ImageFolderError('gone')
    return np.zeros((8, 8, 3), np.float32)

  class Pool:
    x_train = data_lib.LazyImages(3, (8, 8, 3), read)

  rows = [{'index': 0, 'file': str(photo), 'score': '0.9'},
          {'index': 1, 'file': str(damaged), 'score': ''},
          {'index': 2, 'file': str(tmp_path / 'gone.png'), 'score': ''}]
  assert label.contact_sheet(Pool, rows, str(tmp_path / 'sheet.png')) == str(
      tmp_path / 'sheet.png')
  # Portrait, its long side the thumbnail's; the damaged file shown as the input it was read as;
  # a sample whose input cannot be read either, left blank.
  assert shown == [(256, 171, 3), (8, 8, 3)]
  assert Image.open(tmp_path / 'sheet.png').size[0] > 0


@pytest.mark.parametrize('task', ['pose', 'crowd'])
def test_a_folder_of_pictures_to_mark_trains_rounds_on_its_marks_and_predicts_on_files(tmp_path,
                                                                                      task):
  """``examples/image_folder.py:pose`` and ``:crowd``: the pictures under ``unlabeled/``, every
  label unknown, with what marking needs (MPII's joints, their bones and left/right pairs; the
  Gaussian per head); marks taught, a round trained, the model exported predicts on a file."""
  from examples import image_folder as example  # pylint: disable=g-import-not-at-top
  import l2r_jax  # pylint: disable=g-import-not-at-top
  from l2r_jax import annotate  # pylint: disable=g-import-not-at-top
  from l2r_jax import label  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'pictures'
  (root / 'unlabeled' / 'day 2').mkdir(parents=True)
  rng = np.random.default_rng(0)
  for k in range(8):
    w, h = [(200, 100), (90, 160), (64, 64), (640, 480)][k % 4]
    name = f'Photo {k}.{"JPG" if k % 2 else "png"}'
    path = root / 'unlabeled' / ('day 2' if k % 3 == 0 else '') / name
    Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(
        path, format='JPEG' if k % 2 else 'PNG')
  config = example.get_config(f'{task}_smoke')
  config.data.root = str(root)
  ds = data_lib.load(config.data)
  assert len(ds.x_train) == 8 and len(ds.x_test) == 0 and ds.task == task
  assert np.isnan(ds.y_train).all() and ds.pool_ids[0] == 'unlabeled/Photo 1.JPG'
  if task == 'pose':
    assert ds.y_train.shape == (8, 16, 3) and tuple(ds.task_params['heatmap_size']) == (8, 8)
    assert ds.task_params['joint_names'] == annotate.JOINT_NAMES
    assert ds.task_params['flip_pairs'] == ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
  else:
    assert ds.y_train.shape == (8, 4, 4) and ds.task_params['density_sigma'] == 1.0
  field = annotate.MARK_FIELDS[task]
  work = str(tmp_path / 'work')
  with l2r_jax.ActiveLearner(config, work) as learner:
    asked = learner.query()
    answers = tmp_path / 'answers.jsonl'
    with open(answers, 'w') as f:
      for k, index in enumerate(asked):
        marks = (np.c_[rng.uniform(0, 31, (16, 2)), np.ones(16)] if task == 'pose' else
                 rng.uniform(0, 31, (k * 3, 2)))
        f.write(json.dumps({'id': learner.pool.ids[index], field: marks.tolist()}) + '\n')
    done = label.teach_checked(learner, 'answers', *label.read_answers(str(answers), learner))
    assert done['taught'] == len(asked) == 4
    learner.query()   # trains round 0 on the marks
    assert learner.rounds == 1
    # No classes to agree on, no test split to plateau: status says what applies.
    assert label.status_text(learner).splitlines()[-2:] == [
        'stop? not yet', 'Stabilising predictions (Bloodgood & Vijay-Shanker 2009) compares '
        f"rounds' predicted classes, and a {task} prediction has none: the plateau alone applies, "
        'where a labeled test split scores the rounds. Plateau: the test metric\'s best over the '
        'last 3 rounds improves on the best before them by less than 0.005.']
    model = learner.export(str(tmp_path / 'model'))
  predicted = l2r_jax.load_model(model).predict([str(root / 'unlabeled' / 'Photo 1.JPG')])
  if task == 'pose':
    assert predicted.joints.shape == (1, 16, 2)
  else:
    assert predicted.counts.shape == (1,) and np.isfinite(predicted.counts).all()
  # Class folders have no place in it: its labels are marks.
  (root / 'labeled' / 'cats').mkdir(parents=True)
  with pytest.raises(errors.ConfigError, match=re.escape(
      f"config.data.task={task!r}: {root / 'labeled'} holds cats, but a {task}'s labels are "
      f'marks ({field}) placed on the pictures, not folders: put every picture under '
      f"{root / 'unlabeled'}.")):
    data_lib.load(config.data)


def test_joints_of_ones_own_need_their_left_and_right_to_flip(tmp_path):
  from examples import image_folder as example  # pylint: disable=g-import-not-at-top
  from l2r_jax import experiment  # pylint: disable=g-import-not-at-top
  (tmp_path / 'unlabeled').mkdir()
  for k in range(4):
    Image.new('RGB', (40, 30), (k * 40, 0, 0)).save(tmp_path / 'unlabeled' / f'{k}.png')
  config = example.get_config('pose_smoke')
  config.data.root = str(tmp_path)
  config.data.joints = ('nose', 'left eye', 'right eye')
  ds = data_lib.load(config.data)
  assert ds.y_train.shape == (4, 3, 3) and 'flip_pairs' not in ds.task_params
  with pytest.raises(errors.ConfigError, match=r"task_params\['flip_pairs'\]"):
    experiment.make_experiment(config, ds, simulation=False)
  config.data.flip_pairs = ((1, 2),)
  ds = data_lib.load(config.data)
  assert ds.task_params['flip_pairs'] == ((1, 2),)
