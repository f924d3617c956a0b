"""The Keras/PyTorch training API of Sequential: compile, sample and class weights,
validation_split, clipping, parameter groups and their state_dict, the new losses in fit,
metrics, Python losses, the softmax trap, the progress bar at 80 columns and History.plot."""

import io
import math

import numpy as np
import pytest

import initcore as ic
from initcore import fused as fused_mod
from initcore import layers as L
from initcore import optim
from initcore.reference import ops as ref


def data(n=60, d=5, c=3, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)).astype(np.float32), r.integers(0, c, n)


def net(seed=0, input_dim=5, out=3, backend="rust", fused=True, bn=False):
    layers = [L.Dense(8, activation="relu")] + ([L.BatchNorm()] if bn else []) + [L.Dense(out)]
    m = ic.Sequential(layers, input_dim=input_dim, seed=seed, backend=backend)
    m.fused = fused
    return m


def values(m):
    return [p.value.copy() for p in m.parameters()]


def same(a, b):
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


# --- compile --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["adam", optim.Adam])
def test_compile_before_build_then_fit(spec):
    x, y = data()
    m = ic.Sequential([L.Dense(8, activation="relu"), L.Dense(3)], seed=0)
    m.compile(optimizer=spec, loss="cross_entropy", metrics=["accuracy", "top_k_accuracy"], lr=3e-3)
    assert m.optimizer is None and not m.built
    h = m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert isinstance(m.optimizer, optim.Adam) and m.optimizer.lr == 3e-3
    assert {"loss", "accuracy", "top_k_accuracy"} <= set(h.history)
    # The same as passing everything to fit.
    m2 = ic.Sequential([L.Dense(8, activation="relu"), L.Dense(3)], seed=0)
    m2.build(5)
    m2.fit(x, y, optimizer=optim.Adam(m2.parameters(), lr=3e-3), epochs=2, batch_size=16, verbose=0)
    same(values(m), values(m2))
    assert m.evaluate(x, y).keys() == {"loss", "accuracy", "top_k_accuracy"}


def test_compile_on_a_built_model_and_with_a_factory():
    m = net()
    m.compile("sgd", lr=0.1, momentum=0.9, clipnorm=1.0)
    assert isinstance(m.optimizer, optim.SGD) and m.optimizer.hyper["momentum"] == 0.9
    assert m.optimizer.clipnorm == 1.0
    m = ic.Sequential([L.Dense(4), L.Dense(2)], seed=0)
    m.compile(lambda model: optim.AdamW(optim.decay_groups(model, 0.1), lr=1e-2), loss="mse")
    m.build(3)
    assert [g["weight_decay"] for g in m.optimizer.param_groups] == [0.1, 0.0]
    with pytest.raises(ValueError, match="lr and optimizer keywords"):
        net().compile(optim.SGD(net().parameters()), lr=0.1)
    with pytest.raises(ValueError, match="unknown metric"):
        m.compile(metrics=["precision"])


# --- sample and class weights -----------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_weighted_step_is_the_weighted_mean_of_per_sample_losses(backend):
    x, y = data(12)
    w = np.linspace(0.0, 2.0, 12).astype(np.float32)
    m = net(backend=backend)
    out = m.predict(x)
    per_sample = np.array([ref.cross_entropy(out[i : i + 1].astype(np.float64), y[i : i + 1])[0] for i in range(12)])
    ev = m.evaluate(x, y, sample_weight=w)
    assert ev["loss"] == pytest.approx(float((w * per_sample).sum() / 12), rel=1e-5)
    opt = optim.SGD(m.parameters(), lr=0.0)
    value = m.train_step(x, y, opt, sample_weight=w)
    assert value == pytest.approx(ev["loss"], rel=1e-5)  # no dropout/BN: training = evaluation output
    # The gradient is the weighted one: a zero weight removes the sample.
    keep = w > 0
    m2 = net(backend=backend)
    m2.train_step(x[keep], y[keep], optim.SGD(m2.parameters(), lr=0.0), sample_weight=w[keep] * keep.sum() / 12)
    for p, q in zip(m.parameters(), m2.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=2e-5, atol=1e-7)


def test_class_weight_is_sample_weight_by_label():
    x, y = data()
    cw = {0: 0.5, 2: 3.0}  # class 1 weighs 1, as in Keras
    m1, m2 = net(), net()
    m1.fit(x, y, optimizer="sgd", epochs=2, batch_size=16, class_weight=cw, verbose=0)
    w = np.array([cw.get(int(c), 1.0) for c in y], np.float32)
    m2.fit(x, y, optimizer="sgd", epochs=2, batch_size=16, sample_weight=w, verbose=0)
    same(values(m1), values(m2))
    with pytest.raises(ValueError, match="not both"):
        net().fit(x, y, sample_weight=w, class_weight=cw, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight\[3\]"):
        net().fit(x, y, sample_weight=np.where(np.arange(60) == 3, -1.0, 1.0), verbose=0)
    with pytest.raises(ValueError, match="shape"):
        net().fit(x, y, sample_weight=np.ones(7), verbose=0)


def test_unit_weights_change_nothing_but_the_path():
    x, y = data()
    m1, m2 = net(), net()
    m1.fit(x, y, optimizer="adam", epochs=2, batch_size=16, verbose=0)
    m2.fit(x, y, optimizer="adam", epochs=2, batch_size=16, sample_weight=np.ones(60), verbose=0)
    for p, q in zip(values(m1), values(m2)):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)


# --- validation_split ---------------------------------------------------------------------------------
def test_validation_split_holds_out_the_last_rows_before_shuffling():
    x, y = data(50)
    m1, m2 = net(), net()
    h = m1.fit(x, y, optimizer="adam", epochs=2, batch_size=8, validation_split=0.2, verbose=0)
    m2.fit(x[:40], y[:40], optimizer="adam", epochs=2, batch_size=8, verbose=0)
    same(values(m1), values(m2))
    assert h.history["val_loss"][-1] == pytest.approx(m1.evaluate(x[40:], y[40:])["loss"], rel=1e-6)
    assert "val_accuracy" in h.history
    # ⌊n·(1 − f)⌋ rows train: 33 · 0.7 = 23.1 → 23.
    m3 = net()
    m3.fit(x[:33], y[:33], epochs=1, batch_size=64, validation_split=0.3, verbose=0)
    assert m3.fit_params["samples"] == 23
    with pytest.raises(ValueError, match="validation_split"):
        net().fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="too few"):
        net().fit(x[:1], y[:1], validation_split=0.5, verbose=0)


# --- clipping -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["rust", "numpy"])
@pytest.mark.parametrize("rule", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_clipping_is_keras(rule, backend):
    x, y = data(20)
    m = net(backend=backend)
    c = 0.05
    opt = optim.SGD(m.parameters(), lr=0.5, **{rule: c})
    before = values(m)
    m.train_step(x, y, opt)
    grads = [p.grad.astype(np.float64) for p in m.parameters()]  # clipped in place, as in PyTorch
    raw = net(backend=backend)
    raw.train_step(x, y, optim.SGD(raw.parameters(), lr=0.0))
    g0 = [p.grad.astype(np.float64) for p in raw.parameters()]
    if rule == "clipnorm":
        want = [g * min(1.0, c / np.linalg.norm(g)) for g in g0]
    elif rule == "global_clipnorm":
        total = math.sqrt(sum(float((g**2).sum()) for g in g0))
        want = [g * min(1.0, c / total) for g in g0]
    else:
        want = [np.clip(g, -c, c) for g in g0]
    for g, wg in zip(grads, want):
        np.testing.assert_allclose(g, wg, rtol=1e-5, atol=1e-8)
    for b, p, g in zip(before, m.parameters(), grads):
        np.testing.assert_allclose(p.value, b - 0.5 * g, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="Only one of"):
        optim.SGD(m.parameters(), clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match=rule):
        optim.Adam(m.parameters(), **{rule: 0.0})


def test_clip_grad_norm_helper_is_pytorchs():
    m = net()
    m.train_step(*data(20), optim.SGD(m.parameters(), lr=0.0))
    g0 = [p.grad.astype(np.float64) for p in m.parameters()]
    total = optim.clip_grad_norm(m.parameters(), 0.01)
    assert total == pytest.approx(math.sqrt(sum(float((g**2).sum()) for g in g0)), rel=1e-6)
    for p, g in zip(m.parameters(), g0):
        np.testing.assert_allclose(p.grad, g * 0.01 / (total + 1e-6), rtol=1e-5)


# --- parameter groups and state_dict -------------------------------------------------------------------
def test_groups_update_like_one_optimizer_per_group():
    x, y = data()
    m1, m2 = net(fused=False), net(fused=False)
    k1, b1 = [p for p in m1.parameters() if p.value.ndim == 2], [p for p in m1.parameters() if p.value.ndim == 1]
    opt = optim.Adam([{"params": k1, "weight_decay": 0.1, "betas": (0.8, 0.99)}, {"params": b1, "lr": 1e-2}], lr=1e-3)
    k2, b2 = [p for p in m2.parameters() if p.value.ndim == 2], [p for p in m2.parameters() if p.value.ndim == 1]
    oa, ob = optim.Adam(k2, lr=1e-3, weight_decay=0.1, betas=(0.8, 0.99)), optim.Adam(b2, lr=1e-2)
    for _ in range(5):
        m1.train_step(x, y, opt)
        out = m2._forward(m2._input(x), True)
        _, g = ic.losses.compute("cross_entropy", out, y)
        m2.backward(g, need_dx=False)
        oa.step()
        ob.step()
    same(values(m1), values(m2))
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[0]["betas"] == (0.8, 0.99)
    # A schedule's lr scales every group by the same factor (PyTorch's initial_lr ratio).
    opt.lr = 5e-4
    assert opt.param_groups[0]["lr"] == 5e-4 and opt.param_groups[1]["lr"] == pytest.approx(5e-3)
    with pytest.raises(ValueError, match="unknown hyper-parameter 'momentum'"):
        optim.Adam([{"params": k1, "momentum": 0.9}])


def test_decay_groups_split_biases_and_batchnorm():
    m = net(bn=True)
    groups = optim.decay_groups(m, weight_decay=0.05)
    assert [p.name for p in groups[0]["params"]] == ["dense_0/kernel", "dense_2/kernel"]
    assert {p.name for p in groups[1]["params"]} == {
        "dense_0/bias",
        "batch_norm_1/gamma",
        "batch_norm_1/beta",
        "dense_2/bias",
    }
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0


def test_state_dict_has_pytorchs_layout_and_round_trips(tmp_path):
    x, y = data()
    m = net()
    opt = optim.AdamW(optim.decay_groups(m, 0.05), lr=2e-3, global_clipnorm=1.0)
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=16, verbose=0)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1, 2, 3] and sd["state"][0]["step"] == opt.step_count
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    g0, g1 = sd["param_groups"]
    assert g0["params"] == [0, 1] and g1["params"] == [2, 3]
    assert g0["param_names"] == ["dense_0/kernel", "dense_1/kernel"]
    assert g0["betas"] == (0.9, 0.999) and g0["weight_decay"] == 0.05 and g1["weight_decay"] == 0.0
    assert g0["global_clipnorm"] == 1.0 and g0["lr"] == 2e-3
    # Saved with the model and resumed exactly.
    path = tmp_path / "m.npz"
    m.save(path)
    again = ic.Sequential.load(path)
    assert again.optimizer.global_clipnorm == 1.0
    assert [g["weight_decay"] for g in again.optimizer.param_groups] == [0.05, 0.0]
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    again.fit(x, y, epochs=1, batch_size=16, verbose=0)
    same(values(m), values(again))


def test_old_state_dicts_still_load():
    m = net()
    opt = optim.Adam(m.parameters(), lr=1e-2)
    m.train_step(*data(), opt)
    legacy = {
        "kind": "adam",
        "hyper": dict(opt.hyper),
        "step_count": opt.step_count,
        "param_names": [p.name for p in opt.params],
        "state": {k: {a: b.copy() for a, b in v.items()} for k, v in opt.state.items()},
    }
    opt2 = optim.Adam(net().parameters())
    opt2.load_state_dict(legacy)
    assert opt2.step_count == 1 and opt2.lr == 1e-2
    for name in opt.state:
        np.testing.assert_array_equal(opt.state[name]["exp_avg"], opt2.state[name]["exp_avg"])


# --- losses and metrics in fit --------------------------------------------------------------------------
def test_losses_with_options_train_and_evaluate():
    x, y = data()
    for loss in ["mae", "huber", ic.losses.Loss("huber", delta=0.5)]:
        m = net()
        t = np.eye(3, dtype=np.float32)[y] * 2 - 1
        h = m.fit(x, t, loss=loss, optimizer="adam", epochs=3, batch_size=16, metrics=["mae", "mse", "r2"], verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0]
        ev = m.evaluate(x, t, metrics=["mae", "mse", "r2"])
        out = m.predict(x).astype(np.float64)
        assert ev["mae"] == pytest.approx(np.abs(out - t).mean(), rel=1e-5)
        assert ev["mse"] == pytest.approx(((out - t) ** 2).mean(), rel=1e-5)
        r2 = np.mean(1 - ((t - out) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0))
        assert ev["r2"] == pytest.approx(r2, rel=1e-5)
    m = net()
    smooth = ic.losses.Loss("cross_entropy", label_smoothing=0.1)
    m.fit(x, y, loss=smooth, epochs=1, verbose=0)
    assert m.evaluate(x, y)["loss"] == pytest.approx(
        ref.cross_entropy(m.predict(x).astype(np.float64), y, label_smoothing=0.1)[0], rel=1e-5
    )
    soft = np.full((60, 3), 0.1, np.float32)
    soft[np.arange(60), y] = 0.8
    h = net().fit(x, soft, epochs=2, verbose=0)
    assert "accuracy" in h.history


def test_top_k_accuracy_and_callable_metrics():
    x, y = data()
    m = net()
    out = m.predict(x)
    ev = m.evaluate(x, y, metrics=[ic.metrics.TopKAccuracy(2), lambda o, t: 7.0])
    rank = (out > out[np.arange(60), y][:, None]).sum(axis=1)
    assert ev["top_2_accuracy"] == np.mean(rank < 2)
    assert ev["<lambda>"] == 7.0
    assert ev["accuracy"] == np.mean(out.argmax(1) == y)


def test_python_loss_runs_layer_by_layer():
    x, y = data()
    t = np.eye(3, dtype=np.float32)[y]

    def my_mse(out, target):
        d = out - target
        return float((d.astype(np.float64) ** 2).mean()), 2 * d / d.size

    m1, m2 = net(), net(fused=False)
    m1.fit(x, t, loss=my_mse, optimizer="sgd", epochs=2, batch_size=16, verbose=0)
    m2.fit(x, t, loss="mse", optimizer="sgd", epochs=2, batch_size=16, verbose=0)
    for p, q in zip(values(m1), values(m2)):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)
    assert m1.evaluate(x, t)["loss"] == pytest.approx(m2.evaluate(x, t)["loss"], rel=1e-5)
    with pytest.raises(ValueError, match="gradient of shape"):
        net().fit(x, t, loss=lambda o, t: (0.0, np.zeros(3)), verbose=0)


# --- the softmax trap ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "last, loss",
    [
        (lambda: L.Activation("softmax"), "cross_entropy"),
        (lambda: L.Activation("log_softmax"), "cross_entropy"),
        (lambda: L.Activation("sigmoid"), "binary_cross_entropy"),
    ],
)
def test_a_final_softmax_before_cross_entropy_raises(last, loss):
    x, y = data()
    if loss == "binary_cross_entropy":
        y = np.eye(3, dtype=np.float32)[y]
    m = ic.Sequential([L.Dense(3), last()], input_dim=5)
    with pytest.raises(ValueError, match="applied twice.*remove|applied twice.*drop"):
        m.fit(x, y, loss=loss, verbose=0)
    with pytest.raises(ValueError, match="raw logits"):
        m.train_step(x, y, optim.SGD(m.parameters()), loss=loss)
    assert m.optimizer is None  # nothing trained
    # A softmax output is fine for a loss on its values.
    ic.Sequential([L.Dense(3), last()], input_dim=5).fit(x, np.eye(3)[data()[1]], loss="mse", verbose=0)


# --- progress bar and history -------------------------------------------------------------------------
class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("metrics", [[], ["top_k_accuracy"]], ids=["native epoch", "batch by batch"])
def test_progress_bar_keeps_validation_metrics_visible_at_80_columns(monkeypatch, metrics):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    x, y = data(200)
    stream = TTY()
    m = net()
    bar = ic.callbacks.ProgressBar(stream=stream, bar=True)
    m.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        metrics=metrics,
        callbacks=[bar],
        verbose=0,
    )
    text = stream.getvalue()
    shown = [seg for line in text.split("\n") for seg in line.split("\r")]
    assert max(len(s) for s in shown) <= 80, max(shown, key=len)
    for key in ("val_loss", "val_accuracy", "lr") + (("val_top_k_accuracy",) if metrics else ()):
        assert key in text
    h = m.history.history
    assert f"val_loss {h['val_loss'][-1]:.4f}" in text


def test_wrap_entries_never_cuts():
    from initcore.callbacks import wrap_entries

    entries = ["loss 0.1234", "val_top_k_accuracy 0.9876", "x" * 30]
    lines = wrap_entries(entries, 20)
    assert all(len(s) <= 20 for s in lines)
    assert "".join(lines).replace(" ", "") == "".join(entries).replace(" ", "")


def test_history_plot_and_single_history_curves(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = data()
    h = net().fit(x, y, epochs=3, validation_split=0.2, verbose=0)
    fig = h.plot(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_ylabel() for a in axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in axes[0].get_lines()] == ["training", "validation"]
    fig2 = ic.plots.training_curves(h, metrics=("loss",))
    assert len([a for a in fig2.axes if a.get_visible()]) == 1


# --- the fused path: every option gives the layer-by-layer bits -----------------------------------------
OPTIONS = {
    "mae": dict(loss="mae", target="values"),
    "huber": dict(loss=ic.losses.Loss("huber", delta=0.5), target="values"),
    "smoothing": dict(loss=ic.losses.Loss("cross_entropy", label_smoothing=0.1)),
    "soft targets": dict(target="soft"),
    "soft, smoothing, weights": dict(
        target="soft", weights=True, loss=ic.losses.Loss("cross_entropy", label_smoothing=0.1)
    ),
    "weights": dict(weights=True),
    "weighted mse": dict(weights=True, loss="mse", target="values"),
    "weighted bce": dict(weights=True, loss="binary_cross_entropy", target="probs"),
    "clipnorm": dict(opt={"clipnorm": 0.05}),
    "global_clipnorm": dict(opt={"global_clipnorm": 0.05}),
    "clipvalue": dict(opt={"clipvalue": 0.01}, weights=True),
    "schedule": dict(schedule=True, opt={"global_clipnorm": 0.5}),
    "groups": dict(groups=True),
    "groups+schedule": dict(groups=True, schedule=True, opt={"clipnorm": 0.5}),
}


def run_fit(fused, option, kind):
    x, y = data(70)
    r = np.random.default_rng(9)
    if option.get("target") == "values":
        y = (r.standard_normal((70, 3)) * 2).astype(np.float32)
    elif option.get("target") == "probs":
        y = r.random((70, 3)).astype(np.float32)
    elif option.get("target") == "soft":  # rows of class probabilities (e.g. mixup's)
        y = r.dirichlet(np.ones(3), 70).astype(np.float32)
    m = ic.Sequential([L.Dense(8, activation="relu"), L.BatchNorm(), L.Dropout(0.2), L.Dense(3)], input_dim=5, seed=3)
    m.fused = fused
    params = m.parameters()
    if option.get("groups"):  # decay on the kernels only, and a rate of their own for the rest
        params = optim.decay_groups(m, weight_decay=0.05)
        params[1]["lr"] = 0.02
    opt = optim.get(kind, params, **({"lr": 0.05} if kind == "sgd" else {}), **option.get("opt", {}))
    w = r.random(70).astype(np.float32) * 2 if option.get("weights") else None
    cbs = [ic.schedules.WarmupCosine(3, 12)] if option.get("schedule") else []
    h = m.fit(
        x,
        y,
        optimizer=opt,
        loss=option.get("loss", "cross_entropy"),
        epochs=2,
        batch_size=16,
        sample_weight=w,
        callbacks=cbs,
        verbose=0,
    )
    return m, h


@pytest.mark.parametrize("name", sorted(OPTIONS))
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_fused_fit_is_bit_exact_with_every_option(name, kind, monkeypatch):
    native = []
    real = fused_mod.train_batches

    def counting(*args, **kw):
        got = real(*args, **kw)
        native.append(got is not None)
        return got

    monkeypatch.setattr(fused_mod, "train_batches", counting)
    fast, hf = run_fit(True, OPTIONS[name], kind)
    assert native and all(native), "the native epoch loop was not used"
    slow, hs = run_fit(False, OPTIONS[name], kind)
    assert fast.__dict__.get("_fused_train") is not None, "the fused step was not used"
    assert slow.__dict__.get("_fused_train") is None
    same(values(fast), values(slow))
    for k in fast.buffers():
        np.testing.assert_array_equal(fast.buffers()[k], slow.buffers()[k])
    assert hf.history["loss"] == hs.history["loss"]
    assert hf.history.get("accuracy") == hs.history.get("accuracy")
    assert fast.optimizer.step_count == slow.optimizer.step_count == 10


def test_fused_train_step_with_weights_and_options_is_bit_exact():
    x, y = data(20)
    w = np.linspace(0, 1, 20).astype(np.float32)
    for loss in ["cross_entropy", ic.losses.Loss("cross_entropy", label_smoothing=0.2)]:
        a, b = net(), net(fused=False)
        oa = optim.Adam(a.parameters(), clipnorm=0.1)
        ob = optim.Adam(b.parameters(), clipnorm=0.1)
        for _ in range(3):
            va = a.train_step(x, y, oa, loss=loss, sample_weight=w)
            vb = b.train_step(x, y, ob, loss=loss, sample_weight=w)
            assert va == vb
        assert a.__dict__.get("_fused_train") is not None
        same(values(a), values(b))
        for p, q in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("targets", ["labels", "values"])
def test_native_evaluation_metrics_match_numpy(targets, monkeypatch):
    x, y = data(300)
    metrics = [ic.metrics.TopKAccuracy(2), "top_k_accuracy"] if targets == "labels" else ["mae", "mse", "r2"]
    loss = "cross_entropy"
    if targets == "values":
        y = np.random.default_rng(4).standard_normal((300, 3)).astype(np.float32)
        loss = "mse"
    fast, slow = net(), net(fused=False)
    calls = []
    real = fused_mod.evaluate

    def counting(*args, **kw):
        got = real(*args, **kw)
        calls.append(got is not None and len(got) == 4)
        return got

    monkeypatch.setattr(fused_mod, "evaluate", counting)
    a = fast.evaluate(x, y, loss=loss, batch_size=64, metrics=metrics)
    assert calls == [True], "the metrics were not computed in the native evaluation"
    b = slow.evaluate(x, y, loss=loss, batch_size=64, metrics=metrics)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k
