"""Running one trial, the same way under every engine: time it, catch what it raises, and check
what it returns (metric name → per-epoch numbers)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping

from ._results import TrialRecord


def check_metrics(metrics) -> dict[str, list[float]]:
    """The trial's return value as ``{name: [float, ...]}``; a ``TypeError`` says what is wrong."""
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"sweep: a trial must return a dict of metric name -> per-epoch values, got {type(metrics).__name__}"
        )
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"sweep: metric names must be strings, got {k!r}")
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise TypeError(f"sweep: metric {k!r} must be a list of per-epoch numbers, got {type(v).__name__}")
        try:
            out[k] = [float(x) for x in v]
        except (TypeError, ValueError):
            raise TypeError(f"sweep: metric {k!r} holds a value that is not a number") from None
    return out


def execute(trial_fn, index, config, extra, seed, data) -> TrialRecord:
    """Runs ``trial_fn({**extra, **config}, seed, data)`` and returns its record; an exception is
    recorded (type, message, traceback), never raised."""
    t0 = time.perf_counter()
    try:
        metrics = check_metrics(trial_fn({**extra, **config}, seed, data))
        error = None
    except Exception:
        metrics, error = {}, traceback.format_exc()
    return TrialRecord(index, dict(config), int(seed), metrics, time.perf_counter() - t0, error)
