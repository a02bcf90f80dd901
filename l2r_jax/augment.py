"""Training-time augmentation on device, one PRNG key per sample.

``make(task, config)`` returns ``augment(x, y, keys) -> (x, y)`` for a batch and its samples' keys
(or None when the config asks for none); it runs inside the jitted training step, so the host never
decodes or warps images and a run is reproducible from its seed. The step keys each sample by its
position in the global batch (``train.sample_keys``), so a sample is augmented alike on any number
of devices and processes.

* pose (SimpleBaseline's recipe): scale ``s ~ clip(1 + scale * N(0, 1), 1 ± scale)`` (the person
  appears ``1/s`` times as large), with probability 0.6 a rotation
  ``clip(rotation * N(0, 1), ± 2 rotation)`` degrees about the image centre, a horizontal flip with
  probability 0.5 that swaps left and right joints; joints leaving the heatmap get weight 0.
* crowd (the C^3 framework's): a random ``crop`` (input pixels, on the density grid) and a
  horizontal flip with probability 0.5.
* classification: ``pad`` pixels of zero padding and a random crop back to size, and a flip.
"""
import functools
from typing import Callable, Optional, Sequence, Tuple

import chex
import jax
import jax.numpy as jnp
import ml_collections

from l2r_jax.errors import ConfigError

Augment = Callable[[chex.Array, chex.Array, chex.PRNGKey], Tuple[chex.Array, chex.Array]]


def _warp(image: chex.Array, inverse: chex.Array, offset: chex.Array) -> chex.Array:
  """``out[q] = image[inverse @ q + offset]`` (q = (x, y)), bilinear, zero outside."""
  h, w = image.shape[:2]
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing='ij')
  src = jnp.einsum('ij,jhw->ihw', inverse, jnp.stack([xs, ys])) + offset[:, None, None]
  sample = lambda c: jax.scipy.ndimage.map_coordinates(c, [src[1], src[0]], order=1,  # noqa: E731
                                                       mode='constant', cval=0.0)
  return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)


def pose_sample(x: chex.Array, joints: chex.Array, rng: chex.PRNGKey, *, scale: float,
                rotation: float, flip: bool, flip_pairs: Sequence[Tuple[int, int]],
                heatmap_size: Tuple[int, int]) -> Tuple[chex.Array, chex.Array]:
  """One sample: ``x [S, S', C]``, ``joints [K, 3]`` in heatmap pixels."""
  k_s, k_r, k_rp, k_f = jax.random.split(rng, 4)
  s = jnp.clip(1 + scale * jax.random.normal(k_s), 1 - scale, 1 + scale)
  deg = jnp.clip(rotation * jax.random.normal(k_r), -2 * rotation, 2 * rotation)
  deg = jnp.where(jax.random.uniform(k_rp) < 0.6, deg, 0.0)
  flipped = jnp.logical_and(flip, jax.random.uniform(k_f) < 0.5)
  h, w = x.shape[:2]
  hh, hw = heatmap_size
  stride = jnp.array([w / hw, h / hh], jnp.float32)
  centre = jnp.array([(w - 1) / 2, (h - 1) / 2], jnp.float32)
  t = jnp.deg2rad(deg)
  rot = jnp.array([[jnp.cos(t), -jnp.sin(t)], [jnp.sin(t), jnp.cos(t)]])
  mirror = jnp.where(flipped, jnp.diag(jnp.array([-1.0, 1.0])), jnp.eye(2))
  forward = mirror @ rot / s               # input point p -> centre + forward @ (p - centre)
  inverse = jnp.linalg.inv(forward)
  x = _warp(x, inverse, centre - inverse @ centre)
  p = joints[:, :2] * stride
  p = (p - centre) @ forward.T + centre
  xy = p / stride
  perm = list(range(joints.shape[0]))
  for a, b in flip_pairs:
    perm[a], perm[b] = b, a
  xy = jnp.where(flipped, xy[jnp.array(perm)], xy)
  weight = jnp.where(flipped, joints[jnp.array(perm), 2], joints[:, 2])
  inside = ((xy[:, 0] >= -0.5) & (xy[:, 0] < hw - 0.5) & (xy[:, 1] >= -0.5)
            & (xy[:, 1] < hh - 0.5))
  return x, jnp.concatenate([xy, (weight * inside)[:, None]], axis=-1)


def crowd_sample(x: chex.Array, density: chex.Array, rng: chex.PRNGKey, *,
                 crop: Optional[Tuple[int, int]], flip: bool) -> Tuple[chex.Array, chex.Array]:
  """One sample: ``x [H, W, C]``, ``density [h, w]`` on a grid of stride ``H / h``."""
  k_y, k_x, k_f = jax.random.split(rng, 3)
  if crop is not None:
    stride = x.shape[0] // density.shape[0]
    ch, cw = crop[0] // stride, crop[1] // stride
    oy = jax.random.randint(k_y, (), 0, density.shape[0] - ch + 1)
    ox = jax.random.randint(k_x, (), 0, density.shape[1] - cw + 1)
    density = jax.lax.dynamic_slice(density, (oy, ox), (ch, cw))
    x = jax.lax.dynamic_slice(x, (oy * stride, ox * stride, 0), (crop[0], crop[1], x.shape[2]))
  if flip:
    f = jax.random.uniform(k_f) < 0.5
    x, density = jnp.where(f, x[:, ::-1], x), jnp.where(f, density[:, ::-1], density)
  return x, density


def classification_sample(x: chex.Array, label: chex.Array, rng: chex.PRNGKey, *, pad: int,
                          flip: bool) -> Tuple[chex.Array, chex.Array]:
  """One image ``[H, W, C]``: a random crop of the zero-padded image, and a flip."""
  k_y, k_x, k_f = jax.random.split(rng, 3)
  if pad:
    h, w, c = x.shape
    padded = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    oy = jax.random.randint(k_y, (), 0, 2 * pad + 1)
    ox = jax.random.randint(k_x, (), 0, 2 * pad + 1)
    x = jax.lax.dynamic_slice(padded, (oy, ox, 0), (h, w, c))
  if flip:
    x = jnp.where(jax.random.uniform(k_f) < 0.5, x[:, ::-1], x)
  return x, label


FIELDS = ('flip', 'scale', 'rotation', 'crop', 'pad')   # config.augment's, as make reads them


def make(task, config: Optional[ml_collections.ConfigDict]) -> Optional[Augment]:
  """The batch augmentation for ``task`` (a :class:`l2r_jax.tasks.Task`), or None.

  ``config`` (``config.augment``): empty or None for none; otherwise ``flip`` (bool) and, by task,
  ``scale`` and ``rotation`` (pose), ``crop`` ((h, w) input pixels or None; crowd),
  ``pad`` (classification).
  """
  if not config:
    return None
  flip = bool(config.get('flip', True))
  if task.name == 'pose':
    if flip and task.params.get('flip_pairs') is None:
      raise ConfigError("config.augment.flip: a mirrored picture swaps its left and right joints, "
                        "and the dataset does not say which they are: give its loader "
                        "task_params['flip_pairs'] = [(left, right), ...] (joint indices), or "
                        "set --config.augment.flip=False.")
    sample = functools.partial(
        pose_sample, scale=float(config.get('scale', 0.25)),
        rotation=float(config.get('rotation', 30.0)), flip=flip,
        flip_pairs=tuple(map(tuple, task.params.get('flip_pairs') or ())),
        heatmap_size=tuple(task.params['heatmap_size']))
  elif task.name == 'crowd':
    crop = config.get('crop')
    sample = functools.partial(crowd_sample, crop=None if crop is None else tuple(crop),
                                   flip=flip)
  else:
    sample = functools.partial(classification_sample, pad=int(config.get('pad', 0)), flip=flip)

  def augment(x, y, keys):
    chex.assert_equal(keys.shape[0], x.shape[0])
    return jax.vmap(sample)(x, y, keys)

  return augment
