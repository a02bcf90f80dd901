"""When to stop labeling: two published signals, computed every round of an active learner.

**Stabilising predictions** (Bloodgood & Vijay-Shanker, CoNLL 2009). A *stop set* of pool samples
is drawn once (:func:`l2r_jax.protocol.stop_set`; no label needed) and, after each round, the
model's predicted classes on it are compared with the previous round's by Cohen's kappa,

    kappa = (p_o - p_e) / (1 - p_e),

``p_o`` the share of samples on which the two rounds agree, ``p_e`` the agreement expected by
chance from each round's class frequencies (two identical predictions: 1, also when both predict
one class only). Labeling can stop when the mean kappa over the last ``window`` rounds reaches
``threshold``: the model no longer changes its mind, so more labels buy little. The paper's
values, used by default: a window of 3, a threshold of 0.99. Classification only: a pose or a
density map has no classes to agree on.

**The metric's plateau**, where a labeled test split exists: the best value of the last
``window`` rounds improves on the best before them by less than ``min_delta`` (in the metric's
units; for a metric where lower is better, a decrease is the improvement).

Both are advice shown to a person (``python -m l2r_jax.label status``, the learner's
``summary.md``); nothing stops by itself.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

STOP_SET_SIZE = 1000      # pool samples whose predictions are compared (the paper's: 2,000 or so)
KAPPA_WINDOW = 3
KAPPA_THRESHOLD = 0.99
ROUNDING = 1e-9   # how far below a threshold a float sum may land when its terms reach it
PLATEAU_WINDOW = 3
PLATEAU_MIN_DELTA = 0.005

PLATEAU = (f'Plateau: the test metric\'s best over the last {PLATEAU_WINDOW} rounds improves on '
           f'the best before them by less than {PLATEAU_MIN_DELTA}.')


def definition(task: str) -> str:
  """The signals as a person reads them, for a ``task`` ('classification', 'pose', 'crowd')."""
  if task != 'classification':
    return ('Stabilising predictions (Bloodgood & Vijay-Shanker 2009) compares rounds\' predicted '
            f'classes, and a {task} prediction has none: the plateau alone applies, where a '
            f'labeled test split scores the rounds. {PLATEAU}')
  return ('Stabilising predictions (Bloodgood & Vijay-Shanker 2009): Cohen\'s kappa between '
          'successive rounds\' predicted classes on a fixed stop set of pool samples; stop when '
          f'its mean over the last {KAPPA_WINDOW} rounds reaches {KAPPA_THRESHOLD}. {PLATEAU}')


def cohens_kappa(a: np.ndarray, b: np.ndarray, num_classes: int) -> float:
  """Cohen's kappa of two predictions ``a``, ``b`` (``int [n]`` classes ``0 .. num_classes-1``):
  1 for identical predictions (where chance agreement is 1 too, the formula's 0/0)."""
  a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
  if a.shape != b.shape or a.ndim != 1 or not len(a):
    raise ValueError(f'cohens_kappa: two predictions of one length needed, got {a.shape} and '
                     f'{b.shape}.')
  if np.array_equal(a, b):
    return 1.0
  observed = float(np.mean(a == b))
  chance = float(np.dot(np.bincount(a, minlength=num_classes),
                        np.bincount(b, minlength=num_classes))) / len(a) ** 2
  return (observed - chance) / (1.0 - chance)


def stabilising_predictions(kappas: Sequence[Optional[float]], window: int = KAPPA_WINDOW,
                            threshold: float = KAPPA_THRESHOLD) -> Dict[str, Any]:
  """``{'kappa_mean', 'stop'}`` from the kappas of successive rounds (None where a round had no
  predecessor): the mean of the last ``window`` kappas (None until there are that many), and
  whether it reaches ``threshold``."""
  known = [k for k in kappas if k is not None]
  if len(known) < window:
    return {'kappa_mean': None, 'stop': False}
  mean = float(np.mean(known[-window:]))
  # Reached at the threshold itself: three kappas of 0.99 average to 0.98999... in floats.
  return {'kappa_mean': mean, 'stop': mean >= threshold - ROUNDING}


def plateau(values: Sequence[Optional[float]], higher_is_better: bool,
            window: int = PLATEAU_WINDOW, min_delta: float = PLATEAU_MIN_DELTA
            ) -> Dict[str, Any]:
  """``{'gain', 'stop'}`` from the test metric of successive rounds (None: no test split): how
  much the best of the last ``window`` rounds improves on the best before them (None until there
  are ``window + 1`` values), and whether that is less than ``min_delta``."""
  known = [v for v in values if v is not None]
  if len(known) <= window:
    return {'gain': None, 'stop': False}
  sign = 1.0 if higher_is_better else -1.0
  gain = max(sign * v for v in known[-window:]) - max(sign * v for v in known[:-window])
  return {'gain': float(gain), 'stop': gain < min_delta}


def signal(records: List[Dict[str, Any]], higher_is_better: bool) -> Dict[str, Any]:
  """Both signals from a learner's round records (``kappa`` and ``value`` per round):
  ``kappa_mean``, ``gain``, and ``stop`` naming the signals that say stop (empty: go on)."""
  kappa = stabilising_predictions([r.get('kappa') for r in records])
  gain = plateau([r.get('value') for r in records], higher_is_better)
  stop = ([f'predictions stable (mean kappa {kappa["kappa_mean"]:.4f})'] if kappa['stop'] else []
          ) + ([f'test metric on a plateau (gain {gain["gain"]:+.4f})'] if gain['stop'] else [])
  return {'kappa_mean': kappa['kappa_mean'], 'gain': gain['gain'], 'stop': stop}
