"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .matmul import matmul
from .batch_norm import batchnorm_forward, batchnorm_backward
from .loss import cross_entropy, binary_cross_entropy, mse
from .stats import column_stats

__all__ = [
    "matmul",
    "batchnorm_forward",
    "batchnorm_backward",
    "cross_entropy",
    "binary_cross_entropy",
    "mse",
    "column_stats",
]
