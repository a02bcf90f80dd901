"""What the TFDS builders of hand-downloaded datasets (MPII, ShanghaiTech) share.

TFDS cannot fetch either dataset itself (licence terms; archives on file-sharing hosts): the user
puts the original files in a *manual folder* and a builder turns them into ArrayRecord files once. Preparing and
reading both run without TensorFlow (TFDS 4.9 writes ArrayRecord and encodes text, tensors and
already-encoded images in pure Python; ``tfds.data_source`` decodes with NumPy and PIL). TFDS needs
the ``importlib_resources`` package to locate a builder that lives inside a package, hence the
dependency in ``setup.cfg``.

The manual folder is checked before anything is prepared: a missing file raises
:class:`l2r_jax.data.DataNotFoundError` naming every missing path, where to download it, and the
command that prepares the dataset.
"""
import argparse
import dataclasses
import os
from typing import Any, Callable, Optional, Sequence, Tuple, Type

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from l2r_jax.errors import DataNotFoundError

FILE_FORMAT = 'array_record'  # random access without TensorFlow
MAX_LISTED = 20  # missing files named one by one in an error; the rest are counted

CheckFn = Callable[[str], Sequence[str]]  # manual folder -> missing paths (empty when complete)


def builder_from_config(builder_cls: Type[tfds.core.DatasetBuilder],
                        config: ml_collections.ConfigDict) -> Tuple[Any, str]:
  """The builder writing ArrayRecord under ``config.data_dir``, and the resolved manual folder.

  ``config.manual_dir`` defaults to ``<data_dir>/downloads/manual/<dataset name>``: TFDS's manual
  folder, one subfolder per dataset.
  """
  builder = builder_cls(data_dir=config.get('data_dir', None), file_format=FILE_FORMAT)
  manual_dir = config.get('manual_dir', None) or os.path.join(
      os.fspath(builder.data_dir_root), 'downloads', 'manual', builder.name)
  return builder, os.path.abspath(os.path.expanduser(manual_dir))


def missing_error(dataset: str, manual_dir: str, missing: Sequence[str], instructions: str,
                  command: str) -> DataNotFoundError:
  """A :class:`DataNotFoundError` listing ``missing`` (full paths), how to get them and what to run."""
  listed = '\n'.join(f'  - {p}' for p in missing[:MAX_LISTED])
  if len(missing) > MAX_LISTED:
    listed += f'\n  ... and {len(missing) - MAX_LISTED} more'
  return DataNotFoundError(
      f'{dataset}: the manual folder {manual_dir} is missing {len(missing)} '
      f'file(s)/folder(s):\n{listed}\n\n{instructions.strip()}\n\n'
      f'Then prepare it (or just run the experiment, which prepares it on first use):\n'
      f'  {command}')


def prepare(builder: tfds.core.DatasetBuilder, manual_dir: str, check: CheckFn,
            raise_missing: Callable[[Sequence[str]], None]) -> None:
  """Writes the dataset's ArrayRecord files unless they exist; checks the manual folder first."""
  if builder.is_prepared():
    return
  missing = check(manual_dir)
  if missing:
    raise_missing(missing)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except ModuleNotFoundError as e:  # the stack changed under us: say how to get TensorFlow
    if (e.name or '').split('.')[0] != 'tensorflow':
      raise
    raise ModuleNotFoundError(
        f'Preparing {builder.name} needed TensorFlow, which is not installed. Install it with '
        f"`pip install -e '.[prepare]'` and run again.", name=e.name) from e


def read_rows(source: Sequence[Any]) -> list:
  """Every record of a ``tfds`` data source, decoded, in one batched read."""
  return list(source.__getitems__(range(len(source)))) if len(source) else []


def read_all(source: Sequence[Any], keys: Sequence[str]) -> dict:
  """Stacks the features ``keys`` of every record of a data source into arrays ``[N, ...]``."""
  rows = read_rows(source)
  return {k: np.stack([np.asarray(r[k]) for r in rows]) if rows else np.zeros((0,))
          for k in keys}


def order_and_cap(index: np.ndarray, max_examples: Optional[int]) -> np.ndarray:
  """Record positions sorted by the original file order, the first ``max_examples`` of them.

  TFDS may store examples in any order; sorting by the index kept in each record restores the
  order of the original annotation files, so ``max_examples`` keeps the same examples every time.
  """
  order = np.argsort(index, kind='stable')
  return order if max_examples is None else order[:max_examples]


@dataclasses.dataclass(frozen=True)
class ManualDataset:
  """A dataset made from files the user downloads: its builder, its name in messages, the module
  whose command line prepares it, the instructions (``<manual_dir>`` stands for the folder), and
  the check that lists what the manual folder lacks."""
  builder_cls: Type[tfds.core.DatasetBuilder]
  title: str
  module: str
  instructions: str
  check: CheckFn

  def error(self, manual_dir: str, data_dir: Optional[str],
            missing: Sequence[str]) -> DataNotFoundError:
    """The error naming what is missing, where to get it and the command that prepares it."""
    command = f'python -m {self.module} --manual_dir {manual_dir}'
    if data_dir:
      command += f' --data_dir {data_dir}'
    return missing_error(self.title, manual_dir, missing,
                         self.instructions.replace('<manual_dir>', manual_dir), command)

  def prepared(self, config: ml_collections.ConfigDict) -> Tuple[Any, str]:
    """The builder, prepared from the manual folder unless it already was, and that folder."""
    builder, manual_dir = builder_from_config(self.builder_cls, config)

    def raise_missing(missing):
      raise self.error(manual_dir, config.get('data_dir', None), missing)

    prepare(builder, manual_dir, self.check, raise_missing)
    return builder, manual_dir

  def prepare_main(self, argv=None) -> None:
    """Command line ``python -m <module> --manual_dir DIR [--data_dir DIR]``."""
    parser = argparse.ArgumentParser(description=f'Prepare {self.title} (TFDS ArrayRecord) from '
                                     'the manually downloaded files.')
    parser.add_argument('--manual_dir', default=None,
                        help='folder with the original files (default: TFDS manual folder)')
    parser.add_argument('--data_dir', default=None, help='TFDS data dir (default: TFDS default)')
    args = parser.parse_args(argv)
    builder, _ = self.prepared(ml_collections.ConfigDict(vars(args)))
    sizes = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f'{builder.name} {builder.version} in {builder.data_dir}: {sizes}')
