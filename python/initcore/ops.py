"""The functional API on NumPy arrays, backed by the Rust core.

Every function here has a twin of the same name and signature in
:mod:`initcore.reference.ops` (plain NumPy), which the tests use as the oracle.
Arrays must be float32 or float64 (one dtype per call); outputs are new arrays unless an
``out=`` is given; optimizer steps update their arrays in place. Bad input raises a
``TypeError`` or ``ValueError`` naming the argument before anything is written.
"""

from ._core import matmul
from ._core import (
    activation_forward, activation_backward, softmax, softmax_backward, log_softmax,
    log_softmax_backward, prelu_forward, prelu_backward, maxout_forward, maxout_backward,
)
from ._core import dense_forward, dense_backward
from ._core import batchnorm_forward, batchnorm_backward
from ._core import cross_entropy, binary_cross_entropy, mse
from ._core import column_stats
from ._core import sgd_step, adagrad_step, rmsprop_step, adam_step, adamw_step, nadam_step

__all__ = sorted(name for name in dir() if not name.startswith("_") and callable(globals()[name]))
