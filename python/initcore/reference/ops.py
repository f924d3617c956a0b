"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .activation import (
    activation_backward,
    activation_forward,
    log_softmax,
    log_softmax_backward,
    maxout_backward,
    maxout_forward,
    prelu_backward,
    prelu_forward,
    softmax,
    softmax_backward,
)
from .batch_norm import batch_norm_backward, batch_norm_forward
from .dense import dense_backward, dense_forward
from .dropout import alpha_dropout_forward, dropout_backward, dropout_forward
from .loss import binary_cross_entropy, cross_entropy, huber, mae, mse
from .matmul import matmul
from .optim import adagrad_step, adam_step, adamw_step, clip_gradients, nadam_step, rmsprop_step, sgd_step
from .stats import column_stats

# The names before 0.2 (DESIGN.md's API contract uses them): aliases of the one name per level.
batchnorm_forward = batch_norm_forward
batchnorm_backward = batch_norm_backward

__all__ = sorted(name for name in dir() if not name.startswith("_") and callable(globals()[name]))
