"""l2r-jax: Learning to Rank for Active Learning (Li et al., ICPR 2020) in JAX and Flax.

The public API, importable from here (each loaded on first use, so ``import l2r_jax`` is cheap):

* :func:`register_model`, :func:`register_dataset`, :func:`register_strategy` (or
  :func:`register_scoring_strategy`, for one that queries the highest scores): a user's target
  model, dataset and query strategy, by name, for ``config.model.name``, ``config.data.name`` and
  ``config.strategies``;
* :class:`ActiveLearner`: active learning on a pool without labels, ``query()`` / ``teach()``;
  :func:`load_model`: a model it exported, to predict on files or arrays anywhere;
* :class:`Dataset`, :class:`Features`: what a loader returns and what a model's features are;
  :class:`Preprocessing`: how a loader turns a person's inputs into the model's;
  :class:`MCDropout`, the dropout Monte-Carlo strategies (BALD) need in a model;
* :func:`run`: a whole simulated experiment (``python -m l2r_jax.main``).
"""
import importlib

__version__ = '0.2.0'

_EXPORTS = {
    'ActiveLearner': ('l2r_jax.learner', 'ActiveLearner'),
    'Dataset': ('l2r_jax.data', 'Dataset'),
    'Features': ('l2r_jax.models', 'Features'),
    'MCDropout': ('l2r_jax.models.base', 'MCDropout'),
    'Preprocessing': ('l2r_jax.data.preprocessing', 'Preprocessing'),
    'load_model': ('l2r_jax.export', 'load_model'),
    'register_dataset': ('l2r_jax.data', 'register_dataset'),
    'register_model': ('l2r_jax.models', 'register_model'),
    'register_scoring_strategy': ('l2r_jax.strategies.base', 'register_scores'),
    'register_strategy': ('l2r_jax.strategies.base', 'register'),
    'run': ('l2r_jax.experiment', 'run'),
    'unlabeled_pool': ('l2r_jax.learner', 'unlabeled_pool'),
}


def __getattr__(name):
  if name in _EXPORTS:
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module), attribute)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
