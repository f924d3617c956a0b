"""``optimizers``: SGD, momentum, Nesterov, Adagrad, RMSprop, Adam and Nadam, in 2-D and on MNIST.

Two 2-D losses, each optimizer run by ``initcore.optim`` on a single ``Parameter`` of shape (2,)
with the exact gradient (so the landscapes exercise the same kernels as training):

- a **narrow steep valley** ``f(w) = ½(a·w₁² + b·w₂²)`` with ``a = 0.1``, ``b = 10``: condition
  number ``κ = b/a = 100``. Gradient descent is stable only for ``η < 2/b`` and then crawls along
  the valley floor, the error in ``w₁`` shrinking by ``(1 − η·a)`` per step; plain SGD's iterates
  are exactly ``w_t = (1 − η·λ)^t·w₀`` per coordinate (checked). Heavy-ball momentum ``ρ``
  contracts every direction by exactly ``√ρ`` per step (in amplitude) once
  ``(1 − √ρ)²/a ≤ η ≤ (1 + √ρ)²/b`` — ``√0.9 ≈ 0.949`` for η = 0.05, against SGD's ``1 − η·a =
  0.985`` at its best stable η (checked). The adaptive methods rescale each coordinate and stop
  caring about ``κ``.
- a **saddle** ``f(w) = w₁² + w₂⁴/4 − w₂²/2``: a saddle point at 0, minima at ``(0, ±1)``.
  Starting next to the saddle's stable direction (``w₂ = 10⁻⁴``), plain SGD increases ``w₂`` by
  a factor ``1 + η`` per step, so it needs about ``ln(0.1/w₂⁰)/ln(1 + η)`` steps to get ``|w₂|``
  past 0.1 (checked), while Adagrad, RMSprop, Adam and Nadam normalize the tiny gradient and move
  ``w₂`` by about ``η`` from the first step.

Then each optimizer trains 784-256-128-10 (ReLU, He) on the MNIST subset with its usual
learning rate (batch 128).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, get_plots, mnist, run_trials, seed_list

NAMES = ("SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "Nadam")

VALLEY = {
    "a": 0.1,
    "b": 10.0,
    "start": (-9.0, 1.6),
    "steps": 150,
    "lr": {"SGD": 0.15, "Momentum": 0.05, "Nesterov": 0.05, "Adagrad": 1.5, "RMSprop": 0.05, "Adam": 0.5, "Nadam": 0.5},
}
SADDLE = {
    "start": (1.2, 1e-4),
    "steps": 120,
    "escape": 0.1,
    "lr": {"SGD": 0.1, "Momentum": 0.1, "Nesterov": 0.1, "Adagrad": 0.5, "RMSprop": 0.02, "Adam": 0.05, "Nadam": 0.05},
}
MNIST_LR = {
    "SGD": 0.05,
    "Momentum": 0.01,
    "Nesterov": 0.01,
    "Adagrad": 0.01,
    "RMSprop": 1e-3,
    "Adam": 1e-3,
    "Nadam": 1e-3,
}


def make(name: str, params, lr: float):
    """The optimizer ``name`` (one of ``NAMES``) over ``params``; momentum variants use 0.9."""
    from .. import optim

    if name == "SGD":
        return optim.SGD(params, lr=lr)
    if name == "Momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if name == "Nesterov":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    return {"Adagrad": optim.Adagrad, "RMSprop": optim.RMSprop, "Adam": optim.Adam, "Nadam": optim.NAdam}[name](
        params, lr=lr
    )


def valley_f(x, y, a=VALLEY["a"], b=VALLEY["b"]):
    return 0.5 * (a * x * x + b * y * y)


def valley_grad(w, a=VALLEY["a"], b=VALLEY["b"]):
    return np.array([a * w[0], b * w[1]])


def saddle_f(x, y):
    return x * x + y**4 / 4.0 - y * y / 2.0


def saddle_grad(w):
    return np.array([2.0 * w[0], w[1] ** 3 - w[1]])


def trajectory(name: str, lr: float, grad, start, steps: int, backend: str = "rust") -> np.ndarray:
    """Iterates ``(steps + 1, 2)`` of optimizer ``name`` from ``start`` on the gradient ``grad``."""
    from ..parameter import Parameter

    p = Parameter(np.array(start, dtype=np.float64), "w", backend=backend)
    opt = make(name, [p], lr)
    out = np.empty((steps + 1, 2))
    out[0] = p.value
    with np.errstate(all="ignore"):
        for t in range(steps):
            p.grad[...] = grad(p.value)
            opt.step()
            out[t + 1] = p.value
    return out


def first_step(values: np.ndarray, cond) -> int | None:
    """First index ``t`` with ``cond(values[t])`` true (``None`` if never)."""
    hit = np.flatnonzero(cond(values))
    return int(hit[0]) if hit.size else None


def never(v):
    """A table cell for a step count: ``"never"`` rather than a sentinel number."""
    return "never" if v is None else v


def sign_changes(values: np.ndarray) -> int:
    """How often ``values`` changes sign (crossings of the valley floor: oscillation)."""
    s = np.sign(values[np.isfinite(values)])
    s = s[s != 0]
    return int(np.sum(s[1:] != s[:-1]))


def effective_steps(name: str, lr: float, steps: int, backend: str = "rust") -> np.ndarray:
    """``|Δw_t|`` for ``t = 1..steps`` of optimizer ``name`` (its defaults) under a constant
    gradient ``g = 1``: its effective learning rate, since plain SGD would step ``lr·g``."""
    from ..parameter import Parameter

    p = Parameter(np.zeros(1), "w", backend=backend)
    opt = make(name, [p], lr)
    out = np.empty(steps)
    for t in range(steps):
        before = float(p.value[0])
        p.grad[...] = 1.0
        opt.step()
        out[t] = abs(float(p.value[0]) - before)
    return out


def effective_theory(name: str, lr: float, t: np.ndarray) -> np.ndarray:
    """The same in closed form: Adagrad ``s_t = t`` so ``η/(√t + 1e-10)`` (decays to zero);
    RMSprop ``v_t = 1 − 0.99^t`` so ``η/(√v_t + 1e-8)`` (tends to η); Adam ``m̂_t = v̂_t = 1``
    (bias-corrected) so ``η/(1 + 1e-8)`` at every step."""
    t = np.asarray(t, dtype=np.float64)
    if name == "Adagrad":
        return lr / (np.sqrt(t) + 1e-10)
    if name == "RMSprop":
        return lr / (np.sqrt(1.0 - 0.99**t) + 1e-8)
    if name == "Adam":
        return np.full_like(t, lr / (1.0 + 1e-8))
    raise ValueError(name)


def sgd_escape_theory(lr: float, y0: float, threshold: float) -> float:
    """Steps for linearized gradient descent ``y ← (1 + η)·y`` to pass ``threshold``."""
    return math.log(threshold / y0) / math.log1p(lr)


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    seeds: int = 1,
) -> dict:
    plots = get_plots()

    epochs = epochs or (2 if quick else 10)
    rep = Report(
        "optimizers",
        "Seven optimizers on a narrow valley, a saddle and MNIST",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    # --- the valley --------------------------------------------------------------------------
    v_paths, v_rows = {}, []
    a, b = VALLEY["a"], VALLEY["b"]
    for name in NAMES:
        lr = VALLEY["lr"][name]
        path = trajectory(name, lr, valley_grad, VALLEY["start"], VALLEY["steps"], backend)
        v_paths[name] = path
        f = valley_f(path[:, 0], path[:, 1])
        v_rows.append(
            {
                "optimizer": name,
                "lr": lr,
                "f start": f[0],
                "f after 50": f[min(50, len(f) - 1)],
                f"f after {VALLEY['steps']}": f[-1],
                "steps to f < 1e-3": never(first_step(f, lambda z: z < 1e-3)),
                "w2 sign changes": sign_changes(path[:, 1]),
                "max |w2| after step 10": float(np.nanmax(np.abs(path[10:, 1]))),
            }
        )
    lr = VALLEY["lr"]["SGD"]
    t = np.arange(VALLEY["steps"] + 1)
    closed = np.stack([VALLEY["start"][0] * (1 - lr * a) ** t, VALLEY["start"][1] * (1 - lr * b) ** t], axis=1)
    sgd_err = float(np.max(np.abs(v_paths["SGD"] - closed)))
    rho = 0.9
    dist = np.linalg.norm(v_paths["Momentum"], axis=1)
    # amplitude contraction per step: the geometric mean over the second half (transients gone;
    # the distance oscillates, so compare maxima over windows of 20 steps)
    half = VALLEY["steps"] // 2
    env = np.array([dist[i : i + 20].max() for i in range(half, VALLEY["steps"] - 19)])
    momentum_rate = float((env[-1] / env[0]) ** (1.0 / (len(env) - 1)))
    rep.table(f"narrow valley f = ½({a}·w1² + {b}·w2²), κ = {b / a:.0f}, start {VALLEY['start']}", v_rows)
    rep.note(
        f"Plain SGD against the closed form w_t = (1 − η·λ)^t·w_0: max deviation {sgd_err:.2e} over "
        f"{VALLEY['steps']} steps (η = {lr}; stability needs η < 2/b = {2 / b}). Momentum (ρ = {rho}, "
        f"η = {VALLEY['lr']['Momentum']}): measured contraction {momentum_rate:.4f} per step, theory √ρ = "
        f"{math.sqrt(rho):.4f}."
    )
    rep.figure(
        plots.trajectories(
            valley_f,
            v_paths,
            xlim=(-10, 2),
            ylim=(-2.5, 2.5),
            log_levels=True,
            levels=25,
            marks=[(0, 0)],
            title=f"narrow valley (κ = {b / a:.0f}), {VALLEY['steps']} steps",
            facet=True,
        ),
        "valley.png",
        "Trajectories over the contours of the narrow steep valley, one panel per optimizer (Adagrad, "
        "RMSprop and Nadam would lie on top of each other in one). 'w2 sign changes' in the table counts "
        "the crossings of the valley floor: the oscillation across it.",
    )
    # --- the saddle --------------------------------------------------------------------------
    s_paths, s_rows = {}, []
    y0, thr = SADDLE["start"][1], SADDLE["escape"]
    for name in NAMES:
        lr = SADDLE["lr"][name]
        path = trajectory(name, lr, saddle_grad, SADDLE["start"], SADDLE["steps"], backend)
        s_paths[name] = path
        f = saddle_f(path[:, 0], path[:, 1])
        esc = first_step(np.abs(path[:, 1]), lambda z: z > thr)
        row = {
            "optimizer": name,
            "lr": lr,
            f"steps to |w2| > {thr}": never(esc),
            "theory (SGD)": sgd_escape_theory(lr, y0, thr) if name == "SGD" else None,
            f"f after {SADDLE['steps']}": f[-1],
            "final w2": path[-1, 1],
        }
        s_rows.append(row)
    rep.table(f"saddle f = w1² + w2⁴/4 − w2²/2 from {SADDLE['start']} (minimum −0.25 at w = (0, ±1))", s_rows)
    rep.figure(
        plots.trajectories(
            saddle_f,
            s_paths,
            xlim=(-1.5, 1.5),
            ylim=(-1.5, 1.5),
            levels=30,
            marks=[(0, 1), (0, -1)],
            saddles=[(0, 0)],
            title="saddle at (0, 0), minima at (0, ±1)",
        ),
        "saddle.png",
        "Trajectories near the saddle (red diamond; gold stars: the minima): adaptive methods leave it at "
        "once, SGD and momentum only once the tiny w2 has grown geometrically.",
    )
    escape = {r["optimizer"]: r[f"steps to |w2| > {thr}"] for r in s_rows}
    # --- the effective learning rate under a constant gradient ---------------------------------
    eff_lr, n_eff = 0.01, 10000
    picks = np.array([1, 10, 100, 1000, 10000])
    eff_rows, eff_err = [], {}
    for name in ("Adagrad", "RMSprop", "Adam"):
        steps_ = effective_steps(name, eff_lr, n_eff, backend)
        theory = effective_theory(name, eff_lr, np.arange(1, n_eff + 1))
        eff_err[name] = float(np.max(np.abs(steps_ / theory - 1.0)))
        eff_rows.append(
            {
                "optimizer": name,
                **{f"step {k}": float(steps_[k - 1]) for k in picks},
                "max |measured/theory − 1|": eff_err[name],
            }
        )
    rep.table(
        f"effective learning rate |Δw_t| under a constant gradient g = 1 (lr {eff_lr}, defaults): Adagrad's "
        "decays as lr/√t, RMSprop's tends to lr, Adam's is lr at every step",
        eff_rows,
    )
    # --- MNIST ----------------------------------------------------------------------------------
    train, test = mnist(quick, seed)
    arms = {
        name: {
            "sizes": (784, 256, 128, 10),
            "activation": "relu",
            "init": "he_normal",
            "optimizer": name,
            "lr": MNIST_LR[name],
            "epochs": epochs,
            "backend": backend,
        }
        for name in NAMES
    }
    seeds_ = seed_list(seed, seeds)
    trials = run_trials(arms, (train, test), seeds=seeds_)
    curves, m_rows = {}, []
    for r in trials.summary():
        name = r["arm"]
        curves[name] = trials.mean_history(name)
        m_rows.append(
            {
                "optimizer": name,
                "lr": MNIST_LR[name],
                "final loss": curves[name]["loss"][-1],
                "final val acc": r["final val_accuracy"],
                "± std": r["± std"],
                "best val acc": r["best val_accuracy"],
                "best epoch": r["best epoch"],
            }
        )
    rep.table(
        f"MNIST subset, 784-256-128-10 ReLU + He, batch 128, {epochs} epochs (mean over {len(seeds_)} seed(s))", m_rows
    )
    rep.figure(
        plots.training_curves(curves, metrics=("loss", "val_accuracy"), title="MNIST subset"),
        "mnist_curves.png",
        "Training loss and validation accuracy of the seven optimizers.",
    )
    return rep.finish(
        {
            "valley": v_rows,
            "saddle": s_rows,
            "mnist": m_rows,
            "sgd_closed_form_error": sgd_err,
            "momentum_rate": momentum_rate,
            "momentum_rate_theory": math.sqrt(rho),
            "escape": escape,
            "effective": eff_rows,
            "effective_error": eff_err,
            "valley_paths": v_paths,
            "saddle_paths": s_paths,
            "histories": curves,
        }
    )
