"""Batch normalization over the rows of ``x (n, c)`` (Ioffe & Szegedy 2015, PyTorch conventions).

Training mode, per column ``j`` over the ``n`` rows of the batch::

    mean_j   = (1/n) Σ_i x_ij
    var_j    = (1/n) Σ_i (x_ij − mean_j)²          # biased, two passes (never E[x²] − E[x]²)
    invstd_j = 1 / sqrt(var_j + eps)
    x̂_ij     = (x_ij − mean_j) · invstd_j
    y_ij     = x̂_ij · γ_j + β_j

The statistics are accumulated in float64 whatever the input dtype (as PyTorch's CPU kernel does),
so float32 data with a large mean and a small spread still gets an accurate variance.
Running statistics follow ``torch.nn.BatchNorm1d``: ``running_mean ← (1−momentum)·running_mean +
momentum·mean`` and ``running_var ← (1−momentum)·running_var + momentum·var·n/(n−1)`` (the
unbiased variance), updated in place. Evaluation mode normalizes with the running statistics.

Backward (training), with ``dβ = Σ_i dy_ij`` and ``dγ = Σ_i dy_ij·x̂_ij``::

    dx_ij = (γ_j·invstd_j·(1/n)) · (n·dy_ij − dβ_j − x̂_ij·dγ_j)

and in evaluation mode, where the statistics are constants, ``dx = dy·γ·invstd``.
"""

import math

import numpy as np

from ._check import float_arrays


def _check_hyper(fname, momentum, eps):
    if not math.isfinite(momentum) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{fname}: argument 'momentum' must be finite and in [0, 1], got {momentum}")
    if not math.isfinite(eps) or not eps > 0.0:
        raise ValueError(f"{fname}: argument 'eps' must be finite and > 0, got {eps}")


def _check_vec(fname, name, v, c):
    if v is not None and v.shape != (c,):
        raise ValueError(f"{fname}: argument '{name}' has shape {v.shape}, expected ({c},) (one per column of x)")


def batch_norm_forward(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
    """Returns ``(y, save_mean, save_invstd)``; see the module docstring for the equations."""
    f = "batch_norm_forward"
    x, gamma, beta, running_mean, running_var = float_arrays(
        f, x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var
    )
    momentum, eps = float(momentum), float(eps)
    _check_hyper(f, momentum, eps)
    if x.ndim != 2:
        raise ValueError(f"{f}: argument 'x' must be 2-D (n, c), got shape {x.shape}")
    n, c = x.shape
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        _check_vec(f, name, v, c)
    if (running_mean is None) != (running_var is None):
        missing = "running_var" if running_var is None else "running_mean"
        raise ValueError(f"{f}: argument '{missing}' is None; give both running statistics or neither")
    dt = x.dtype
    if training:
        if n <= 1:
            raise ValueError(
                f"{f}: Expected more than 1 value per channel when training, got input of shape {x.shape} "
                "(argument 'x' needs at least 2 rows)"
            )
        for name, v in (("running_mean", running_mean), ("running_var", running_var)):
            if v is not None and not v.flags.writeable:
                raise ValueError(f"{f}: argument '{name}' is read-only but is written in place")
        x64 = x.astype(np.float64)
        mean64 = x64.sum(axis=0) / n  # pass 1
        var64 = ((x64 - mean64) ** 2).sum(axis=0) / n  # pass 2: biased
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean.astype(np.float64) + momentum * mean64
            running_var[...] = (1.0 - momentum) * running_var.astype(np.float64) + momentum * var64 * (n / (n - 1))
        mean = mean64.astype(dt)
        invstd = (1.0 / np.sqrt(var64 + eps)).astype(dt)
    else:
        if running_mean is None:
            raise ValueError(f"{f}: evaluation mode (training=False) needs 'running_mean' and 'running_var'")
        mean = running_mean.copy()
        invstd = (1.0 / np.sqrt(running_var.astype(np.float64) + eps)).astype(dt)
    xhat = (x - mean) * invstd
    y = xhat * gamma + beta
    return y.astype(dt, copy=False), mean, invstd


def batch_norm_backward(dy, x, gamma, save_mean, save_invstd, training=True):
    """Returns ``(dx, dgamma, dbeta)``; the sums over rows are accumulated in float64."""
    f = "batch_norm_backward"
    dy, x, gamma, save_mean, save_invstd = float_arrays(
        f, dy=dy, x=x, gamma=gamma, save_mean=save_mean, save_invstd=save_invstd
    )
    if x.ndim != 2:
        raise ValueError(f"{f}: argument 'x' must be 2-D (n, c), got shape {x.shape}")
    if dy.shape != x.shape:
        raise ValueError(f"{f}: argument 'dy' has shape {dy.shape}, expected {x.shape} (the shape of x)")
    n, c = x.shape
    for name, v in (("gamma", gamma), ("save_mean", save_mean), ("save_invstd", save_invstd)):
        _check_vec(f, name, v, c)
    dt = x.dtype
    xhat = (x - save_mean) * save_invstd
    dbeta64 = dy.astype(np.float64).sum(axis=0)
    dgamma64 = (dy.astype(np.float64) * (x.astype(np.float64) - save_mean)).sum(axis=0) * save_invstd
    dbeta, dgamma = dbeta64.astype(dt), dgamma64.astype(dt)
    if training:
        k = gamma * save_invstd * dt.type(1.0 / max(n, 1))
        dx = k * (dt.type(n) * dy - dbeta - xhat * dgamma)
    else:
        dx = dy * (gamma * save_invstd)
    return dx.astype(dt, copy=False), dgamma, dbeta
