"""The guards every public entry point of a model goes through: one lock per model (a second
thread waits rather than corrupting the workspaces) and the warning when the loss stops being
finite."""

from __future__ import annotations

import functools
import threading
import warnings
import weakref
from typing import Any, Callable, TypeVar, cast

import numpy as np

_LOCKS = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _warn_non_finite(value, epoch, where):
    warnings.warn(
        f"Sequential.fit: the loss became {value} at epoch {epoch}, {where}; "
        "the weights are no longer finite (callbacks.TerminateOnNaN stops training here)",
        RuntimeWarning,
        stacklevel=4,  # the caller of fit (through the model lock's wrapper)
    )


def _lock_of(model):
    lock = _LOCKS.get(model)
    if lock is None:
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(model, threading.RLock())
    return lock


def _exclusive(method: _Method) -> _Method:
    """Runs ``method`` holding the model's lock (re-entrant: ``fit`` calls ``train_step``).
    Typed so that type checkers still see the wrapped method's own signature."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with _lock_of(self):
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


def _count(name, value):
    """A non-negative int argument of ``fit`` (``bool``, floats and strings refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Sequential.fit: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"Sequential.fit: {name} must be >= 0, got {value}")
    return int(value)
