"""Cost of ``diagnostics.Watch`` on the ``mlp`` workload (784-256-128-10 ReLU, He, batch 128,
Adam, float32, Rust backend): one training step alone, one step with the Watch hooks at the
default ``every=10`` (the record cost amortized over 10 steps, as in ``fit``), and one record
alone (``column_stats`` on every layer's pre-activation and activation, weight snapshot, norms).

The overhead is ``(with watch − without) / without``; the target is under 10%. Run this file
directly (``python benches/bench_diagnostics.py``) for that ratio measured with interleaved
repeats; under pytest-benchmark the three timings sit side by side in one group.
"""

import time

import numpy as np

import initcore as ic
from initcore import diagnostics as D

EVERY = 10


def setup(every=EVERY, backend="rust"):
    from initcore.bench import WORKLOADS, build_model, make_data

    w = WORKLOADS["mlp"]
    model = build_model(w, backend)
    opt = ic.optim.Adam(model.parameters(), lr=1e-3)
    x, y = make_data(w)
    model.optimizer = opt
    watch = D.Watch(every=every)
    watch.set_model(model)
    watch.on_train_begin({})
    watch.on_epoch_begin(0, {})
    return model, opt, x, y, watch


def step_plain(model, opt, x, y):
    model.train_step(x, y, opt)


def step_watched(model, opt, x, y, watch):
    watch.on_batch_begin(0, {"size": len(x)})
    loss = model.train_step(x, y, opt)
    watch.on_batch_end(0, {"loss": loss, "size": len(x)})


def test_step_without_watch(benchmark):
    benchmark.group = "Watch overhead, mlp workload (784-256-128-10, batch 128, Adam)"
    model, opt, x, y, _ = setup()
    benchmark(step_plain, model, opt, x, y)


def test_step_with_watch_every_10(benchmark):
    benchmark.group = "Watch overhead, mlp workload (784-256-128-10, batch 128, Adam)"
    model, opt, x, y, watch = setup()
    benchmark(step_watched, model, opt, x, y, watch)
    assert len(watch.log) >= 1


def test_one_watch_record(benchmark):
    benchmark.group = "Watch overhead, mlp workload (784-256-128-10, batch 128, Adam)"
    model, opt, x, y, watch = setup(every=1)
    watch.on_batch_begin(0, {"size": len(x)})
    model.train_step(x, y, opt)
    rec = benchmark(watch.record, 0, None, len(x))
    assert len(rec["layers"]) == 3 and len(rec["params"]) == 6


def overhead(repeats=7, steps=100, every=EVERY, backend="rust"):
    """Median over interleaved repeats of the per-step time without and with the Watch hooks;
    returns ``(t_plain, t_watched, overhead fraction)``."""
    plain, watched = [], []
    a = setup(every, backend)
    b = setup(every, backend)
    for _ in range(3):  # warm-up: allocations, caches, the first record's edges
        step_plain(*a[:4])
        step_watched(*b)
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step_plain(*a[:4])
        plain.append((time.perf_counter() - t) / steps)
        t = time.perf_counter()
        for _ in range(steps):
            step_watched(*b)
        watched.append((time.perf_counter() - t) / steps)
    tp, tw = float(np.median(plain)), float(np.median(watched))
    return tp, tw, tw / tp - 1.0


if __name__ == "__main__":
    for every in (1, EVERY, 50):
        tp, tw, ov = overhead(every=every)
        print(f"every={every:>3}: step {tp * 1e3:.3f} ms, with Watch {tw * 1e3:.3f} ms, overhead {100 * ov:+.1f}%")
