"""initcore: train small MLPs fast on a CPU, and see what initialization,
standardization and batch normalization do inside them.

The numeric core is a Rust extension (``initcore._core``); ``initcore.ops`` is its
functional API on NumPy arrays and ``initcore.reference.ops`` a plain NumPy twin with the
same names and signatures. Submodules load on first use, so ``import initcore`` stays cheap.
"""

import importlib
import os as _os
import warnings as _warnings
from typing import TYPE_CHECKING

from ._core import MAX_THREADS, get_num_threads, set_num_threads
from .parameter import Parameter


def _check_num_threads_env():
    """The Rust core ignores an ``INITCORE_NUM_THREADS`` it cannot use; say so once."""
    raw = _os.environ.get("INITCORE_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return
    try:
        ok = 1 <= int(raw.strip()) <= MAX_THREADS
    except ValueError:
        ok = False
    if not ok:
        _warnings.warn(
            f"INITCORE_NUM_THREADS={raw!r} is not a whole number in [1, {MAX_THREADS}]; it is ignored "
            f"and initcore uses {get_num_threads()} threads (one per CPU)",
            RuntimeWarning,
            stacklevel=3,
        )


_check_num_threads_env()

if TYPE_CHECKING:
    # What the lazy ``__getattr__`` below returns, spelled out for mypy and pyright (never run).
    from . import (
        backend,
        bench,
        callbacks,
        cli,
        data,
        diagnostics,
        experiments,
        export,
        initializers,
        layers,
        losses,
        lsuv,
        metrics,
        model,
        ops,
        optim,
        plots,
        reference,
        schedules,
        sweep,
        training,
        weights,
    )
    from .callbacks import History
    from .model import Sequential

__version__ = "0.1.0"

_SUBMODULES = (
    "ops",
    "reference",
    "backend",
    "initializers",
    "layers",
    "optim",
    "schedules",
    "callbacks",
    "losses",
    "model",
    "lsuv",
    "data",
    "diagnostics",
    "experiments",
    "plots",
    "sweep",
    "bench",
    "cli",
    "weights",
    "export",
    "metrics",
    "training",
)
_LAZY_NAMES = {"Sequential": "model", "History": "callbacks"}

__all__ = ["Parameter", "Sequential", "History", "set_num_threads", "get_num_threads", "__version__", *_SUBMODULES]


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'initcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
