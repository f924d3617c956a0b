"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .matmul import matmul
from .activation import (
    activation_forward, activation_backward, softmax, softmax_backward, log_softmax,
    log_softmax_backward, prelu_forward, prelu_backward, maxout_forward, maxout_backward,
)
from .dense import dense_forward, dense_backward
from .batch_norm import batchnorm_forward, batchnorm_backward
from .loss import cross_entropy, binary_cross_entropy, mse
from .stats import column_stats
from .optim import sgd_step, adagrad_step, rmsprop_step, adam_step, adamw_step, nadam_step

__all__ = sorted(name for name in dir() if not name.startswith("_") and callable(globals()[name]))
