"""How close two float32 results of the same training must be: by what may legitimately differ.

Two runs of the same training steps (one device or two, vmapped or not, scanned or stepped, on
CPUs with different instruction sets) sum in different orders and fuse multiply-adds differently:
float32 rounding, about 1e-7 relative per operation, which every later step carries and may
amplify. A bug (a missing ``pmean``, a gradient reaching the wrong model, a batch dropped or
repeated, a wrong learning rate) changes what training does by a sizeable fraction of the change
itself. So trained parameters are compared by their difference relative to how far training moved
them from their common start, not by an absolute tolerance fitted to one machine's rounding.
"""
from typing import Any, Optional

import jax
import numpy as np

# Two trainings that are the same up to rounding agree to this fraction of what they changed.
UPDATE_RTOL = 1e-3
# A parameter training did not move may still differ by rounding of its own magnitude.
FLOAT32_RTOL = 1e-6


def assert_same_training(a: Any, b: Any, start: Any, rtol: float = UPDATE_RTOL,
                         what: Optional[str] = None) -> None:
  """Trees ``a`` and ``b``, both trained from ``start``, differ leaf by leaf by at most ``rtol``
  times the largest change training made to that leaf (plus float32 rounding of its magnitude)."""
  paths = jax.tree_util.tree_flatten_with_path(start)[0]
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(paths) == len(leaves_a) == len(leaves_b), 'the trees differ in structure'
  for (path, s), x, y in zip(paths, leaves_a, leaves_b):
    s, x, y = (np.asarray(v, np.float64) for v in (s, x, y))
    moved = max(np.abs(x - s).max(initial=0.0), np.abs(y - s).max(initial=0.0))
    bound = rtol * moved + FLOAT32_RTOL * np.abs(s).max(initial=0.0)
    diff = np.abs(x - y).max(initial=0.0)
    name = (what + ' ' if what else '') + jax.tree_util.keystr(path)
    assert diff <= bound, (f'{name}: the two differ by {diff:.3g}, more than {rtol:g} of the '
                           f'{moved:.3g} training moved it (bound {bound:.3g})')


def without_output_bias(loss_module_params: Any) -> Any:
  """A loss module's parameters without its output bias, and that bias.

  Ranking losses depend only on the order or the differences of the predicted losses, so a shift
  of all of them changes nothing: the output bias has a gradient of exactly zero, and in float32 of
  rounding noise alone. It stays near its initial zero, by a different noise in every computation;
  compare the rest, and check that it did stay there."""
  params = dict(loss_module_params)
  last = max((k for k in params if k.startswith('Dense_')), key=lambda k: int(k.split('_')[1]))
  params[last] = {k: v for k, v in params[last].items() if k != 'bias'}
  return params, loss_module_params[last]['bias']


def assert_same_metrics(a, b, rtol: float = UPDATE_RTOL) -> None:
  """Scalar training metrics (dicts, or lists of dicts) of two such trainings."""
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert abs(x - y) <= rtol * max(abs(x), abs(y)) + 1e-9, (a, b)
