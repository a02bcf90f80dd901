"""What a query strategy is and sees, and the registry that finds one by name."""
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import chex
import flax.linen as nn
import ml_collections
import numpy as np

from l2r_jax import defaults
from l2r_jax import errors
from l2r_jax import fields
from l2r_jax import losses
from l2r_jax import numerics
from l2r_jax import protocol
from l2r_jax import train
from l2r_jax.errors import ConfigError


class PoolOutputs(NamedTuple):
  """The current models' outputs on some pool samples (host arrays, one row per sample)."""
  prediction: np.ndarray                 # [n, ...] logits, heatmaps or density maps
  embedding: np.ndarray                  # [n, C] globally pooled last-block features
  predicted_loss: Optional[np.ndarray]   # [n] loss-prediction module output, if there is one


class SelectionState(NamedTuple):
  """The read-only view of an active-learning run a strategy may use.

  ``infer(indices)`` runs the current target (and loss module) on those pool samples;
  ``labeled`` are the indices labeled so far; ``inputs(indices)`` are those pool samples' inputs
  (for strategies that learn from the images themselves, like VAAL); ``pool_size`` is the pool's
  size; ``options`` the strategy's own settings (``config.<strategy>``, empty if none).
  ``true_loss(indices)`` is the current target's per-sample task loss on those pool samples,
  computed *with their labels*: real active learning never has it; it exists for the diagnostic
  ``oracle_loss`` strategy, the ceiling of selection by predicted loss. ``prepared`` is what the
  strategy's ``prepare`` built for this experiment (None without one).
  ``sample_predictions(indices, passes, rng[, reduce])`` are the target's predictions
  ``[n, passes, ...]`` on those pool samples under ``passes`` Monte-Carlo dropout masks
  (``config.model.dropout``), or ``reduce`` of them, computed where the passes run.
  ``infer_pretrained(indices)`` is ``infer`` with the target as it starts, its backbone the
  pretrained weights of ``config.model.pretrained`` (None without them): an embedding that no
  training on the labeled set moves.
  """
  infer: Callable[[np.ndarray], PoolOutputs]
  labeled: np.ndarray
  inputs: Optional[Callable[[np.ndarray], np.ndarray]] = None
  pool_size: Optional[int] = None
  options: Any = None
  true_loss: Optional[Callable[[np.ndarray], np.ndarray]] = None
  prepared: Any = None
  sample_predictions: Optional[Callable[..., np.ndarray]] = None
  infer_pretrained: Optional[Callable[[np.ndarray], PoolOutputs]] = None


# select(state, pool_subset, budget, rng) -> indices: `budget` distinct members of `pool_subset`.
SelectFn = Callable[[SelectionState, np.ndarray, int, chex.PRNGKey], np.ndarray]
# score(state, pool_subset, rng) -> [n] float: one score per member; the highest are queried.
ScoreFn = Callable[[SelectionState, np.ndarray, chex.PRNGKey], np.ndarray]


class LossModule(NamedTuple):
  """What a strategy that queries by predicted loss trains beside the target.

  ``architecture(hidden=config.loss_module.hidden)`` is the module, reading the target's
  :class:`~l2r_jax.models.Features`; ``ranking_loss`` trains it on the global batch's true
  per-sample losses. ``isolated``: the module reads ``stop_gradient(features)``, so the ranking
  loss never reaches the target (L2R-AL). Otherwise (LL4AL) the target is trained on ``task loss +
  weight * ranking loss`` until the detach epoch, after which the features are detached; the
  weight and the detach epoch are the module's own options, ``config.<options>.weight`` and
  ``config.<options>.detach_epoch`` (:meth:`gradient`)."""
  architecture: Callable[..., nn.Module]
  ranking_loss: losses.RankingLoss
  isolated: bool
  options: str = 'll4al'

  def gradient(self, config: ml_collections.ConfigDict) -> train.RankingGradient:
    """How the ranking loss reaches the target under ``config``."""
    if self.isolated:
      return train.ISOLATED
    own = config[self.options]
    return train.RankingGradient(isolated=False, weight=own.weight,
                                 detach_epoch=own.detach_epoch)

  def check(self, config: ml_collections.ConfigDict) -> None:
    """Refuses options the module (and its ranking loss) cannot train with, naming the field."""
    if not self.isolated:
      fields.number(config, f'{self.options}.weight')
      fields.epochs_within(config, f'{self.options}.detach_epoch', config.train.epochs,
                           "the ranking loss's detach epoch")
    if self.ranking_loss.check is not None:
      self.ranking_loss.check(config)


class Strategy(NamedTuple):
  """A query strategy: how it selects; for a loss-based one, the loss module it trains; for one
  with networks or programs of its own (VAAL), ``prepare(options, pool_inputs)``, called once per
  experiment with ``config.<name>`` and the pool's inputs, whose result every selection of the
  experiment reads as ``SelectionState.prepared``. ``tasks``: the tasks (``Dataset.task``) it
  applies to, None for every task; ``refusal`` says why it does not apply to the others.
  ``check(config)`` raises ValueError, saying what to change, for a config it cannot run with
  (checked before anything trains). ``reads_labels``: it reads the pool's labels
  (``SelectionState.true_loss``), so it runs in simulations only, never on unlabeled data.
  ``score``: for a strategy that queries the highest scores (:func:`register_scores`), its score
  function; ``select`` is then the top ``budget`` of it, and a query can show each pick's score."""
  name: str
  select: SelectFn
  loss_module: Optional[LossModule] = None
  prepare: Optional[Callable[[Any, Any], Any]] = None
  tasks: Optional[Tuple[str, ...]] = None
  refusal: str = ''
  check: Optional[Callable[[Any], None]] = None
  reads_labels: bool = False
  score: Optional[ScoreFn] = None


REGISTRY: Dict[str, Strategy] = {}


def register(name: str, loss_module: Optional[LossModule] = None,
             prepare: Optional[Callable[[Any, Any], Any]] = None,
             tasks: Optional[Tuple[str, ...]] = None, refusal: str = '',
             check: Optional[Callable[[Any], None]] = None, reads_labels: bool = False):
  """Decorates ``select`` as strategy ``name`` (with ``loss_module``, trained beside the target
  and read through ``SelectionState.infer(...).predicted_loss``; ``prepare``, ``tasks``,
  ``refusal``, ``check`` and ``reads_labels``: see :class:`Strategy`). A name is registered
  once (the same function again, a notebook cell run twice, replaces it)."""
  def wrap(fn: SelectFn) -> SelectFn:
    _add(Strategy(name, fn, loss_module, prepare, tasks, refusal, check, reads_labels))
    return fn
  return wrap


def register_scores(name: str, **options):
  """Decorates ``score(state, pool_subset, rng) -> [n]`` as strategy ``name``, which queries the
  members with the highest scores (ties: the earlier member; a NaN score is refused). ``options``:
  those of :func:`register`."""
  allowed = set(Strategy._fields) - {'name', 'select', 'score'}
  unknown = sorted(set(options) - allowed)
  if unknown:
    raise ConfigError(f'register_scores({name!r}, ...): no option {", ".join(unknown)}; choose '
                      f'from {", ".join(sorted(allowed))}.')

  def wrap(fn: ScoreFn) -> ScoreFn:
    def select(state, pool_subset, budget, rng):
      return protocol.top_k(_scores(name, fn, state, pool_subset, rng), pool_subset, budget)
    select.__name__ = select.__qualname__ = f'select_{name}'
    select.__module__ = fn.__module__
    defaults = Strategy(name, select)._asdict()
    _add(Strategy(**{**defaults, **options, 'score': fn}))
    return fn
  return wrap


def _add(strategy: Strategy) -> None:
  old = REGISTRY.get(strategy.name)
  errors.check_replacement('register_strategy', strategy.name,
                           old and (old.score or old.select), strategy.score or strategy.select)
  REGISTRY[strategy.name] = strategy


def _scores(name: str, fn: ScoreFn, state, pool_subset, rng) -> np.ndarray:
  scores = np.asarray(fn(state, pool_subset, rng))
  if scores.shape == () and scores.dtype == object and scores.item() is None:
    no_module = (' (a strategy registered without loss_module= has no predicted_loss: it is None)'
                 if getattr(REGISTRY.get(name), 'loss_module', None) is None else '')
    raise errors.StrategyError(f'Strategy {name!r} scored the pool samples with None{no_module}; '
                               'a score function returns one score per sample.')
  if scores.shape != (len(pool_subset),):
    raise errors.StrategyError(
        f'Strategy {name!r} scored {len(pool_subset)} samples with an array of shape '
        f'{scores.shape}; a score function returns one score per sample, [{len(pool_subset)}].')
  if scores.dtype.kind not in 'biuf':
    raise errors.StrategyError(f'Strategy {name!r} scored the pool samples with {scores.dtype} '
                               'values; a score function returns real numbers.')
  nan = np.isnan(scores.astype(np.float64))
  if nan.any():
    raise errors.NumericsError(
        f'Strategy {name!r} scored {int(nan.sum()):,} of {len(scores):,} pool samples NaN '
        f'({numerics.which(np.asarray(pool_subset)[nan])}), which cannot be ranked: with the '
        "model's outputs finite, the NaN comes from the score's own arithmetic (0 * inf, inf - "
        'inf, the log of a negative number).')
  return scores


def select(strategy: Strategy, state: SelectionState, pool_subset: np.ndarray, budget: int,
           rng: chex.PRNGKey) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """``strategy``'s picks and, for a scoring strategy, their scores (else None), computed once."""
  if strategy.score is None:
    return _checked_picks(strategy.name, strategy.select(state, pool_subset, budget, rng),
                          pool_subset, budget), None
  scores = _scores(strategy.name, strategy.score, state, pool_subset, rng)
  chosen = protocol.top_k(scores, pool_subset, budget)
  position = {int(m): k for k, m in enumerate(np.asarray(pool_subset))}
  return chosen, scores[[position[int(c)] for c in chosen]]


def _checked_picks(name: str, picks: Any, pool_subset: np.ndarray, budget: int) -> np.ndarray:
  """``picks`` if they are ``budget`` distinct members of ``pool_subset`` (pool indices), else a
  :class:`~l2r_jax.errors.StrategyError` saying what they are."""
  picks, members = np.asarray(picks), np.asarray(pool_subset)
  where = f'Strategy {name!r} returned'
  if picks.dtype.kind not in 'iu':
    raise errors.StrategyError(f'{where} picks of {picks.dtype}; select returns integer pool '
                               'indices, members of pool_subset.')
  if picks.shape != (budget,):
    raise errors.StrategyError(f'{where} picks of shape {picks.shape}; select returns budget = '
                               f'{budget} pool indices, [{budget}].')
  values, counts = np.unique(picks, return_counts=True)
  if (counts > 1).any():
    raise errors.StrategyError(f'{where} {numerics.which(values[counts > 1])} more than once; '
                               'select returns distinct pool indices.')
  outside = ~np.isin(picks, members)
  if outside.any():
    positions = (picks >= 0).all() and (picks < len(members)).all()
    hint = (' (positions in pool_subset? give pool_subset[positions])' if positions else '')
    raise errors.StrategyError(f'{where} {numerics.which(picks[outside])}, not in pool_subset '
                               f'(the unlabeled samples it may pick from){hint}.')
  return picks


def get(name: str) -> Strategy:
  if name not in REGISTRY:
    raise ValueError(f'Unknown strategy {name!r}: choose from {sorted(REGISTRY)}.')
  return REGISTRY[name]


def check_task(name: str, task: str) -> None:
  """Refuses strategy ``name`` on a task it does not apply to, saying why and what applies."""
  strategy = get(name)
  if strategy.tasks is not None and task not in strategy.tasks:
    applies = ', '.join(sorted(s.name for s in REGISTRY.values()
                               if s.tasks is None or task in s.tasks))
    raise ValueError(f'Strategy {name!r} does not apply to the {task!r} task: {strategy.refusal} '
                     f'It applies to {", ".join(strategy.tasks)}. For {task!r}, choose from: '
                     f'{applies}.')


def options_with_defaults(name: str, options) -> ml_collections.ConfigDict:
  """``config.<name>`` (``options``) with every missing field taken from
  :mod:`l2r_jax.defaults`; an unknown field is refused by name."""
  merged = defaults.get_config()[name]
  for key, value in dict(options or {}).items():
    if key not in merged:
      raise ValueError(f'config.{name} has no field {key!r}: choose from {sorted(merged)}.')
    merged[key] = value
  return merged
