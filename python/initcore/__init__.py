"""initcore: train small MLPs fast on a CPU, and see what initialization,
standardization and batch normalization do inside them.

The numeric core is a Rust extension (``initcore._core``); ``initcore.ops`` is its
functional API on NumPy arrays and ``initcore.reference.ops`` a plain NumPy twin with the
same names and signatures. Submodules load on first use, so ``import initcore`` stays cheap.
"""

import importlib
from typing import TYPE_CHECKING

from ._core import get_num_threads, set_num_threads
from .parameter import Parameter

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
        model,
        ops,
        optim,
        plots,
        reference,
        schedules,
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
    "bench",
    "cli",
    "weights",
    "export",
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
