"""The learned sorter of SoDeep (Engilberge et al., CVPR 2019): a stacked bidirectional GRU.

It maps a list of ``L`` scores to ``L`` rank estimates in ``(0, 1)`` (descending convention of
:mod:`sorter.ranking`). Unlike SoDeep's ``gru_constrained`` variant, which squashes raw scores
with ``sigmoid(x / 2 + 1)``, each list is first put on a robust common scale (median and median
absolute deviation, then ``arcsinh``): the sorter is then invariant to any positive affine
change of the scores, and heavy-tailed lists such as per-sample losses keep their resolution.
"""
import chex
import flax.linen as nn
import jax.numpy as jnp


def robust_standardise(scores: chex.Array) -> chex.Array:
  """``arcsinh((x - median) / MAD)`` per list (last axis); order-preserving, scale-free."""
  med = jnp.median(scores, axis=-1, keepdims=True)
  dev = jnp.abs(scores - med)
  mad = jnp.median(dev, axis=-1, keepdims=True)
  # More than half the list tied: fall back to the mean deviation, then to 1 (a constant list).
  mean_dev = jnp.mean(dev, axis=-1, keepdims=True)
  scale = jnp.where(mad > 0, mad, mean_dev)
  scale = jnp.where(scale > 0, scale, 1.0)
  return jnp.arcsinh((scores - med) / scale)


class GRUSorter(nn.Module):
  """Stacked bidirectional GRU → per-element linear read-out → sigmoid.

  Attributes:
    hidden: GRU state size per direction.
    num_layers: number of stacked bidirectional layers.
  """
  hidden: int = 32
  num_layers: int = 2

  @nn.compact
  def __call__(self, scores: chex.Array) -> chex.Array:
    """``[B, L]`` scores → ``[B, L]`` rank estimates in (0, 1), largest score → smallest rank."""
    chex.assert_rank(scores, 2)
    x = robust_standardise(scores)[..., None]
    for i in range(self.num_layers):
      x = nn.Bidirectional(
          nn.RNN(nn.GRUCell(self.hidden)), nn.RNN(nn.GRUCell(self.hidden)),
          name=f'bigru_{i}')(x)
    return nn.sigmoid(nn.Dense(1, name='readout')(x)[..., 0])
