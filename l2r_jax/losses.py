"""Ranking losses for loss-prediction modules.

Both take the predicted losses ``l_hat`` and the target model's per-sample losses ``l`` of one
mini-batch, shape ``[B]``. The target losses are labels: no gradient flows into them.
"""
import functools
from typing import Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import ml_collections

from l2r_jax import fields
import sorter


def listwise_ranking_loss(predicted_losses: chex.Array, target_losses: chex.Array,
                          ranker: sorter.Ranker) -> chex.Array:
  """L2R-AL's listwise loss (eq. 5-6): ``mean_i (rk(l)_i - f_sort(l_hat)_i)^2``.

  The batch is ranked list by list, ``B / ranker.seq_len`` consecutive lists; ``rk`` are the exact
  descending ranks of the target losses within each list, scaled to (0, 1] like the ranker's
  output. Minimising it maximises a differentiable surrogate of Spearman's rho between predicted
  and true losses.

  Args:
    predicted_losses: ``[B]`` outputs of the loss-prediction module.
    target_losses: ``[B]`` per-sample losses of the target model.
    ranker: a frozen differentiable ranker (``sorter.get_ranker``).

  Returns:
    A scalar.
  """
  chex.assert_rank(predicted_losses, 1)
  chex.assert_equal_shape((predicted_losses, target_losses))
  length = ranker.seq_len
  soft = sorter.rank_lists(ranker, predicted_losses)
  true = sorter.descending_ranks(target_losses.reshape(-1, length)).reshape(-1)
  return jnp.mean((true - soft) ** 2)


def pairwise_margin_loss(predicted_losses: chex.Array, target_losses: chex.Array,
                         margin: float = 1.0) -> chex.Array:
  """LL4AL's pairwise ranking loss (Yoo & Kweon, CVPR 2019, eq. 4).

  The batch is paired with its reverse and the first half of the pairs is kept: sample ``i`` with
  sample ``B - 1 - i``. For each pair the loss is ``max(0, margin - s * (l_hat_i - l_hat_j))``,
  ``s = +1`` if ``l_i > l_j`` else ``-1``; the mean over the ``B / 2`` pairs is returned.
  """
  chex.assert_rank(predicted_losses, 1)
  chex.assert_equal_shape((predicted_losses, target_losses))
  n = predicted_losses.shape[0]
  if n % 2:
    raise ValueError(f'The pairwise margin loss pairs the batch with its reverse and needs an '
                     f'even batch size; got {n}.')
  target_losses = jax.lax.stop_gradient(target_losses)
  diff_pred = (predicted_losses - predicted_losses[::-1])[: n // 2]
  diff_true = (target_losses - target_losses[::-1])[: n // 2]
  sign = jnp.where(diff_true > 0, 1.0, -1.0)
  return jnp.mean(jnp.maximum(margin - sign * diff_pred, 0.0))


# (predicted losses [B], true losses [B]) -> a scalar: a ranking loss with its options bound.
RankingLossFn = Callable[[chex.Array, chex.Array], chex.Array]


class RankingLoss(NamedTuple):
  """A loss module's ranking loss, named, and bound to its options once an experiment is made."""
  name: str
  bind: Callable[[ml_collections.ConfigDict, Optional[sorter.Ranker]], RankingLossFn]
  needs_ranker: bool        # the experiment loads config.loss_module.sorter for it
  pairs_the_batch: bool     # the batch size must be even
  # check(config): refuses options it cannot bind (raises ConfigError, naming the field).
  check: Optional[Callable[[ml_collections.ConfigDict], None]] = None


LISTWISE = RankingLoss(
    'listwise', lambda config, ranker: functools.partial(listwise_ranking_loss, ranker=ranker),
    needs_ranker=True, pairs_the_batch=False)
PAIRWISE = RankingLoss(
    'pairwise', lambda config, ranker: functools.partial(pairwise_margin_loss,
                                                         margin=config.ll4al.margin),
    needs_ranker=False, pairs_the_batch=True,
    check=lambda config: fields.number(config, 'll4al.margin'))
