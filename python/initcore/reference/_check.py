"""Argument checks shared by the reference kernels, mirroring the Rust bindings' errors."""

import numpy as np

FLOATS = (np.float32, np.float64)


def float_arrays(fname, **arrays):
    """Checks that every non-None argument is a float32/float64 ndarray of one dtype."""
    dtype = None
    out = []
    for name, x in arrays.items():
        if x is not None:
            if not isinstance(x, np.ndarray) or x.dtype.type not in FLOATS:
                what = f"{x.dtype} array" if isinstance(x, np.ndarray) else type(x).__name__
                raise TypeError(f"{fname}: argument '{name}' must be a float32 or float64 numpy.ndarray, got {what}")
            if dtype is None:
                dtype = x.dtype
            elif x.dtype != dtype:
                raise TypeError(f"{fname}: argument '{name}' is {x.dtype} but the others are {dtype}")
        out.append(x)
    return out
