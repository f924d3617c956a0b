"""Nothing hangs, nothing aborts, nothing is half-done (issue 9): fork, memory exhaustion,
one-row BatchNorm batches, atomic optimizer steps, non-finite losses, shared models and
threads, bad arguments and the CLI (files and archives: test_reliability_files.py).

Tests that could hang or exhaust memory on a regression run in a subprocess with a deadline,
so a regression fails the test instead of taking the suite down with it."""

import multiprocessing
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import initcore as ic
from conftest import python, small_model
from initcore import layers as L
from initcore import optim


def blobs(n=64, d=6, c=3, seed=0):
    r = np.random.default_rng(seed)
    y = np.arange(n) % c
    return (np.eye(c, d)[y] * 3 + r.standard_normal((n, d))).astype(np.float32), y


# --- 1. fork -----------------------------------------------------------------------------------------
def _train_in_child(seed):
    x, y = blobs(256, seed=seed)
    m = small_model(seed=seed)
    m.fit(x, y, epochs=2, batch_size=32, verbose=0)
    a = np.ones((512, 512), np.float32)
    return float(ic.ops.matmul(a, a)[0, 0]), m.optimizer.step_count


def test_forked_children_train_after_the_parent_used_the_pool():
    """The parent runs parallel kernels first (the pool's threads exist), then a fork Pool's
    children train models: they must not wait forever for the parent's threads."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method on this platform")
    threads = ic.get_num_threads()
    ic.set_num_threads(2)
    try:
        a = np.ones((512, 512), np.float32)
        ic.ops.matmul(a, a)  # big enough to run on the pool
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(2) as pool:
            res = pool.map_async(_train_in_child, [0, 1, 2]).get(timeout=120)
        assert res == [(512.0, 16), (512.0, 16), (512.0, 16)]
    finally:
        ic.set_num_threads(threads)


def test_os_fork_child_runs_a_parallel_matmul():
    """The issue's one-liner, under a deadline."""
    r = python(
        """
        import os, numpy as np, initcore as ic
        ic.set_num_threads(3)
        a = np.ones((512, 512), np.float32)
        ic.ops.matmul(a, a)
        pid = os.fork()
        if pid == 0:
            ok = ic.ops.matmul(a, a)[0, 0] == 512 and ic.get_num_threads() == 3
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """,
        timeout=60,
    )
    assert r.returncode == 0 and "child 0" in r.stdout, r.stderr


# --- 2. running out of memory --------------------------------------------------------------------------
def test_fused_predict_with_a_huge_workspace_raises_memory_error():
    m = ic.Sequential([L.Dense(100000), L.Dense(2)], input_dim=2)
    with pytest.raises(MemoryError, match=r"FusedPlan.predict: cannot allocate the workspaces .* bytes"):
        m.predict(np.ones((100000, 2)), batch_size=100000)
    assert m.predict(np.ones((3, 2))).shape == (3, 2)  # and the model still works


def test_fused_train_step_with_a_huge_workspace_raises_memory_error_and_writes_nothing():
    m = ic.Sequential([L.Dense(100000), L.Dense(2)], input_dim=2)
    opt = optim.Adam(m.parameters())
    before = [p.value.copy() for p in m.parameters()]
    with pytest.raises(MemoryError, match="bytes"):
        m.train_step(np.ones((100000, 2), np.float32), np.zeros(100000, np.int64), opt)
    assert opt.step_count == 0
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.value, b)


def test_output_allocation_failure_is_memory_error_not_panic():
    a = np.ones((200000, 10), np.float32)
    with pytest.raises(MemoryError, match=r"matmul: cannot allocate the product \(\(200000, 200000\) float32\)"):
        ic.ops.matmul(a, a, trans_b=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda h: ic.ops.activation_forward(h, "relu"),
        lambda h: ic.ops.softmax(h),
        lambda h: ic.ops.matmul(h, np.ones((h.shape[1], 1), np.float32)),
        lambda h: ic.ops.dense_forward(h, np.ones((h.shape[1], 1), np.float32)),
        lambda h: ic.ops.batch_norm_forward(
            h, np.ones(h.shape[1], np.float32), np.zeros(h.shape[1], np.float32), training=True
        ),
        lambda h: ic.ops.column_stats(h),
    ],
)
def test_copies_of_huge_non_contiguous_inputs_raise_memory_error(call):
    huge = np.broadcast_to(np.float32(1), (1 << 20, 1 << 20))  # 4 TiB, no memory behind it
    with pytest.raises(MemoryError, match="bytes"):
        call(huge)


@pytest.mark.parametrize("k", [2**62, 2**62 + 1, 2**61 + 1])
def test_maxout_backward_shape_overflow_is_value_error(k):
    dy = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match="than this machine can address"):
        ic.ops.maxout_backward(dy, np.zeros((2, 4), np.int64), k=k)


def test_overflowing_output_shape_is_value_error():
    dy = np.ones((2, 1), np.float32)
    with pytest.raises(ValueError, match="maxout_backward"):
        ic.ops.maxout_backward(dy, np.zeros((2, 1), np.int64), k=2**62)


# --- 3. one-row batches with BatchNorm -----------------------------------------------------------------
def test_fit_refuses_one_row_batches_with_batchnorm():
    x, y = blobs(40)
    m = small_model(bn=True)
    with pytest.raises(ValueError, match="batch_size=1 .* BatchNorm"):
        m.fit(x, y, batch_size=1, epochs=2, verbose=0)
    with pytest.raises(ValueError, match="BatchNorm"):
        m.fit(x[:1], y[:1], batch_size=8, verbose=0)
    assert m.epochs_completed == 0


def test_a_trailing_one_row_batch_is_skipped_with_a_note():
    x, y = blobs(33)
    m = small_model(bn=True)
    h = m.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert m.optimizer.step_count == 3 * 2
    assert len(h.notes) == 1 and "1 row of 33" in h.notes[0] and "skipped" in h.notes[0]
    assert all(np.isfinite(h.history["loss"]))
    h = small_model(bn=True).fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0)
    assert h.notes == []


# --- 4. atomic optimizer steps ---------------------------------------------------------------------------
def _grads(m, seed=0):
    x, y = blobs(16, seed=seed)
    m.fused = False
    out = m.forward(x, training=True)
    _, g = ic.losses.compute("cross_entropy", out, y, m.backend)
    m.backward(g, need_dx=False)


@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_a_read_only_parameter_fails_the_step_before_anything_is_written(backend):
    m = small_model(backend=backend)
    opt = optim.Adam(m.parameters(), lr=0.1)
    _grads(m)
    params = m.parameters()
    params[-1].value.flags.writeable = False
    before = {p.name: p.value.copy() for p in params}
    state = {n: {k: v.copy() for k, v in st.items()} for n, st in opt.state.items()}
    with pytest.raises(ValueError, match="read-only"):
        opt.step()
    assert opt.step_count == 0
    for p in params:
        np.testing.assert_array_equal(p.value, before[p.name])
        for k, v in opt.state[p.name].items():
            np.testing.assert_array_equal(v, state[p.name][k])
    params[-1].value.flags.writeable = True
    opt.step()
    assert opt.step_count == 1


def test_a_non_finite_learning_rate_fails_the_step_and_keeps_step_count():
    m = small_model(backend="numpy")
    opt = optim.SGD(m.parameters(), lr=0.1)
    _grads(m)
    opt.hyper["lr"] = float("inf")
    before = [p.value.copy() for p in m.parameters()]
    with pytest.raises(ValueError, match="'lr' must be finite"):
        opt.step()
    assert opt.step_count == 0
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.value, b)


def test_a_mismatched_gradient_fails_before_the_first_parameter_is_written():
    m = small_model()
    opt = optim.SGD(m.parameters(), lr=0.1)
    _grads(m)
    first = m.parameters()[0].value.copy()
    m.parameters()[-1].grad = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match="grad must be a float32 array of shape"):
        opt.step()
    np.testing.assert_array_equal(m.parameters()[0].value, first)
    assert opt.step_count == 0


# --- 5. non-finite loss ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_fit_warns_once_when_the_loss_becomes_non_finite(fused):
    x, y = blobs(64)
    m = small_model()
    m.fused = fused
    with pytest.warns(RuntimeWarning, match=r"loss became .* at epoch 0, step \d+") as rec:
        m.fit(x * 1e30, y, optimizer=optim.SGD(m.parameters(), lr=1e30), epochs=3, batch_size=8, verbose=0)
    assert len([w for w in rec if "loss became" in str(w.message)]) == 1
    assert m.epochs_completed == 3  # it warns; TerminateOnNaN is what stops


# --- 6. two threads, one model -------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_eight_threads_training_one_model_wait_for_each_other(fused):
    x, y = blobs(64)
    m = small_model(bn=True)
    m.fused = fused
    opt = optim.Adam(m.parameters(), lr=1e-3)
    steps, errors = 25, []
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            for _ in range(steps):
                if i % 2:
                    m.train_step(x, y, opt)
                else:
                    out = m.predict(x)
                    assert out.shape == (64, 3) and np.all(np.isfinite(out))
                    m.train_step(x, y, opt)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert errors == []
    assert opt.step_count == 8 * steps


def test_the_threaded_result_equals_the_serial_one():
    """Serialized steps give the same weights as the same steps run one after another."""
    x, y = blobs(64)
    a, b = small_model(), small_model()
    oa, ob = optim.SGD(a.parameters(), lr=0.05), optim.SGD(b.parameters(), lr=0.05)
    for _ in range(16):
        b.train_step(x, y, ob)
    ts = [threading.Thread(target=lambda: [a.train_step(x, y, oa) for _ in range(4)]) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.value, q.value)


# --- 7. another thread writing an op's argument --------------------------------------------------------------
def test_reading_an_array_another_thread_writes_says_so():
    w = np.zeros((1500, 1500), np.float32)
    g = np.ones_like(w)
    m, v = np.zeros_like(w), np.zeros_like(w)
    x = np.ones((1, 1500), np.float32)
    stop, messages = threading.Event(), []

    def writer():
        t = 0
        while not stop.is_set():
            t += 1
            ic.ops.adam_step(w, g, m, v, step=t, lr=1e-3)

    th = threading.Thread(target=writer)
    th.start()
    try:
        deadline = time.monotonic() + 20
        while not messages and time.monotonic() < deadline:
            try:
                ic.ops.matmul(x, w)
            except ValueError as e:
                messages.append(str(e))
    finally:
        stop.set()
        th.join(30)
    assert messages, "no overlap of a read with the writer in 20 s"
    assert "another call (on another thread) is writing" in messages[0]
    assert "also passed as an output" not in messages[0]


# --- 11. bad hyper-parameters and arguments ------------------------------------------------------------------
INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=INF),
        lambda p: optim.SGD(p, momentum=INF),
        lambda p: optim.SGD(p, weight_decay=INF),
        lambda p: optim.Adam(p, eps=INF),
        lambda p: optim.Adam(p, lr=INF),
        lambda p: optim.AdamW(p, weight_decay=INF),
        lambda p: optim.NAdam(p, eps=INF),
        lambda p: optim.Adagrad(p, lr=INF),
        lambda p: optim.Adagrad(p, eps=NAN),
        lambda p: optim.RMSprop(p, eps=0.0),
        lambda p: optim.RMSprop(p, alpha=1.0),
        lambda p: optim.RMSprop(p, alpha=1.5),
        lambda p: optim.RMSprop(p, momentum=1.0),
        lambda p: optim.RMSprop(p, momentum=INF),
    ],
)
def test_optimizers_refuse_unusable_hyper_parameters_at_construction(make):
    with pytest.raises(ValueError):
        make(small_model().parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda: ic.initializers.Orthogonal(gain=NAN),
        lambda: ic.initializers.Orthogonal(gain=INF),
        lambda: ic.initializers.Constant(INF),
        lambda: ic.initializers.Constant(NAN),
        lambda: ic.initializers.RandomNormal(stddev=INF),
        lambda: ic.initializers.RandomNormal(mean=NAN),
        lambda: ic.initializers.RandomUniform(maxval=INF),
        lambda: ic.initializers.TruncatedNormal(stddev=INF),
        lambda: ic.initializers.VarianceScaling(scale=INF),
        lambda: ic.initializers.XavierNormal(gain=INF),
        lambda: ic.initializers.Identity(gain=NAN),
    ],
)
def test_initializers_refuse_non_finite_parameters(make):
    with pytest.raises(ValueError, match="finite"):
        make()


def test_initializers_refuse_non_integer_shapes():
    init = ic.initializers.get("he_normal")
    with pytest.raises(TypeError, match="shape"):
        init((1.5, 2))
    assert init((3, 2)).shape == (3, 2)


@pytest.mark.parametrize(
    "kw, exc",
    [
        ({"epochs": 1.5}, TypeError),
        ({"epochs": "2"}, TypeError),
        ({"epochs": True}, TypeError),
        ({"epochs": INF}, TypeError),
        ({"epochs": -1}, ValueError),
        ({"initial_epoch": -5}, ValueError),
        ({"initial_epoch": 1.0}, TypeError),
    ],
)
def test_fit_refuses_bad_epoch_counts(kw, exc):
    x, y = blobs(16)
    m = small_model()
    with pytest.raises(exc, match="epoch"):
        m.fit(x, y, verbose=0, **kw)
    assert m.epochs_completed == 0


def test_set_num_threads_refuses_absurd_counts_at_once():
    t = time.perf_counter()
    for n in (2**62, ic.MAX_THREADS + 1, 0, -1):
        with pytest.raises(ValueError, match="set_num_threads"):
            ic.set_num_threads(n)
    assert time.perf_counter() - t < 1.0


def test_a_bad_thread_count_variable_warns():
    r = python(
        "import warnings; warnings.simplefilter('always'); import initcore; print(initcore.get_num_threads())",
        env={"INITCORE_NUM_THREADS": "abc"},
    )
    assert r.returncode == 0 and "INITCORE_NUM_THREADS='abc'" in r.stderr, r.stderr
    r = python("import initcore", env={"INITCORE_NUM_THREADS": "2"})
    assert r.returncode == 0 and "INITCORE_NUM_THREADS" not in r.stderr


def test_a_fused_train_step_on_zero_rows_is_value_error():
    m = small_model()
    opt = optim.Adam(m.parameters())
    with pytest.raises(ValueError, match="no rows"):
        m.train_step(np.zeros((0, 6), np.float32), np.zeros(0, np.int64), opt)
    assert opt.step_count == 0


def _misaligned(shape, dtype=np.float32):
    n = int(np.prod(shape))
    buf = np.zeros(n * np.dtype(dtype).itemsize + 1, np.uint8)
    a = np.frombuffer(buf.data, dtype=dtype, count=n, offset=1).reshape(shape)
    assert not a.flags.aligned and a.flags.c_contiguous
    return a


def test_misaligned_inputs_are_copied_on_the_fused_path():
    x, y = blobs(16)
    bad = _misaligned(x.shape)
    bad[...] = x
    a, b = small_model(), small_model()
    oa, ob = optim.SGD(a.parameters(), lr=0.1), optim.SGD(b.parameters(), lr=0.1)
    assert a.train_step(bad, y, oa) == b.train_step(x, y, ob)
    np.testing.assert_array_equal(a.predict(bad), b.predict(x))


def test_misaligned_parameters_are_refused_on_the_fused_path():
    x, y = blobs(16)
    m = small_model()
    opt = optim.SGD(m.parameters(), lr=0.1)
    p = m.parameters()[0]
    bad = _misaligned(p.value.shape)
    bad[...] = p.value
    p.value = bad
    with pytest.raises(ValueError, match="not aligned"):
        m.train_step(x, y, opt)


def test_ops_name_a_misaligned_argument():
    bad = _misaligned((4, 4))
    with pytest.raises(ValueError, match="argument 'x' is not aligned"):
        ic.ops.activation_forward(bad, "relu")
    with pytest.raises(ValueError, match="argument 'b' is not aligned"):
        ic.ops.matmul(np.ones((4, 4), np.float32), bad)


# --- 12. the CLI ----------------------------------------------------------------------------------------------
def cli(*argv, timeout=300):
    r = subprocess.run([sys.executable, "-m", "initcore", *argv], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def test_cli_refuses_one_row_batchnorm_batches():
    code, out, err = cli("train", "--batch-size", "1", "--batchnorm", "before", "--epochs", "1", "--quiet")
    assert code == 2 and "BatchNorm" in err and "test accuracy" not in out


def test_cli_seed_must_be_non_negative():
    code, _, err = cli("train", "--seed", "-1")
    assert code == 2 and "--seed" in err and len(err.strip().splitlines()) == 1


def test_cli_checks_save_before_training(tmp_path):
    t = time.perf_counter()
    code, out, err = cli("train", "--save", str(tmp_path / "missing" / "m.npz"), "--epochs", "20")
    assert code == 2 and "--save" in err and "does not exist" in err and "test accuracy" not in out
    assert time.perf_counter() - t < 60


def test_cli_out_of_memory_is_one_line():
    code, _, err = cli("train", "--layers", "100000000", "--epochs", "1", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "memory" in err.lower()
    assert "Traceback" not in err


def test_cli_refuses_absurd_weight_decay_and_nan_budget():
    code, _, err = cli("train", "--weight-decay", "1e308")
    assert code == 2 and "--weight-decay" in err
    code, _, err = cli("bench", "--budget", "nan")
    assert code == 2 and "budget" in err
