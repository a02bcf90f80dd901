"""Synthetic training data for the sorter: random score lists and their exact ranks.

Every batch is drawn fresh from an explicit PRNG key, so an epoch never repeats a list. A list
comes from one of the families below, chosen uniformly per list. The first ten are SoDeep's
(``dataset.py`` of technicolor-research/sodeep); the rest cover what per-sample losses look
like in practice: heavy right tails, and many losses equal to each other. (SoDeep draws U(-1, 1)
in two ways, ``2 * rand - 1`` and ``uniform(-1, 1)``; they are one law, kept here once.)
"""
from typing import Callable, Dict, Tuple

import chex
import jax
import jax.numpy as jnp

from sorter import model
from sorter import ranking

Family = Callable[[chex.PRNGKey, int], chex.Array]


def _uniform(key, n):
  return jax.random.uniform(key, (n,), minval=-1.0, maxval=1.0)


def _normal(key, n):
  return jax.random.normal(key, (n,))


def _ramp(key, n):
  a, b = jax.random.uniform(key, (2,))
  return jnp.linspace(a, b, n)


def _shuffled_ramp(key, n):
  k1, k2 = jax.random.split(key)
  return jax.random.permutation(k2, _ramp(k1, n))


def _split(first: Family, second: Family) -> Family:
  """Two laws joined at a uniformly random split point."""
  def family(key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    cut = jax.random.randint(k3, (), 0, n + 1)
    return jnp.where(jnp.arange(n) < cut, first(k1, n), second(k2, n))
  return family


def _uniform01(key, n):
  return jax.random.uniform(key, (n,))


def _noisy_shuffled_ramp(key, n):
  k1, k2 = jax.random.split(key)
  return _shuffled_ramp(k1, n) + _uniform(k2, n)


def _fixed_ramp(key, n):
  del key
  return jnp.linspace(-1.0, 1.0, n)


def _exponential(key, n):
  return jax.random.exponential(key, (n,))


def _log_normal(key, n):
  k1, k2 = jax.random.split(key)
  sigma = jax.random.uniform(k1, (), minval=0.25, maxval=2.5)
  return jnp.exp(sigma * jax.random.normal(k2, (n,)))


def _pareto(key, n):
  k1, k2 = jax.random.split(key)
  alpha = jax.random.uniform(k1, (), minval=1.0, maxval=4.0)
  return jax.random.pareto(k2, alpha, (n,))


def _tied(key, n):
  """A list with ties: a random family's values snapped to between 2 and n levels."""
  k1, k2, k3 = jax.random.split(key, 3)
  idx = jax.random.randint(k1, (), 0, len(_BASE))
  x = jax.lax.switch(idx, [lambda k, f=f: f(k, n) for f in _BASE.values()], k2)
  levels = jax.random.randint(k3, (), 2, max(n, 2) + 1)
  lo, hi = x.min(), x.max()
  step = jnp.where(hi > lo, (hi - lo) / (levels - 1), 1.0)
  return jnp.round((x - lo) / step) * step + lo


_BASE: Dict[str, Family] = {
    'uniform': _uniform,
    'normal': _normal,
    'ramp': _ramp,
    'shuffled_ramp': _shuffled_ramp,
    'uniform_then_normal': _split(_uniform01, _normal),
    'normal_then_uniform': _split(_normal, _uniform01),
    'uniform_then_uniform': _split(_uniform01, _uniform),
    'noisy_shuffled_ramp': _noisy_shuffled_ramp,
    'fixed_ramp': _fixed_ramp,
    'exponential': _exponential,
    'log_normal': _log_normal,
    'pareto': _pareto,
}
FAMILIES: Dict[str, Family] = {**_BASE, 'tied': _tied}


def sample_family(key: chex.PRNGKey, name: str, batch: int, seq_len: int) -> chex.Array:
  """``[batch, seq_len]`` lists from one named family."""
  if name not in FAMILIES:
    raise ValueError(f'Unknown family {name!r}; choose one of {sorted(FAMILIES)}.')
  return jax.vmap(lambda k: FAMILIES[name](k, seq_len))(jax.random.split(key, batch))


def sample_batch(key: chex.PRNGKey, batch: int, seq_len: int,
                 smoothing: float = 0.0) -> Tuple[chex.Array, chex.Array]:
  """Lists from families chosen uniformly per list, and their descending ranks in (0, 1].

  Args:
    smoothing: 0 for exact ranks; otherwise the targets are the expected ranks under Gaussian
      noise of this standard deviation on the sorter's view of the list (its robust
      standardisation, :func:`sorter.model.robust_standardise`), :func:`ranking.expected_ranks`.
      Exact ranks are piecewise constant, so a sorter that learns them well has a gradient of
      nearly zero almost everywhere, and a short list makes that worst; smoothed targets give it a
      gradient that orders the scores.

  Returns:
    ``(scores, ranks)``, both ``[batch, seq_len]`` float32.
  """
  k_family, k_values, k_affine = jax.random.split(key, 3)
  fams = list(FAMILIES.values())
  which = jax.random.randint(k_family, (batch,), 0, len(fams))

  def one(i, k):
    return jax.lax.switch(i, [lambda k, f=f: f(k, seq_len) for f in fams], k)

  scores = jax.vmap(one)(which, jax.random.split(k_values, batch))
  # A random positive scale and shift: the scale of real losses is arbitrary.
  ka, kb = jax.random.split(k_affine)
  scale = jnp.exp(jax.random.uniform(ka, (batch, 1), minval=-3.0, maxval=3.0))
  shift = jax.random.normal(kb, (batch, 1))
  scores = (scores * scale + shift).astype(jnp.float32)
  if smoothing == 0:
    return scores, ranking.descending_ranks(scores)
  return scores, ranking.expected_ranks(model.robust_standardise(scores), smoothing)
