"""initcore.diagnostics and initcore.plots: per-layer statistics against a direct NumPy
computation, the side-effect-free trace, gradient statistics and update ratios, the Watch
callback (steps, values equal to a replayed run, the Rust column_stats kernel, History), the
InitWarning rules (the pictures: test_plots.py)."""

import math
import warnings

import numpy as np
import pytest

import initcore as ic
from conftest import assert_close
from initcore import diagnostics as D
from initcore import initializers as I
from initcore import layers as L

BACKENDS = ["rust", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def data(n=64, d=12, seed=0, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal((n, d)) * scale + shift).astype(np.float32)


def np_act(name, z):
    z = z.astype(np.float64)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


def check_record(rec, pre, act, activation, bins=50):
    """A record of activation_stats against statistics computed here from (pre, act)."""
    for stage, a in (("pre", pre), ("act", act)):
        a64 = a.astype(np.float64)
        assert_close(rec[f"{stage}_mean"], a64.mean(), "training", np.float32, err_msg=stage)
        assert_close(rec[f"{stage}_std"], a64.std(), "training", np.float32, err_msg=stage)
        assert rec[f"{stage}_min"] == pytest.approx(a64.min(), rel=1e-5, abs=1e-6)
        assert rec[f"{stage}_max"] == pytest.approx(a64.max(), rel=1e-5, abs=1e-6)
        edges = rec[f"{stage}_edges"]
        assert len(edges) == bins + 1
        hist = np.histogram(a64, edges)[0]
        # the kernel bins float32 values; a value on an edge may land one bin over after rounding
        assert np.abs(rec[f"{stage}_hist"] - hist).sum() <= 2
        assert rec[f"{stage}_hist"].sum() == a.size
    if activation == "sigmoid":
        assert rec["saturated"] == pytest.approx(np.mean((act <= 0.01) | (act >= 0.99)))
    elif activation == "tanh":
        assert rec["saturated"] == pytest.approx(np.mean(np.abs(act) >= 0.99))
    else:
        assert rec["saturated"] is None
    if activation == "relu":
        assert rec["dead"] == pytest.approx(np.mean(np.all(act == 0, axis=0)))
    else:
        assert rec["dead"] is None


# --- StatsTable -------------------------------------------------------------------------------------
def test_stats_table_prints_aligned_and_converts():
    t = D.StatsTable(
        [
            {"layer": 1, "name": "a", "std": 0.5, "hist": np.arange(3), "dead": None},
            {"layer": 10, "name": "bbb", "std": 1.25e-7, "hist": np.arange(3), "dead": 0.25},
        ],
        title="T",
    )
    text = str(t)
    lines = text.splitlines()
    assert lines[0] == "T"
    assert t.columns == ["layer", "name", "std", "dead"]  # arrays are kept but not printed
    assert len({len(line) for line in lines[1:3]}) == 1 and "1.250e-07" in text and " -" in lines[3]
    assert lines[2].startswith("-----")
    assert t.to_dicts()[0]["hist"] is t[0]["hist"] and t.to_dicts()[0] is not t[0]
    try:
        import pandas  # noqa: F401  (optional: not a test dependency)
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            t.to_pandas()
    else:
        df = t.to_pandas()
        assert list(df.columns) == ["layer", "name", "std", "hist", "dead"] and len(df) == 2
    md = t.to_markdown().splitlines()
    assert md[0] == "| layer | name | std | dead |" and md[1].count("---") == 4 and len(md) == 4


# --- activation_stats -------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_fused_dense_layers_against_numpy(backend, activation):
    model = ic.Sequential(
        [
            L.Dense(16, activation=activation, kernel_initializer="glorot_normal", bias_initializer="random_normal"),
            L.Dense(8, activation=activation),
            L.Dense(3),
        ],
        input_dim=12,
        backend=backend,
    )
    x = data(scale=2.0)
    t = D.activation_stats(model, x)
    assert [r["layer"] for r in t] == [1, 2, 3] and [r["name"] for r in t] == ["dense_0", "dense_1", "dense_2"]
    assert [r["activation"] for r in t] == [activation, activation, "identity"]
    h = x.astype(np.float64)
    for rec, layer in zip(t, model.layers):
        z = h @ layer.kernel.value + layer.bias.value
        a = np_act(layer.activation, z)
        check_record(rec, z.astype(np.float32), a.astype(np.float32), layer.activation)
        h = a.astype(np.float32).astype(np.float64)


def test_separate_layers_batchnorm_before_and_after(backend):
    model = ic.Sequential(
        [
            L.Dense(10),
            L.BatchNorm(),
            L.Activation("tanh"),
            L.Dropout(0.5),
            L.Dense(9, activation="relu"),
            L.BatchNorm(),
            L.Dense(2),
        ],
        input_dim=12,
        backend=backend,
    )
    bl = D.blocks(model)
    assert [(b.name, b.activation, b.batchnorm, b.start, b.stop) for b in bl] == [
        ("dense_0", "tanh", "before", 0, 4),
        ("dense_4", "relu", "after", 4, 6),
        ("dense_6", "identity", None, 6, 7),
    ]
    x = data(scale=3.0, shift=1.0)
    rng_state = model.rng.bit_generator.state
    bn_before = {k: v.copy() for k, v in model.buffers().items()}
    t = D.activation_stats(model, x)
    # no side effects: BatchNorm running statistics and the model's generator untouched
    assert model.rng.bit_generator.state == rng_state
    for k, v in model.buffers().items():
        np.testing.assert_array_equal(v, bn_before[k])
    z = x.astype(np.float64) @ model.layers[0].kernel.value
    zn = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)  # batch statistics, gamma 1, beta 0
    check_record(t[0], zn.astype(np.float32), np.tanh(zn).astype(np.float32), "tanh")
    # eval-mode BatchNorm (running statistics: mean 0, var 1) is the identity up to eps
    te = D.activation_stats(model, x, batch_stats=False)
    assert te[0]["pre_std"] == pytest.approx(z.std(), rel=1e-4)


def test_dead_units_are_counted(backend):
    model = ic.Sequential([L.Dense(8, activation="relu")], input_dim=12, backend=backend)
    model.layers[0].bias.value[:3] = -1e3  # three units never fire
    rec = D.activation_stats(model, data())[0]
    assert rec["dead"] == pytest.approx(3 / 8)


def test_prelu_maxout_and_leading_layers(backend):
    model = ic.Sequential(
        [L.BatchNorm(), L.Dense(12), L.Maxout(3), L.Dense(6), L.PReLU(0.1), L.Dense(2)], input_dim=12, backend=backend
    )
    t = D.activation_stats(model, data(shift=5.0))
    assert [(r["name"], r["activation"]) for r in t] == [
        ("batch_norm_0", "identity"),
        ("dense_1", "maxout"),
        ("dense_3", "prelu"),
        ("dense_5", "identity"),
    ]
    assert t[0]["act_mean"] == pytest.approx(0.0, abs=1e-5) and t[0]["act_std"] == pytest.approx(1.0, abs=1e-3)
    assert t[1]["units"] == 4 and t[2]["dead"] is not None


def test_activation_stats_bad_input():
    model = ic.Sequential([L.Dense(4)], input_dim=3, backend="numpy")
    with pytest.raises(ValueError, match=r"x has shape \(5, 2\), expected \(n, 3\)"):
        D.activation_stats(model, np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="no rows"):
        D.activation_stats(model, np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="not built"):
        D.activation_stats(ic.Sequential([L.Dense(4)]), np.zeros((5, 3), np.float32))


def test_non_finite_activations_do_not_break_the_table(backend):
    model = ic.Sequential(
        [L.Dense(8, kernel_initializer=I.RandomNormal(0, 1e30)) for _ in range(3)], input_dim=12, backend=backend
    )
    with np.errstate(all="ignore"):
        t = D.activation_stats(model, data())
    assert math.isfinite(t[0]["act_std"]) and not math.isfinite(t[2]["act_std"])
    str(t)


# --- gradient_stats ---------------------------------------------------------------------------------
def test_gradient_stats_norms_and_exact_update_ratio(backend):
    model = ic.Sequential([L.Dense(8, activation="relu"), L.Dense(3)], input_dim=12, backend=backend)
    opt = ic.optim.SGD(model.parameters(), lr=0.1)
    x, y = data(), np.arange(64) % 3
    out = model.forward(x, training=True)
    _, g = ic.losses.compute("cross_entropy", out, y, backend)
    model.backward(g)
    before = D.snapshot(model)
    opt.step()
    t = D.gradient_stats(model, opt, before=before)
    assert [r["param"] for r in t] == ["dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias"]
    for r, p in zip(t, model.parameters()):
        gn = np.linalg.norm(p.grad.astype(np.float64))
        assert r["grad_norm"] == pytest.approx(gn, rel=1e-6)
        assert r["weight_norm"] == pytest.approx(np.linalg.norm(p.value.astype(np.float64)), rel=1e-6)
        # plain SGD: Δw = −lr·g, so the ratio is lr·‖g‖/‖w_before‖
        w0 = np.linalg.norm(before[p.name].astype(np.float64))
        expect = 0.1 * gn / w0 if w0 > 0 else math.inf
        assert r["update_ratio"] == pytest.approx(expect, rel=1e-4)
        assert r["step"] == 1 and r["lr"] == 0.1
    assert "update_ratio" not in D.gradient_stats(model)[0]
    with pytest.raises(ValueError, match="dense_0/kernel"):
        D.gradient_stats(model, before={})


# --- Watch ------------------------------------------------------------------------------------------
def _mlp(backend, seed=3, bn=False):
    layers = [L.Dense(16, activation="tanh", kernel_initializer="glorot_normal")]
    if bn:
        layers += [L.Dense(8), L.BatchNorm(), L.Activation("relu")]
    else:
        layers += [L.Dense(8, activation="relu", kernel_initializer="he_normal")]
    layers.append(L.Dense(3))
    return ic.Sequential(layers, input_dim=12, seed=seed, backend=backend)


@pytest.mark.parametrize("bn", [False, True])
def test_watch_records_the_training_steps(backend, bn):
    x, y = data(n=40), np.arange(40) % 3
    model = _mlp(backend, bn=bn)
    watch = D.Watch(every=2, bins=20)
    h = model.fit(
        x,
        y,
        optimizer=ic.optim.SGD(model.parameters(), lr=0.05),
        epochs=5,
        batch_size=40,
        shuffle=False,
        callbacks=[watch],
        verbose=0,
    )
    assert h.watch is watch.log and list(watch.log.steps) == [1, 3, 5]
    # replay: the same model trained by hand; each record describes the forward pass of its step
    twin = _mlp(backend, bn=bn)
    opt = ic.optim.SGD(twin.parameters(), lr=0.05)
    expected = {}
    for step in range(1, 6):
        before = D.snapshot(twin)
        stats = D.activation_stats(twin, x)
        twin.train_step(x, y, opt)
        expected[step] = (stats, D.gradient_stats(twin, opt, before))
    for rec in watch.log:
        stats, grads = expected[rec["step"]]
        assert rec["epoch"] == rec["step"] - 1 and rec["batch"] == 0
        for got, want in zip(rec["layers"], stats):
            for key in ("pre_mean", "pre_std", "act_mean", "act_std", "act_min", "act_max", "saturated", "dead"):
                if want[key] is None:
                    assert got[key] is None
                else:
                    assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
            assert got["act_hist"].sum() + round(got["act_outside"] * 40 * got["units"]) == 40 * got["units"]
        for got, want in zip(rec["params"], grads):
            assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5)
            assert got["update_ratio"] == pytest.approx(want["update_ratio"], rel=1e-4)
    steps, edges, counts = watch.log.heatmap(1, "act")
    assert counts.shape == (3, 20) and np.all(edges == watch.log.edges[(1, "act")]) and edges[0] == -1.0
    assert watch.log.series("act_std", layer=2).shape == (3,)
    assert watch.log.series("grad_norm", param="dense_0/kernel")[0] == watch.log[0]["params"][0]["grad_norm"]
    assert "step 5" in str(watch.log.table())


def test_watch_probe_batch_and_column_stats_kernel(monkeypatch):
    calls = []
    real = ic.ops.column_stats

    def counting(*a, **k):
        calls.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(ic.ops, "column_stats", counting)
    x, y = data(n=48), np.arange(48) % 3
    probe = data(n=10, seed=9)
    model = _mlp("rust", bn=True)
    watch = D.Watch(every=3, x=probe, gradients=False)
    model.fit(x, y, optimizer=ic.optim.Adam(model.parameters()), epochs=2, batch_size=16, callbacks=[watch], verbose=0)
    assert list(watch.log.steps) == [1, 4] and watch.log[0]["params"] == []
    assert calls and all(s[0] == 10 for s in calls)  # the Rust kernel, on the probe batch
    want = D.activation_stats(model, probe)
    assert watch.log[-1]["layers"][1]["act_std"] != want[1]["act_std"]  # weights moved since step 4
    watch.record()
    assert watch.log[-1]["layers"][1]["act_std"] == pytest.approx(want[1]["act_std"], rel=1e-6)


def test_watch_errors():
    with pytest.raises(ValueError, match="every"):
        D.Watch(every=0)
    with pytest.raises(ValueError, match="bins"):
        D.Watch(bins=0)
    # a training step that leaves no caches (as a fused path might) is reported, not read stale
    model = _mlp("numpy")
    x, y = data(n=32), np.arange(32) % 3
    model.fit(x, y, optimizer=ic.optim.SGD(model.parameters()), validation_data=(x, y), verbose=0)
    model.train_step = lambda *a, **k: 0.0
    with pytest.raises(RuntimeError, match="no cached forward pass; pass x="):
        model.fit(x, y, callbacks=[D.Watch(every=1)], verbose=0)
    model = ic.Sequential([L.Dense(6), L.Maxout(2), L.Dense(2)], input_dim=12, backend="numpy")
    with pytest.raises(RuntimeError, match="maxout_1.*x="):
        model.fit(
            data(),
            np.arange(64) % 2,
            optimizer=ic.optim.SGD(model.parameters()),
            callbacks=[D.Watch(every=1)],
            verbose=0,
        )


# --- check / InitWarning --------------------------------------------------------------------------
def _messages(model, x):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        msgs = D.check(model, x)
    assert [str(m.message) for m in w] == msgs and all(m.category is D.InitWarning for m in w)
    return msgs


@pytest.fixture(scope="module")
def mnist_batch():
    """512 standardized images of the embedded MNIST subset and their labels."""
    from initcore import data as dmod

    x, y = dmod.load_mnist_subset()
    idx = np.random.default_rng(0).permutation(len(y))[:512]
    xs = dmod.Standardizer().fit(x).transform(x[idx])
    return np.ascontiguousarray(xs, np.float32), y[idx]


def _net(sizes, activation, init, bias=None, backend="numpy"):
    kw = {} if bias is None else {"bias_initializer": bias}
    stack = [L.Dense(u, activation=activation, kernel_initializer=init, **kw) for u in sizes[1:-1]]
    return ic.Sequential(stack + [L.Dense(sizes[-1])], input_dim=sizes[0], backend=backend)


# the cases: each warns, naming the layer, the measured number and a fix
@pytest.mark.parametrize(
    "name,sizes,activation,init,bias,pattern",
    [
        (
            "sigmoid + N(0, 0.01²), 8×256",
            (784,) + (256,) * 8 + (10,),
            "sigmoid",
            I.RandomNormal(0, 0.01),
            None,
            r"layer 1 \(dense_0, sigmoid\): gradients vanish towards the input: .* ([0-9.]+e-\d+)× the one at layer 9"
            r".*use glorot",
        ),
        (
            "tanh + N(0, 0.01²), 10×500",
            (784,) + (500,) * 10 + (10,),
            "tanh",
            I.RandomNormal(0, 0.01),
            None,
            r"layer \d+ \(dense_\d+, tanh\): the activations have vanished: .*× the input's "
            r"\(0\.2\d+× per layer\); use glorot",
        ),
        (
            "ReLU + Glorot, 50 layers",
            (784,) + (100,) * 50 + (10,),
            "relu",
            "glorot_uniform",
            None,
            r"layer \d+ \(dense_\d+, relu\): the activations have vanished: .*\(0\.7\d+× per layer\); use he_normal",
        ),
        (
            "zeros",
            (784, 64, 64, 10),
            "relu",
            "zeros",
            None,
            r"layer 1 \(dense_0, relu\): all 50176 weights are equal \(0\)",
        ),
        ("constant 0.01", (784, 64, 64, 10), "tanh", I.Constant(0.01), None, r"weights are equal \(0\.01\).*symmetry"),
        (
            "ReLU + bias -3",
            (784, 256, 256, 10),
            "relu",
            "he_normal",
            I.Constant(-3.0),
            r"layer 2 \(dense_1, relu\): at the first pass .* 99\.\d% of the activations are zero",
        ),
        (
            "sigmoid + N(0, 1)",
            (784, 256, 10),
            "sigmoid",
            I.RandomNormal(0, 1),
            None,
            r"\d\d% of the activations are saturated",
        ),
    ],
)
def test_check_warns_on_every_classic_failure(mnist_batch, name, sizes, activation, init, bias, pattern):
    import re

    x, y = mnist_batch
    model = _net(sizes, activation, init, bias)
    msgs = _messages(model, x)
    assert any(re.search(pattern, m) for m in msgs), (name, msgs)
    if name.startswith("sigmoid + N(0, 0.01"):  # the vanishing experiment's network: gradient ratio ~1e-10
        rows = D.measure(model, x)
        assert 1e-13 < rows[0]["grad_gain"] < 1e-8
    if name == "ReLU + bias -3":  # fewer than half the units are dead: the old rule was silent
        r = D.measure(model, x)[1]
        assert r["zero"] > 0.99 and r["dead_units"] < 0.5 + 0.2


@pytest.mark.parametrize(
    "activation,init",
    [("sigmoid", "he_normal"), ("sigmoid", "glorot_uniform"), ("tanh", "glorot_normal"), ("relu", "he_normal")],
)
def test_check_is_quiet_for_good_starts_on_mnist(mnist_batch, activation, init):
    x, y = mnist_batch
    # sigmoid + He: under 1% saturated, trains as well as Glorot: no false positive
    model = _net((784, 256, 128, 10), activation, init)
    assert _messages(model, x) == []
    assert D.check(model, x, warn=False, y=y) == []


@pytest.mark.parametrize(
    "activation,init",
    [
        ("tanh", "glorot_uniform"),
        ("sigmoid", "glorot_normal"),
        ("relu", "he_normal"),
        ("selu", "lecun_normal"),
        ("relu", I.KaimingUniform()),
    ],
)
def test_check_is_quiet_for_good_starts(activation, init):
    model = ic.Sequential(
        [
            L.Dense(64, activation=activation, kernel_initializer=init),
            L.Dense(32, activation=activation, kernel_initializer=init),
            L.Dense(3),
        ],
        input_dim=100,
        backend="numpy",
    )
    assert _messages(model, data(n=256, d=100)) == []


def test_check_leaves_the_model_unchanged(backend):
    model = ic.Sequential(
        [L.Dense(32, activation="relu"), L.BatchNorm(), L.Dropout(0.3), L.Dense(3)], input_dim=12, backend=backend
    )
    x = data()
    for p in model.parameters():
        p.grad[...] = 7.0
    before = {k: v.copy() for k, v in model.buffers().items()}
    rng = model.rng.bit_generator.state
    D.check(model, x, warn=False, y=np.arange(64) % 3)
    assert all(np.all(p.grad == 7.0) for p in model.parameters())
    assert all(np.array_equal(before[k], v) for k, v in model.buffers().items())
    assert model.rng.bit_generator.state == rng


def test_check_input_scaling_saturation_selu_and_batchnorm():
    model = ic.Sequential([L.Dense(32, activation="sigmoid"), L.Dense(3)], input_dim=12, backend="numpy")
    msgs = _messages(model, data(scale=0.2, shift=0.3))  # like raw pixels in [0, 1]
    assert len(msgs) == 1 and "not standardized" in msgs[0] and "variance 0.0399" in msgs[0]
    msgs = _messages(model, data(scale=30.0))
    assert any("saturated (f' < 0.01) at the first pass" in m for m in msgs)
    selu = ic.Sequential(
        [L.Dense(32, activation="selu", kernel_initializer="lecun_normal"), L.Dense(3)], input_dim=12, backend="numpy"
    )
    msgs = _messages(selu, data(scale=0.8, shift=0.3))  # passes the general rule, not SELU's
    assert len(msgs) == 1 and "SELU needs standardized input" in msgs[0]
    # SELU with He weights drifts away from its fixed point over a few layers: measured, named
    drift = _net((100, 64, 64, 64, 64, 3), "selu", "he_normal")
    msgs = _messages(drift, data(n=256, d=100))
    assert any("away from the self-normalizing fixed point" in m and "lecun_normal" in m for m in msgs), msgs
    # BatchNorm before the activation rescales whatever the weights: no weight warning
    bn = ic.Sequential(
        [L.Dense(32, kernel_initializer=I.RandomNormal(0, 1)), L.BatchNorm(), L.Activation("tanh"), L.Dense(3)],
        input_dim=12,
        backend="numpy",
    )
    assert _messages(bn, data()) == []
    dead = ic.Sequential(
        [L.Dense(16, activation="relu", bias_initializer=I.Constant(-100.0)), L.Dense(3)], input_dim=12, backend="numpy"
    )
    assert any("100% of the units are dead" in m for m in _messages(dead, data()))
    assert D.check(dead, data(), warn=False)


def test_gradient_stats_flags_update_ratios_far_from_1e3():
    model = ic.Sequential([L.Dense(8, activation="relu"), L.Dense(3)], input_dim=5, backend="numpy")
    x, y = data(n=32, d=5), np.arange(32) % 3
    for lr, flag in ((1e-7, "low"), (50.0, "high")):
        before = D.snapshot(model)
        opt = ic.optim.SGD(model.parameters(), lr=lr)
        model.train_step(x, y, opt)
        rows = D.gradient_stats(model, opt, before)
        assert any(r["flag"] == flag for r in rows), (lr, [r["update_ratio"] for r in rows])
    from initcore.diagnostics.gradients import ratio_flag

    assert ratio_flag(1e-3) == "" and ratio_flag(2e-2) == "high" and ratio_flag(5e-5) == "low"


def test_fit_check_runs_check_on_the_first_batch(mnist_batch):
    x, y = mnist_batch
    bad = _net((784,) + (256,) * 8 + (10,), "sigmoid", I.RandomNormal(0, 0.01))
    with pytest.warns(D.InitWarning, match="gradients vanish towards the input"):
        bad.fit(x, y, epochs=1, batch_size=128, verbose=0, check=True)
    good = _net((784, 64, 10), "relu", "he_normal")
    ref = _net((784, 64, 10), "relu", "he_normal")
    with warnings.catch_warnings():
        warnings.simplefilter("error", D.InitWarning)
        h1 = good.fit(x, y, epochs=1, batch_size=128, verbose=0, check=True)
    h2 = ref.fit(x, y, epochs=1, batch_size=128, verbose=0)
    assert h1.history["loss"] == h2.history["loss"]  # the check changes nothing in training


def test_watch_warns_when_units_die_during_training(mnist_batch):
    x, y = mnist_batch
    model = _net((784, 64, 64, 10), "relu", "he_normal")
    watch = D.Watch(every=1, x=x[:128], warn=True)
    with pytest.warns(D.InitWarning, match=r"layer \d \(dense_\d, relu\): at step \d+ .*% of the units are dead"):
        model.fit(
            x,
            y,
            optimizer=ic.optim.SGD(model.parameters(), lr=20.0),
            epochs=1,
            batch_size=64,
            verbose=0,
            callbacks=[watch],
        )
    assert watch.warnings
    quiet = D.Watch(every=1, x=x[:128], warn=True)
    model = _net((784, 64, 64, 10), "relu", "he_normal")
    with warnings.catch_warnings():
        warnings.simplefilter("error", D.InitWarning)
        model.fit(
            x,
            y,
            optimizer=ic.optim.SGD(model.parameters(), lr=0.01),
            epochs=1,
            batch_size=64,
            verbose=0,
            callbacks=[quiet],
        )
    assert quiet.warnings == []


def test_watch_on_the_fused_path_keeps_it_and_the_trajectory():
    from conftest import assert_close

    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 12)).astype(np.float32)
    y = rng.integers(0, 3, 96)

    def train(callbacks):
        m = ic.Sequential([L.Dense(16, activation="relu"), L.Dense(3)], input_dim=12, seed=3)
        opt = ic.optim.Adam(m.parameters(), lr=1e-2)
        m.fit(x, y, optimizer=opt, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        return m

    w = D.Watch(every=2)
    watched, plain = train([w]), train([])
    assert watched.fused is True and len(w.log.steps) == 6
    for p, q in zip(watched.parameters(), plain.parameters()):
        assert_close(p.value, q.value, kind="training")
