"""Target models and loss-prediction modules.

The contract every target model honours, and all any strategy relies on::

    prediction, features = model.apply(variables, x, train=train)      # inference, testing
    (prediction, features), updates = model.apply(                     # a training step
        variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': key})

``x`` is a batch of inputs ``[B, ...]`` as the dataset stores them (float32, channels-last).
``prediction`` is what the task loss consumes: class logits ``[B, C]``, heatmaps ``[B, H, W, K]``
or density maps ``[B, H, W, 1]``. ``features`` is a :class:`Features`: ``last``, the output of the
last block, whose global average is what the head reads (L2R-AL's loss module, core-set, BADGE,
TypiClust and ProbCover use it), and ``stages``, every block's output in order (LL4AL's module;
``stages[-1]`` is ``last``). Each is ``[B, C]`` (no spatial axes: an MLP's hidden layer) or
channels-last ``[B, ..., C]`` with up to three spatial axes. A model without BatchNorm has no
``batch_stats`` (nothing to do); a model with dropout draws its masks from the ``'dropout'`` rng
and only when one is given (:class:`~l2r_jax.models.base.MCDropout`). Any module that honours this
gets every query strategy: :func:`register_model` names it for ``config.model.name``.
"""
import inspect
from typing import Any, Callable, Optional, Tuple

import flax.linen as nn

from l2r_jax import errors
from l2r_jax.errors import ConfigError
from l2r_jax.models.base import Features
from l2r_jax.models.cnn import CNN1D
from l2r_jax.models.cnn import CNN2D
from l2r_jax.models.dense import CrowdCounter
from l2r_jax.models.dense import SimpleBaseline
from l2r_jax.models.loss_modules import LL4ALLossModule
from l2r_jax.models.loss_modules import L2RLossModule
from l2r_jax.models.resnet import ResNet18
from l2r_jax.models.resnet import ResNet
from l2r_jax.models.resnet import ResNetBackbone

# Target models by name: each takes ``num_outputs`` (classes, joints, or 1 density channel) and
# ``bn_axis_name``; the dense models' defaults are the papers' ResNet-50 models. Users add theirs
# with :func:`register_model`.
TARGETS = {'cnn1d': CNN1D, 'cnn2d': CNN2D, 'resnet18': ResNet18,
           'simple_baseline': SimpleBaseline, 'crowd_counter': CrowdCounter}
BUILT_IN = frozenset(TARGETS)


def register_model(name: str, constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
  """Makes ``constructor`` (a Flax module class, or any callable returning a module) the target
  model ``config.model.name=name``; returns it, so it can decorate a class.

  The driver calls ``constructor(**arguments)`` with, of these, only the ones it declares:
  ``num_outputs`` (required: classes, joints, or 1 density channel), ``bn_axis_name`` (the pmap
  axis, for ``nn.BatchNorm(axis_name=...)``: BatchNorm statistics over every device), ``dropout``
  (``config.model.dropout``, given only when above 0), and every entry of ``config.model.kwargs``.
  The module must honour the contract in this package's docstring; it is checked (traced, not run)
  before anything trains. A built-in name cannot be taken; registering a user name again replaces
  the earlier model only if it has the same qualified name (a notebook cell run twice)."""
  errors.check_name('register_model', name)
  if name in BUILT_IN:
    raise ConfigError(f'register_model: {name!r} is a built-in model; choose another name '
                      f'(built in: {sorted(BUILT_IN)}).')
  if isinstance(constructor, nn.Module):
    raise ConfigError(f'register_model({name!r}, ...): give the class, {type(constructor).__name__}'
                      f', not a module made of it: the driver makes it, with num_outputs and '
                      'config.model.kwargs.')
  errors.check_replacement('register_model', name, TARGETS.get(name), constructor)
  if not callable(constructor):
    raise ConfigError(f'register_model({name!r}, ...): give a Flax module class or a function '
                      f'that returns a module, not {type(constructor).__name__}.')
  TARGETS[name] = constructor
  return constructor


FLAX_FIELDS = ('parent', 'name')   # every flax.linen.Module's own, not the model's settings


def declared_arguments(constructor: Callable[..., Any]) -> Optional[Tuple[str, ...]]:
  """The keyword arguments ``constructor`` declares, or None if it takes any (``**kwargs``)."""
  try:
    parameters = inspect.signature(constructor).parameters.values()
  except (TypeError, ValueError):
    return None
  if any(p.kind == p.VAR_KEYWORD for p in parameters):
    return None
  return tuple(p.name for p in parameters
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def make_target(model_config, num_outputs: int, bn_axis_name=None) -> nn.Module:
  """The target model ``config.model`` names, for ``num_outputs``: its constructor receives the
  arguments it declares of ``num_outputs``, ``bn_axis_name`` and ``dropout`` (when
  ``config.model.dropout`` is above 0), and ``config.model.kwargs``. A model that cannot take
  them is refused, saying what to declare or change."""
  name = model_config.name
  constructor = TARGETS[name]
  kwargs = dict(model_config.get('kwargs', {}))
  dropout = float(model_config.get('dropout', 0.0) or 0.0)
  declared = declared_arguments(constructor)
  takes = (lambda arg: True) if declared is None else (lambda arg: arg in declared)  # noqa: E731
  where = f'config.model.name={name!r} ({errors.qualified_name(constructor)})'
  if not takes('num_outputs'):
    raise ConfigError(f'{where} does not declare num_outputs: add a field `num_outputs: int`, the '
                      'number of classes (joints, or 1 density channel) the data asks for.')
  if dropout and not takes('dropout'):
    raise ConfigError(f'{where} does not declare dropout, and config.model.dropout={dropout}: '
                      'add a field `dropout: float = 0.0` used by a dropout layer before the '
                      'head (l2r_jax.MCDropout), or set config.model.dropout=0.')
  rejected = [k for k in kwargs if not takes(k)]
  if rejected:
    raise ConfigError(f'{where} does not declare {", ".join(rejected)}, given in '
                      f'config.model.kwargs={kwargs}: remove them, or add them to the model '
                      f'(it declares {", ".join(d for d in declared if d not in FLAX_FIELDS)}).')
  offered = {'num_outputs': num_outputs, 'bn_axis_name': bn_axis_name}
  if dropout:
    offered['dropout'] = dropout
  arguments = {k: v for k, v in offered.items() if takes(k)}
  try:
    model = constructor(**arguments, **kwargs)
  except (TypeError, ValueError) as e:
    raise ConfigError(f'{where} cannot be built with {sorted({**arguments, **kwargs})}: '
                      f'{type(e).__name__}: {e}') from None
  if not isinstance(model, nn.Module):
    raise ConfigError(f'{where} returned a {type(model).__name__}, not a flax.linen.Module: '
                      'register the module class, or a function that returns a module.')
  return model


__all__ = ['BUILT_IN', 'CNN1D', 'CNN2D', 'CrowdCounter', 'Features', 'LL4ALLossModule',
           'L2RLossModule', 'ResNet', 'ResNet18', 'ResNetBackbone', 'SimpleBaseline', 'TARGETS',
           'declared_arguments', 'make_target', 'register_model']
