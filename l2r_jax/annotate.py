"""Labels from marks on an image: the joints or heads a person places, made into the task's label
as the dataset's loader makes it from its own annotations.

A mark is a point in input pixels: pixel centres at integers, an input of width ``W`` spanning
``-0.5 .. W - 0.5`` (the loaders' convention). The labeling page (:mod:`l2r_jax.serve`) and Label
Studio's keypoints (:mod:`l2r_jax.label_studio`, from percentages of the image) both give marks.

* **pose**: joints ``[K, 3]``, ``(x, y, visible)`` in the dataset's joint order (MPII's for 16
  joints: :data:`JOINT_NAMES`), become the label ``[K, 3]`` ``(x, y, weight)`` in heatmap pixels.
  Input to heatmap pixels: for MPII, through its crop functions (``mpii.crop_to_image`` then
  ``mpii.image_to_crop``: the input crop and its heatmap share the person box); for every other
  dataset ``x * heatmap / input``, the synthetic stand-in's mapping and the one predictions are
  decoded with (:mod:`l2r_jax.export`). The weight is 1 for a visible joint inside the heatmap
  frame ``[-0.5, size - 0.5)``, else 0, as both loaders weight their joints; a joint marked
  invisible (it cannot be placed) is ``(0, 0, 0)``.
* **crowd**: head points ``[P, 2]`` become the density map ``density_scale x`` one unit Gaussian per
  head (:func:`l2r_jax.data.density.density_map`), with the loader's own Gaussian: a dataset may
  declare it (``Dataset.task_params['density_sigma']``, map pixels); otherwise the built-in
  loader named by ``config.data`` decides (the synthetic stand-in: ``config.data.sigma`` map
  pixels; ShanghaiTech B: :func:`l2r_jax.data.shanghaitech.head_density`). A dataset whose
  Gaussian is unknown is refused for marking, in one line.

Labels come back as nested lists (JSON's shape), to be checked like any answer
(:func:`l2r_jax.answers.check`): a pose with joints missing is refused there, by its shape.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import ml_collections
import numpy as np

from l2r_jax import data as data_lib
from l2r_jax.errors import ConfigError

# What a person may give instead of a label, in input pixels: a pose's joints [K, 3] (x, y,
# visible), a crowd's heads [P, 2] (x, y); made into the task's label as the page makes them.
MARK_FIELDS = {'pose': 'joints', 'crowd': 'heads'}

# MPII's joint order (its annotations' ids 0..15), which the synthetic stand-in keeps.
JOINT_NAMES = ('right ankle', 'right knee', 'right hip', 'left hip', 'left knee', 'left ankle',
               'pelvis', 'thorax', 'upper neck', 'head top', 'right wrist', 'right elbow',
               'right shoulder', 'left shoulder', 'left elbow', 'left wrist')
SKELETON = ((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11),
            (11, 12), (12, 7), (7, 13), (13, 14), (14, 15))


class Geometry(NamedTuple):
  """How marks on a dataset's inputs become its labels: ``task``, ``input_hw`` (the input's
  height and width), ``label_hw`` (the heatmap's or density map's), and for pose the
  ``joint_names`` and ``skeleton`` (pairs of joints drawn as bones); ``make`` turns marks into a
  label (None for classification)."""
  task: str
  input_hw: Tuple[int, int]
  label_hw: Optional[Tuple[int, int]] = None
  joint_names: Tuple[str, ...] = ()
  skeleton: Tuple[Tuple[int, int], ...] = ()
  make: Optional[Callable[[np.ndarray], np.ndarray]] = None

  def label(self, marks: Any, placed_on: Optional[Tuple[int, int]] = None) -> 'MarkedLabel':
    """The task's label from marks: joints ``[K, 3]`` (x, y, visible) or heads ``[P, 2]``, input
    pixels (of an input ``placed_on`` pixels high and wide, scaled to this one's, where they were
    placed on another size of the same pictures). Raises ``ValueError`` for marks that are not
    numbers of that form, or a placed one outside the input."""
    marks = np.asarray(marks, np.float64)
    width = 3 if self.task == 'pose' else 2
    if marks.size == 0 and self.task == 'crowd':
      marks = marks.reshape(0, 2)
    if marks.ndim != 2 or marks.shape[1] != width or not np.isfinite(marks).all():
      what = 'joints [K, 3] (x, y, visible)' if self.task == 'pose' else 'heads [P, 2] (x, y)'
      raise ValueError(f'marks must be {what}, finite numbers; got shape {marks.shape}.')
    if placed_on is not None and tuple(placed_on) != tuple(self.input_hw):
      marks = marks.copy()   # pixel centres: a pixel's edges keep their place in the picture
      factor = np.array([self.input_hw[1] / placed_on[1], self.input_hw[0] / placed_on[0]])
      marks[:, :2] = (marks[:, :2] + 0.5) * factor - 0.5
      if self.task == 'pose':
        marks[:, :2] *= marks[:, 2:] > 0   # a joint not placed stays at (0, 0)
    self._refuse_outside(marks)
    # A mark on the right or bottom edge (a click there, Label Studio's 100 %) is on the picture:
    # kept inside the half-open frame the loaders draw in.
    marks = marks.copy()
    marks[:, :2] = np.minimum(marks[:, :2], np.array(self.input_hw[::-1]) - 0.5 - 1e-6)
    return MarkedLabel(self.make(marks).tolist(), marks.tolist(), self.input_hw)

  def _refuse_outside(self, marks: np.ndarray) -> None:
    """Refuses marks placed outside the input (``-0.5 .. W - 0.5``), naming each: a point from
    another frame (the original photo's pixels, say) would be dropped or weighted 0 unseen."""
    h, w = self.input_hw
    placed = marks[:, 2] > 0 if self.task == 'pose' else np.ones(len(marks), bool)
    xy = marks[:, :2]
    outside = placed & ~np.all((xy >= -0.5) & (xy <= np.array([w, h]) - 0.5), axis=1)
    if outside.any():
      what = (lambda k: f'joint {k + 1} ({self.joint_names[k]})' if self.joint_names else
              f'joint {k + 1}') if self.task == 'pose' else (lambda k: f'head {k + 1}')
      named = ', '.join(f'{what(k)} at ({xy[k, 0]:g}, {xy[k, 1]:g})'
                        for k in np.flatnonzero(outside)[:5])
      more = f' and {int(outside.sum()) - 5} more' if outside.sum() > 5 else ''
      raise ValueError(f'{named}{more} outside the {w} x {h} input (x from -0.5 up to {w - 0.5}, '
                       f'y up to {h - 0.5}): give marks in input pixels, the pixels the model reads '
                       '(not the original picture\'s).')


class MarkedLabel(list):
  """A label made from marks (:meth:`Geometry.label`): the label's nested lists, with the
  ``marks`` it was made from (input pixels) and ``input_hw``, the input they lie on. The answer
  log keeps the marks beside the label (:meth:`l2r_jax.pool.Pool.record`), so an answer carried
  to another input or map size is made again from them, and a crowd's head points are never
  lost to their density map."""

  def __init__(self, label: list, marks: list, input_hw: Tuple[int, int]):
    super().__init__(label)
    self.marks, self.input_hw = marks, tuple(input_hw)


def input_hw(dataset: data_lib.Dataset) -> Tuple[int, int]:
  shape = tuple(dataset.x_train.shape[1:])
  if len(shape) not in (2, 3):
    raise ConfigError(f'the pool\'s inputs are {shape}, not images ([H, W] or [H, W, C]): there '
                      'is nothing to show or mark.')
  return int(shape[0]), int(shape[1])


def frame(dataset: data_lib.Dataset) -> Dict[str, List[int]]:
  """What a pose's or crowd's label is drawn in, as the answer log records it beside each label:
  ``input_hw``, the input's height and width (the marks' pixels), and ``label_hw``, the
  heatmap's or density map's (the label's)."""
  hm = (dataset.task_params['heatmap_size'] if dataset.task == 'pose'
        else dataset.y_train.shape[1:3])
  return {'input_hw': list(input_hw(dataset)), 'label_hw': [int(v) for v in hm]}


def geometry(dataset: data_lib.Dataset,
             data_config: Optional[ml_collections.ConfigDict] = None) -> Geometry:
  """The dataset's :class:`Geometry` (``data_config``: ``config.data``, naming its loader)."""
  hw = input_hw(dataset)
  if dataset.task == 'classification':
    return Geometry('classification', hw)
  name = _loader(data_config)
  if dataset.task == 'pose':
    return _pose(dataset, hw, name)
  return _crowd(dataset, hw, name, data_config)


def _loader(data_config) -> Optional[str]:
  """The built-in loader that made the data (a stand-in where ``synthetic`` says so)."""
  if data_config is None:
    return None
  name = data_config.get('name')
  if data_config.get('synthetic'):
    return data_lib.STAND_INS.get(name, name)
  return name


def _pose(dataset, hw, name) -> Geometry:
  k = int(dataset.num_outputs)
  hm = tuple(int(v) for v in dataset.task_params['heatmap_size'])
  names = tuple(dataset.task_params.get('joint_names') or (
      JOINT_NAMES if k == len(JOINT_NAMES) else [f'joint {j + 1}' for j in range(k)]))
  skeleton = tuple(tuple(p) for p in dataset.task_params.get('skeleton') or (
      SKELETON if k == len(JOINT_NAMES) else ()))
  scale = np.array([hm[1] / hw[1], hm[0] / hw[0]])          # x by width, y by height
  if name == 'mpii':
    from l2r_jax.data import mpii  # pylint: disable=g-import-not-at-top

    def to_heatmap(xy):   # square crops: the crop's side and the heatmap's
      centre = np.zeros(2)
      image = mpii.crop_to_image(xy[None], centre, 1.0, hw[0])[0]
      return mpii.image_to_crop(image[None], centre, 1.0, hm[0])[0]
  else:
    def to_heatmap(xy):
      return xy * scale

  def make(marks):
    xy = to_heatmap(marks[:, :2])
    inside = np.all((xy >= -0.5) & (xy < np.array(hm[::-1]) - 0.5), axis=1)
    weight = (marks[:, 2] > 0) & inside
    return np.concatenate([np.where(marks[:, 2:] > 0, xy, 0.0), weight[:, None]], 1)

  return Geometry('pose', hw, hm, names, skeleton, make)


def _crowd(dataset, hw, name, data_config) -> Geometry:
  from l2r_jax.data import density as density_lib  # pylint: disable=g-import-not-at-top
  shape = tuple(int(v) for v in dataset.y_train.shape[1:3])
  stride = hw[0] // shape[0]
  if hw[0] != stride * shape[0] or hw[1] != stride * shape[1]:
    raise ConfigError(f'the density maps {shape} are not the inputs {hw} divided by a whole '
                      'stride: heads placed on an input cannot be put on its map.')
  scale = float(dataset.task_params['density_scale'])
  sigma = dataset.task_params.get('density_sigma')
  data = data_config if data_config is not None else {}
  if sigma is not None or name == 'synthetic_crowd':
    sigma = float(data.get('sigma', 1.0) if sigma is None else sigma)

    def make(points):
      return scale * density_lib.density_map(points, shape, sigma, stride)
  elif name == 'shanghaitech':
    from l2r_jax.data import shanghaitech  # pylint: disable=g-import-not-at-top
    sigma = float(data.get('sigma', shanghaitech.SIGMA))

    def make(points):
      return shanghaitech.head_density(points, shape, stride, sigma, scale)
  else:
    raise ConfigError(f'config.data.name={name!r}: heads placed by hand become a density map only '
                      'with the Gaussian the loader draws per head; declare it in the loader: '
                      "Dataset.task_params['density_sigma'] (its standard deviation, in map "
                      'pixels).')
  return Geometry('crowd', hw, shape, make=make)


def show_pixels(x: np.ndarray) -> np.ndarray:
  """An input as uint8 pixels ``[H, W]`` or ``[H, W, 3]`` to show: scaled to its own range (its
  normalisation undone up to contrast)."""
  x = np.asarray(x, np.float32)
  if x.ndim == 3 and x.shape[-1] == 1:
    x = x[..., 0]
  elif x.ndim == 3 and x.shape[-1] != 3:
    x = x[..., :3] if x.shape[-1] > 3 else x.mean(-1)
  low, high = float(x.min()), float(x.max())
  return np.round(255 * (x - low) / max(high - low, 1e-12)).astype(np.uint8)


def png(pixels: np.ndarray) -> bytes:
  """``pixels`` (uint8 ``[H, W]`` or ``[H, W, 3]``) as PNG bytes."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(out, format='PNG')
  return out.getvalue()


def sample_png(dataset: data_lib.Dataset, index: int, file: Optional[str] = None,
               side: int = 768) -> bytes:
  """Pool sample ``index`` as PNG: its ``file`` decoded as the loader reads it, at most ``side``
  pixels on its longer side (a thumbnail), else its input scaled to its range."""
  if file is not None:
    from l2r_jax.data import image_folder  # pylint: disable=g-import-not-at-top
    return png(image_folder.thumbnail(file, side))
  return png(show_pixels(dataset.x_train[np.asarray([index])][0]))
