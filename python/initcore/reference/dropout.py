"""NumPy twins of the dropout kernels (``rust/kernels/dropout.rs``): dropout and alpha dropout
from given uniforms, and their backward. The operations, their order and the precision are the
ones the kernels follow, so the two match bit for bit."""

import numpy as np

from ._check import float_arrays


def _check(fname, x, u, rate):
    x, u = float_arrays(fname, x=x, u=u)
    if u.shape != x.shape:
        raise ValueError(
            f"{fname}: argument 'u' has shape {u.shape}, expected {x.shape} (one uniform per element of 'x')"
        )
    if not (np.isfinite(rate) and 0.0 <= rate < 1.0):
        raise ValueError(f"{fname}: dropout: rate must be in [0, 1), got {rate}")
    return x, u, x.dtype.type


def dropout_forward(x, u, rate):
    """``mask = (u >= rate) / (1 - rate)``, ``y = x * mask``; returns ``(y, mask)``."""
    x, u, t = _check("dropout_forward", x, u, rate)
    mask = (u >= t(rate)).astype(x.dtype) * t(1.0 / (1.0 - rate))
    return x * mask, mask


def alpha_dropout_forward(x, u, rate, a, b, alpha_p):
    """``keep = u >= rate``, ``mask = keep * a``, ``y = x * mask + ((1 - keep) * (a * alpha_p) +
    b)``; returns ``(y, mask)``."""
    x, u, t = _check("alpha_dropout_forward", x, u, rate)
    if not all(np.isfinite(v) for v in (a, b, alpha_p)):
        raise ValueError(
            f"alpha_dropout_forward: alpha_dropout: a, b and alpha_p must be finite, got {a}, {b}, {alpha_p}"
        )
    keep = (u >= t(rate)).astype(x.dtype)
    mask = keep * t(a)
    return x * mask + ((t(1) - keep) * t(a * alpha_p) + t(b)), mask


def dropout_backward(dy, mask):
    """``dx = dy * mask``."""
    dy, mask = float_arrays("dropout_backward", dy=dy, mask=mask)
    if mask.shape != dy.shape:
        raise ValueError(
            f"dropout_backward: argument 'mask' has shape {mask.shape}, expected {dy.shape} (the shape of 'dy')"
        )
    return dy * mask
