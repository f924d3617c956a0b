"""The functional API on NumPy arrays, backed by the Rust core.

Every function here has a twin of the same name and signature in
:mod:`initcore.reference.ops` (plain NumPy), which the tests use as the oracle.
Arrays must be float32 or float64 (one dtype per call); outputs are new arrays unless an
``out=`` is given; optimizer steps update their arrays in place. Bad input raises a
``TypeError`` or ``ValueError`` naming the argument before anything is written.
"""

from ._core import (
    activation_backward,
    activation_forward,
    adagrad_step,
    adam_step,
    adamw_step,
    alpha_dropout_forward,
    batch_norm_backward,
    batch_norm_forward,
    binary_cross_entropy,
    clip_gradients,
    column_stats,
    cross_entropy,
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
    huber,
    log_softmax,
    log_softmax_backward,
    mae,
    matmul,
    maxout_backward,
    maxout_forward,
    mse,
    nadam_step,
    prelu_backward,
    prelu_forward,
    rmsprop_step,
    sgd_step,
    softmax,
    softmax_backward,
)

# The names before 0.2 (DESIGN.md's API contract uses them): aliases of the one name per level.
batchnorm_forward = batch_norm_forward
batchnorm_backward = batch_norm_backward

__all__ = sorted(name for name in dir() if not name.startswith("_") and callable(globals()[name]))
