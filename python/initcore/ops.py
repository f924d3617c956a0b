"""The functional API on NumPy arrays, backed by the Rust core.

Every function here has a twin of the same name and signature in
:mod:`initcore.reference.ops` (plain NumPy), which the tests use as the oracle.
Arrays must be float32 or float64 (one dtype per call); outputs are new arrays unless an
``out=`` is given; optimizer steps update their arrays in place. Bad input raises a
``TypeError`` or ``ValueError`` naming the argument before anything is written.
"""

from ._core import matmul
from ._core import batchnorm_forward, batchnorm_backward
from ._core import cross_entropy, binary_cross_entropy, mse
from ._core import column_stats

__all__ = [
    "matmul",
    "batchnorm_forward",
    "batchnorm_backward",
    "cross_entropy",
    "binary_cross_entropy",
    "mse",
    "column_stats",
]
