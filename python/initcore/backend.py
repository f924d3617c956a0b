"""Backend selection: ``"rust"`` is :mod:`initcore.ops` (the Rust core), ``"numpy"`` is
:mod:`initcore.reference.ops` (the plain NumPy twin). Layers, losses and optimizers call their
kernels through ``get_ops(backend)``, so one piece of Python serves both."""

from types import ModuleType

import numpy as np

BACKENDS = ("rust", "numpy")


def get_ops(backend: str) -> ModuleType:
    """The ops module of ``backend`` (``"rust"`` or ``"numpy"``)."""
    if backend == "rust":
        from . import ops

        return ops
    if backend == "numpy":
        from .reference import ops

        return ops
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def check_dtype(dtype) -> np.dtype:
    """float32 or float64 (by name or NumPy dtype), else a ValueError naming ``dtype``."""

    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt
