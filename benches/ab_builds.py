"""Two builds of initcore timed against each other in one process, interleaved.

On a shared or virtual machine the speed of the same build drifts by 10-20% from one run to
the next (other guests on the host), so two ``initcore bench`` runs, one per build, cannot tell
a 5% change from noise. Here both builds are imported side by side and their training steps
alternate in short rounds, so both see the same drift; the ratios of minimum and median come
from the same minutes.

The other build is a copy of a built package directory (``python/initcore`` with its
``_core*.so``), for example from a worktree of the commit to compare against::

    git worktree add /tmp/old <commit> && (cd /tmp/old && maturin develop --release)
    python benches/ab_builds.py /tmp/old/python/initcore [--workloads mlp,snn] [--rounds 14] [--dtype float64]

It is imported as ``initcore_other`` (its modules import each other relatively, and its
extension keeps its own thread pool). Not a pytest suite: timings never gate tests.
"""

import argparse
import atexit
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time

import initcore
from initcore import bench


def import_other(path: str):
    """The package at ``path`` under the name ``initcore_other``."""
    tmp = tempfile.mkdtemp(prefix="initcore-ab-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    shutil.copytree(path, os.path.join(tmp, "initcore_other"), ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, tmp)
    return importlib.import_module("initcore_other")


def step(ic, w: bench.Workload, dtype: str = "float32"):
    """One training step of workload ``w`` built with package ``ic`` (as ``initcore bench``)."""
    model = bench.build_model(w, "rust", dtype=dtype, ic=ic)
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    x, y = bench.make_data(w, dtype=dtype)
    return lambda: model.train_step(x, y, opt, loss="cross_entropy")


def compare(fns: dict, rounds: int, round_s: float) -> dict:
    """Per-step µs of each function over ``rounds`` alternating rounds of ``round_s`` seconds."""
    for f in fns.values():
        for _ in range(20):
            f()
    t0 = time.perf_counter()
    next(iter(fns.values()))()
    per = max(1, int(round_s / max(time.perf_counter() - t0, 1e-7)))
    times = {k: [] for k in fns}
    order = list(fns)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            f = fns[k]
            t0 = time.perf_counter()
            for _ in range(per):
                f()
            times[k].append((time.perf_counter() - t0) / per * 1e6)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("other", help="a built initcore package directory (python/initcore of another checkout)")
    p.add_argument("--workloads", default=",".join(bench.WORKLOADS))
    p.add_argument("--rounds", type=int, default=14)
    p.add_argument("--round-s", type=float, default=0.08, help="seconds per round and build")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args()
    other = import_other(args.other)
    print(f"this build: {os.path.dirname(initcore.__file__)}; other: {args.other}; {args.dtype}")
    print(f"load average before: {os.getloadavg()}")
    print(
        f"{'workload':8} {'other min':>10} {'this min':>10} {'ratio':>6} "
        f"{'other med':>10} {'this med':>10} {'ratio':>6}"
    )
    for name in args.workloads.split(","):
        w = bench.WORKLOADS[name]
        fns = {"other": step(other, w, args.dtype), "this": step(initcore, w, args.dtype)}
        t = compare(fns, args.rounds, args.round_s)
        o, n = t["other"], t["this"]
        mo, mn = statistics.median(o), statistics.median(n)
        print(f"{name:8} {min(o):10.1f} {min(n):10.1f} {min(n) / min(o):6.3f} {mo:10.1f} {mn:10.1f} {mn / mo:6.3f}")
    print("times in µs per step; ratio = this / other (below 1: this build is faster)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
