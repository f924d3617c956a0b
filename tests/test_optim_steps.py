"""initcore.ops optimizer steps against initcore.reference.ops (NumPy), against the textbook
recurrences they are equivalent to, and on bad input."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}

# ------------------------------------------------------------------------------------------------
# Every flag combination of every optimizer: (function name, keyword arguments)


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


CONFIGS = (
    [
        ("sgd_step", dict(lr=0.05, **c))
        for c in _grid(
            momentum=[0.0, 0.9],
            dampening=[0.0, 0.3],
            nesterov=[False, True],
            weight_decay=[0.0, 0.01],
            maximize=[False, True],
        )
        if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))
    ]
    + [
        ("adagrad_step", dict(lr=0.1, **c))
        for c in _grid(lr_decay=[0.0, 0.1], weight_decay=[0.0, 0.01], maximize=[False, True])
    ]
    + [
        ("rmsprop_step", c)
        for c in _grid(momentum=[0.0, 0.9], centered=[False, True], weight_decay=[0.0, 0.01], maximize=[False, True])
    ]
    + [
        ("adam_step", dict(lr=0.01, **c))
        for c in _grid(
            amsgrad=[False, True],
            decoupled_weight_decay=[False, True],
            weight_decay=[0.0, 0.01],
            maximize=[False, True],
        )
    ]
    + [
        ("adamw_step", dict(lr=0.01, **c))
        for c in _grid(amsgrad=[False, True], weight_decay=[0.0, 1e-2], maximize=[False, True])
    ]
    + [
        ("nadam_step", c)
        for c in _grid(decoupled_weight_decay=[False, True], weight_decay=[0.0, 0.01], maximize=[False, True])
    ]
)
IDS = [f"{name[:-5]}-" + "-".join(f"{k}={v}" for k, v in kw.items() if k != "lr") for name, kw in CONFIGS]


def state_names(name, kw):
    """The state arrays a configuration uses, in signature order."""
    if name == "sgd_step":
        return ["momentum_buffer"] if kw.get("momentum", 0) > 0 else []
    if name == "adagrad_step":
        return ["state_sum"]
    if name == "rmsprop_step":
        return (
            ["square_avg"]
            + (["momentum_buffer"] if kw.get("momentum", 0) > 0 else [])
            + (["grad_avg"] if kw.get("centered") else [])
        )
    if name == "nadam_step":
        return ["exp_avg", "exp_avg_sq"]
    return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if kw.get("amsgrad") else [])


SQUARES = {"state_sum", "square_avg", "exp_avg_sq", "max_exp_avg_sq"}


def random_states(name, kw, shape, dtype, r):
    """Plausible mid-training state: squares non-negative, ``square_avg ≥ grad_avg²``."""
    s = {}
    for n in state_names(name, kw):
        x = np.asarray(r.standard_normal(shape))
        s[n] = np.asarray(x * x if n in SQUARES else 0.5 * x, dtype)
    if "grad_avg" in s:
        s["square_avg"] = np.asarray(s["grad_avg"].astype(np.float64) ** 2 + s["square_avg"], dtype)
    return s


def call(mod, name, param, grad, states, step, kw, mu_product=1.0):
    f = getattr(mod, name)
    if name == "nadam_step":
        return f(param, grad, **states, step=step, mu_product=mu_product, **kw)
    return f(param, grad, **states, step=step, **kw)


def copies(arrays):
    return {k: v.copy() for k, v in arrays.items()}


# ------------------------------------------------------------------------------------------------
# Rust against NumPy

dims = st.sampled_from([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 33])
shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
@settings(max_examples=12)
@given(shape=shapes, f64=st.booleans(), step=st.sampled_from([1, 2, 3, 10, 1000]), seed=st.integers(0, 2**31))
def test_one_step_matches_reference(name, kw, shape, f64, step, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    param = np.asarray(r.standard_normal(shape), dt)  # np.asarray keeps shape () an array
    grad = np.asarray(r.standard_normal(shape), dt)
    states = random_states(name, kw, shape, dt, r)
    mp = 0.9**step if name == "nadam_step" else 1.0
    got_p, got_s = param.copy(), copies(states)
    want_p, want_s = param.copy(), copies(states)
    got = call(ops, name, got_p, grad, got_s, step, kw, mp)
    want = call(ref, name, want_p, grad, want_s, step, kw, mp)
    assert_close(got_p, want_p, "elementwise", err_msg="param")
    for k in states:
        assert got_s[k].dtype == dt
        assert_close(got_s[k], want_s[k], "elementwise", err_msg=k)
    if name == "nadam_step":
        assert got == pytest.approx(want, rel=1e-15)
    else:
        assert got is None and want is None


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_twenty_step_trajectories_agree(name, kw, dtype):
    """A noisy quadratic, f(p) = ½·Σ a·p², driven 20 steps by each backend from the same start
    (states start at zero, as in torch.optim)."""
    r = np.random.default_rng(7)
    a = r.uniform(0.5, 2.0, 37)
    noise = 0.1 * r.standard_normal((20, 37))
    runs = []
    for mod in (ops, ref):
        p = np.linspace(-2, 2, 37).astype(dtype)
        s = {n: np.zeros(37, dtype) for n in state_names(name, kw)}
        mp = 1.0
        for t in range(1, 21):
            g = (a * p + noise[t - 1]).astype(dtype)
            out = call(mod, name, p, g, s, t, kw, mp)
            if name == "nadam_step":
                mp = out
        runs.append((p, s, mp))
    (p1, s1, mp1), (p2, s2, mp2) = runs
    # Each step is elementwise; 20 of them compound, hence the "reduction" kind.
    assert_close(p1, p2, "reduction", err_msg="param")
    for k in s1:
        assert_close(s1[k], s2[k], "reduction", err_msg=k)
    assert mp1 == pytest.approx(mp2, rel=1e-15)
    assert np.all(np.isfinite(p1))


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_zero_size_and_zero_dim(mod, dtype):
    for shape in [(0,), (3, 0), ()]:
        p = np.ones(shape, dtype)
        m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
        mod.adam_step(p, np.ones(shape, dtype), m, v, step=1, lr=0.5)
        assert p.shape == shape
        assert_close(p, np.full(shape, 1 - 0.5 / (1 + 1e-8), dtype), "elementwise")


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_strided_grad_is_read_in_logical_order(mod, dtype, rng):
    base = rng.standard_normal((9, 14)).astype(dtype)
    p1 = rng.standard_normal((9, 7)).astype(dtype)
    p2 = p1.copy()
    b1, b2 = np.zeros_like(p1), np.zeros_like(p1)
    mod.sgd_step(p1, base[:, ::2], b1, step=1, lr=0.1, momentum=0.9)
    mod.sgd_step(p2, np.ascontiguousarray(base[:, ::2]), b2, step=1, lr=0.1, momentum=0.9)
    assert_close(p1, p2, "exact")
    assert_close(b1, b2, "exact")
    p3 = p1.copy()
    mod.sgd_step(p3, np.asfortranarray(p2), step=1, lr=0.1)  # a copy in Fortran order
    assert_close(p3, p1 - dtype(0.1) * p2, "exact")


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_first_sgd_step_ignores_the_old_buffer(mod, dtype):
    p, g = np.ones(5, dtype), np.full(5, 2.0, dtype)
    b = np.full(5, 123.0, dtype)
    mod.sgd_step(p, g, b, step=1, lr=0.1, momentum=0.9, dampening=0.5)
    assert_close(b, g, "exact")  # PyTorch: buf = clone(grad), no dampening
    mod.sgd_step(p, g, b, step=2, lr=0.1, momentum=0.9, dampening=0.5)
    assert_close(b, np.full(5, 0.9 * 2 + 0.5 * 2, dtype), "elementwise")


def test_bit_identical_for_any_thread_count(rng):
    """1M elements, far above the parallel threshold."""
    n = 1_000_003
    p0 = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m0 = (0.1 * rng.standard_normal(n)).astype(np.float32)
    v0 = (0.1 * rng.standard_normal(n) ** 2).astype(np.float32)
    n0 = ic.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            ic.set_num_threads(threads)
            p, m, v, vm = p0.copy(), m0.copy(), v0.copy(), v0.copy()
            ops.adam_step(p, g, m, v, vm, step=5, amsgrad=True, weight_decay=0.01)
            q, b = p0.copy(), m0.copy()
            ops.sgd_step(q, g, b, step=3, lr=0.1, momentum=0.9, nesterov=True)
            r_, m2, v2 = p0.copy(), m0.copy(), v0.copy()
            mp = ops.nadam_step(r_, g, m2, v2, step=4, mu_product=0.7)
            results.append((p, m, v, vm, q, b, r_, m2, v2, mp))
    finally:
        ic.set_num_threads(n0)
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------------------------
# Textbook recurrences (independent of PyTorch's formulation), float64


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_classical_momentum_is_sgd_momentum_at_constant_lr(mod):
    """Polyak's heavy ball ``v ← ρv − ηg; w ← w + v`` is PyTorch's buffer rule with v = −η·b."""
    a = np.array([0.3, 1.0, 2.5])
    eta, rho = 0.1, 0.9
    w, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    p, b = w.copy(), np.zeros(3)
    for t in range(1, 21):
        v = rho * v - eta * (a * w)
        w = w + v
        mod.sgd_step(p, a * p, b, step=t, lr=eta, momentum=rho)
        assert_close(p, w, "training", err_msg=f"step {t}")
        assert_close(-eta * b, v, "training", err_msg=f"step {t}")


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_nesterov_param_is_the_look_ahead_point(mod):
    """Sutskever et al.'s ``v ← ρv − η∇f(w + ρv); w ← w + v``: PyTorch's param is w + ρv."""
    a = np.array([0.3, 1.0, 2.5])
    eta, rho = 0.1, 0.9
    w, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    p, b = w.copy(), np.zeros(3)
    for t in range(1, 21):
        v = rho * v - eta * (a * (w + rho * v))
        w = w + v
        mod.sgd_step(p, a * p, b, step=t, lr=eta, momentum=rho, nesterov=True)
        assert_close(p, w + rho * v, "training", err_msg=f"step {t}")


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_adam_is_algorithm_1_with_bias_corrected_moments(mod):
    """Kingma & Ba's Algorithm 1 on a scalar, written out: ``θ ← θ − α·m̂/(√v̂ + ε)``."""
    alpha, b1, b2, eps = 0.05, 0.9, 0.999, 1e-3  # a large ε makes its position visible
    grads = [0.5, -0.25, 1.5, 0.1, -2.0, 0.3]
    theta, m, v = 1.0, 0.0, 0.0
    p, em, ev = np.array([1.0]), np.zeros(1), np.zeros(1)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - alpha * m_hat / (math.sqrt(v_hat) + eps)
        mod.adam_step(p, np.array([g]), em, ev, step=t, lr=alpha, beta1=b1, beta2=b2, eps=eps)
        assert p[0] == pytest.approx(theta, rel=1e-13)


def test_adam_epsilon_sits_after_the_bias_correction():
    """The paper's efficient form ``θ ← θ − α·√bc₂/bc₁ · m/(√v + ε̂)`` matches only with
    ``ε̂ = ε·√bc₂``; with ``ε̂ = ε`` it does not (here, at t = 1, by a visible margin)."""
    alpha, b1, b2, eps, g = 0.05, 0.9, 0.999, 1e-3, 0.02
    p, m, v = np.array([0.0]), np.zeros(1), np.zeros(1)
    ops.adam_step(p, np.array([g]), m, v, step=1, lr=alpha, beta1=b1, beta2=b2, eps=eps)
    bc1, bc2 = 1 - b1, 1 - b2
    alpha_t = alpha * math.sqrt(bc2) / bc1
    same = -alpha_t * m[0] / (math.sqrt(v[0]) + eps * math.sqrt(bc2))
    other = -alpha_t * m[0] / (math.sqrt(v[0]) + eps)
    assert p[0] == pytest.approx(same, rel=1e-13)
    assert abs(p[0] - other) > 1e-3 * abs(p[0])


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_adamw_is_decay_then_adam(mod, dtype):
    """AdamW: ``p ← p·(1 − η·λ)``, then Adam with the undecayed gradient."""
    r = np.random.default_rng(3)
    p1 = r.standard_normal(11).astype(dtype)
    g = r.standard_normal(11).astype(dtype)
    p2 = p1.copy()
    s1 = [np.zeros(11, dtype) for _ in range(2)]
    s2 = [np.zeros(11, dtype) for _ in range(2)]
    mod.adamw_step(p1, g, *s1, step=3, lr=0.01, weight_decay=0.1)
    p2 *= dtype(1 - 0.01 * 0.1)
    mod.adam_step(p2, g, *s2, step=3, lr=0.01)
    assert_close(p1, p2, "elementwise")


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_nadam_by_hand_and_mu_product(mod):
    """Dozat's NAdam on a scalar, with the momentum schedule μ_t = β₁(1 − ½·0.96^{tψ})."""
    lr, b1, b2, eps, psi = 0.01, 0.9, 0.999, 1e-8, 4e-3
    grads = [0.5, -0.25, 1.5, 0.1]
    theta, m, v, prod = 1.0, 0.0, 0.0, 1.0
    p, em, ev, mp = np.array([1.0]), np.zeros(1), np.zeros(1), 1.0
    for t, g in enumerate(grads, start=1):
        mu = [b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in (t, t + 1)]
        prod *= mu[0]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        d = math.sqrt(v / (1 - b2**t)) + eps
        theta -= lr * ((1 - mu[0]) * g / (1 - prod) + mu[1] * m / (1 - prod * mu[1])) / d
        mp = mod.nadam_step(p, np.array([g]), em, ev, step=t, mu_product=mp, lr=lr)
        assert mp == pytest.approx(prod, rel=1e-15)
        assert p[0] == pytest.approx(theta, rel=1e-13)


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_adagrad_by_hand_with_lr_decay(mod):
    lr, decay, eps = 0.1, 0.5, 1e-10
    grads = [2.0, -1.0, 0.5]
    w, G = 0.0, 0.0
    p, s = np.array([0.0]), np.zeros(1)
    for t, g in enumerate(grads, start=1):
        G += g * g
        w -= lr / (1 + (t - 1) * decay) * g / (math.sqrt(G) + eps)
        mod.adagrad_step(p, np.array([g]), s, step=t, lr=lr, lr_decay=decay, eps=eps)
        assert p[0] == pytest.approx(w, rel=1e-14)


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_rmsprop_momentum_is_graves_form(mod):
    """Graves/TensorFlow: ``m ← μm + η·g/d; w ← w − m`` (centered d = √(s − a²) + ε)."""
    lr, alpha, mu, eps = 0.01, 0.9, 0.5, 1e-8
    a = np.array([0.3, 1.0, 2.5])
    w, s, ga, mm = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3), np.zeros(3)
    p, sq, gav, buf = w.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, 21):
        g = a * w
        s = alpha * s + (1 - alpha) * g**2
        ga = alpha * ga + (1 - alpha) * g
        mm = mu * mm + lr * g / (np.sqrt(s - ga**2) + eps)
        w = w - mm
        mod.rmsprop_step(p, a * p, sq, buf, gav, step=t, lr=lr, alpha=alpha, eps=eps, momentum=mu, centered=True)
        assert_close(p, w, "training", err_msg=f"step {t}")


# ------------------------------------------------------------------------------------------------
# Bad input: exception type, the argument named, nothing written


def _adam_arrays(dtype=np.float32, n=6):
    r = np.random.default_rng(0)
    return dict(
        param=r.standard_normal(n).astype(dtype),
        grad=r.standard_normal(n).astype(dtype),
        exp_avg=np.zeros(n, dtype),
        exp_avg_sq=np.ones(n, dtype),
    )


def _readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


def _bad_cases():
    """(label, function, arrays, extra kwargs, exception, text the message must contain)."""
    A = _adam_arrays
    f64 = np.float64
    cases = [
        ("dtype", "adam_step", dict(A(), exp_avg_sq=np.ones(6, f64)), {}, TypeError, "'exp_avg_sq'"),
        ("int", "adam_step", dict(A(), grad=np.ones(6, np.int64)), {}, TypeError, "'grad'"),
        (
            "list",
            "sgd_step",
            dict(param=np.ones(3, np.float32), grad=[1.0, 2.0, 3.0]),
            {"lr": 0.1},
            TypeError,
            "'grad'",
        ),
        ("shape-state", "adam_step", dict(A(), exp_avg=np.zeros(5, np.float32)), {}, ValueError, "'exp_avg'"),
        ("shape-grad", "adam_step", dict(A(), grad=np.zeros((6, 1), np.float32)), {}, ValueError, "'grad'"),
        ("ro-param", "adam_step", dict(A(), param=_readonly(A()["param"])), {}, ValueError, "'param'"),
        (
            "ro-state",
            "adam_step",
            dict(A(), exp_avg_sq=_readonly(np.ones(6, np.float32))),
            {},
            ValueError,
            "'exp_avg_sq'",
        ),
        (
            "noncontig-param",
            "sgd_step",
            dict(param=np.ones(12, np.float32)[::2], grad=np.ones(6, np.float32)),
            {"lr": 0.1},
            ValueError,
            "'param'",
        ),
        (
            "noncontig-state",
            "sgd_step",
            dict(
                param=np.ones(6, np.float32), grad=np.ones(6, np.float32), momentum_buffer=np.zeros(12, np.float32)[::2]
            ),
            {"lr": 0.1, "momentum": 0.9},
            ValueError,
            "'momentum_buffer'",
        ),
        ("lr", "adam_step", A(), {"lr": -1e-3}, ValueError, "'lr'"),
        ("lr-nan", "sgd_step", dict(param=np.ones(3), grad=np.ones(3)), {"lr": float("nan")}, ValueError, "'lr'"),
        ("eps-zero", "adam_step", A(), {"eps": 0.0}, ValueError, "'eps'"),
        (
            "eps-neg",
            "adagrad_step",
            dict(param=np.ones(3), grad=np.ones(3), state_sum=np.zeros(3)),
            {"eps": -1e-10},
            ValueError,
            "'eps'",
        ),
        ("beta1", "adam_step", A(), {"beta1": 1.0}, ValueError, "'beta1'"),
        ("beta2", "nadam_step", A(), {"beta2": -0.1}, ValueError, "'beta2'"),
        ("beta2-inf", "adamw_step", A(), {"beta2": float("inf")}, ValueError, "'beta2'"),
        ("wd", "adamw_step", A(), {"weight_decay": -0.1}, ValueError, "'weight_decay'"),
        (
            "momentum",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3), momentum_buffer=np.zeros(3)),
            {"lr": 0.1, "momentum": -0.5},
            ValueError,
            "'momentum'",
        ),
        (
            "alpha",
            "rmsprop_step",
            dict(param=np.ones(3), grad=np.ones(3), square_avg=np.zeros(3)),
            {"alpha": 1.0},
            ValueError,
            "'alpha'",
        ),
        (
            "lr_decay",
            "adagrad_step",
            dict(param=np.ones(3), grad=np.ones(3), state_sum=np.zeros(3)),
            {"lr_decay": -1.0},
            ValueError,
            "'lr_decay'",
        ),
        ("momentum_decay", "nadam_step", A(), {"momentum_decay": -1.0}, ValueError, "'momentum_decay'"),
        ("mu_product", "nadam_step", A(), {"mu_product": 1.5}, ValueError, "'mu_product'"),
        ("step-zero", "adam_step", A(), {"step": 0}, ValueError, "'step'"),
        (
            "step-neg",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3)),
            {"lr": 0.1, "step": -2},
            ValueError,
            "'step'",
        ),
        (
            "type-step",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3)),
            {"lr": 0.1, "step": 1.5},
            TypeError,
            "'step'",
        ),
        ("type-lr", "adam_step", A(), {"lr": "0.1"}, TypeError, "'lr'"),
        (
            "type-momentum",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3)),
            {"lr": 0.1, "momentum": None},
            TypeError,
            "'momentum'",
        ),
        (
            "nesterov-damp",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3), momentum_buffer=np.zeros(3)),
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            ValueError,
            "Nesterov",
        ),
        (
            "nesterov-nomom",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3)),
            {"lr": 0.1, "nesterov": True},
            ValueError,
            "Nesterov",
        ),
        (
            "missing-buf",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3)),
            {"lr": 0.1, "momentum": 0.9},
            ValueError,
            "'momentum_buffer'",
        ),
        (
            "unused-buf",
            "sgd_step",
            dict(param=np.ones(3), grad=np.ones(3), momentum_buffer=np.zeros(3)),
            {"lr": 0.1},
            ValueError,
            "'momentum_buffer'",
        ),
        ("missing-max", "adam_step", A(), {"amsgrad": True}, ValueError, "'max_exp_avg_sq'"),
        (
            "unused-max",
            "adam_step",
            dict(A(), max_exp_avg_sq=np.zeros(6, np.float32)),
            {},
            ValueError,
            "'max_exp_avg_sq'",
        ),
        (
            "missing-gavg",
            "rmsprop_step",
            dict(param=np.ones(3), grad=np.ones(3), square_avg=np.zeros(3)),
            {"centered": True},
            ValueError,
            "'grad_avg'",
        ),
        (
            "rms-missing-buf",
            "rmsprop_step",
            dict(param=np.ones(3), grad=np.ones(3), square_avg=np.zeros(3)),
            {"momentum": 0.5},
            ValueError,
            "'momentum_buffer'",
        ),
    ]
    # Aliasing: grad is param itself, or a view of it; a state is param or another state.
    p = np.ones(6, np.float32)
    cases.append(("grad-is-param", "adam_step", dict(A(), param=p, grad=p), {}, ValueError, "'grad'"))
    q = np.ones(6, np.float32)
    cases.append(("grad-view", "sgd_step", dict(param=q, grad=q[::-1]), {"lr": 0.1}, ValueError, "'grad'"))
    m = np.zeros(6, np.float32)
    cases.append(("grad-is-state", "adam_step", dict(A(), exp_avg=m, grad=m), {}, ValueError, "'grad'"))
    s = np.ones(6, np.float32)
    cases.append(("state-is-param", "adam_step", dict(A(), param=s, exp_avg=s), {}, ValueError, "'exp_avg'"))
    v = np.ones(6, np.float32)
    cases.append(("state-is-state", "adam_step", dict(A(), exp_avg=v, exp_avg_sq=v), {}, ValueError, "'exp_avg_sq'"))
    return cases


BAD_LABELS = [c[0] for c in _bad_cases()]


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
@pytest.mark.parametrize("case", range(len(BAD_LABELS)), ids=BAD_LABELS)
def test_bad_input_raises_naming_the_argument_and_writes_nothing(mod, case):
    label, name, arrays, kw, exc, text = _bad_cases()[case]  # fresh arrays, aliases intact
    before = {k: np.array(v, copy=True) for k, v in arrays.items()}
    kw = dict(kw)
    step = kw.pop("step", 1)
    if name == "nadam_step":
        kw.setdefault("mu_product", 1.0)
    with pytest.raises(exc) as info:
        getattr(mod, name)(**arrays, step=step, **kw)
    msg = str(info.value)
    if label.startswith("type-"):  # PyO3's conversion errors name the argument in a note
        msg += " ".join(getattr(info.value, "__notes__", []))
    else:
        assert msg.startswith(f"{name}: "), msg
    assert text in msg, msg
    for k, v in arrays.items():
        np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=f"{label}: '{k}' was written")
