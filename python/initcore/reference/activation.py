"""Activation functions and their derivatives, in plain NumPy (the twin of ``kernels/activation.rs``).

Elementwise activations (any shape), forward ``y = f(x)`` and backward ``dx = dy · f'(x)``:

=============  ===============================================  =============================
name           f(x)                                             f'(x), written with y = f(x)
=============  ===============================================  =============================
identity       x   (alias ``"linear"``)                         1
sigmoid        σ(x) = 1 / (1 + e^(−x))                           y (1 − y)
tanh           tanh x                                           1 − y²
relu           max(x, 0)                                        [x > 0]
leaky_relu     x if x > 0 else α x       (α = 0.01)             1 if x > 0 else α
elu            x if x > 0 else α (e^x − 1)   (α = 1)            1 if x > 0 else y + α
selu           λ x if x > 0 else λ α (e^x − 1)                  λ if x > 0 else y + λα
=============  ===============================================  =============================

SELU's constants are those of Klambauer et al., "Self-Normalizing Neural Networks" (2017):
λ = 1.0507009873554804934…, α = 1.6732632423543772848…. The derivatives at the kinks follow
PyTorch (``relu'(0) = 0``, ``leaky_relu'(0) = α``, ``elu'(0) = α``).

Softmax family (2-D, along the last axis, max-subtracted so that no exponential overflows):
``softmax(x)_j = e^(x_j − m) / Σ_k e^(x_k − m)`` with ``m = max_k x_k``, backward
``dx = y ⊙ (dy − Σ_j dy_j y_j)``; ``log_softmax(x)_j = x_j − m − log Σ_k e^(x_k − m)``, backward
``dx = dy − e^y Σ_j dy_j``.

PReLU (He et al. 2015), ``x (n, m)`` with one slope per unit ``a (m,)``: ``y = x if x > 0 else a x``;
``dx = dy if x > 0 else a dy``, ``da_j = Σ_i dy_ij x_ij [x_ij ≤ 0]``.

Maxout (Goodfellow et al. 2013), ``x (n, m·k)`` → ``y (n, m)``, ``y_ij = max_{p<k} x_{i, j·k+p}``; the
arg-max ``p`` is returned as int64 (first maximum wins, a NaN counts as the maximum as in
``np.argmax``), and the backward routes ``dy`` to that column.
"""

import math
import numbers

import numpy as np

from ._check import float_arrays

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

ACTIVATIONS = ("identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu")
DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


def parse_activation(fname, activation, alpha):
    """Returns ``(name, alpha)`` with the alias resolved and alpha defaulted; raises naming
    'activation' or 'alpha' as the Rust parser does."""
    if not isinstance(activation, str):
        raise TypeError(f"{fname}: argument 'activation' must be a str, got {type(activation).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{fname}: argument 'activation' is unknown: {activation!r} (expected one of {', '.join(ACTIVATIONS)})"
        )
    name = "identity" if activation == "linear" else activation
    if name not in DEFAULT_ALPHA:
        if alpha is not None:
            raise ValueError(f"{fname}: argument 'alpha' must be None for activation {activation!r}, got {alpha!r}")
        return name, None
    if alpha is None:
        return name, DEFAULT_ALPHA[name]
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{fname}: argument 'alpha' must be a float, got {type(alpha).__name__}")
    if not math.isfinite(alpha):
        raise ValueError(f"{fname}: argument 'alpha' must be finite, got {alpha}")
    return name, float(alpha)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), evaluated as e^(−|x|)-based so that it never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def _forward(name, alpha, x):
    if name == "identity":
        return x.copy()
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    neg = np.expm1(np.minimum(x, 0))
    if name == "elu":
        return np.where(x > 0, x, alpha * neg)
    return np.where(x > 0, SELU_LAMBDA * x, (SELU_LAMBDA * SELU_ALPHA) * neg)  # selu


def _derivative(name, alpha, x, y):
    """f'(x), from y = f(x) where that is cheaper (no transcendental is recomputed)."""
    if name == "identity":
        return np.ones_like(x)
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    if name == "relu":
        return (x > 0).astype(x.dtype)
    if name == "leaky_relu":
        return np.where(x > 0, 1, alpha).astype(x.dtype)
    if name == "elu":
        return np.where(x > 0, 1, y + alpha)
    return np.where(x > 0, SELU_LAMBDA, y + SELU_LAMBDA * SELU_ALPHA)  # selu


def _same_shape(fname, ref_name, ref, **arrays):
    for name, a in arrays.items():
        if a is not None and a.shape != ref.shape:
            raise ValueError(
                f"{fname}: argument '{name}' has shape {a.shape}, expected {ref.shape} (the shape of '{ref_name}')"
            )


def _write(out, value):
    if out is None:
        return value
    out[...] = value
    return out


def _check_out(fname, out):
    if out is not None and not out.flags.writeable:
        raise ValueError(f"{fname}: argument 'out' is read-only but is written in place")


def activation_forward(x, activation, alpha=None, out=None):
    """``y = f(x)`` elementwise (see the module table); ``out`` receives y."""
    fname = "activation_forward"
    x, out = float_arrays(fname, x=x, out=out)
    name, alpha = parse_activation(fname, activation, alpha)
    _same_shape(fname, "x", x, out=out)
    _check_out(fname, out)
    return _write(out, _forward(name, alpha, x).astype(x.dtype, copy=False))


def activation_backward(dy, x, y, activation, alpha=None, out=None):
    """``dx = dy · f'(x)``, with ``y = f(x)`` the forward's output."""
    fname = "activation_backward"
    dy, x, y, out = float_arrays(fname, dy=dy, x=x, y=y, out=out)
    name, alpha = parse_activation(fname, activation, alpha)
    _same_shape(fname, "dy", dy, x=x, y=y, out=out)
    _check_out(fname, out)
    return _write(out, (dy * _derivative(name, alpha, x, y)).astype(dy.dtype, copy=False))


def _two_d(fname, **arrays):
    for name, a in arrays.items():
        if a is not None and a.ndim != 2:
            raise ValueError(f"{fname}: argument '{name}' must be 2-D, got shape {a.shape}")


def softmax(x, out=None):
    """``y_ij = e^(x_ij − m_i) / Σ_k e^(x_ik − m_i)``, ``m_i = max_k x_ik``."""
    fname = "softmax"
    x, out = float_arrays(fname, x=x, out=out)
    _two_d(fname, x=x)
    _same_shape(fname, "x", x, out=out)
    _check_out(fname, out)
    if x.shape[1] == 0:
        return _write(out, x.copy())
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return _write(out, e / e.sum(axis=1, keepdims=True))


def softmax_backward(dy, y):
    """``dx = y ⊙ (dy − Σ_j dy_j y_j)`` with ``y = softmax(x)``."""
    fname = "softmax_backward"
    dy, y = float_arrays(fname, dy=dy, y=y)
    _two_d(fname, dy=dy, y=y)
    _same_shape(fname, "dy", dy, y=y)
    return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def log_softmax(x, out=None):
    """``y_ij = x_ij − m_i − log Σ_k e^(x_ik − m_i)``."""
    fname = "log_softmax"
    x, out = float_arrays(fname, x=x, out=out)
    _two_d(fname, x=x)
    _same_shape(fname, "x", x, out=out)
    _check_out(fname, out)
    if x.shape[1] == 0:
        return _write(out, x.copy())
    s = x - x.max(axis=1, keepdims=True)
    return _write(out, s - np.log(np.exp(s).sum(axis=1, keepdims=True)))


def log_softmax_backward(dy, y):
    """``dx = dy − e^y Σ_j dy_j`` with ``y = log_softmax(x)``."""
    fname = "log_softmax_backward"
    dy, y = float_arrays(fname, dy=dy, y=y)
    _two_d(fname, dy=dy, y=y)
    _same_shape(fname, "dy", dy, y=y)
    return dy - np.exp(y) * dy.sum(axis=1, keepdims=True)


def _check_slope(fname, x, slope):
    _two_d(fname, x=x)
    if slope.ndim != 1 or slope.shape[0] != x.shape[1]:
        raise ValueError(
            f"{fname}: argument 'slope' has shape {slope.shape}, expected ({x.shape[1]},) (one slope per column of 'x')"
        )


def prelu_forward(x, slope):
    """``y = x if x > 0 else slope·x``, one slope per column."""
    fname = "prelu_forward"
    x, slope = float_arrays(fname, x=x, slope=slope)
    _check_slope(fname, x, slope)
    return np.where(x > 0, x, slope * x)


def prelu_backward(dy, x, slope):
    """``dx = dy if x > 0 else slope·dy``; ``dslope_j = Σ_i dy_ij x_ij [x_ij ≤ 0]``."""
    fname = "prelu_backward"
    dy, x, slope = float_arrays(fname, dy=dy, x=x, slope=slope)
    _check_slope(fname, x, slope)
    _same_shape(fname, "x", x, dy=dy)
    pos = x > 0
    dx = np.where(pos, dy, slope * dy)
    dslope = np.where(pos, 0, dy * x).sum(axis=0).astype(x.dtype)
    return dx, dslope


def _check_k(fname, k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{fname}: argument 'k' must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"{fname}: argument 'k' must be >= 1, got {k}")
    return int(k)


def maxout_forward(x, k):
    """``y_ij = max_{p<k} x_{i, j·k+p}`` and the int64 arg-max ``p`` (first maximum wins)."""
    fname = "maxout_forward"
    (x,) = float_arrays(fname, x=x)
    k = _check_k(fname, k)
    _two_d(fname, x=x)
    n, c = x.shape
    if c % k:
        raise ValueError(f"{fname}: argument 'k' = {k} does not divide the {c} columns of 'x'")
    groups = x.reshape(n, c // k, k)
    arg = groups.argmax(axis=2).astype(np.int64)
    y = np.take_along_axis(groups, arg[..., None], axis=2)[..., 0]
    return y, arg


def maxout_backward(dy, argmax, k):
    """``dx_{i, j·k+p} = dy_ij if p = argmax_ij else 0``."""
    fname = "maxout_backward"
    (dy,) = float_arrays(fname, dy=dy)
    k = _check_k(fname, k)
    _two_d(fname, dy=dy)
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int64:
        what = f"{argmax.dtype} array" if isinstance(argmax, np.ndarray) else type(argmax).__name__
        raise TypeError(f"{fname}: argument 'argmax' must be an int64 numpy.ndarray, got {what}")
    _same_shape(fname, "dy", dy, argmax=argmax)
    if argmax.size and (argmax.min() < 0 or argmax.max() >= k):
        raise ValueError(f"{fname}: argument 'argmax' has values outside [0, {k})")
    n, m = dy.shape
    dx = np.zeros((n, m, k), dy.dtype)
    np.put_along_axis(dx, argmax[..., None], dy[..., None], axis=2)
    return dx.reshape(n, m * k)
