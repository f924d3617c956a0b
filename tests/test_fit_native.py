"""``fit``'s native epoch (``fused.train_batches``, ``FusedPlan.epoch``, ``kernels/epoch.rs``):
the same bits as one step per batch for every loss, dtype and dropout chunking; thread-count
bit identity of whole epochs; callbacks that must see a batch (a learning-rate change, a stop,
``Watch``) take effect at their step; progress reports; Ctrl-C mid-epoch; flat memory."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import initcore as ic
from initcore import callbacks as C
from initcore import fused
from initcore import layers as L
from test_fused import compare, every_layer, snapshot


def net(dtype="float32", layers=None, input_dim=6, fused_on=True, seed=0):
    m = ic.Sequential(layers if layers is not None else every_layer(), input_dim=input_dim, seed=seed, dtype=dtype)
    m.fused = fused_on
    return m


def data(n=203, d=6, c=3, loss="cross_entropy", seed=1):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d))
    y = r.integers(0, c, n) if loss == "cross_entropy" else r.random((n, c))
    return x, y


def step_by_step(m, x, y, opt, loss, epochs, batch_size):
    """``fit``'s loop written out with one (fused) ``train_step`` per batch."""
    x = m._input(x)
    y = m._target(y, loss, x.shape[0])
    logs = []
    for _ in range(epochs):
        order = m.rng.permutation(x.shape[0])
        total, seen, acc = 0.0, 0, [0, 0]
        for idx in m._batches(x.shape[0], batch_size, order):
            value = m.train_step(x[idx], y[idx], opt, loss)
            total += value * len(idx)
            seen += len(idx)
            counts = m._accuracy_counts(m.last_output, y[idx], loss)
            if counts is not None:
                acc[0] += counts[0]
                acc[1] += counts[1]
        logs.append((total / seen, acc[0] / acc[1] if acc[1] else None))
    return logs


def fit_logs(h):
    return list(zip(h.history["loss"], h.history.get("accuracy", [None] * len(h.history["loss"]))))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_native_epochs_equal_one_step_per_batch(dtype, loss):
    x, y = data(loss=loss)
    a, b = net(dtype), net(dtype)
    opt_a, opt_b = ic.optim.NAdam(a.parameters(), lr=1e-2), ic.optim.NAdam(b.parameters(), lr=1e-2)
    h = a.fit(x, y, optimizer=opt_a, loss=loss, epochs=2, batch_size=16, verbose=0)
    want = step_by_step(b, x, y, opt_b, loss, 2, 16)
    assert fit_logs(h) == want
    compare(snapshot(a, opt_a), snapshot(b, opt_b), "exact", dtype)
    np.testing.assert_array_equal(a.last_output, b.last_output)


def test_dropout_uniforms_drawn_in_chunks_give_the_same_bits(monkeypatch):
    x, y = data(300)
    runs = []
    for chunk in (fused.UNIFORM_CHUNK, 200):  # 200 values: a call per batch or so
        monkeypatch.setattr(fused, "UNIFORM_CHUNK", chunk)
        m = net()
        opt = ic.optim.Adam(m.parameters(), lr=1e-2)
        h = m.fit(x, y, optimizer=opt, epochs=2, batch_size=8, verbose=0)
        runs.append((fit_logs(h), snapshot(m, opt)))
    assert runs[0][0] == runs[1][0]
    compare(runs[0][1], runs[1][1], "exact", "float32")


def test_batchnorm_drops_a_last_batch_of_one_row():
    x, y = data(33)  # 32 + 1: the single-row batch is dropped, as in the step loop
    a, b = net(), net()
    oa, ob = ic.optim.SGD(a.parameters(), lr=0.1), ic.optim.SGD(b.parameters(), lr=0.1)
    a.fit(x, y, optimizer=oa, epochs=1, batch_size=8, verbose=0)
    step_by_step(b, x, y, ob, "cross_entropy", 1, 8)
    assert oa.step_count == 4
    compare(snapshot(a, oa), snapshot(b, ob), "exact", "float32")


def test_whole_epochs_are_bit_identical_for_1_2_and_3_threads():
    layers = lambda: [L.Dense(256, activation="relu"), L.BatchNorm(), L.Dropout(0.1), L.Dense(128), L.Dense(10)]  # noqa: E731
    r = np.random.default_rng(0)
    x, y = r.standard_normal((1000, 64)).astype(np.float32), r.integers(0, 10, 1000)
    before = ic.get_num_threads()
    runs = []
    try:
        for t in (1, 2, 3):
            ic.set_num_threads(t)
            m = net(layers=layers(), input_dim=64)
            opt = ic.optim.Adam(m.parameters(), lr=1e-3)
            h = m.fit(x, y, optimizer=opt, epochs=2, batch_size=128, verbose=0)
            runs.append((fit_logs(h), snapshot(m, opt)))
    finally:
        ic.set_num_threads(before)
    for logs, snap in runs[1:]:
        assert logs == runs[0][0]
        compare(snap, runs[0][1], "exact", "float32")


class Recorder(C.Callback):
    """Sees batch ``at`` of each epoch (only that one), and acts there."""

    def __init__(self, at, action):
        super().__init__()
        self.at, self.action, self.seen = at, action, []

    def next_batch_hook(self, batch):
        return self.at if batch <= self.at else None

    def on_batch_begin(self, batch, logs=None):
        self.seen.append(batch)
        if self.action == "lr":
            self.model.optimizer.lr = 0.5

    def on_batch_end(self, batch, logs=None):
        if self.action == "stop":
            self.model.stop_training = True


@pytest.mark.parametrize("hooks", ["declared", "every_batch"])
def test_a_learning_rate_change_mid_epoch_takes_effect_at_its_step(hooks):
    x, y = data(160)
    m = net()
    opt = ic.optim.SGD(m.parameters(), lr=0.01)
    if hooks == "declared":
        cb = Recorder(3, "lr")
    else:  # a plain callback with a batch hook: every batch is run on its own
        cb = C.LambdaCallback(on_batch_begin=lambda b, logs: setattr(opt, "lr", 0.5) if b == 3 else None)
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=16, verbose=0, callbacks=[cb])
    ref = net()
    ropt = ic.optim.SGD(ref.parameters(), lr=0.01)
    xr, yr = ref._input(x), ref._target(y, "cross_entropy", 160)
    order = ref.rng.permutation(160)
    for b, idx in enumerate(ref._batches(160, 16, order)):
        if b == 3:
            ropt.lr = 0.5
        ref.train_step(xr[idx], yr[idx], ropt)
    compare(snapshot(m, opt), snapshot(ref, ropt), "exact", "float32")
    if hooks == "declared":
        assert cb.seen == [3]


def test_a_stop_mid_epoch_takes_effect_after_its_step():
    x, y = data(160)
    m = net()
    opt = ic.optim.Adam(m.parameters())
    cb = Recorder(5, "stop")
    h = m.fit(x, y, optimizer=opt, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert opt.step_count == 6 and cb.seen == [5] and len(h.history["loss"]) == 1


def test_watch_records_at_its_steps_and_leaves_the_trajectory_unchanged():
    from initcore.diagnostics import Watch

    x, y = data(300)
    layers = lambda: [L.Dense(16, activation="relu"), L.Dense(8, activation="tanh"), L.Dense(3)]  # noqa: E731
    runs = []
    for fused_on in (True, False):
        m = net(layers=layers(), fused_on=fused_on)
        opt = ic.optim.Adam(m.parameters())
        w = Watch(every=7)
        m.fit(x, y, optimizer=opt, epochs=2, batch_size=16, verbose=0, callbacks=[w])
        runs.append((snapshot(m, opt), [(r["epoch"], r["batch"]) for r in w.log], w.step))
    compare(runs[0][0], runs[1][0], "exact", "float32")
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2] == 38
    assert len(runs[0][1]) == 6  # steps 0, 7, ..., 35


def test_progress_reports_and_the_bar_count_every_batch(monkeypatch):
    x, y = data(2000)
    m = net(layers=[L.Dense(32, activation="relu"), L.Dense(3)])
    reports = []

    class Reports(C.Callback):
        def on_batches_end(self, first, last, logs=None):
            reports.append((first, last, logs["size"]))

    bar = C.ProgressBar(stream=io.StringIO(), bar=True)
    m.fit(x, y, epochs=1, batch_size=10, callbacks=[Reports(), bar], verbose=0)
    assert reports[0][0] == 0 and reports[-1][1] == 200
    assert all(a[1] == b[0] for a, b in zip(reports, reports[1:]))
    assert sum(r[2] for r in reports) == 2000 and bar.samples == 2000


def test_rss_stays_flat_over_10000_native_steps():
    from test_fused import _rss_pages

    m = net(layers=[L.Dense(8, activation="relu"), L.Dropout(0.1), L.Dense(3)], input_dim=4)
    r = np.random.default_rng(0)
    x, y = r.standard_normal((10_000, 4)).astype(np.float32), r.integers(0, 3, 10_000)
    opt = ic.optim.Adam(m.parameters())
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=1, verbose=0)  # warm-up: plan, buffers
    before = _rss_pages()
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=1, verbose=0)
    grown = (_rss_pages() - before) * 4096
    assert opt.step_count == 20_000
    assert grown < 256 * 1024, f"resident memory grew by {grown} bytes over 10,000 steps"


CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np, initcore as ic
    from initcore import layers as L
    def build():
        return ic.Sequential([L.Dense(1024, activation="relu"), L.Dense(10)], input_dim=256, seed=3)
    r = np.random.default_rng(0)
    x, y = r.standard_normal((250_000, 256), dtype=np.float32), r.integers(0, 10, 250_000)
    m = build()
    opt = ic.optim.Adam(m.parameters())
    m.fit(x[:64], y[:64], optimizer=opt, epochs=1, batch_size=32, verbose=0)  # warm-up
    print("ready", flush=True)
    try:
        m.fit(x, y, optimizer=opt, epochs=1, batch_size=32, verbose=0)
        print("finished", flush=True)
    except KeyboardInterrupt:
        t = time.perf_counter()
        steps = opt.step_count
        # The model as of its last completed step: the same steps taken one at a time.
        ref = build()
        ropt = ic.optim.Adam(ref.parameters())
        ref.fit(x[:64], y[:64], optimizer=ropt, epochs=1, batch_size=32, verbose=0)
        order = ref.rng.permutation(x.shape[0])
        for idx in ref._batches(x.shape[0], 32, order)[: steps - 2]:
            ref.train_step(x[idx], y[idx], ropt)
        same = all(np.array_equal(p.value, q.value) for p, q in zip(m.parameters(), ref.parameters()))
        same = same and ropt.step_count == steps and m.rng.bit_generator.state == ref.rng.bit_generator.state
        print("interrupted", steps, same, t, flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child")
def test_ctrl_c_mid_native_epoch_raises_and_keeps_the_last_step():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # inside the 7,813-step epoch (about 1.9 s with two quiet AVX-512 cores)
        p.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        out = p.stdout.readline().split()
    finally:
        p.kill() if p.poll() is None else None
        p.wait(60)
    assert out[0] == "interrupted", out
    steps, same, raised = int(out[1]), out[2] == "True", float(out[3])
    assert 2 < steps < 7_815 and same
    # perf_counter is system-wide (CLOCK_MONOTONIC) on Linux, so the two clocks compare.
    if sys.platform.startswith("linux"):
        assert raised - sent < 1.0, f"KeyboardInterrupt came {raised - sent:.2f} s after SIGINT"


def test_train_batches_takes_a_learning_rate_per_step():
    x, y = data(96)
    a, b = net(), net()
    oa, ob = ic.optim.SGD(a.parameters(), lr=0.01), ic.optim.SGD(b.parameters(), lr=0.01)
    lrs = [0.01 * (k + 1) for k in range(6)]
    xa, ya = a._input(x), a._target(y, "cross_entropy", 96)
    order = a.rng.permutation(96)
    steps, total, size, correct, count = fused.train_batches(a, xa, ya, oa, "cross_entropy", order, 16, 0, 6, lrs)
    assert (steps, size, count) == (6, 96, 96) and oa.lr == 0.01
    xb, yb = b._input(x), b._target(y, "cross_entropy", 96)
    order_b = b.rng.permutation(96)
    want = 0.0
    for k, idx in enumerate(b._batches(96, 16, order_b)):
        ob.lr = lrs[k]
        want += b.train_step(xb[idx], yb[idx], ob) * len(idx)
    assert total == want
    compare(snapshot(a, oa), snapshot(b, ob), "exact", "float32")


@pytest.mark.parametrize("has_bn", [False, True])
def test_epoch_batches_are_the_slices_of_the_order(has_bn):
    """``_batches`` is lazy; it holds the slices a list would, and leaves out a batch of one
    row only when the model has BatchNorm."""
    layers = [L.Dense(4), L.BatchNorm(), L.Dense(3)] if has_bn else [L.Dense(3)]
    m = ic.Sequential(layers, input_dim=5, seed=0)
    for n in (1, 2, 31, 32, 33, 64, 65, 97):
        order = np.random.default_rng(n).permutation(n)
        for bs in (1, 2, 16, 32, 64, 200):
            want = [order[i : i + bs] for i in range(0, n, bs) if not (has_bn and min(bs, n - i) == 1)]
            got = m._batches(n, bs, order)
            assert len(got) == len(want), (n, bs)
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
            inner = got[1:-1]
            assert len(inner) == len(want[1:-1]) and all(np.array_equal(g, w) for g, w in zip(inner, want[1:-1]))
            if want:
                assert np.array_equal(got[-1], want[-1])
            with pytest.raises(IndexError):
                got[len(want)]
