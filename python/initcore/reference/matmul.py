"""Matrix products, as ``np.matmul``: C = op(A) · op(B), op = transpose of the last two axes."""

import numpy as np

from ._check import float_arrays


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """``op(a) @ op(b)`` for 2-D or broadcast 3-D float arrays; ``out`` receives the result."""
    a, b = float_arrays("matmul", a=a, b=b)
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (2, 3):
            raise ValueError(f"matmul: argument '{name}' must be 2 or 3-D, got shape {x.shape}")
    if trans_a:
        a = np.swapaxes(a, -1, -2)
    if trans_b:
        b = np.swapaxes(b, -1, -2)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape}, b {b.shape}")
    c = np.matmul(a, b)
    if out is None:
        return c
    if out.shape != c.shape or out.dtype != c.dtype:
        raise ValueError(f"matmul: argument 'out' has shape {out.shape} {out.dtype}, expected {c.shape} {c.dtype}")
    out[...] = c
    return out
