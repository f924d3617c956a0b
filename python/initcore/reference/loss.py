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

Options (the Rust kernels' ``weighted_loss``):

- ``sample_weight (n,)``, one weight per row (the first axis): each row's loss and gradient
  are multiplied by it and the mean still divides by the unweighted count (``n`` rows for
  cross-entropy, ``N`` entries otherwise) — Keras's ``sum_over_batch_size``, ``Σ w_i·l_i / n``.
- ``cross_entropy(..., label_smoothing=ε)`` and soft targets: ``labels`` may be a float array
  ``(n, C)`` of class probabilities; the targets become ``q = (1 − ε)·t + ε/C`` and
  ``l_i = Σ_j q_ij (lse_i − z_ij)``, ``dl/dz = softmax(z)·Σ_j q_ij − q`` (``torch.nn.CrossEntropyLoss``).
- ``mae(pred, target)``: ``|p − t|``, gradient ``sign(p − t)`` (``torch.nn.L1Loss``).
- ``huber(pred, target, delta=δ)``: ``½d²`` if ``|d| ≤ δ`` else ``δ(|d| − ½δ)``, gradient ``d``
  or ``δ·sign(d)`` (``torch.nn.HuberLoss``).
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


def _weights(fname, w, n, dtype):
    if w is None:
        return None
    (w,) = float_arrays(fname, sample_weight=w)
    if w.dtype != dtype:
        raise TypeError(f"{fname}: argument 'sample_weight' is {w.dtype} but the others are {dtype}")
    if w.shape != (n,):
        raise ValueError(f"{fname}: argument 'sample_weight' has shape {w.shape}, expected ({n},) (one weight per row)")
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{fname}: argument 'sample_weight' has sample_weight[{i}] = {w[i]}; weights must be finite and >= 0"
        )
    return w


def _smoothing(fname, eps):
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{fname}: argument 'label_smoothing' must be in [0, 1], got {eps}")
    return float(eps)


def _weighted(per_row, grad, w, count, reduction):
    """``(Σ w_i·l_i [/ count], grad·w [/ count])`` from per-row losses (float64) and gradients."""
    if w is not None:
        per_row = per_row * w.astype(np.float64)
        grad = grad * w.reshape((-1,) + (1,) * (grad.ndim - 1))
    loss = float(per_row.sum())
    if reduction == "mean":
        loss /= count
        grad = grad * grad.dtype.type(1.0 / count)
    return loss, grad


def _soft_cross_entropy(f, logits, targets, reduction, eps, w):
    if targets.shape != logits.shape:
        raise ValueError(f"{f}: argument 'labels' has shape {targets.shape}, expected {logits.shape}")
    n, c = logits.shape
    q = (1 - eps) * targets.astype(np.float64) + eps / c
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_row = (q * (lse - shifted)).sum(axis=1)
    p = np.exp(shifted - lse)
    grad = (p * q.sum(axis=1, keepdims=True) - q).astype(logits.dtype)
    return _weighted(per_row, grad, w, n, reduction)


def cross_entropy(logits, labels, reduction="mean", label_smoothing=0.0, sample_weight=None):
    """Softmax cross-entropy of ``logits (n, C)`` against integer ``labels (n,)`` in ``[0, C)``
    (or soft targets ``(n, C)``), with optional label smoothing and per-row weights."""
    f = "cross_entropy"
    (logits,) = float_arrays(f, logits=logits)
    _reduction(f, reduction)
    eps = _smoothing(f, label_smoothing)
    if isinstance(labels, np.ndarray) and labels.dtype.kind == "f" and labels.ndim == 2:
        if labels.dtype != logits.dtype:
            raise TypeError(f"{f}: argument 'labels' is {labels.dtype} but 'logits' is {logits.dtype}")
        if logits.ndim != 2 or logits.size == 0:
            raise ValueError(f"{f}: argument 'logits' must be a non-empty 2-D (n, C) array, got {logits.shape}")
        w = _weights(f, sample_weight, logits.shape[0], logits.dtype)
        return _soft_cross_entropy(f, logits, labels, reduction, eps, w)
    if eps or sample_weight is not None:
        if logits.ndim == 2 and isinstance(labels, np.ndarray) and np.issubdtype(labels.dtype, np.integer):
            n, c = logits.shape
            if labels.shape == (n,) and n and c and not np.any((labels < 0) | (labels >= c)):
                w = _weights(f, sample_weight, n, logits.dtype)
                onehot = np.zeros_like(logits)
                onehot[np.arange(n), labels] = 1
                return _soft_cross_entropy(f, logits, onehot, reduction, eps, w)
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


def binary_cross_entropy(logits, targets, reduction="mean", sample_weight=None):
    """Sigmoid BCE on ``logits`` against ``targets`` of the same shape, in the stable form."""
    f = "binary_cross_entropy"
    if sample_weight is not None:
        z, t, w = _elementwise(f, "logits", logits, "targets", targets, reduction, sample_weight)
        e = np.exp(-np.abs(z))
        per = (np.maximum(z, 0) - z * t + np.log1p(e)).astype(np.float64).reshape(z.shape[0], -1).sum(axis=1)
        grad = (np.where(z >= 0, 1 / (1 + e), e / (1 + e)) - t).astype(z.dtype)
        return _weighted(per, grad, w, z.size, reduction)
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


def mse(pred, target, reduction="mean", sample_weight=None):
    """Squared error summed over all entries, averaged with ``"mean"``."""
    f = "mse"
    if sample_weight is not None:
        p, t, w = _elementwise(f, "pred", pred, "target", target, reduction, sample_weight)
        d = p - t
        per = (d.astype(np.float64) ** 2).reshape(p.shape[0], -1).sum(axis=1)
        return _weighted(per, (2 * d).astype(p.dtype), w, p.size, reduction)
    _reduction(f, reduction)
    p, t = _pair(f, "pred", pred, "target", target)
    d = p - t
    loss = float((d.astype(np.float64) ** 2).sum())
    grad = 2 * d
    if reduction == "mean":
        loss /= p.size
        grad *= p.dtype.type(1.0 / p.size)
    return loss, grad.astype(p.dtype, copy=False)


def _elementwise(f, a_name, a, b_name, b, reduction, sample_weight):
    _reduction(f, reduction)
    a, b = _pair(f, a_name, a, b_name, b)
    if a.ndim == 0:
        raise ValueError(f"{f}: argument '{a_name}' must be at least 1-D")
    w = _weights(f, sample_weight, a.shape[0], a.dtype)
    return a, b, w


def mae(pred, target, reduction="mean", sample_weight=None):
    """Absolute error ``|p − t|`` over all entries (``torch.nn.L1Loss``), gradient ``sign(p − t)``."""
    p, t, w = _elementwise("mae", "pred", pred, "target", target, reduction, sample_weight)
    d = p - t
    per_row = np.abs(d).astype(np.float64).reshape(p.shape[0], -1).sum(axis=1)
    return _weighted(per_row, np.sign(d).astype(p.dtype), w, p.size, reduction)


def huber(pred, target, reduction="mean", delta=1.0, sample_weight=None):
    """Huber loss (``torch.nn.HuberLoss(delta=δ)``): ``½d²`` for ``|d| ≤ δ``, else ``δ(|d| − ½δ)``."""
    f = "huber"
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"{f}: argument 'delta' must be a finite number > 0, got {delta}")
    p, t, w = _elementwise(f, "pred", pred, "target", target, reduction, sample_weight)
    d = (p - t).astype(np.float64)
    small = np.abs(d) <= delta
    per = np.where(small, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))
    grad = np.where(small, d, delta * np.sign(d)).astype(p.dtype)
    return _weighted(per.reshape(p.shape[0], -1).sum(axis=1), grad, w, p.size, reduction)
