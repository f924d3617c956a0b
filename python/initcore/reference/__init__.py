"""The plain NumPy reference of every kernel: the oracle for the tests and the baseline
for the benchmarks. Readable first; each function states the equation it implements."""

from . import ops

__all__ = ["ops"]
