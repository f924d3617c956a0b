"""The fused training step (initcore.fused, kernels/network.rs, kernels/train.rs, py/train.rs):
the same results as the layer-by-layer path (bit for bit, same kernels) and as the NumPy
reference (within the training tolerance), for every layer, optimizer and loss, in float32 and
float64; evaluate/predict; thread-count bit identity; no memory growth; fallback; plan rebuilds;
user writes between steps; errors."""

import numpy as np
import pytest

import initcore as ic
from conftest import assert_close
from initcore import fused
from initcore import layers as L

DTYPES = ["float32", "float64"]

OPTIMIZERS = {
    "sgd": (ic.optim.SGD, dict(lr=0.05)),
    "sgd_nesterov_wd": (ic.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "sgd_dampening_maximize": (ic.optim.SGD, dict(lr=0.05, momentum=0.5, dampening=0.2, maximize=True)),
    "adagrad": (ic.optim.Adagrad, dict(lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
    "rmsprop": (ic.optim.RMSprop, dict(lr=1e-3)),
    "rmsprop_centered_momentum": (ic.optim.RMSprop, dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=1e-3)),
    "adam": (ic.optim.Adam, dict(lr=1e-2)),
    "adam_amsgrad_wd_maximize": (ic.optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-2, maximize=True)),
    "adamw": (ic.optim.AdamW, dict(lr=1e-2)),
    "adamw_amsgrad": (ic.optim.AdamW, dict(lr=1e-2, amsgrad=True)),
    "nadam": (ic.optim.NAdam, dict(lr=1e-2)),
    "nadamw": (ic.optim.NAdam, dict(lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True)),
}


def every_layer():
    """Every layer type, BatchNorm before and after an activation, dropout of both kinds."""
    return [
        L.Dense(16, activation="relu", kernel_initializer="he_normal"),
        L.BatchNorm(),
        L.Dropout(0.2),
        L.Dense(12, activation="tanh"),
        L.PReLU(),
        L.Dense(12),
        L.Maxout(3),
        L.AlphaDropout(0.1),
        L.SELU(),
        L.Dense(8, activation="elu", alpha=0.5),
        L.BatchNorm(momentum=0.3, eps=1e-3),
        L.LeakyReLU(0.2),
        L.Dense(8, activation="sigmoid", use_bias=False),
        L.ELU(0.8),
        L.Activation("linear"),
        L.Dense(6, activation="leaky_relu"),
        L.Activation("log_softmax"),
        L.Dense(3, activation="selu"),
        L.Activation("softmax"),
        L.Dense(3),
    ]


def model(backend="rust", dtype="float32", layers=None, seed=0, fused_on=True, input_dim=6):
    m = ic.Sequential(
        layers if layers is not None else every_layer(), input_dim=input_dim, seed=seed, dtype=dtype, backend=backend
    )
    m.fused = fused_on
    return m


def data(n=40, d=6, c=3, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)), r.integers(0, c, n)


def snapshot(m, opt):
    """Every piece of state a step leaves behind."""
    s = {p.name: p.value.copy() for p in m.parameters()}
    s.update({f"grad:{p.name}": p.grad.copy() for p in m.parameters()})
    s.update({f"buffer:{k}": v.copy() for k, v in m.buffers().items()})
    for name, st in opt.state.items():
        for k, v in st.items():
            s[f"state:{name}:{k}"] = v.copy() if isinstance(v, np.ndarray) else np.float64(v)
    s["step_count"] = np.int64(opt.step_count)
    s["rng"] = m.rng.bit_generator.state["state"]["state"]
    return s


def compare(a, b, kind, dtype):
    assert a.keys() == b.keys()
    for k in a:
        if k == "rng":
            assert a[k] == b[k], "the same number of draws from the model's Generator"
        elif kind == "exact":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert_close(a[k], b[k], kind, dtype=np.dtype(dtype) if k != "step_count" else None, err_msg=k)


def train(m, opt, steps=4, loss="cross_entropy", seed=0):
    x, y = data(seed=seed)
    if loss != "cross_entropy":
        y = np.random.default_rng(seed + 1).random((x.shape[0], m.output_dim))
    values = [m.train_step(x, y, opt, loss=loss) for _ in range(steps)]
    return values, snapshot(m, opt)


def run(backend, dtype, opt_name, fused_on=True, loss="cross_entropy", layers=None, steps=4):
    m = model(backend, dtype, layers, fused_on=fused_on)
    cls, kw = OPTIMIZERS[opt_name]
    opt = cls(m.parameters(), **kw)
    values, snap = train(m, opt, steps, loss)
    return m, opt, values, snap


# --- the fused step equals the layer-by-layer step and the NumPy reference ------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_fused_equals_numpy_reference_for_every_layer_and_optimizer(dtype, opt_name):
    mf, _, vf, sf = run("rust", dtype, opt_name)
    _, _, vn, sn = run("numpy", dtype, opt_name)
    assert mf.__dict__.get("fused_builds") == 1, "the fused path ran"
    assert_close(vf, vn, "training", dtype=np.dtype(dtype))
    compare(sf, sn, "training", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_fused_equals_layer_by_layer_bit_for_bit(dtype, opt_name):
    mf, _, vf, sf = run("rust", dtype, opt_name)
    ml, _, vl, sl = run("rust", dtype, opt_name, fused_on=False)
    assert "fused_builds" not in ml.__dict__
    assert vf == vl
    compare(sf, sl, "exact", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_every_loss(dtype, loss):
    mf, of, vf, sf = run("rust", dtype, "adam", loss=loss)
    _, _, vn, sn = run("numpy", dtype, "adam", loss=loss)
    _, _, vl, sl = run("rust", dtype, "adam", loss=loss, fused_on=False)
    assert_close(vf, vn, "training", dtype=np.dtype(dtype))
    compare(sf, sn, "training", dtype)
    assert vf == vl
    compare(sf, sl, "exact", dtype)


def test_last_output_is_the_network_output():
    x, y = data()
    a, b = model(), model(fused_on=False)
    oa, ob = ic.optim.Adam(a.parameters()), ic.optim.Adam(b.parameters())
    a.train_step(x, y, oa)
    b.train_step(x, y, ob)
    np.testing.assert_array_equal(a.last_output, b.last_output)
    assert a.last_output.shape == (40, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_evaluate_and_predict_equal_the_layer_path(dtype):
    x, y = data(300, seed=3)
    results = {}
    for backend, fused_on in (("rust", True), ("rust", False), ("numpy", False)):
        m = model(backend, dtype, fused_on=fused_on)
        opt = ic.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        train(m, opt, steps=3)
        yb = np.random.default_rng(4).random((300, 3))
        results[backend, fused_on] = (
            m.predict(x, batch_size=64),
            m.evaluate(x, y, batch_size=128),
            m.evaluate(x, yb, loss="binary_cross_entropy"),
            m.evaluate(x, yb, loss="mse", batch_size=7),
        )
    f, layer, ref = results["rust", True], results["rust", False], results["numpy", False]
    np.testing.assert_array_equal(f[0], layer[0])
    assert f[1:] == layer[1:]
    assert_close(f[0], ref[0], "training", dtype=np.dtype(dtype))
    for a, b in zip(f[1:], ref[1:]):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], "training", dtype=np.dtype(dtype), err_msg=k)


def test_fit_equals_the_layer_path():
    x, y = data(200, seed=5)
    hist = {}
    for fused_on in (True, False):
        m = model(fused_on=fused_on)
        h = m.fit(x, y, optimizer="adam", epochs=2, batch_size=32, validation_data=(x[:50], y[:50]), verbose=0)
        hist[fused_on] = ({k: v for k, v in h.history.items() if k != "seconds"}, snapshot(m, m.optimizer))
    assert hist[True][0] == hist[False][0]
    compare(hist[True][1], hist[False][1], "exact", "float32")


# --- threads and memory ---------------------------------------------------------------------------
def test_bit_identical_for_any_thread_count():
    def layers():
        return [
            L.Dense(256, activation="relu"),
            L.BatchNorm(),
            L.Dropout(0.1),
            L.Dense(256, activation="tanh"),
            L.PReLU(),
            L.Dense(10),
        ]

    x = np.random.default_rng(0).standard_normal((512, 64)).astype(np.float32)
    y = np.arange(512) % 10
    before = ic.get_num_threads()
    snaps = []
    try:
        for t in (1, 2, 3):
            ic.set_num_threads(t)
            m = model(layers=layers(), input_dim=64)
            opt = ic.optim.Adam(m.parameters())
            values = [m.train_step(x, y, opt) for _ in range(3)]
            snaps.append((values, snapshot(m, opt), m.predict(x)))
    finally:
        ic.set_num_threads(before)
    for values, snap, pred in snaps[1:]:
        assert values == snaps[0][0]
        compare(snap, snaps[0][1], "exact", "float32")
        np.testing.assert_array_equal(pred, snaps[0][2])


def _rss_pages():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])


def test_memory_does_not_grow_over_10000_steps():
    m = model(layers=[L.Dense(4, activation="relu"), L.BatchNorm(), L.Dropout(0.2), L.Dense(3)], input_dim=3)
    opt = ic.optim.NAdam(m.parameters(), lr=1e-3)
    x, y = data(8, d=3)
    x = x.astype(np.float32)
    # Warm-up: the plan, and CPython's free lists (tuples, floats, views), which fill up to their
    # fixed maxima over the first few thousand calls and then stay.
    for _ in range(3_000):
        m.train_step(x, y, opt)
    before = _rss_pages()
    for _ in range(10_000):
        m.train_step(x, y, opt)
    grown = (_rss_pages() - before) * 4096
    assert grown < 128 * 1024, f"resident memory grew by {grown} bytes over 10,000 steps"
    assert m.__dict__["fused_builds"] == 1


# --- fallback ----------------------------------------------------------------------------------------
class MyDense(L.Dense):
    """A user subclass: it may override the math, so it is not fused."""


class MySGD(ic.optim.SGD):
    pass


@pytest.mark.parametrize("case", ["layer_subclass", "optimizer_subclass", "foreign_parameters", "numpy", "off"])
def test_fallback_gives_the_layer_path_results(case):
    def build(fused_on=True):
        layers = every_layer()
        if case == "layer_subclass":
            layers[0] = MyDense(16, activation="relu", kernel_initializer="he_normal")
        m = model("numpy" if case == "numpy" else "rust", layers=layers, fused_on=fused_on and case != "off")
        params = m.parameters()
        if case == "foreign_parameters":
            params = params + [ic.Parameter(np.zeros(3, np.float32), "extra")]
        opt = (MySGD if case == "optimizer_subclass" else ic.optim.SGD)(params, lr=0.05, momentum=0.9)
        return m, opt

    (a, oa), (b, ob) = build(), build(False)
    va, sa = train(a, oa)
    vb, sb = train(b, ob)
    assert "fused_builds" not in a.__dict__, "fell back"
    assert va == vb
    compare(sa, sb, "exact", "float32")


# --- the plan: built once, rebuilt when something it depends on changes ------------------------------
def test_plan_is_reused_and_rebuilt_when_needed():
    x, y = data(64)
    m = model()
    opt = ic.optim.Adam(m.parameters(), lr=1e-2)

    def builds():
        return m.__dict__["fused_builds"]

    m.train_step(x[:32], y[:32], opt)
    plan = m._fused_train
    m.train_step(x[:32], y[:32], opt)
    m.train_step(x[:20], y[:20], opt)  # a smaller batch uses a prefix
    opt.lr = 1e-3  # a schedule: no rebuild
    m.train_step(x[:32], y[:32], opt)
    assert builds() == 1 and m._fused_train is plan and plan.capacity == 32
    m.train_step(x, y, opt)  # a larger batch grows the workspaces
    assert builds() == 1 and plan.capacity == 64 and plan.plan.capacity == 64
    opt.hyper["amsgrad"] = True  # another hyper-parameter: rebuild (with the new state)
    m.train_step(x, y, opt)
    assert builds() == 2 and "max_exp_avg_sq" in opt.state["dense_0/kernel"]
    opt2 = ic.optim.SGD(m.parameters(), lr=0.01)  # another optimizer
    m.train_step(x, y, opt2)
    assert builds() == 3
    m.layers[2].rate = 0.5  # the architecture's hyper-parameters
    m.train_step(x, y, opt2)
    assert builds() == 4
    m.train_step(x, np.eye(3)[y], opt2, loss="binary_cross_entropy")  # another loss
    assert builds() == 5


def to_float64(m, opt):
    """Converts a built float32 model and its optimizer to float64 in place."""
    m.dtype = np.dtype(np.float64)
    for layer in m.layers:
        layer.dtype = m.dtype
        if isinstance(layer, L.BatchNorm):
            layer.running_mean = layer.running_mean.astype(np.float64)
            layer.running_var = layer.running_var.astype(np.float64)
    for p in m.parameters():
        p.value, p.grad = p.value.astype(np.float64), p.grad.astype(np.float64)
    for st in opt.state.values():
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                st[k] = v.astype(np.float64)


def test_plan_is_rebuilt_on_a_dtype_change():
    x, y = data()
    runs = []
    for fused_on in (True, False):
        m = model(fused_on=fused_on)
        opt = ic.optim.RMSprop(m.parameters(), lr=1e-3, momentum=0.5)
        m.train_step(x, y, opt)
        to_float64(m, opt)
        m.train_step(x, y, opt)
        runs.append((m, snapshot(m, opt)))
    assert runs[0][0].__dict__["fused_builds"] == 2
    assert runs[0][1]["dense_0/kernel"].dtype == np.float64
    compare(runs[0][1], runs[1][1], "exact", "float64")


# --- the user's arrays --------------------------------------------------------------------------------
def test_user_writes_and_reassignments_between_steps_are_seen():
    x, y = data()
    snaps = []
    for fused_on in (True, False):
        m = model(fused_on=fused_on)
        opt = ic.optim.Adam(m.parameters(), lr=1e-2)
        m.train_step(x, y, opt)
        p = m.parameters()
        p[0].value[...] = 0.25  # in place
        p[2].value = np.full_like(p[2].value, 1.5)  # reassigned
        m.layers[1].running_var[...] = 2.0
        opt.state[p[3].name]["exp_avg"][...] = 0.1
        opt.state[p[4].name]["exp_avg_sq"] = np.full_like(p[4].value, 0.01)  # a new state array
        opt.state[p[5].name] = {k: v.copy() for k, v in opt.state[p[5].name].items()}  # a new dict
        m.train_step(x, y, opt)
        opt.lr = 0.5 * opt.lr
        m.train_step(x, y, opt)
        m.fused = not fused_on  # switching paths mid-training changes nothing
        m.train_step(x, y, opt)
        snaps.append(snapshot(m, opt))
    compare(snaps[0], snaps[1], "exact", "float32")


def test_nadam_mu_product_is_kept_in_the_optimizer_state():
    x, y = data()
    m = model()
    opt = ic.optim.NAdam(m.parameters())
    for _ in range(3):
        m.train_step(x, y, opt)
    mus = {st["mu_product"] for st in opt.state.values()}
    assert len(mus) == 1 and isinstance(next(iter(mus)), float)
    mu = 1.0
    for t in range(1, 4):
        mu *= 0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3))
    assert abs(next(iter(mus)) - mu) < 1e-15
    assert opt.step_count == 3


def test_bad_arrays_are_errors_that_write_nothing():
    x, y = data()
    m = model()
    opt = ic.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m.train_step(x, y, opt)
    p = m.parameters()
    before = snapshot(m, opt)
    cases = [
        (lambda: setattr(p[0], "value", p[0].value.astype(np.float64)), TypeError, r"params\[0\] \(dense_0/kernel\)"),
        (lambda: setattr(p[0], "value", np.asfortranarray(p[0].value)), ValueError, "C-contiguous"),
        (
            lambda: setattr(p[1], "value", p[1].value[:-1].copy()),
            ValueError,
            r"params\[1\] \(dense_0/bias\)' has shape",
        ),
        (lambda: setattr(p[1], "grad", p[1].value), ValueError, "share memory"),
        (lambda: p[1].value.setflags(write=False), ValueError, "read-only"),
    ]
    for break_it, exc, match in cases:
        saved = (p[0].value, p[1].value, p[1].grad)
        break_it()
        with pytest.raises(exc, match=match):
            m.train_step(x, y, opt)
        p[0].value, p[1].value, p[1].grad = saved
        p[1].value.setflags(write=True)
        compare(snapshot(m, opt), before, "exact", "float32")
    with pytest.raises(ValueError, match="outside"):
        m.train_step(x, np.full(40, 3), opt)
    compare(snapshot(m, opt), before, "exact", "float32")


def test_a_batch_of_one_row_with_batchnorm_is_an_error():
    m = model()
    opt = ic.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="more than 1 value"):
        m.train_step(np.zeros((1, 6)), [0], opt)
    assert opt.step_count == 0


def test_describe_covers_every_layer_and_rejects_others():
    m = model()
    desc = fused.describe(m)
    assert [d[0] for d in desc] == [
        "dense",
        "batch_norm",
        "dropout",
        "dense",
        "prelu",
        "dense",
        "maxout",
        "alpha_dropout",
        "activation",
        "dense",
        "batch_norm",
        "activation",
        "dense",
        "activation",
        "activation",
        "dense",
        "activation",
        "dense",
        "activation",
        "dense",
    ]
    m2 = model(layers=[MyDense(4), L.Dense(3)])
    assert fused.describe(m2) is None
