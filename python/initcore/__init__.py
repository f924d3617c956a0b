"""initcore: train small MLPs fast on a CPU, and see what initialization,
standardization and batch normalization do inside them.

The numeric core is a Rust extension (``initcore._core``); ``initcore.ops`` is its
functional API on NumPy arrays and ``initcore.reference.ops`` a plain NumPy twin with the
same names and signatures.
"""

from ._core import get_num_threads, set_num_threads
from . import ops, reference

__version__ = "0.1.0"

__all__ = ["ops", "reference", "set_num_threads", "get_num_threads", "__version__"]
