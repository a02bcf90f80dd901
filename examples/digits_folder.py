"""A folder of real images to label: scikit-learn's 1,797 handwritten digits as 32x32 PNGs.

    python examples/digits_folder.py DIR [--labeled 20] [--test 497] [--seed 0]

writes ``DIR/labeled/<digit>/`` (``--labeled`` images whose class is given), ``DIR/unlabeled/``
(the pool to label, named by a number that says nothing of its class) and ``DIR/test/<digit>/``,
and ``DIR/truth.csv`` (every unlabeled image's class, for a simulated annotator). The 8x8 scans
(values 0..16) are scaled to 0..255 and resized to 32x32 (bilinear), white digits on black, as
grey PNGs.
"""
import argparse
import csv
import os
from typing import Dict

import numpy as np
from PIL import Image


def write_digits_folder(root: str, labeled: int = 20, test: int = 497, seed: int = 0,
                        size: int = 32) -> Dict[str, int]:
  """Writes the folder (see the module docstring); returns ``{relative path: class}`` of the
  unlabeled images (what ``truth.csv`` holds)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  order = np.random.default_rng(seed).permutation(len(digits.target))
  truth = {}
  for rank, i in enumerate(order):
    if rank < test:
      folder, name = os.path.join('test', str(digits.target[i])), f'{i:04d}.png'
    elif rank < test + labeled:
      folder, name = os.path.join('labeled', str(digits.target[i])), f'{i:04d}.png'
    else:
      folder, name = 'unlabeled', f'{rank - test - labeled:04d}.png'
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    pixels = np.round(digits.images[i] * (255 / 16)).astype(np.uint8)
    Image.fromarray(pixels, 'L').resize((size, size), Image.BILINEAR).save(
        os.path.join(root, folder, name))
    if folder == 'unlabeled':
      truth[os.path.join(folder, name)] = int(digits.target[i])
  with open(os.path.join(root, 'truth.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['id', 'label'])
    writer.writerows(sorted(truth.items()))
  return truth


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('root')
  parser.add_argument('--labeled', type=int, default=20)
  parser.add_argument('--test', type=int, default=497)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  truth = write_digits_folder(args.root, args.labeled, args.test, args.seed)
  print(f'{args.root}: {args.labeled} labeled, {len(truth)} unlabeled, {args.test} test images.')


if __name__ == '__main__':
  main()
