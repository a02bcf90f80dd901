"""Target models and loss-prediction modules.

The contract every target model honours, and all any strategy relies on::

    prediction, features = model.apply(variables, x, train=train, mutable=...)

``prediction`` is what the task loss consumes (class logits ``[B, C]``, heatmaps, density maps).
``features`` is a :class:`Features`: ``last``, the output map of the last block (all an L2R-AL
loss-prediction module or core-set needs), and ``stages``, the output map of every block in order
(what LL4AL's module needs; ``stages[-1] is last``). Maps are channels-last, ``[B, ..., C]``, with
any number of spatial axes (1-D for sequences, 2-D for images). A user model that returns the same
pair gets every query strategy.
"""
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
# ``bn_axis_name``; the dense models' defaults are the papers' ResNet-50 models.
TARGETS = {'cnn1d': CNN1D, 'cnn2d': CNN2D, 'resnet18': ResNet18,
           'simple_baseline': SimpleBaseline, 'crowd_counter': CrowdCounter}


def make_target(model_config, num_outputs: int, bn_axis_name=None):
  """The target model ``config.model`` names, for ``num_outputs``: ``config.model.kwargs``, and
  ``dropout=config.model.dropout`` when that is above 0 (for the models that declare it)."""
  kwargs = dict(model_config.get('kwargs', {}))
  if model_config.get('dropout', 0.0):
    kwargs['dropout'] = float(model_config.dropout)
  return TARGETS[model_config.name](num_outputs=num_outputs, bn_axis_name=bn_axis_name, **kwargs)


__all__ = ['CNN1D', 'CNN2D', 'CrowdCounter', 'Features', 'LL4ALLossModule', 'L2RLossModule',
           'ResNet', 'ResNet18', 'ResNetBackbone', 'SimpleBaseline', 'TARGETS', 'make_target']
