"""Losses on raw network outputs, each returning ``(loss, dloss/doutput)``.

The loss is a Python float summed in float64; the gradient has the input's dtype. ``reduction``
is ``"mean"`` (PyTorch's default) or ``"sum"``; an empty batch is a ``ValueError``.

- ``cross_entropy(logits (n, C), labels (n,))``, softmax cross-entropy with integer labels::

      L = (1/n) Σ_i [ log Σ_j exp(z_ij) − z_i,y_i ]      dL/dz = (softmax(z) − onehot(y)) / n

  computed with ``z − max_j z_ij`` so that no ``exp`` overflows.
- ``binary_cross_entropy(logits, targets)``, sigmoid BCE in the stable form (no ``log(0)``)::

      L = (1/N) Σ [ max(z, 0) − z·t + log1p(exp(−|z|)) ]  dL/dz = (sigmoid(z) − t) / N

  over all ``N`` entries; targets are not range-checked (soft labels in [0, 1] are fine).
- ``mse(pred, target)``: ``L = (1/N) Σ (p − t)²``, ``dL/dp = 2(p − t)/N`` (``torch.nn.MSELoss``).

With ``reduction="sum"`` the ``1/n`` (``1/N``) factors are dropped.
"""

import numpy as np

from ._check import float_arrays

REDUCTIONS = ("mean", "sum")


def _reduction(fname, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fname}: argument 'reduction' must be 'mean' or 'sum', got {reduction!r}")


def _pair(fname, a_name, a, b_name, b):
    a, b = float_arrays(fname, **{a_name: a, b_name: b})
    if a.shape != b.shape:
        raise ValueError(
            f"{fname}: argument '{b_name}' has shape {b.shape}, expected {a.shape} (the shape of '{a_name}')"
        )
    if a.size == 0:
        raise ValueError(f"{fname}: argument '{a_name}' is empty (shape {a.shape}); a loss needs at least one entry")
    return a, b


def cross_entropy(logits, labels, reduction="mean"):
    """Softmax cross-entropy of ``logits (n, C)`` against integer ``labels (n,)`` in ``[0, C)``."""
    f = "cross_entropy"
    (logits,) = float_arrays(f, logits=logits)
    _reduction(f, reduction)
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        what = f"{labels.dtype} array" if isinstance(labels, np.ndarray) else type(labels).__name__
        raise TypeError(f"{f}: argument 'labels' must be an integer numpy.ndarray, got {what}")
    if logits.ndim != 2:
        raise ValueError(f"{f}: argument 'logits' must be 2-D (n, C), got shape {logits.shape}")
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"{f}: argument 'logits' is empty (shape {logits.shape}); need n >= 1 rows and C >= 1 classes")
    if labels.shape != (n,):
        raise ValueError(f"{f}: argument 'labels' has shape {labels.shape}, expected ({n},) (one per row of logits)")
    bad = np.flatnonzero((labels < 0) | (labels >= c))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{f}: argument 'labels' has labels[{i}] = {labels[i]}, outside [0, {c})")
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1)
    per_row = np.log(s.astype(np.float64)) - shifted[rows, labels].astype(np.float64)
    loss = float(per_row.sum())
    grad = e / s[:, None]
    grad[rows, labels] -= 1
    if reduction == "mean":
        loss /= n
        grad *= logits.dtype.type(1.0 / n)
    return loss, grad


def binary_cross_entropy(logits, targets, reduction="mean"):
    """Sigmoid BCE on ``logits`` against ``targets`` of the same shape, in the stable form."""
    f = "binary_cross_entropy"
    _reduction(f, reduction)
    z, t = _pair(f, "logits", logits, "targets", targets)
    e = np.exp(-np.abs(z))
    per = np.maximum(z, 0) - z * t + np.log1p(e)
    loss = float(per.astype(np.float64).sum())
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    grad = sig - t
    if reduction == "mean":
        loss /= z.size
        grad *= z.dtype.type(1.0 / z.size)
    return loss, grad.astype(z.dtype, copy=False)


def mse(pred, target, reduction="mean"):
    """Squared error summed over all entries, averaged with ``"mean"``."""
    f = "mse"
    _reduction(f, reduction)
    p, t = _pair(f, "pred", pred, "target", target)
    d = p - t
    loss = float((d.astype(np.float64) ** 2).sum())
    grad = 2 * d
    if reduction == "mean":
        loss /= p.size
        grad *= p.dtype.type(1.0 / p.size)
    return loss, grad.astype(p.dtype, copy=False)
