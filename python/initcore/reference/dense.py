"""A dense (fully connected) layer in plain NumPy (the twin of ``kernels/dense.rs``).

Keras layout: ``x (n, in)``, ``W (in, out)``, ``b (out,)``.

Forward:  ``z = x·W + b``,  ``y = f(z)``.
Backward: ``dz = dy ⊙ f'(z)``,  ``dW = xᵀ·dz``,  ``db = Σ_rows dz``,  ``dx = dz·Wᵀ``.

``f`` is one of the elementwise activations of :mod:`.activation`; its derivative is taken from
``(z, y)`` exactly as ``activation_backward`` does.
"""

from ._check import float_arrays
from .activation import _derivative, _forward, parse_activation


def _check_2d(fname, **arrays):
    for name, a in arrays.items():
        if a.ndim != 2:
            raise ValueError(f"{fname}: argument '{name}' must be 2-D, got shape {a.shape}")


def _check_layer(fname, x, w, b):
    _check_2d(fname, x=x, w=w)
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"{fname}: argument 'w' has shape {w.shape}, expected ({x.shape[1]}, out) to match 'x' of shape {x.shape}"
        )
    if b is not None and b.shape != (w.shape[1],):
        raise ValueError(
            f"{fname}: argument 'b' has shape {b.shape}, expected ({w.shape[1]},) (one bias per column of 'w')"
        )


def dense_forward(x, w, b=None, activation="identity", alpha=None):
    """Returns ``(y, z)`` with ``z = x·W + b`` and ``y = f(z)``."""
    fname = "dense_forward"
    x, w, b = float_arrays(fname, x=x, w=w, b=b)
    name, alpha = parse_activation(fname, activation, alpha)
    _check_layer(fname, x, w, b)
    z = x @ w
    if b is not None:
        z = z + b
    return _forward(name, alpha, z).astype(z.dtype, copy=False), z


def dense_backward(dy, x, w, z, y, activation="identity", alpha=None, need_dx=True):
    """Returns ``(dx or None, dW, db)`` from ``dz = dy ⊙ f'(z)``."""
    fname = "dense_backward"
    dy, x, w, z, y = float_arrays(fname, dy=dy, x=x, w=w, z=z, y=y)
    name, alpha = parse_activation(fname, activation, alpha)
    _check_layer(fname, x, w, None)
    want = (x.shape[0], w.shape[1])
    for arg, a in (("dy", dy), ("z", z), ("y", y)):
        if a.shape != want:
            raise ValueError(
                f"{fname}: argument '{arg}' has shape {a.shape}, expected {want} (rows of 'x', columns of 'w')"
            )
    dz = (dy * _derivative(name, alpha, z, y)).astype(dy.dtype, copy=False)
    dw = x.T @ dz
    db = dz.sum(axis=0)
    dx = dz @ w.T if need_dx else None
    return dx, dw, db
