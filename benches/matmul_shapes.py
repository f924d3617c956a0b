"""GEMM at the training step's real shapes: initcore's ``ops.matmul`` against NumPy's BLAS,
interleaved in one process, float32 and float64, 1 and 2 threads, the three product forms of a
dense layer (forward ``X·W`` = NN, ``dX = dY·Wᵀ`` = NT, ``dW = Xᵀ·dY`` = TN) and 2048³.

Not a pytest suite (timings never gate tests). Run on a quiet machine:
``nice -n -10 python benches/matmul_shapes.py [--repeats 7] [--dtype float32] [--threads 1 2]``.
Prints GFLOP/s (min-time and median-time) and the ratio to NumPy, and the load average.
"""

import argparse
import functools
import os
import time

import numpy as np

import initcore as ic
from initcore import ops

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None

# (name, batch, layer widths)
WORKLOADS = [
    ("tiny", 32, [64, 64, 10]),
    ("mlp", 128, [784, 256, 128, 10]),
    ("snn", 128, [784] + [100] * 20 + [10]),
    ("wide", 512, [784, 1024, 1024, 10]),
]


def shapes():
    """Distinct (m, k, n, form) products, with the workloads that use them."""
    seen = {}
    for name, batch, widths in WORKLOADS:
        for i, (inp, out) in enumerate(zip(widths[:-1], widths[1:])):
            prods = [(batch, inp, out, "NN")]
            if i > 0:
                prods.append((batch, out, inp, "NT"))  # dX, skipped for the first layer
            prods.append((inp, batch, out, "TN"))
            for p in prods:
                seen.setdefault(p, []).append(name)
    seen[(2048, 2048, 2048, "NN")] = ["2048^3"]
    return seen


def operands(m, k, n, form, dt, rng):
    a = rng.standard_normal((k, m) if form == "TN" else (m, k)).astype(dt)
    b = rng.standard_normal((n, k) if form == "NT" else (k, n)).astype(dt)
    ta, tb = form == "TN", form == "NT"
    return a, b, ta, tb


def timeit(fn, flops, budget):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(budget / once))
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget", type=float, default=0.02, help="seconds per timed sample")
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--only", default=None, help="comma-separated workload names to keep")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}")
    print(
        f"{'dtype':7} {'thr':>3} {'m':>5} {'k':>5} {'n':>5} {'form':4} {'ic min':>8} {'np min':>8} "
        f"{'ratio':>6} {'ic med':>8} {'np med':>8} {'ratio':>6}  used by"
    )
    for dtn in args.dtype:
        dt = np.dtype(dtn)
        for t in args.threads:
            ic.set_num_threads(t)
            if threadpool_limits is not None:
                threadpool_limits(t)  # applies at once, for the rest of the process
            for (m, k, n, form), users in shapes().items():
                if args.only and not set(users) & set(args.only.split(",")):
                    continue
                a, b, ta, tb = operands(m, k, n, form, dt, rng)
                out_ic = np.empty((m, n), dt)
                out_np = np.empty((m, n), dt)
                aa = a.T if ta else a
                bb = b.T if tb else b
                f_ic = functools.partial(ops.matmul, a, b, trans_a=ta, trans_b=tb, out=out_ic)
                f_np = functools.partial(np.matmul, aa, bb, out=out_np)
                flops = 2.0 * m * k * n
                budget = args.budget if flops < 1e9 else 0.0
                ti, tn = [], []
                for _ in range(args.repeats):
                    ti.append(timeit(f_ic, flops, budget))
                    tn.append(timeit(f_np, flops, budget))
                gi = [flops / x / 1e9 for x in (min(ti), float(np.median(ti)))]
                gn = [flops / x / 1e9 for x in (min(tn), float(np.median(tn)))]
                print(
                    f"{dtn:7} {t:>3} {m:>5} {k:>5} {n:>5} {form:4} {gi[0]:8.1f} {gn[0]:8.1f} {gi[0] / gn[0]:6.2f} "
                    f"{gi[1]:8.1f} {gn[1]:8.1f} {gi[1] / gn[1]:6.2f}  {','.join(sorted(set(users)))}",
                    flush=True,
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
