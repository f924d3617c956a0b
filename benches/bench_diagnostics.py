"""Cost of ``diagnostics.Watch`` on the ``mlp`` workload (784-256-128-10 ReLU, He, batch 128,
Adam, float32, Rust backend): one training step alone, one step with the Watch hooks at the
default ``every=20`` (the record cost amortized over 20 steps, as in ``fit``), and one record
alone (``column_stats`` on every layer's pre-activation and activation, weight snapshot, norms).

The overhead is ``record time / every / step time``; the target is under 10% at the default
``every``. Run this file directly (``python benches/bench_diagnostics.py``) for that ratio (from
minima over many repeats); under pytest-benchmark the three timings sit side by side in one
group.
"""

import time

import numpy as np

import initcore as ic
from initcore import diagnostics as D

EVERY = 20


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


def test_step_with_watch_every_20(benchmark):
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


def overhead(repeats=300, every=EVERY, backend="rust"):
    """``(t_step, t_record, overhead)``: the minimum over ``repeats`` of one training step and of
    one record (snapshot before the step, statistics after it), and the overhead of recording
    every ``every`` steps, ``t_record / every / t_step``. Minima, because on a shared machine they
    are the timings least disturbed by other processes."""
    model, opt, x, y, watch = setup(1, backend)
    for _ in range(3):  # warm-up: allocations, caches, the first record's histogram edges
        step_watched(model, opt, x, y, watch)
    steps, records = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        watch.on_batch_begin(0, {"size": len(x)})
        t1 = time.perf_counter()
        loss = model.train_step(x, y, opt)
        t2 = time.perf_counter()
        watch.on_batch_end(0, {"loss": loss, "size": len(x)})
        t3 = time.perf_counter()
        steps.append(t2 - t1)
        records.append((t1 - t0) + (t3 - t2))
    ts, tr = float(np.min(steps)), float(np.min(records))
    return ts, tr, tr / every / ts


if __name__ == "__main__":
    ts, tr, _ = overhead()
    print(f"mlp step {ts * 1e3:.3f} ms, one Watch record {tr * 1e3:.3f} ms (threads: {ic.get_num_threads()})")
    for every in (1, 5, EVERY, 50):
        print(f"every={every:>3}: overhead {100 * tr / every / ts:.1f}% of training time")
