"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .matmul import matmul

__all__ = ["matmul"]
