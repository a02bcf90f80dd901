"""What a query strategy sees, and the registry that finds one by name."""
from typing import Any, Callable, Dict, NamedTuple, Optional

import chex
import numpy as np


class PoolOutputs(NamedTuple):
  """The current models' outputs on some pool samples (host arrays, one row per sample)."""
  prediction: np.ndarray                 # [n, ...] logits, heatmaps or density maps
  embedding: np.ndarray                  # [n, C] globally pooled last-block features
  predicted_loss: Optional[np.ndarray]   # [n] loss-prediction module output, if there is one


class SelectionState(NamedTuple):
  """The read-only view of an active-learning run a strategy may use.

  ``infer(indices)`` runs the current target (and predictor) on those pool samples;
  ``labeled`` are the indices labeled so far; ``inputs(indices)`` are those pool samples' inputs
  (for strategies that learn from the images themselves, like VAAL); ``pool_size`` is the pool's
  size; ``options`` the strategy's own settings (``config.<strategy>``, empty if none).
  ``true_loss(indices)`` is the current target's per-sample task loss on those pool samples,
  computed *with their labels*: real active learning never has it; it exists for the diagnostic
  ``oracle_loss`` strategy, the ceiling of selection by predicted loss.
  """
  infer: Callable[[np.ndarray], PoolOutputs]
  labeled: np.ndarray
  inputs: Optional[Callable[[np.ndarray], np.ndarray]] = None
  pool_size: Optional[int] = None
  options: Any = None
  true_loss: Optional[Callable[[np.ndarray], np.ndarray]] = None


# select(state, pool_subset, budget, rng) -> indices: `budget` distinct members of `pool_subset`.
SelectFn = Callable[[SelectionState, np.ndarray, int, chex.PRNGKey], np.ndarray]
REGISTRY: Dict[str, SelectFn] = {}


def register(name: str):
  def wrap(fn: SelectFn) -> SelectFn:
    REGISTRY[name] = fn
    return fn
  return wrap
