"""``initcore bench``: time one training step of the standard workloads, initcore against its
NumPy reference and, when installed, PyTorch (eager) and JAX (jit).

One step = forward, softmax cross-entropy, backward, Adam update (float32). The ``epoch`` row
times one epoch of ``fit`` instead (60,000 random MNIST-sized samples, 784-256-128-10, batch 128,
shuffled, Adam): the whole training loop, data shuffling and batching included. Every peer runs in
the same process, one after another, on the same data, so the table's ratios compare like with
like on this machine at this moment; absolute times on a shared machine mean little.

Columns: time per step (median of ``repeats`` timed blocks after a warm-up), steps per second,
GFLOP/s (2·n·in·out per dense layer forward, twice that backward, less the first layer's dX),
% of this machine's measured float32 matmul peak, and the ratio of each peer's time to initcore's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


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


def build_model(w: Workload, backend: str, seed: int = 0):
    import initcore as ic

    init = "lecun_normal" if w.activation == "selu" else "he_normal"
    layers = []
    for units in w.sizes[1:-1]:
        layers.append(ic.layers.Dense(units, kernel_initializer=init))
        if w.batchnorm:
            layers.append(ic.layers.BatchNorm())
        layers.append(ic.layers.Activation(w.activation))
    layers.append(ic.layers.Dense(w.sizes[-1], kernel_initializer="glorot_uniform"))
    return ic.Sequential(layers, input_dim=w.sizes[0], seed=seed, dtype="float32", backend=backend)


def make_data(w: Workload, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((w.batch, w.sizes[0])).astype(np.float32)
    y = rng.integers(0, w.sizes[-1], size=w.batch).astype(np.int64)
    return x, y


def _initcore_step(w: Workload, backend: str) -> Callable[[], None]:
    import initcore as ic

    model = build_model(w, backend)
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    x, y = make_data(w)
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
    try:
        import torch
    except Exception:
        return None
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
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
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
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


def time_step(step: Callable[[], None], budget_s: float, repeats: int = 5) -> float:
    """Median seconds per call: calibrate a block length, then time ``repeats`` blocks."""
    step()
    step()  # warm-up (plans, caches, JIT)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < budget_s / (repeats + 1) or n < 2:
        step()
        n += 1
    per_block = max(1, n)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(per_block):
            step()
        times.append((time.perf_counter() - t) / per_block)
    return float(np.median(times))


def matmul_peak_gflops(budget_s: float = 0.5) -> float:
    """This machine's float32 matmul throughput through initcore's GEMM (1024³)."""
    import initcore as ic

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    out = np.empty_like(a)
    t = time_step(lambda: ic.ops.matmul(a, a, out=out), budget_s, repeats=3)
    return 2 * 1024**3 / t / 1e9


@dataclass
class Row:
    workload: str
    description: str
    peer: str
    seconds_per_step: float
    steps_per_second: float
    gflops: float
    pct_of_peak: float
    ratio_to_initcore: float = float("nan")


def run(names: list[str], peers: list[str], budget_s: float = 1.0, progress: bool = True) -> dict:
    """Times every (workload, peer) pair; returns a JSON-ready dict."""
    import initcore as ic

    try:
        from tqdm.auto import tqdm
    except Exception:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    peak = matmul_peak_gflops()
    makers = {
        "initcore": lambda w: _initcore_step(w, "rust"),
        "numpy": lambda w: _initcore_step(w, "numpy"),
        "torch": _torch_step,
        "jax": _jax_step,
    }
    jobs = [(n, p) for n in names for p in peers]
    bar = tqdm(jobs, desc="bench", disable=not progress, file=sys.stderr) if tqdm else jobs
    rows: list[Row] = []
    epoch_makers = {
        "initcore": lambda: _initcore_epoch("rust"),
        "numpy": lambda: _initcore_epoch("numpy"),
        "torch": _torch_epoch,
        "jax": lambda: None,
    }
    steps_per_epoch = -(-EPOCH_SAMPLES // EPOCH.batch)
    for name, peer in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"{name}/{peer}")
        if name == "epoch":
            step, flops = epoch_makers[peer](), EPOCH.flops * steps_per_epoch
            desc = f"{EPOCH.describe()}, {EPOCH_SAMPLES:,} samples, fit (time per epoch)"
        else:
            w = WORKLOADS[name]
            step, flops, desc = makers[peer](w), w.flops, w.describe()
        if step is None:
            continue
        t = time_step(step, budget_s, repeats=3 if name == "epoch" else 5)
        g = flops / t / 1e9
        rows.append(Row(name, desc, peer, t, 1 / t, g, 100 * g / peak))
    base = {r.workload: r.seconds_per_step for r in rows if r.peer == "initcore"}
    for r in rows:
        if r.workload in base:
            r.ratio_to_initcore = r.seconds_per_step / base[r.workload]
    return {
        "machine": {"cpus": os.cpu_count(), "threads": ic.get_num_threads(), "matmul_peak_gflops": peak},
        "rows": [asdict(r) for r in rows],
    }


def format_table(result: dict) -> str:
    lines = [
        f"matmul peak (float32, 1024^3, {result['machine']['threads']} threads): "
        f"{result['machine']['matmul_peak_gflops']:.1f} GFLOP/s",
        "",
        "| workload | peer | time/step | steps/s | GFLOP/s | % peak | × initcore's time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        t = r["seconds_per_step"]
        ts = f"{t * 1e6:.0f} µs" if t < 1e-2 else f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"
        lines.append(
            f"| {r['workload']} ({r['description']}) | {r['peer']} | {ts} | {r['steps_per_second']:.0f} | "
            f"{r['gflops']:.1f} | {r['pct_of_peak']:.0f}% | {r['ratio_to_initcore']:.2f} |"
        )
    return "\n".join(lines)


def add_subcommand(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time training steps against NumPy, PyTorch and JAX")
    names = ",".join([*WORKLOADS, "epoch"])
    p.add_argument("--workloads", default=names, help=f"comma-separated subset of {names}")
    p.add_argument(
        "--peers", default="initcore,numpy,torch,jax", help="comma-separated subset of initcore,numpy,torch,jax"
    )
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timing per (workload, peer)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--threads", type=int, default=None, help="initcore threads (default: all CPUs)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import initcore as ic

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [n for n in names if n not in WORKLOADS and n != "epoch"] + [
        p for p in peers if p not in ("initcore", "numpy", "torch", "jax")
    ]
    if bad or not names or not peers:
        raise ValueError(f"unknown workload or peer: {', '.join(bad) or '(none given)'}")
    if not 0 < args.budget < float("inf"):  # also refuses nan
        raise ValueError(f"--budget must be a finite number of seconds > 0, got {args.budget}")
    if "initcore" not in peers:
        peers = ["initcore"] + peers
    if args.threads is not None:
        ic.set_num_threads(args.threads)
    result = run(names, peers, budget_s=args.budget, progress=not args.json)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
