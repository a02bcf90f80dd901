r"""Your own model and data: a Flax MLP without BatchNorm on scikit-learn's breast-cancer data.

    python -m l2r_jax.main --config=examples/breast_cancer.py --workdir=runs/breast_cancer
    python -m l2r_jax.label query --config=examples/breast_cancer.py:unlabeled --workdir=runs/bc

This file is a whole user config: it defines a target model and a dataset, registers them, and
returns the config that names them. The simulation (default variant) runs every strategy that
applies to classification, five seeds, revealing the pool's labels when queried. ``:unlabeled``
is the same data with the pool's labels hidden, for an active learner that a person (here the
docs' stand-in, the dataset's labels) answers: docs/your_data.md walks through both.
``:smoke`` and ``:unlabeled_smoke`` are seconds-long versions.
"""
from typing import Optional

import flax.linen as nn
import numpy as np

import l2r_jax
from l2r_jax import defaults


class TabularMLP(nn.Module):
  """Two hidden layers, no BatchNorm. Declares ``dropout`` so that BALD and BatchBALD can run it
  (``config.model.dropout``), and the devices' axis, so that a sample's dropout mask is the same
  on one device or several."""
  num_outputs: int
  hidden: int = 64
  dropout: float = 0.0
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    h1 = nn.relu(nn.Dense(self.hidden)(x))
    h2 = nn.relu(nn.Dense(self.hidden)(h1))
    h2_dropped = l2r_jax.MCDropout(self.dropout, axis_name=self.bn_axis_name)(h2, train=train)
    logits = nn.Dense(self.num_outputs)(h2_dropped)
    # No spatial axes: the features are [batch, channels]; the head reads h2.
    return logits, l2r_jax.Features(last=h2, stages=(h1, h2))


def load_breast_cancer(data):
  """569 tumours, 30 measurements, malignant or benign (scikit-learn's bundled copy of the UCI
  data): ``data.num_test`` for testing, the rest the pool; standardised with the pool's
  statistics. ``data.hide_labels``: the pool's labels unknown (-1)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  bunch = datasets.load_breast_cancer()
  order = np.random.default_rng(data.seed).permutation(len(bunch.target))
  test, pool = order[:data.num_test], order[data.num_test:]
  mean, std = bunch.data[pool].mean(0), bunch.data[pool].std(0)
  x = ((bunch.data - mean) / std).astype(np.float32)
  y = bunch.target.astype(np.int32)
  y_pool = np.full(len(pool), -1, np.int32) if data.hide_labels else y[pool]
  # What predictions on new measurements apply (the learner's predict, an exported model).
  preprocessing = l2r_jax.Preprocessing('affine', mean, std, (float(bunch.data[pool].min()),
                                                             float(bunch.data[pool].max())))
  return l2r_jax.Dataset(x[pool], y_pool, x[test], y[test], num_outputs=2,
                         class_names=tuple(str(n) for n in bunch.target_names),
                         preprocessing=preprocessing)


l2r_jax.register_model('tabular_mlp', TabularMLP)
l2r_jax.register_dataset('breast_cancer', load_breast_cancer)

# Every strategy for classification but the `l2r_all_features` ablation and the `oracle_loss`
# diagnostic; BALD and BatchBALD read the dropout of every run.
STRATEGIES = ('random', 'entropy', 'margin', 'least_confidence', 'bald', 'batchbald', 'badge',
              'coreset', 'typiclust', 'probcover', 'vaal', 'll4al', 'l2r')


def get_config(variant: str = 'default'):
  c = defaults.get_config()
  c.data = dict(name='breast_cancer', seed=0, num_test=169, hide_labels=False)
  c.model.name = 'tabular_mlp'
  c.model.dropout = 0.1
  c.strategies = STRATEGIES
  c.seeds = (0, 1, 2, 3, 4)
  c.al.update(initial=20, budget=20, cycles=6)
  c.al.subset = None                 # the whole unlabeled pool (380 samples)
  c.train.update(batch_size=16, epochs=30, optimizer='adam', lr=1e-3, momentum=0.0,
                 weight_decay=0.0, lr_boundaries=())
  c.eval_batch_size = 256
  # The loss modules rank lists of 16 with soft ranks (no pretrained sorter of that length).
  c.loss_module.update(sorter='soft_rank', sorter_len=16)
  c.vaal.update(iterations=300, batch_size=32)
  c.batchbald.num_samples = 200
  name, _, size = variant.partition('_')
  if name == 'smoke' or size == 'smoke':
    c.seeds = (0,)
    c.al.update(initial=16, budget=16, cycles=2)
    c.train.epochs = 3
    c.ll4al.detach_epoch = 2
    c.vaal.iterations = 10
    c.batchbald.num_samples = 50
    c.quiet = True
  if name == 'unlabeled':
    c.data.hide_labels = True
    c.strategies = ('l2r',)
    c.seeds = (0,)
  elif name not in ('default', 'smoke'):
    raise ValueError(f"Unknown variant {variant!r}: use 'default', 'smoke', 'unlabeled' or "
                     "'unlabeled_smoke'.")
  return c
