"""``initcore bench``: initcore's training step against its NumPy reference, PyTorch (eager,
fused Adam) and JAX (jit), each when importable, with the machine's float32 GEMM peak and the
targets of issue 8 beside the measured ratios.

One step = forward, softmax cross-entropy, backward, Adam update (float32 unless a column says
otherwise). Rows:

- the five step workloads (``WORKLOADS``): every system, plus initcore on one thread and in
  float64;
- ``tiny`` inside ``fit``: µs per step over an epoch of 1,000 batches of 32;
- one epoch of ``fit`` over 60,000 MNIST-sized samples (784-256-128-10, batch 128, shuffled,
  Adam) against PyTorch's eager loop and the NumPy reference;
- ``ic.ops.matmul`` against NumPy at 128×784 @ 784×256 and 2048³.

Method: the systems of a row run in the same process, interleaved — each repeat times one block
of every system in turn — so that load that comes and goes hits them alike. Each block's length
is calibrated first; the table gives the minimum (the best estimate of the cost on a quiet
machine) and the median over the repeats; ratios and % of peak use the minima. The peak is the
better of NumPy's BLAS and initcore's GEMM at 2048³ with all threads. The load average and the
share of the cores other processes used while sampling are printed, with a warning when the
machine is not quiet: then only the ratios within a row mean something.
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


def _torch_adam(torch, net):
    """Adam with its fused CPU kernel (PyTorch >= 2.4), else the default (foreach) one."""
    try:
        return torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(net.parameters(), lr=1e-3)


def _torch_epoch() -> Callable[[], None] | None:
    try:
        import torch
    except Exception:
        return None
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    opt = _torch_adam(torch, net)
    x, y = epoch_data()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()

    def epoch():
        order = torch.randperm(xt.shape[0])
        for i in range(0, xt.shape[0], EPOCH.batch):
            idx = order[i : i + EPOCH.batch]
            opt.zero_grad(set_to_none=True)
            lossf(net(xt[idx]), yt[idx]).backward()
            opt.step()

    return epoch


def _torch_step(w: Workload) -> Callable[[], None] | None:
    try:
        import torch
    except Exception:
        return None
    torch.manual_seed(0)
    mods = []
    act = {"relu": torch.nn.ReLU, "selu": torch.nn.SELU, "tanh": torch.nn.Tanh}[w.activation]
    for a, b in zip(w.sizes[:-2], w.sizes[1:-1]):
        mods.append(torch.nn.Linear(a, b))
        if w.batchnorm:
            mods.append(torch.nn.BatchNorm1d(b))
        mods.append(act())
    mods.append(torch.nn.Linear(w.sizes[-2], w.sizes[-1]))
    net = torch.nn.Sequential(*mods)
    opt = _torch_adam(torch, net)
    x, y = make_data(w)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


def _jax_step(w: Workload) -> Callable[[], None] | None:
    if w.batchnorm:
        return None  # a functional BatchNorm with running statistics is beyond this harness
    try:
        import jax
        import jax.numpy as jnp
    except Exception:
        return None
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(w.sizes[:-1], w.sizes[1:]):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (a, b), jnp.float32) * np.sqrt(2.0 / a), jnp.zeros((b,), jnp.float32)))
    act = {"relu": jax.nn.relu, "selu": jax.nn.selu, "tanh": jnp.tanh}[w.activation]

    def loss_fn(ps, x, y):
        h = x
        for i, (W, b) in enumerate(ps):
            h = h @ W + b
            if i < len(ps) - 1:
                h = act(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8

    @jax.jit
    def step(ps, m, v, t, x, y):
        g = jax.grad(loss_fn)(ps, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        ps = jax.tree_util.tree_map(lambda p, m, v: p - lr / bc1 * m / (jnp.sqrt(v / bc2) + eps), ps, m, v)
        return ps, m, v, t

    x, y = make_data(w)
    x, y = jnp.asarray(x), jnp.asarray(y)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]

    def run():
        state[:] = step(*state, x, y)
        jax.block_until_ready(state[0])

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
    n = 2048
    t = interleaved({s: _matmul(n, n, n, s) for s in ("numpy", "initcore")}, budget_s, repeats)
    g = {s: 2 * n**3 / min(v) / 1e9 for s, v in t.items()}
    return {"numpy_gflops": g["numpy"], "initcore_gflops": g["initcore"], "gflops": max(g.values())}


# --- the rows ---------------------------------------------------------------------------------------
SYSTEMS = ("initcore", "numpy", "torch", "jax", "initcore_1thread", "initcore_float64")


LABELS = {
    "initcore": "initcore",
    "numpy": "NumPy ref.",
    "torch": "PyTorch (fused Adam)",
    "jax": "JAX jit",
    "initcore_1thread": "initcore, 1 thread",
    "initcore_float64": "initcore float64",
}


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
            "peak": peak,
            "load_before": load,
        },
        "steps": [],
        "fit": [],
        "matmul": [],
    }
    makers = step_makers(peers, threads)
    for name in [n for n in names if n in WORKLOADS]:
        w = WORKLOADS[name]
        say(f"bench: {name}")
        fns = {}
        for system, make in makers.items():
            fn = make(w)
            if fn is not None:
                one = 1 if system == "initcore_1thread" else threads
                fns[system] = _with_threads(fn, one)
        times = interleaved(fns, budget_s, repeats)
        ic.set_num_threads(threads)
        row = {"workload": name, "description": w.describe(), "flops": w.flops, "systems": {}}
        for system, ts in times.items():
            st = _stats(ts)
            st["gflops"] = w.flops / st["min"] / 1e9
            st["pct_of_peak"] = 100 * st["gflops"] / peak["gflops"]
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
            add(f"{name}: % of peak", f"{got:.0f}%", f">= {pct:.0f}%", got >= pct)
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
        f"Peak (float32 GEMM 2048³, all threads): **{p['gflops']:.1f} GFLOP/s** "
        f"(NumPy's BLAS {p['numpy_gflops']:.1f}, initcore's GEMM {p['initcore_gflops']:.1f})",
    ]
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
            "| workload | " + " | ".join(LABELS[s] for s in present) + " | initcore % of peak |",
            "| --- |" + " ---: |" * (len(present) + 1),
        ]
        for r in result["steps"]:
            cells = []
            for s in present:
                st = r["systems"].get(s)
                cells.append("–" if st is None else f"{_time(st['min'])} / {_time(st['median'])}")
            pct = r["systems"]["initcore"]["pct_of_peak"]
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
