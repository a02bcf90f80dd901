"""The in-memory dataset the active-learning driver works on."""
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
  x_train: np.ndarray   # the pool: [N, ...] float32
  y_train: np.ndarray   # its labels, revealed only when queried
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int

  @property
  def pool_size(self) -> int:
    return self.x_train.shape[0]
