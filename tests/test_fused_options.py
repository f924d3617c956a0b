"""The options of issue 11 on the fused path (see python/initcore/fused.py): soft-label
cross-entropy in the fused step, the native epoch and the native evaluation; the weighted
evaluation as one native call. Each against the layer-by-layer path (bit-exact) and against
PyTorch or the NumPy reference where they define the numbers."""

import numpy as np
import pytest

import initcore as ic
from conftest import require_torch
from initcore import fused as fused_mod
from initcore import layers as L
from initcore import optim
from initcore.reference import ops as ref


def data(n=50, d=5, c=3, seed=0, dtype=np.float32):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d)).astype(dtype)
    soft = r.dirichlet(np.ones(c), n).astype(dtype)
    return x, soft, r.integers(0, c, n), r.random(n).astype(dtype) * 2


def net(fused=True, dtype="float32", bn=False, seed=1):
    layers = [L.Dense(8, activation="relu")] + ([L.BatchNorm()] if bn else []) + [L.Dense(3)]
    m = ic.Sequential(layers, input_dim=5, seed=seed, dtype=dtype)
    m.fused = fused
    return m


def same_params(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
        np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_soft_targets_fused_step_is_the_layer_step(smoothing, weighted):
    x, soft, _, w = data()
    loss = ic.losses.Loss("cross_entropy", label_smoothing=smoothing) if smoothing else "cross_entropy"
    a, b = net(bn=True), net(fused=False, bn=True)
    oa, ob = optim.Adam(a.parameters(), lr=0.01), optim.Adam(b.parameters(), lr=0.01)
    for _ in range(3):
        va = a.train_step(x, soft, oa, loss=loss, sample_weight=w if weighted else None)
        vb = b.train_step(x, soft, ob, loss=loss, sample_weight=w if weighted else None)
        assert va == vb
    assert a.__dict__.get("_fused_train") is not None, "the fused step was not used"
    assert b.__dict__.get("_fused_train") is None
    same_params(a, b)
    np.testing.assert_array_equal(a.last_output, b.last_output)


def test_soft_targets_fit_runs_natively_and_gives_the_layer_bits(monkeypatch):
    x, soft, _, _ = data(70)
    calls = []
    real = fused_mod.train_batches

    def counting(*args, **kw):
        got = real(*args, **kw)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(fused_mod, "train_batches", counting)
    fast = net()
    hf = fast.fit(
        x,
        soft,
        optimizer=optim.SGD(fast.parameters(), lr=0.1),
        epochs=3,
        batch_size=16,
        validation_split=0.2,
        verbose=0,
    )
    assert calls and all(calls), "the native epoch was not used for soft targets"
    slow = net(fused=False)
    hs = slow.fit(
        x,
        soft,
        optimizer=optim.SGD(slow.parameters(), lr=0.1),
        epochs=3,
        batch_size=16,
        validation_split=0.2,
        verbose=0,
    )
    same_params(fast, slow)
    assert hf.history["loss"] == hs.history["loss"]
    # accuracy with soft targets: the arg-max class of the output against the target's
    assert hf.history["accuracy"] == hs.history["accuracy"]
    assert hf.history["val_loss"] == pytest.approx(hs.history["val_loss"], rel=1e-12)
    out = fast.predict(x[:56])
    want = np.mean(out.argmax(1) == soft[:56].argmax(1))
    assert fast.evaluate(x[:56], soft[:56])["accuracy"] == want


def test_soft_targets_match_torch_cross_entropy_with_probabilities():
    torch = require_torch()
    x, soft, _, w = data(dtype=np.float64)
    for eps in (0.0, 0.2):
        m = net(dtype="float64")
        z = m.predict(x)  # no BatchNorm or dropout: the training forward's logits
        loss = ic.losses.Loss("cross_entropy", label_smoothing=eps)
        value = m.train_step(x, soft, optim.SGD(m.parameters(), lr=0.0), loss=loss, sample_weight=w)
        assert m.__dict__.get("_fused_train") is not None
        zt = torch.tensor(z, requires_grad=True)
        rows = torch.nn.functional.cross_entropy(zt, torch.tensor(soft), label_smoothing=eps, reduction="none")
        want = (rows * torch.tensor(w)).mean()  # Keras's sum_over_batch_size
        want.backward()
        assert value == pytest.approx(want.item(), rel=1e-12)
        # the last layer's bias gradient is the column sum of d loss / d logits
        np.testing.assert_allclose(m.parameters()[-1].grad, zt.grad.numpy().sum(0), rtol=1e-10, atol=1e-15)
        # and the NumPy reference agrees on the unweighted value
        plain = m.evaluate(x, soft, loss=loss)["loss"]
        assert plain == pytest.approx(ref.cross_entropy(m.predict(x), soft, label_smoothing=eps)[0], rel=1e-12)


CASES = {
    "weighted labels": ("cross_entropy", "labels", True),
    "smoothing": (ic.losses.Loss("cross_entropy", label_smoothing=0.1), "labels", False),
    "weighted smoothing": (ic.losses.Loss("cross_entropy", label_smoothing=0.1), "labels", True),
    "soft": ("cross_entropy", "soft", False),
    "weighted soft": ("cross_entropy", "soft", True),
    "weighted bce": ("binary_cross_entropy", "probs", True),
    "weighted mse": ("mse", "values", True),
    "mae": ("mae", "values", False),
    "weighted huber": (ic.losses.Loss("huber", delta=0.3), "values", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_weighted_and_optioned_evaluate_is_one_native_call(case, monkeypatch):
    loss, kind, weighted = CASES[case]
    x, soft, labels, w = data(300)
    y = {"labels": labels, "soft": soft, "probs": soft, "values": soft * 4 - 1}[kind]
    m = net(bn=True)
    m.fit(x, y, loss=loss, epochs=1, batch_size=32, verbose=0)
    sw = w if weighted else None
    calls, predicted = [], []
    real_eval, real_pred = fused_mod.evaluate, fused_mod.predict

    def counting(*args, **kw):
        got = real_eval(*args, **kw)
        calls.append(got is not None)
        return got

    def predicting(*args, **kw):
        predicted.append(True)
        return real_pred(*args, **kw)

    monkeypatch.setattr(fused_mod, "evaluate", counting)
    monkeypatch.setattr(fused_mod, "predict", predicting)
    native = m.evaluate(x, y, loss=loss, batch_size=64, sample_weight=sw)
    assert calls == [True] and not predicted, "the evaluation was not one native call"
    # The path before: one native prediction, then the loss kernel batch by batch from Python.
    monkeypatch.setattr(fused_mod, "evaluate", lambda *a, **k: None)
    before = m.evaluate(x, y, loss=loss, batch_size=64, sample_weight=sw)
    assert predicted == [True]
    assert native == before  # bit-exact, accuracy included
    # and the weighted mean is Keras's: Σ w_i·l_i / n, from the per-row losses of the reference
    if kind in ("labels", "soft") and weighted:
        eps = getattr(loss, "label_smoothing", 0.0)
        z = m.predict(x).astype(np.float64)
        yy = y if y.ndim == 1 else y.astype(np.float64)
        rows = [ref.cross_entropy(z[i : i + 1], yy[i : i + 1], label_smoothing=eps)[0] for i in range(300)]
        assert native["loss"] == pytest.approx(np.dot(rows, w) / 300, rel=1e-5)


def test_evaluate_rejects_bad_weights_naming_the_argument():
    x, soft, _, w = data()
    m = net()
    bad = w.copy()
    bad[3] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight\[3\]"):
        m.evaluate(x, soft, sample_weight=bad)
    with pytest.raises(ValueError, match="sample_weight"):
        m.evaluate(x, soft, sample_weight=w[:-1])


# --- OneCycle's cycled momentum ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_momentum_matches_torch_step_by_step(kind, three_phase):
    torch = require_torch()
    kw = dict(max_lr=0.3, total_steps=40, pct_start=0.3, three_phase=three_phase)
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if kind == "sgd" else torch.optim.Adam([p], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kw)  # cycle_momentum=True, 0.85 .. 0.95
    want_m, want_lr = [], []
    for _ in range(40):
        g = opt.param_groups[0]
        want_m.append(g["momentum"] if kind == "sgd" else g["betas"][0])
        want_lr.append(g["lr"])
        opt.step()
        sched.step()
    ours = ic.schedules.OneCycle(**kw)
    np.testing.assert_allclose([ours.momentum_at(i) for i in range(40)], want_m, rtol=1e-14)
    np.testing.assert_allclose([ours.lr_at(i) for i in range(40)], want_lr, rtol=1e-12)
    np.testing.assert_array_equal(ours.momentums(5, 7), [ours.momentum_at(i) for i in range(5, 12)])
    assert ic.schedules.OneCycle(cycle_momentum=False, **kw).momentum_at(3) is None


def onecycle_fit(fused, kind, groups=False):
    x, _, y, _ = data(70)
    m = ic.Sequential([L.Dense(8, activation="relu"), L.BatchNorm(), L.Dense(3)], input_dim=5, seed=3)
    m.fused = fused
    params = optim.decay_groups(m, weight_decay=0.01) if groups else m.parameters()
    if groups:
        # a group's own momentum / β₁, which the cycled one replaces (as torch's OneCycleLR does)
        if kind in ("sgd", "rmsprop"):
            params[1]["momentum"] = 0.5
        else:
            params[1]["betas"] = (0.5, 0.9)
    opt = optim.get(kind, params, **({"momentum": 0.9} if kind in ("sgd", "rmsprop") else {}))
    sched = ic.schedules.OneCycle(max_lr=0.05, total_steps=15)
    h = m.fit(x, y, optimizer=opt, epochs=3, batch_size=16, callbacks=[sched], verbose=0)
    return m, h, opt, sched


@pytest.mark.parametrize("kind", ["sgd", "rmsprop", "adam", "nadam"])
@pytest.mark.parametrize("groups", [False, True])
def test_onecycle_momentum_runs_in_the_native_epoch_bit_exact(kind, groups, monkeypatch):
    calls = []
    real = fused_mod.train_batches

    def counting(*args, **kw):
        got = real(*args, **kw)
        calls.append(got is not None and kw.get("momentums", args[13] if len(args) > 13 else None) is not None)
        return got

    monkeypatch.setattr(fused_mod, "train_batches", counting)
    fast, hf, of, sched = onecycle_fit(True, kind, groups)
    assert calls and all(calls), "the cycled momentum did not go through the native epoch"
    slow, hs, os_, _ = onecycle_fit(False, kind, groups)
    same_params(fast, slow)
    assert hf.history["loss"] == hs.history["loss"]
    key = of.momentum_key
    last = sched.momentum_at(of.step_count - 1)
    for o in (of, os_):
        assert o.step_count == 15
        assert all(g.hyper()[key] == last for g in o.param_groups)  # every group, as torch sets them
    assert fast.__dict__["fused_builds"] <= 2, "the plan was rebuilt for the changing momentum"


def test_onecycle_by_hand_with_fused_steps_is_fit():
    fit_model, _, _, sched = onecycle_fit(True, "adam")
    x, _, y, _ = data(70)
    m = ic.Sequential([L.Dense(8, activation="relu"), L.BatchNorm(), L.Dense(3)], input_dim=5, seed=3)
    opt = optim.Adam(m.parameters())
    for _epoch in range(3):
        order = m.rng.permutation(70)
        for b in range(5):
            idx = order[b * 16 : (b + 1) * 16]
            opt.lr = sched.lr_at(opt.step_count)
            opt.set_momentum(sched.momentum_at(opt.step_count))
            m.train_step(x[idx], y[idx], opt)  # fused, the momentum passed per call
    assert m.__dict__["fused_builds"] == 1
    for p, q in zip(m.parameters(), fit_model.parameters()):
        np.testing.assert_array_equal(p.value, q.value)


def test_onecycle_refuses_an_optimizer_without_momentum_and_bad_momentums():
    x, _, y, _ = data()
    m = net()
    with pytest.raises(ValueError, match="momentum or beta1"):
        m.fit(x, y, optimizer=optim.Adagrad(m.parameters()), callbacks=[ic.schedules.OneCycle(0.1, 10)], verbose=0)
    with pytest.raises(ValueError, match="base_momentum"):
        ic.schedules.OneCycle(0.1, 10, base_momentum=0.99, max_momentum=0.9)
    # A momentum that would drop SGD's buffer mid-epoch is refused before anything is written.
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    before = [p.value.copy() for p in m.parameters()]
    order = np.arange(50, dtype=np.int64)
    with pytest.raises(ValueError, match="state arrays"):
        fused_mod.train_batches(m, x, y, opt, "cross_entropy", order, 10, 0, 3, momentums=[0.9, 0.0, 0.9])
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.value, b)
    assert opt.step_count == 0


# --- parameter groups keeping different state arrays ------------------------------------------------
GROUPS = {
    # kind: (default hyper, the second group's own values)
    "sgd": ({"lr": 0.05, "momentum": 0.9, "nesterov": True}, {"momentum": 0.0, "nesterov": False, "lr": 0.1}),
    "sgd-plain-default": ({"lr": 0.05}, {"momentum": 0.8, "dampening": 0.1}),
    "adam": ({"lr": 0.01, "amsgrad": True}, {"amsgrad": False, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    "rmsprop": ({"lr": 0.01, "centered": True}, {"centered": False, "momentum": 0.5}),
    "nadam": ({"lr": 0.01}, {"betas": (0.85, 0.98), "momentum_decay": 0.002}),
}


def grouped(model, kind):
    default, own = GROUPS[kind]
    groups = optim.decay_groups(model, weight_decay=0.0)  # kernels, then the 1-D parameters
    groups[1].update(own)
    return optim.get(kind.split("-")[0], groups, **default)


@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_groups_with_different_state_arrays_are_fused_bit_exact(kind, monkeypatch):
    x, _, y, _ = data(70)
    calls = []
    real = fused_mod.train_batches

    def counting(*args, **kw):
        got = real(*args, **kw)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(fused_mod, "train_batches", counting)
    runs = []
    for fused in (True, False):
        m = net(fused=fused, bn=True, seed=4)
        opt = grouped(m, kind)
        for _ in range(2):  # single fused steps, then a native epoch
            m.train_step(x[:20], y[:20], opt)
        h = m.fit(x, y, optimizer=opt, epochs=2, batch_size=16, verbose=0)
        runs.append((m, opt, h))
        if fused:
            assert calls and all(calls), "the grouped optimizer did not go through the native epoch"
    (fast, of, hf), (slow, os_, hs) = runs
    assert fast.__dict__.get("_fused_train") is not None and slow.__dict__.get("_fused_train") is None
    same_params(fast, slow)
    assert hf.history["loss"] == hs.history["loss"]
    for p in fast.parameters():
        # each parameter keeps exactly its group's state arrays, with the layer path's values
        assert sorted(of.state[p.name]) == sorted(os_.state[p.name]), p.name
        for k, v in of.state[p.name].items():
            np.testing.assert_array_equal(v, os_.state[p.name][k])
    names = fast.__dict__["_fused_train"].plan.param_state_names
    assert len({tuple(n) for n in names}) == (1 if kind == "nadam" else 2), names  # nadam: same arrays
