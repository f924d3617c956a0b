"""Data sets shipped with initcore (``data/``, provenance in ``data/PROVENANCE.md``) and loaders
for the ones that are not: the functions live in :mod:`initcore.data` and are re-exported here.

- ``load_mnist_subset()``: 5,000 MNIST digits (500 per class), offline.
- ``load_boston_housing()``: the 506-town regression table (a historical benchmark only; see
  its docstring on the ``B`` column).
- ``load_mnist_dir(dir)`` / ``load_idx(path)``: full MNIST or Fashion-MNIST from local IDX files.
"""

from ..data import (
    BOSTON_FEATURES,
    DataFormatError,
    data_file,
    load_boston_housing,
    load_idx,
    load_mnist_dir,
    load_mnist_subset,
)

__all__ = [
    "load_mnist_subset",
    "load_boston_housing",
    "load_idx",
    "load_mnist_dir",
    "data_file",
    "DataFormatError",
    "BOSTON_FEATURES",
]
