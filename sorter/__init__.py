"""Differentiable sorters: ``scores -> ranks`` for lists of a fixed length.

Two rankers share one interface, a :class:`Ranker` mapping a 1-D list of ``L`` scores to ``L``
rank estimates in ``(0, 1]``, descending (the largest score gets the smallest rank, ``1/L`` when
exact); every ranker works under ``jax.jit``, ``jax.vmap`` and ``jax.grad``:

* ``'gru'`` -- SoDeep's learned bidirectional-GRU sorter, pretrained on synthetic lists
  (:func:`load_pretrained`; lengths 4, 32 and 64 ship with the package).
* ``'soft_rank'`` -- the analytic soft rank of Blondel et al. (2020); no training, any length from
  3.

>>> import sorter, jax.numpy as jnp
>>> scores = jnp.array([0.1, 3.0, -2.0, 0.5])
>>> sorter.descending_ranks(scores, normalise=False)   # exact: not differentiable
Array([3., 1., 4., 2.], dtype=float32, weak_type=True)
>>> ranker = sorter.get_ranker('gru', seq_len=4)
>>> jnp.argsort(ranker(scores))              # a smooth estimate in the same order
Array([1, 3, 0, 2], dtype=int32)
"""
import dataclasses
import json
import os
from typing import Callable, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from sorter.model import GRUSorter
from sorter.model import robust_standardise
from sorter.ranking import descending_ranks
from sorter.ranking import spearman
from sorter import soft_rank as soft_rank_lib

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained')
RANKERS = ('gru', 'soft_rank')
# Soft-rank strength in rank positions; see make_soft_rank and benchmarks/results/sorter_quality.md.
DEFAULT_SOFT_RANK_STRENGTH = 4.0


@dataclasses.dataclass(frozen=True, eq=False)
class Ranker:
  """A differentiable ``[L] -> [L]`` ranker for lists of exactly ``seq_len`` scores."""
  name: str
  seq_len: int
  fn: Callable[[chex.Array], chex.Array]

  def __call__(self, scores: chex.Array) -> chex.Array:
    _check_scores(scores, self.seq_len, self.name)
    return self.fn(scores)


def _check_scores(scores, seq_len: int, name: str) -> None:
  shape = jnp.shape(scores)
  if len(shape) != 1:
    raise ValueError(
        f'The {name!r} ranker takes one list of scores, a 1-D array of length {seq_len}; got '
        f'shape {shape}. Rank a batch of lists with jax.vmap(ranker), or split a flat batch '
        f'into lists with sorter.rank_lists(ranker, scores).')
  if shape[0] != seq_len:
    raise ValueError(
        f'The {name!r} ranker ranks lists of exactly {seq_len} scores; got {shape[0]}. Use a '
        f'ranker of length {shape[0]} ({_how_to_pretrain(shape[0])}), or make the batch a '
        f'multiple of {seq_len} and rank it list by list with sorter.rank_lists.')
  if not isinstance(scores, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(scores))):
    bad = np.flatnonzero(~np.isfinite(np.asarray(scores)))
    raise ValueError(f'scores must be finite; got NaN or inf at positions {bad.tolist()}.')


def rank_lists(ranker: Ranker, scores: chex.Array) -> chex.Array:
  """Ranks a flat batch ``[B]`` list by list: ``B / L`` consecutive lists of ``ranker.seq_len``.

  A batch of 128 with a length-64 ranker is two lists, ranked independently.
  """
  chex.assert_rank(scores, 1)
  n, length = scores.shape[0], ranker.seq_len
  if n % length:
    raise ValueError(f'A batch of {n} scores cannot be split into lists of the ranker\'s length '
                     f'{length}: make the batch size a multiple of {length}.')
  return jax.vmap(ranker)(scores.reshape(n // length, length)).reshape(n)


def shipped_lengths() -> Tuple[int, ...]:
  """The list lengths whose pretrained GRU sorters ship with the package."""
  if not os.path.isdir(PRETRAINED_DIR):
    return ()
  names = [d for d in os.listdir(PRETRAINED_DIR) if d.startswith('L') and d[1:].isdigit()]
  return tuple(sorted(int(d[1:]) for d in names
                      if os.path.exists(os.path.join(PRETRAINED_DIR, d, 'training.json'))))


def _how_to_pretrain(seq_len: int) -> str:
  return (f'pretrain one with `python -m sorter.train --config=configs/sorter.py '
          f'--config.seq_len={seq_len} --workdir=DIR` and load it with '
          f'sorter.load_pretrained(path="DIR/export")')


def load_pretrained(seq_len: Optional[int] = None, *, path: Optional[str] = None) -> Ranker:
  """Loads a pretrained GRU sorter: a shipped one by ``seq_len``, or an export by ``path``.

  Returns:
    A :class:`Ranker`; its parameters are constants of the returned function, so gradients flow
    to the scores only (the sorter stays frozen).
  """
  if path is None:
    if seq_len is None:
      raise ValueError('Give seq_len (a shipped length) or path (a sorter.train export).')
    path = os.path.join(PRETRAINED_DIR, f'L{seq_len}')
    if not os.path.exists(os.path.join(path, 'training.json')):
      raise FileNotFoundError(
          f'No pretrained sorter of length {seq_len} ships with this package (shipped: '
          f'{", ".join(map(str, shipped_lengths())) or "none"}). To get one, '
          f'{_how_to_pretrain(seq_len)}.')
  path = os.path.abspath(path)
  with open(os.path.join(path, 'training.json')) as f:
    record = json.load(f)
  if seq_len is not None and record['seq_len'] != seq_len:
    raise ValueError(f'The sorter at {path} ranks lists of {record["seq_len"]}, not {seq_len}.')
  model = GRUSorter(**record['model'])
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (slow import)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, record['seq_len']))))
  # Every process reads the file on its own: no cross-process barrier for a read-only load.
  this_process = ocp.options.MultiprocessingOptions(
      primary_host=jax.process_index(), active_processes={jax.process_index()})
  params = ocp.StandardCheckpointer(multiprocessing_options=this_process).restore(
      os.path.join(path, 'params'), abstract['params'])
  params = jax.tree.map(jnp.asarray, params)

  def fn(scores):
    return average_ties(scores, model.apply({'params': params}, scores[None])[0])

  return Ranker('gru', record['seq_len'], fn)


def average_ties(scores: chex.Array, ranks: chex.Array) -> chex.Array:
  """Replaces each rank estimate by its mean over the elements with exactly the same score.

  The GRU reads the list in order, so equal scores at different positions get slightly
  different estimates; exact ranks give them one average rank. Averaging restores that, at no
  cost for lists without ties (the map is then the identity).
  """
  same = (scores[:, None] == scores[None, :]).astype(ranks.dtype)
  return same @ ranks / same.sum(-1)


def standardise(scores: chex.Array) -> chex.Array:
  """``(x - mean) / std`` of one list. A constant list is only centred (its std taken as 1: zeros,
  and a finite gradient), and so is one whose spread is within float rounding of its values
  (equal scores whose mean was rounded): standardised, that rounding would be ranked as an
  order, with gradients of 1 / std."""
  centred = scores - scores.mean()
  variance = jnp.mean(centred**2)
  spread = variance > (1e-6 * jnp.max(jnp.abs(scores)))**2
  # The square root never sees a variance of 0, whose derivative is infinite.
  return centred / jnp.where(spread, jnp.sqrt(jnp.where(spread, variance, 1.0)), 1.0)


def make_soft_rank(seq_len: int,
                   regularization_strength: float = DEFAULT_SOFT_RANK_STRENGTH) -> Ranker:
  """Blondel et al.'s soft rank, scale-free, scaled to ``(0, 1]``.

  The list is standardised and multiplied by ``seq_len``, so that neighbouring scores lie about
  one rank position apart whatever the scale of the scores or the length of the list; the
  strength is then in rank positions. The soft rank is piecewise linear with a zero Jacobian
  wherever neighbouring scores are further apart than the strength, so it must be large enough
  for gradients to reach misordered scores: see benchmarks/results/sorter_quality.md.
  """
  if not regularization_strength > 0:
    raise ValueError(f'regularization_strength must be positive, got {regularization_strength}.')

  def fn(scores):
    scaled = standardise(scores) * seq_len
    return soft_rank_lib.soft_rank(scaled, regularization_strength) / seq_len

  return Ranker('soft_rank', seq_len, fn)


def get_ranker(name: str, seq_len: int, **kwargs) -> Ranker:
  """The ranker a config names: ``'gru'`` (pretrained) or ``'soft_rank'``."""
  if name == 'gru':
    return load_pretrained(seq_len, **kwargs)
  if name == 'soft_rank':
    return make_soft_rank(seq_len, **kwargs)
  raise ValueError(f'Unknown sorter {name!r}: choose one of {RANKERS}.')


__all__ = ['GRUSorter', 'Ranker', 'RANKERS', 'descending_ranks', 'get_ranker',
           'load_pretrained', 'make_soft_rank', 'rank_lists', 'robust_standardise',
           'shipped_lengths', 'spearman', 'standardise']
