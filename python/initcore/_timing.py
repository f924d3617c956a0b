"""How ``initcore bench`` times things: the machine's load and the share of the cores other
processes use (from ``/proc``), and systems interleaved block by block with calibrated block
lengths, reported as minimum and median."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

import numpy as np


# --- the machine ---------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


def machine_load(sample_s: float = 0.5, own_run: bool = False) -> dict:
    """The load average, and the share of all cores that *other* processes kept busy during
    ``sample_s`` seconds while this one slept (``None`` where /proc is unavailable).
    ``own_run``: sampled right after this benchmark ran, whose own threads are still in the
    load average, so only the other processes' share decides whether the machine was quiet."""
    cpus = os.cpu_count() or 1
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    other = None
    a = _busy_jiffies()
    if a is not None:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(sample_s)
        b = _busy_jiffies()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if b is not None and b[1] > a[1]:
            tick = os.sysconf("SC_CLK_TCK")
            own = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * tick
            other = max(0.0, (b[0] - a[0] - own) / (b[1] - a[1]))
    quiet = (other is None or other < 0.05) and (own_run or load is None or load[0] < 0.5 * cpus)
    return {"cpus": cpus, "loadavg": load, "other_busy": other, "quiet": quiet}


def load_warning(load: dict) -> str | None:
    if load["quiet"]:
        return None
    parts = []
    if load["other_busy"] is not None:
        parts.append(f"other processes kept {100 * load['other_busy']:.0f}% of the cores busy")
    if load["loadavg"] is not None:
        parts.append(f"load average {load['loadavg'][0]:.2f} on {load['cpus']} CPUs")
    return (
        "WARNING: the machine is not quiet (" + ", ".join(parts) + "): absolute times and % of peak are "
        "distorted; only ratios within a row, measured interleaved, mean something."
    )


# --- timing ----------------------------------------------------------------------------------------
#: Seconds of idling before each timed block, then of untimed calls (see `interleaved`).
#: Measured on the 2-core VM, 128×784 @ 784×256 alternated with NumPy: timed straight after
#: NumPy, initcore's 2-thread product took 277 µs (NumPy's threads still spinning); after the
#: pause alone 202 µs (cores clocked down); after both 164 µs, as when run by itself.
SETTLE_S = 0.15
WARM_S = 0.05


def interleaved(fns: dict[str, Callable[[], None]], budget_s: float, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every function, ``repeats`` blocks each, the functions taking turns
    within each repeat. A block is calibrated to about ``budget_s / repeats`` seconds, and
    follows a pause of ``SETTLE_S`` and ``WARM_S`` of untimed calls."""
    calls = {}
    for name, fn in fns.items():
        fn()
        fn()  # warm-up: plans, caches, JIT, pages
        t0 = time.perf_counter()
        k = 0
        while k < 1 or time.perf_counter() - t0 < budget_s / (2 * repeats):
            fn()
            k += 1
        per_call = (time.perf_counter() - t0) / k
        calls[name] = max(1, int(budget_s / repeats / per_call))
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        # Each repeat starts with the next system, so that none always follows the same one.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, k = fns[name], calls[name]
            # Idle threads of the system timed before keep spinning for a while after its last
            # call (OpenBLAS's for about 0.1 s), and would take a core from this one: let them
            # sleep. The pause lets the cores clock down, so run untimed until they are back.
            time.sleep(SETTLE_S)
            w = time.perf_counter()
            fn()
            while time.perf_counter() - w < WARM_S:
                fn()
            t = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t) / k)
    return times


def _stats(ts: list[float]) -> dict:
    return {"min": float(np.min(ts)), "median": float(np.median(ts)), "repeats": len(ts)}
