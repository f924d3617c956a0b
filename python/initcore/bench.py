"""``initcore bench``: initcore's training step against its NumPy reference, PyTorch (eager,
fused Adam) and JAX (jit), each when importable, with the machine's float32 GEMM peak and the
targets of issue 8 beside the measured ratios.

One step = forward, softmax cross-entropy, backward, Adam update (float32 unless a column says
otherwise). Rows:

- the five step workloads (``WORKLOADS``): every system, plus initcore on one thread and in
  float64, and the step's matrix products alone in NumPy's BLAS (the best share of peak a step
  whose products run at the BLAS's speed could reach);
- ``tiny`` inside ``fit``: µs per step over an epoch of 1,000 batches of 32;
- one epoch of ``fit`` over 60,000 MNIST-sized samples (784-256-128-10, batch 128, shuffled,
  Adam) against PyTorch's eager loop and the NumPy reference;
- ``ic.ops.matmul`` against NumPy at 128×784 @ 784×256 and 2048³.

Method: the systems of a row run in the same process, interleaved — each repeat times one block
of every system in turn — so that load that comes and goes hits them alike. Each block's length
is calibrated first; the table gives the minimum (the best estimate of the cost on a quiet
machine) and the median over the repeats; ratios and % of peak use the minima. The peak is the
better of NumPy's BLAS and initcore's GEMM at 2048³ with all threads, timed once at the start;
the better of the two is then timed again inside every step row, interleaved with that row's
systems, and the row's % of peak uses that row's own peak. A virtual machine's speed drifts by
10-20% within minutes, and a peak taken only at the start would charge a slow spell during a
later row to initcore's share. The load average and the share of the cores other processes used
while sampling are printed, with a warning when the machine is not quiet: then only the ratios
within a row mean something.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _bench_peers as _peers
from ._timing import _cpu_model, _stats, interleaved, load_warning, machine_load


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple  # (input, hidden..., output)
    batch: int
    activation: str = "relu"
    batchnorm: bool = False

    @property
    def flops(self) -> int:
        """Floating-point operations of one step's matrix products."""
        f = 0
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            f += 2 * self.batch * a * b  # forward
            f += 2 * self.batch * a * b  # dW
            if i > 0:
                f += 2 * self.batch * a * b  # dX (not needed for the input layer)
        return f

    def describe(self) -> str:
        s = "-".join(str(d) for d in self.sizes)
        if len(self.sizes) > 6:
            s = f"{self.sizes[0]}-{len(self.sizes) - 2}x{self.sizes[1]}-{self.sizes[-1]}"
        return f"{s}{' +BN' if self.batchnorm else ''} b{self.batch} {self.activation}"


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("tiny", (64, 64, 10), 32),
        Workload("mlp", (784, 256, 128, 10), 128),
        Workload("bn", (784, 256, 128, 10), 128, batchnorm=True),
        Workload("snn", (784,) + (100,) * 20 + (10,), 128, activation="selu"),
        Workload("wide", (784, 1024, 1024, 10), 512),
    ]
}


# One epoch of ``fit`` (469 steps of the ``mlp`` network), timed as a whole; not a step workload.
EPOCH = Workload("epoch", (784, 256, 128, 10), 128)


EPOCH_SAMPLES = 60_000


def build_model(w: Workload, backend: str, seed: int = 0, dtype: str = "float32", ic=None):
    """The workload's model; ``ic`` is the package to build it with (another build's, for
    ``benches/ab_builds.py``; default: this one)."""
    if ic is None:
        import initcore as ic

    init = "lecun_normal" if w.activation == "selu" else "he_normal"
    layers = []
    for units in w.sizes[1:-1]:
        layers.append(ic.layers.Dense(units, kernel_initializer=init))
        if w.batchnorm:
            layers.append(ic.layers.BatchNorm())
        layers.append(ic.layers.Activation(w.activation))
    layers.append(ic.layers.Dense(w.sizes[-1], kernel_initializer="glorot_uniform"))
    return ic.Sequential(layers, input_dim=w.sizes[0], seed=seed, dtype=dtype, backend=backend)


def make_data(w: Workload, seed: int = 0, dtype: str = "float32"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((w.batch, w.sizes[0])).astype(dtype)
    y = rng.integers(0, w.sizes[-1], size=w.batch).astype(np.int64)
    return x, y


def _initcore_step(w: Workload, backend: str, dtype: str = "float32") -> Callable[[], None]:
    import initcore as ic

    model = build_model(w, backend, dtype=dtype)
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    x, y = make_data(w, dtype=dtype)
    return lambda: model.train_step(x, y, opt, loss="cross_entropy")


def epoch_data(n: int = EPOCH_SAMPLES, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, EPOCH.sizes[0]), dtype=np.float32), rng.integers(0, EPOCH.sizes[-1], size=n)


def _initcore_epoch(backend: str) -> Callable[[], None]:
    import initcore as ic

    model = build_model(EPOCH, backend)
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    x, y = epoch_data()
    return lambda: model.fit(x, y, optimizer=opt, loss="cross_entropy", epochs=1, batch_size=EPOCH.batch, verbose=0)


def _torch_epoch() -> Callable[[], None] | None:
    return _peers.torch_epoch(*epoch_data(), EPOCH.batch)


def _torch_step(w: Workload) -> Callable[[], None] | None:
    return _peers.torch_step(w.sizes, w.activation, w.batchnorm, *make_data(w))


def _jax_step(w: Workload) -> Callable[[], None] | None:
    if w.batchnorm:
        return None  # a functional BatchNorm with running statistics is beyond this harness
    return _peers.jax_step(w.sizes, w.activation, *make_data(w))


def _blas_products(w: Workload) -> Callable[[], None]:
    """Only the matrix products of one step (``Workload.flops``: each layer's forward and dW, and
    dX above the input layer), by NumPy's BLAS on float32 workspaces, with nothing between them:
    no bias, activation, loss or optimizer. The share of peak a step could reach at best if its
    products ran as fast as the BLAS runs them alone."""
    rng = np.random.default_rng(0)
    n = w.batch
    h = [rng.standard_normal((n, d), dtype=np.float32) for d in w.sizes]  # each layer's input, and the logits
    dz = [rng.standard_normal((n, d), dtype=np.float32) for d in w.sizes[1:]]
    ws = [rng.standard_normal((a, b), dtype=np.float32) for a, b in zip(w.sizes[:-1], w.sizes[1:])]
    dws = [np.empty_like(W) for W in ws]
    dxs = [np.empty_like(x) for x in h[:-1]]
    calls = []
    for i, W in enumerate(ws):
        calls.append((h[i], W, h[i + 1]))  # forward
        calls.append((h[i].T, dz[i], dws[i]))  # dW = xᵀ dz
        if i > 0:
            calls.append((dz[i], W.T, dxs[i]))  # dX = dz Wᵀ

    def run():
        for a, b, out in calls:
            np.matmul(a, b, out=out)

    return run


def _tiny_fit() -> Callable[[], None]:
    """One epoch of ``fit`` for the tiny network: 1,000 batches of 32 (``TINY_FIT_STEPS``)."""
    import initcore as ic

    w = WORKLOADS["tiny"]
    model = build_model(w, "rust")
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((TINY_FIT_STEPS * w.batch, w.sizes[0]), dtype=np.float32)
    y = rng.integers(0, w.sizes[-1], x.shape[0])
    return lambda: model.fit(x, y, optimizer=opt, epochs=1, batch_size=w.batch, verbose=0)


TINY_FIT_STEPS = 1000


MATMUL_SHAPES = [(128, 784, 256), (2048, 2048, 2048)]


def _matmul(m: int, k: int, n: int, system: str) -> Callable[[], None]:
    import initcore as ic

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    if system == "numpy":
        return lambda: np.matmul(a, b, out=out)
    return lambda: ic.ops.matmul(a, b, out=out)


def gemm_peak(budget_s: float, repeats: int) -> dict:
    """float32 GEMM throughput at 2048³ with all threads: NumPy's BLAS, initcore's GEMM, the better."""
    n = PEAK_N
    t = interleaved({s: _matmul(n, n, n, s) for s in ("numpy", "initcore")}, budget_s, repeats)
    g = {s: 2 * n**3 / min(v) / 1e9 for s, v in t.items()}
    best = max(g, key=g.get)
    return {"numpy_gflops": g["numpy"], "initcore_gflops": g["initcore"], "gflops": g[best], "system": best}


PEAK_N = 2048


# --- the rows ---------------------------------------------------------------------------------------
SYSTEMS = ("initcore", "numpy", "torch", "jax", "initcore_1thread", "initcore_float64", "blas_products")
ROW_PEAK = "peak"  # the GEMM peak timed among a step row's systems (not a system of the table)


LABELS = {
    "initcore": "initcore",
    "numpy": "NumPy ref.",
    "torch": "PyTorch (fused Adam)",
    "jax": "JAX jit",
    "initcore_1thread": "initcore, 1 thread",
    "initcore_float64": "initcore float64",
    "blas_products": "NumPy's BLAS, products only",
}


#: Environment variables that change which kernels or how many threads the peers' BLAS uses.
BLAS_ENV_PREFIXES = ("OPENBLAS_", "GOTO", "MKL_", "OMP_", "BLIS_")


def blas_env() -> dict[str, str]:
    """The variables of ``BLAS_ENV_PREFIXES`` that are set: ``OPENBLAS_CORETYPE=Haswell``, say,
    pins OpenBLAS to AVX2 kernels and halves NumPy's peak on an AVX-512 machine."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(BLAS_ENV_PREFIXES)}


def _with_threads(fn: Callable[[], None], n: int) -> Callable[[], None]:
    """``fn`` with initcore on ``n`` threads: the pool is switched when another system's block
    left a different size (once per block, a pool build among many timed calls)."""
    import initcore as ic

    def run():
        if ic.get_num_threads() != n:
            ic.set_num_threads(n)
        fn()

    return run


def step_makers(peers: list[str], threads: int):
    """``{system: maker(workload) -> fn or None}`` for the step rows."""
    m = {}
    if "initcore" in peers:
        m["initcore"] = lambda w: _initcore_step(w, "rust")
    if "numpy" in peers:
        m["numpy"] = lambda w: _initcore_step(w, "numpy")
    if "torch" in peers:
        m["torch"] = _torch_step
    if "jax" in peers:
        m["jax"] = _jax_step
    if "initcore" in peers and threads > 1:
        m["initcore_1thread"] = lambda w: _initcore_step(w, "rust")
    if "initcore" in peers:
        m["initcore_float64"] = lambda w: _initcore_step(w, "rust", "float64")
    if "numpy" in peers:
        m["blas_products"] = _blas_products  # a ceiling, not a peer: it skips all but the products
    return m


def run(names: list[str], peers: list[str], budget_s: float = 1.0, repeats: int = 5, progress: bool = True) -> dict:
    """Measures every row; returns a JSON-ready dict (``format_table`` renders it)."""
    import initcore as ic

    threads = ic.get_num_threads()
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass
    load = machine_load()
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    say("bench: GEMM peak")
    peak = gemm_peak(budget_s, repeats)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "threads": threads,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas_env": blas_env(),
            "peak": peak,
            "load_before": load,
        },
        "steps": [],
        "fit": [],
        "matmul": [],
    }
    makers = step_makers(peers, threads)
    # The row's own peak: the system that won at the start, on all threads, as one more
    # interleaved "system" of the row.
    peak_fn = _with_threads(_matmul(PEAK_N, PEAK_N, PEAK_N, peak["system"]), threads)
    for name in [n for n in names if n in WORKLOADS]:
        w = WORKLOADS[name]
        say(f"bench: {name}")
        fns = {}
        for system, make in makers.items():
            fn = make(w)
            if fn is not None:
                one = 1 if system == "initcore_1thread" else threads
                fns[system] = _with_threads(fn, one)
        fns[ROW_PEAK] = peak_fn
        times = interleaved(fns, budget_s, repeats)
        ic.set_num_threads(threads)
        row_peak = 2 * PEAK_N**3 / min(times.pop(ROW_PEAK)) / 1e9
        row = {"workload": name, "description": w.describe(), "flops": w.flops, "peak_gflops": row_peak}
        row["systems"] = {}
        for system, ts in times.items():
            st = _stats(ts)
            st["gflops"] = w.flops / st["min"] / 1e9
            st["pct_of_peak"] = 100 * st["gflops"] / row_peak
            row["systems"][system] = st
        result["steps"].append(row)
    if "tiny_fit" in names and "initcore" in peers:
        say("bench: tiny inside fit")
        t = interleaved({"initcore": _tiny_fit()}, 2 * budget_s, repeats)
        st = _stats([v / TINY_FIT_STEPS for v in t["initcore"]])
        result["fit"].append(
            {
                "row": "tiny_fit",
                "description": "tiny in fit, 1,000 batches of 32 (per step)",
                "systems": {"initcore": st},
            }
        )
    if "epoch" in names:
        say("bench: epoch")
        fns = {"initcore": _initcore_epoch("rust")}
        if "torch" in peers:
            f = _torch_epoch()
            if f is not None:
                fns["torch"] = f
        if "numpy" in peers:
            fns["numpy"] = _initcore_epoch("numpy")
        t = interleaved(fns, 3 * budget_s, max(3, repeats // 2))
        desc = f"one epoch of {EPOCH_SAMPLES:,} samples, {EPOCH.describe()} (per epoch)"
        result["fit"].append({"row": "epoch", "description": desc, "systems": {k: _stats(v) for k, v in t.items()}})
    if "matmul" in names:
        for m_, k_, n_ in MATMUL_SHAPES:
            say(f"bench: matmul {m_}x{k_}@{k_}x{n_}")
            t = interleaved({s: _matmul(m_, k_, n_, s) for s in ("initcore", "numpy")}, budget_s, repeats)
            row = {"shape": [m_, k_, n_], "systems": {}}
            for s, ts in t.items():
                st = _stats(ts)
                st["gflops"] = 2 * m_ * k_ * n_ / st["min"] / 1e9
                row["systems"][s] = st
            result["matmul"].append(row)
    result["machine"]["load_after"] = machine_load(0.25, own_run=True)
    return result


# --- the targets of issue 8 ---------------------------------------------------------------------
PEAK_TARGETS = {"mlp": 78.0, "bn": 72.0, "snn": 50.0, "wide": 88.0}


def targets(result: dict, baseline: dict | None = None) -> list[dict]:
    """Each target of issue 8 with its measured value and whether it is met (``None``: not
    measured in this run)."""
    out = []

    def add(what, measured, goal, met):
        out.append({"target": what, "measured": measured, "goal": goal, "met": met})

    steps = {r["workload"]: r["systems"] for r in result["steps"]}
    for name, pct in PEAK_TARGETS.items():
        if name in steps:
            got = steps[name]["initcore"]["pct_of_peak"]
            alone = steps[name].get("blas_products")
            shown = f"{got:.0f}%" + ("" if alone is None else f" (BLAS products alone: {alone['pct_of_peak']:.0f}%)")
            add(f"{name}: % of peak", shown, f">= {pct:.0f}%", got >= pct)
    for name, sy in steps.items():
        ic_t = sy["initcore"]["min"]
        for peer in ("numpy", "torch", "jax"):
            if peer in sy:
                r = sy[peer]["min"] / ic_t
                add(f"{name}: faster than {LABELS[peer]}", f"{r:.2f}x", "> 1.00x", r > 1.0)
        if "initcore_1thread" in sy:
            r = sy["initcore_1thread"]["min"] / ic_t
            add(f"{name}: {result['machine']['threads']} threads vs 1", f"{r:.2f}x", ">= 1.00x", r >= 1.0)
    fit = {r["row"]: r["systems"] for r in result["fit"]}
    if "tiny_fit" in fit:
        us = fit["tiny_fit"]["initcore"]["min"] * 1e6
        add("tiny inside fit: µs per step", f"{us:.1f} µs", "<= 8 µs", us <= 8.0)
    if "epoch" in fit and "torch" in fit["epoch"]:
        r = fit["epoch"]["torch"]["min"] / fit["epoch"]["initcore"]["min"]
        add("epoch: faster than PyTorch's eager loop", f"{r:.2f}x", ">= 2.00x", r >= 2.0)
    for row in result["matmul"]:
        r = row["systems"]["numpy"]["min"] / row["systems"]["initcore"]["min"]
        m_, k_, n_ = row["shape"]
        add(f"ic.ops.matmul {m_}x{k_}@{k_}x{n_} vs NumPy", f"{r:.2f}x", ">= 0.95x", r >= 0.95)
    base = {r["workload"]: r["systems"] for r in (baseline or {}).get("steps", [])}
    for name, sy in steps.items():
        if "initcore_float64" not in sy:
            continue
        then = base.get(name, {}).get("initcore_float64")
        if then is None:
            add(
                f"{name}: float64 no slower than before",
                f"{sy['initcore_float64']['min'] * 1e6:.0f} µs",
                "baseline (--baseline)",
                None,
            )
        else:
            r = then["min"] / sy["initcore_float64"]["min"]
            add(f"{name}: float64 no slower than before", f"{r:.2f}x the baseline's speed", ">= 1.00x", r >= 1.0)
    return out


def _time(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs" if t < 1e-5 else f"{t * 1e6:.0f} µs"
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


def format_table(result: dict, baseline: dict | None = None) -> str:
    """The result as Markdown: the machine, the peak, one table per kind of row, the targets."""
    m = result["machine"]
    p = m["peak"]
    lines = [
        f"initcore bench, {result['date']}: {m['cpu']}, {m['cpus']} CPUs, initcore on {m['threads']} threads, "
        f"Python {m['python']}, NumPy {m['numpy']}",
        "",
        f"Peak (float32 GEMM 2048³, all threads) at the start: **{p['gflops']:.1f} GFLOP/s** "
        f"(NumPy's BLAS {p['numpy_gflops']:.1f}, initcore's GEMM {p['initcore_gflops']:.1f}); each step "
        "row times the better one again among its systems and takes its % of peak from that",
    ]
    if m.get("blas_env"):
        env = ", ".join(f"{k}={v}" for k, v in m["blas_env"].items())
        lines.append(f"BLAS environment: {env} (NumPy's and PyTorch's kernels or threads may not be their best)")
    for key, when in (("load_before", "before"), ("load_after", "after")):
        ld = m.get(key)
        if ld:
            la = "n/a" if ld["loadavg"] is None else " ".join(f"{v:.2f}" for v in ld["loadavg"])
            ob = "n/a" if ld["other_busy"] is None else f"{100 * ld['other_busy']:.0f}%"
            lines.append(f"Load average {when}: {la}; cores busy with other processes: {ob}")
            warn = load_warning(ld)
            if warn:
                lines.append(f"**{warn}**")
    if result["steps"]:
        present = [s for s in SYSTEMS if any(s in r["systems"] for r in result["steps"])]
        lines += [
            "",
            "Training steps (min / median of interleaved repeats; % of peak from the min):",
            "",
            "| workload | " + " | ".join(LABELS[s] for s in present) + " | peak in row | initcore % of peak |",
            "| --- |" + " ---: |" * (len(present) + 2),
        ]
        for r in result["steps"]:
            cells = []
            for s in present:
                st = r["systems"].get(s)
                cells.append("–" if st is None else f"{_time(st['min'])} / {_time(st['median'])}")
            pct = r["systems"]["initcore"]["pct_of_peak"]
            rp = r.get("peak_gflops")  # absent in results saved before the row peak existed
            cells.append("–" if rp is None else f"{rp:.1f}")
            lines.append(f"| {r['workload']} ({r['description']}) | " + " | ".join(cells) + f" | {pct:.0f}% |")
    if result["fit"]:
        lines += [
            "",
            "Training loops (min / median):",
            "",
            "| row | initcore | PyTorch eager | NumPy ref. |",
            "| --- | ---: | ---: | ---: |",
        ]
        for r in result["fit"]:
            cells = []
            for s in ("initcore", "torch", "numpy"):
                st = r["systems"].get(s)
                cells.append("–" if st is None else f"{_time(st['min'])} / {_time(st['median'])}")
            lines.append(f"| {r['description']} | " + " | ".join(cells) + " |")
    if result["matmul"]:
        lines += [
            "",
            "ic.ops.matmul, float32 (min; GFLOP/s):",
            "",
            "| shape | initcore | NumPy |",
            "| --- | ---: | ---: |",
        ]
        for r in result["matmul"]:
            m_, k_, n_ = r["shape"]
            cells = [
                f"{_time(r['systems'][s]['min'])} ({r['systems'][s]['gflops']:.1f})" for s in ("initcore", "numpy")
            ]
            lines.append(f"| {m_}x{k_} @ {k_}x{n_} | " + " | ".join(cells) + " |")
    tg = result.get("targets") or targets(result, baseline)
    if tg:
        lines += [
            "",
            "Targets (issue 8; ratios = peer's min time / initcore's):",
            "",
            "| target | measured | goal | |",
            "| --- | ---: | ---: | --- |",
        ]
        for t in tg:
            status = "not measured" if t["met"] is None else ("met" if t["met"] else "**missed**")
            lines.append(f"| {t['target']} | {t['measured']} | {t['goal']} | {status} |")
    return "\n".join(lines)


ROWS = [*WORKLOADS, "tiny_fit", "epoch", "matmul"]


def add_subcommand(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time training steps against NumPy, PyTorch and JAX")
    names = ",".join(ROWS)
    p.add_argument("--workloads", default=names, help=f"comma-separated subset of {names}")
    p.add_argument(
        "--peers", default="initcore,numpy,torch,jax", help="comma-separated subset of initcore,numpy,torch,jax"
    )
    p.add_argument(
        "--budget", type=float, default=1.0, help="seconds of timing per system and row (split over the repeats)"
    )
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per row")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--threads", type=int, default=None, help="initcore threads (default: all CPUs)")
    p.add_argument("--baseline", default=None, help="an earlier --json output, for the float64 target")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import initcore as ic

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [n for n in names if n not in ROWS] + [p for p in peers if p not in ("initcore", "numpy", "torch", "jax")]
    if bad or not names or not peers:
        raise ValueError(f"unknown workload or peer: {', '.join(bad) or '(none given)'}")
    if not 0 < args.budget < float("inf"):  # also refuses nan
        raise ValueError(f"--budget must be a finite number of seconds > 0, got {args.budget}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    baseline = None
    if args.baseline:
        with open(args.baseline) as f:
            baseline = json.load(f)
    if "initcore" not in peers:
        peers = ["initcore"] + peers
    if args.threads is not None:
        ic.set_num_threads(args.threads)
    result = run(names, peers, budget_s=args.budget, repeats=args.repeats, progress=not args.json)
    result["targets"] = targets(result, baseline)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
