"""Optimizers: every one's 50-step trajectory on a fixed quadratic f(w) = ½wᵀAw − bᵀw matched
against its textbook recurrence, written here independently of the kernels, on both backends;
state_dict round trips; torch.optim's argument checks. (tests/test_optim_steps.py tests the kernels.)"""

import math

import numpy as np
import pytest

from conftest import assert_close
from initcore import Parameter, optim

SHAPE = (3, 4)
D = 12
STEPS = 50


def problem():
    rng = np.random.default_rng(42)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    A = q @ np.diag(np.linspace(0.5, 2.0, D)) @ q.T  # SPD, condition number 4
    b = rng.standard_normal(D)
    w0 = rng.standard_normal(D)
    return A, b, w0


A, B, W0 = problem()


def grad(w):
    return A @ w - B


# ---- textbook recurrences (float64, flat vectors) --------------------------------------------


def tb_sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Textbook momentum v ← ρv − ηg, w ← w + v (Polyak); Nesterov in Sutskever's look-ahead
    form rewritten at the current point: w ← w − η(g + ρb). Dampening as PyTorch (first b = g)."""
    w, out = W0.copy(), []
    v = np.zeros(D)
    b = None
    for _t in range(1, STEPS + 1):
        g = grad(w) + weight_decay * w
        if momentum == 0:
            w = w - lr * g
        elif nesterov:
            b = g.copy() if b is None else momentum * b + g
            w = w - lr * (g + momentum * b)
        elif dampening == 0:
            v = momentum * v - lr * g  # textbook velocity (= −η·b at constant η)
            w = w + v
        else:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            w = w - lr * b
        out.append(w)
    return out


def tb_adagrad(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    w, out = W0.copy(), []
    G = np.full(D, initial_accumulator_value)  # Duchi et al.: diagonal of Σ g gᵀ
    for t in range(1, STEPS + 1):
        g = grad(w) + weight_decay * w
        G = G + g * g
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(G) + eps)
        out.append(w)
    return out


def tb_rmsprop(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    w, out = W0.copy(), []
    Eg2, Eg, buf = np.zeros(D), np.zeros(D), np.zeros(D)
    for _t in range(1, STEPS + 1):
        g = grad(w) + weight_decay * w
        Eg2 = alpha * Eg2 + (1 - alpha) * g**2  # E[g²]
        if centered:  # Graves 2013: divide by an estimate of the standard deviation of g
            Eg = alpha * Eg + (1 - alpha) * g
            denom = np.sqrt(Eg2 - Eg**2) + eps
        else:
            denom = np.sqrt(Eg2) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            w = w - lr * buf
        else:
            w = w - lr * g / denom
        out.append(w)
    return out


def tb_adam(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    """Kingma & Ba, Algorithm 1 (+ AMSGrad's running max; + AdamW's decoupled decay)."""
    w, out = W0.copy(), []
    m, v, vmax = np.zeros(D), np.zeros(D), np.zeros(D)
    for t in range(1, STEPS + 1):
        g = grad(w)
        if decoupled:
            w = w - lr * weight_decay * w
        else:
            g = g + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return out


def tb_nadam(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3, decoupled=False):
    """Dozat 2016 (Algorithm 2) with the momentum schedule μ_t = β₁(1 − ½·0.96^{tψ})."""
    w, out = W0.copy(), []
    m, n = np.zeros(D), np.zeros(D)
    mu = lambda t: beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))  # noqa: E731
    prod = 1.0
    for t in range(1, STEPS + 1):
        g = grad(w)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        prod_t = prod * mu(t)
        prod_next = prod_t * mu(t + 1)
        m = beta1 * m + (1 - beta1) * g
        n = beta2 * n + (1 - beta2) * g * g
        g_hat = g / (1 - prod_t)
        m_hat = m / (1 - prod_next)
        m_bar = (1 - mu(t)) * g_hat + mu(t + 1) * m_hat
        n_hat = n / (1 - beta2**t)
        w = w - lr * m_bar / (np.sqrt(n_hat) + eps)
        prod = prod_t
        out.append(w)
    return out


CASES = [
    ("sgd", dict(lr=0.1), tb_sgd),
    ("sgd-momentum", dict(lr=0.05, momentum=0.9), tb_sgd),
    ("sgd-dampening", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), tb_sgd),
    ("sgd-nesterov", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02), tb_sgd),
    ("adagrad", dict(lr=0.3), tb_adagrad),
    (
        "adagrad-decay",
        dict(lr=0.3, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-6),
        tb_adagrad,
    ),
    ("rmsprop", dict(lr=0.01), tb_rmsprop),
    (
        "rmsprop-centered-momentum",
        dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
        tb_rmsprop,
    ),
    ("adam", dict(lr=0.05), tb_adam),
    ("adam-amsgrad-wd", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, eps=1e-6), tb_adam),
    ("adamw", dict(lr=0.05, weight_decay=0.1), tb_adam),
    ("adamw-amsgrad", dict(lr=0.05, amsgrad=True), tb_adam),
    ("nadam", dict(lr=0.05), tb_nadam),
    ("nadam-decoupled", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.01), tb_nadam),
    ("nadam-l2", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.05), tb_nadam),
]


def textbook_kwargs(name, kw):
    kw = dict(kw)
    if "betas" in kw:
        kw["beta1"], kw["beta2"] = kw.pop("betas")
    if name.startswith("adamw"):
        kw.setdefault("weight_decay", 1e-2)
        kw["decoupled"] = True
    if "decoupled_weight_decay" in kw:
        kw["decoupled"] = kw.pop("decoupled_weight_decay")
    return kw


def run(cls, kw, backend, dtype, maximize=False):
    p = Parameter(W0.reshape(SHAPE).astype(dtype), "w", backend=backend)
    opt = cls([p], **kw, maximize=maximize) if maximize else cls([p], **kw)
    out = []
    for _ in range(STEPS):
        g = grad(p.value.reshape(-1).astype(np.float64))
        p.grad[...] = (-g if maximize else g).reshape(SHAPE)
        opt.step()
        out.append(p.value.reshape(-1).copy())
    return opt, out


def optimizer_class(name):
    return optim.OPTIMIZERS[name.split("-")[0]]


@pytest.mark.parametrize("backend", ["rust", "numpy"])
@pytest.mark.parametrize("name,kw,textbook", CASES, ids=[c[0] for c in CASES])
def test_trajectory_matches_textbook(name, kw, textbook, backend, dtype):
    opt, got = run(optimizer_class(name), kw, backend, dtype)
    want = textbook(**textbook_kwargs(name, kw))
    assert opt.step_count == STEPS
    for t, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w.astype(dtype), kind="training", err_msg=f"{name} step {t + 1}")
    # The run made progress towards the minimiser A⁻¹b (except where decay dominates).
    w_star = np.linalg.solve(A, B)
    assert np.linalg.norm(got[-1] - w_star) < np.linalg.norm(W0 - w_star)


@pytest.mark.parametrize("backend", ["rust", "numpy"])
@pytest.mark.parametrize("name", ["sgd-momentum", "adagrad", "rmsprop", "adam", "adamw", "nadam"])
def test_maximize_follows_the_negated_gradient(name, backend):
    kw = {c[0]: c[1] for c in CASES}[name]
    _, up = run(optimizer_class(name), kw, backend, np.float64, maximize=True)
    _, down = run(optimizer_class(name), kw, backend, np.float64)
    for a, b in zip(up, down):
        assert_close(a, b, kind="training")


@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_sgd_momentum_under_a_changing_lr_is_pytorchs_buffer_form(backend):
    """With η changing, PyTorch's w ← w − η_t·b (b ← ρb + g) is what runs, not v ← ρv − η_t g."""
    p = Parameter(W0.copy(), "w", backend=backend)
    opt = optim.SGD([p], lr=0.05, momentum=0.9)
    w, b = W0.copy(), None
    for t in range(30):
        lr = 0.05 * 0.9**t
        opt.lr = lr
        p.grad[...] = grad(p.value)
        opt.step()
        g = grad(w)
        b = g.copy() if b is None else 0.9 * b + g
        w = w - lr * b
        assert_close(p.value, w, kind="training")


def make_params(backend="rust", dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [
        Parameter(rng.standard_normal((5, 3)).astype(dtype), "dense_0/kernel", backend),
        Parameter(rng.standard_normal(3).astype(dtype), "dense_0/bias", backend),
    ]


def fake_grads(params, t):
    for i, p in enumerate(params):
        p.grad[...] = np.sin(np.arange(p.size).reshape(p.shape) + 0.3 * t + i) + 0.5 * p.value


ROUND_TRIP = [
    optim.SGD,
    lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True),
    optim.Adagrad,
    lambda ps: optim.RMSprop(ps, momentum=0.5, centered=True),
    lambda ps: optim.Adam(ps, amsgrad=True),
    optim.AdamW,
    optim.NAdam,
]


@pytest.mark.parametrize("make", ROUND_TRIP)
@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_state_dict_round_trip_resumes_exactly(make, backend):
    params = make_params(backend)
    opt = make(params)
    for t in range(7):
        fake_grads(params, t)
        opt.step()
    saved_values = [p.value.copy() for p in params]
    sd = opt.state_dict()
    for t in range(7, 12):
        fake_grads(params, t)
        opt.step()
    expected = [p.value.copy() for p in params]

    params2 = make_params(backend, seed=1)
    for p, v in zip(params2, saved_values):
        p.value[...] = v
    opt2 = make(params2)
    arrays_before = {k: id(v) for k, v in opt2.state["dense_0/kernel"].items() if isinstance(v, np.ndarray)}
    opt2.load_state_dict(sd)
    # Loaded into the existing arrays (a fused step may hold them), and a deep copy of sd.
    assert {k: id(v) for k, v in opt2.state["dense_0/kernel"].items() if isinstance(v, np.ndarray)} == arrays_before
    assert opt2.step_count == 7 and opt2.hyper == opt.hyper
    for t in range(7, 12):
        fake_grads(params2, t)
        opt2.step()
    for a, b in zip(params2, expected):
        np.testing.assert_array_equal(a.value, b)
    # state_dict() is a deep copy: the optimizer's later steps did not change sd.
    assert all(st["step"] == 7 for st in sd["state"].values())
    sd2 = opt2.state_dict()
    for i, st in sd2["state"].items():
        name = params2[i].name
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                assert v is not opt2.state[name][k] and np.array_equal(v, opt2.state[name][k])


def test_state_arrays_are_eager_contiguous_and_typed():
    params = make_params(dtype=np.float64)
    opt = optim.Adam(params, amsgrad=True)
    for p in params:
        st = opt.state[p.name]
        assert set(st) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
        for v in st.values():
            assert v.dtype == np.float64 and v.shape == p.shape and v.flags.c_contiguous and not v.any()
    assert set(optim.SGD(params).state["dense_0/bias"]) == set()
    assert set(optim.SGD(params, momentum=0.9).state["dense_0/bias"]) == {"momentum_buffer"}
    assert set(optim.RMSprop(params, centered=True).state["dense_0/bias"]) == {"square_avg", "grad_avg"}
    assert optim.NAdam(params).state["dense_0/bias"]["mu_product"] == 1.0
    ag = optim.Adagrad(params, initial_accumulator_value=0.25)
    assert np.all(ag.state["dense_0/bias"]["state_sum"] == 0.25)
    # A hyper-parameter change that needs a new buffer gets one at the next step.
    sgd = optim.SGD(params, lr=0.1)
    sgd.hyper["momentum"] = 0.9
    fake_grads(params, 0)
    sgd.step()
    assert "momentum_buffer" in sgd.state["dense_0/kernel"]


def test_load_state_dict_checks_before_writing():
    params = make_params()
    opt = optim.Adam(params)
    fake_grads(params, 0)
    opt.step()
    before = opt.state_dict()
    other = optim.Adam(make_params(seed=3))
    for t in range(3):
        fake_grads(other.params, t)
        other.step()
    bias = [p.name for p in opt.params].index("dense_0/bias")
    bad = other.state_dict()
    bad["state"][bias]["exp_avg"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\] \(dense_0/bias\)"):
        opt.load_state_dict(bad)
    bad = other.state_dict()
    bad["state"][bias]["exp_avg_sq"] = np.zeros(3, np.float64)
    with pytest.raises(ValueError, match="float64"):
        opt.load_state_dict(bad)
    bad = other.state_dict()
    bad["param_groups"][0]["param_names"][bias] = "other"
    with pytest.raises(ValueError, match="names.*other"):
        opt.load_state_dict(bad)
    bad = other.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr value"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="'sgd' optimizer's"):
        opt.load_state_dict(optim.SGD(make_params()).state_dict())
    with pytest.raises(ValueError, match="missing key 'state'"):
        opt.load_state_dict({"kind": "adam", "hyper": {}, "step_count": 0})
    after = opt.state_dict()
    assert opt.step_count == 1 and after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for k in before["state"][i]:
            np.testing.assert_array_equal(after["state"][i][k], before["state"][i][k])


def test_torch_defaults_and_hyper():
    ps = make_params()
    assert optim.SGD(ps).hyper == dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
    )
    assert optim.Adam(ps).hyper == dict(
        lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False
    )
    assert optim.AdamW(ps).hyper["weight_decay"] == 1e-2
    assert optim.AdamW(ps, weight_decay=0.0).hyper["weight_decay"] == 0.0
    assert optim.Adagrad(ps).hyper == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False)
    assert optim.RMSprop(ps).hyper == dict(
        lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False
    )
    nd = optim.NAdam(ps)
    assert nd.hyper["lr"] == 2e-3 and nd.hyper["momentum_decay"] == 4e-3 and nd.betas == (0.9, 0.999)
    assert [
        o.kind for o in (optim.SGD(ps), optim.Adagrad(ps), optim.RMSprop(ps), optim.Adam(ps), optim.AdamW(ps), nd)
    ] == ["sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam"]


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda ps: optim.SGD(ps, lr=-1), "Invalid learning rate: -1"),
        (lambda ps: optim.SGD(ps, momentum=-0.1), "Invalid momentum value"),
        (lambda ps: optim.SGD(ps, weight_decay=-1), "Invalid weight_decay value"),
        (lambda ps: optim.SGD(ps, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "Invalid beta parameter at index 0"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
        (lambda ps: optim.Adam(ps, betas=0.9), "betas must be a pair"),
        (lambda ps: optim.AdamW(ps, eps=-1e-8), "Invalid epsilon value"),
        (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Invalid lr_decay value"),
        (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1), "Invalid initial_accumulator_value value"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.5), "Invalid alpha value"),
        (lambda ps: optim.NAdam(ps, momentum_decay=-1), "Invalid momentum_decay value"),
        (lambda ps: optim.Adam(ps, lr=float("nan")), "Invalid learning rate"),
        (lambda ps: optim.Adam([]), "empty parameter list"),
        (lambda ps: optim.Adam(ps + ps[:1]), "appears twice"),
    ],
)
def test_argument_checks(make, match):
    with pytest.raises(ValueError, match=match):
        make(make_params())


def test_type_checks():
    with pytest.raises(TypeError, match="Parameter"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.Adam(make_params(), lr="0.1")


def test_lr_property_zero_grad_get_repr():
    ps = make_params()
    opt = optim.get("Adam", ps, lr=0.01)
    assert isinstance(opt, optim.Adam) and opt.lr == 0.01
    opt.lr = 0.5
    assert opt.hyper["lr"] == 0.5
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.lr = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.lr = math.inf
    assert opt.lr == 0.5
    fake_grads(ps, 0)
    grads = [p.grad for p in ps]
    opt.zero_grad()
    assert all(p.grad is g and not g.any() for p, g in zip(ps, grads))
    assert optim.get(opt, None) is opt
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optim.get("adamax", ps)
    assert "Adam (" in repr(opt) and "lr: 0.5" in repr(opt)


def test_step_closure():
    ps = make_params(backend="numpy", dtype=np.float64)
    opt = optim.SGD(ps, lr=0.1)

    def closure():
        fake_grads(ps, 0)
        return 3.5

    before = ps[1].value.copy()
    assert opt.step(closure) == 3.5
    assert_close(ps[1].value, before - 0.1 * ps[1].grad, kind="elementwise")


def test_grad_clipping():
    ps = make_params(dtype=np.float64)
    for p in ps:
        p.grad[...] = 2.0
    norm = optim.clip_grad_norm(ps, 1.0)
    assert norm == pytest.approx(math.sqrt(18 * 4))
    total = math.sqrt(sum(float((p.grad**2).sum()) for p in ps))
    assert total == pytest.approx(1.0, rel=1e-5)
    optim.clip_grad_norm(ps, 10.0)  # below the limit: unchanged
    assert math.sqrt(sum(float((p.grad**2).sum()) for p in ps)) == pytest.approx(total)
    ps[0].grad[0, 0] = -5
    optim.clip_grad_value(ps, 0.1)
    assert ps[0].grad[0, 0] == -0.1 and np.abs(ps[0].grad).max() <= 0.1
    assert optim.clip_grad_norm(ps, 1.0, norm_type=math.inf) == pytest.approx(0.1)
