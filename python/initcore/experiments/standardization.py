"""``standardization``: what the input's scaling does to the first layer and to training.

For a Dense layer ``z_j = Σ_i x_i·w_ij`` with independent zero-mean weights of variance
``Var(w)``, independent of the input, the pre-activation variance (over weights and inputs) is

    Var(z) = n_in · E[x²] · Var(w) = n_in · (Var(x) + (E x)²) · Var(w),

with ``E[x²]`` the mean square of the input entries pooled over features. The textbook formula
``n_in·Var(x)·Var(w)`` is the zero-mean special case: it drops the ``(E x)²·Var(w)`` term. On
raw [0, 1] MNIST pixels (mean ≈ 0.13, ``Var(x)`` ≈ 0.094) with N(0, 1) weights it predicts 74
where 88 is measured: ``n·E[x²]`` = 88. On raw 0-255 pixels both are 255² times larger.

Conditional on one draw of the weights, the variance pooled over ``units`` units fluctuates
around ``n·E[x²]·Var(w)`` with a standard error of about ``Var(w)·√(2·tr(M²)/units)`` (``M =
E[x xᵀ]``, the input's second-moment matrix): the first-layer measurement uses 4096 units, so
that the textbook value lies many standard errors away while the full formula is within three.

Then five input scalings, each fitted on the training split only and applied to both splits —
raw 0-255, [0, 1], centred (the training mean image subtracted), per-feature standardized (each
pixel to mean 0, variance 1; constant pixels to 0) and per-channel (one mean and std for all
pixels: MNIST has one channel) — are trained with sigmoid and tanh (Glorot) and ReLU (He),
784-256-10, SGD + momentum 0.9 (lr 0.01, batch 128) (LeCun et al. 1998, "Efficient BackProp":
centred, similarly scaled inputs make the loss surface better conditioned).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, get_plots, raw_images, run_trials, seed_list

SCALINGS = ("raw 0-255", "[0, 1]", "centred", "per-feature", "per-channel")
ACTIVATIONS = (("sigmoid", "glorot_normal"), ("tanh", "glorot_normal"), ("relu", "he_normal"))


def scale(name: str, xtr: np.ndarray, xte: np.ndarray):
    """``(train, test)`` pixels (in [0, 1]) under scaling ``name``, statistics from ``xtr`` only."""
    xtr = xtr.astype(np.float64)
    xte = xte.astype(np.float64)
    if name == "raw 0-255":
        a, b = xtr * 255.0, xte * 255.0
    elif name == "[0, 1]":
        a, b = xtr, xte
    elif name == "centred":
        mu = xtr.mean(axis=0)
        a, b = xtr - mu, xte - mu
    elif name == "per-feature":
        mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)  # constant pixels: 0 after centring
        a, b = (xtr - mu) / sd, (xte - mu) / sd
    elif name == "per-channel":
        mu, sd = xtr.mean(), xtr.std()
        a, b = (xtr - mu) / sd, (xte - mu) / sd
    else:
        raise ValueError(f"unknown scaling {name!r}")
    f = lambda v: np.ascontiguousarray(v, np.float32)  # noqa: E731
    return f(a), f(b)


def first_layer(x: np.ndarray, units: int, seed: int) -> dict:
    """Pooled variance of ``z = x·W`` for ``W ~ N(0, 1)`` (``units`` columns) against both formulas."""
    rng = np.random.default_rng(seed + 7)
    x64 = x.astype(np.float64)
    n = x.shape[1]
    w = rng.standard_normal((n, units))
    z = x64 @ w
    var_x = float(x64.var())
    ex2 = float(np.mean(x64 * x64))
    mean = float(x64.mean())
    m2 = x64.T @ x64 / x.shape[0]
    se = math.sqrt(2.0 * float(np.sum(m2 * m2)) / units)
    measured = float(z.var())
    textbook = n * var_x
    full = n * ex2
    return {
        "mean pixel": mean,
        "Var(x)": var_x,
        "E[x²]": ex2,
        "n·Var(x)·Var(w) (textbook)": textbook,
        "n·E[x²]·Var(w) (full)": full,
        "measured Var(z)": measured,
        "std error": se,
        "textbook off by (SE)": (measured - textbook) / se,
        "full off by (SE)": (measured - full) / se,
    }


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    seeds: int = 1,
    lrs=None,
) -> dict:
    plots = get_plots()
    epochs = epochs or (2 if quick else 4)
    lr = float(lrs[0]) if lrs else 0.01
    if lrs and len(lrs) > 1:
        raise ValueError("standardization trains at one learning rate: give --lrs one value")
    rep = Report(
        "standardization",
        "Input scaling: n·E[x²] against n·Var(x), and training with raw to standardized input",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    (xtr, ytr), (xte, yte) = raw_images(quick, seed)
    units = 1024 if quick else 4096
    fl = []
    for name in ("[0, 1]", "raw 0-255", "centred", "per-feature"):
        a, _ = scale(name, xtr, xte)
        fl.append({"input": name, **first_layer(a[:2000], units, seed)})
    rep.table(
        f"first layer with N(0, 1) weights ({units} units, {min(2000, len(ytr))} images): "
        "Var(z) = n·E[x²]·Var(w), not n·Var(x)·Var(w) unless the input is centred",
        fl,
    )
    raw = fl[0]
    rep.note(
        f"Raw [0, 1] pixels: mean {raw['mean pixel']:.3f}, Var(x) = {raw['Var(x)']:.4f}, E[x²] = {raw['E[x²]']:.4f}. "
        f"Textbook n·Var(x)·Var(w) = 784 × {raw['Var(x)']:.4f} = {raw['n·Var(x)·Var(w) (textbook)']:.1f}; "
        f"full n·E[x²]·Var(w) = 784 × {raw['E[x²]']:.4f} = {raw['n·E[x²]·Var(w) (full)']:.1f}; "
        f"measured {raw['measured Var(z)']:.1f} (± {raw['std error']:.1f}). The gap is the dropped "
        f"n·(E x)²·Var(w) = {784 * raw['mean pixel'] ** 2:.1f}."
    )
    data = {name: scale(name, xtr, xte) for name in SCALINGS}
    arms, where = {}, {}
    for act, init in ACTIVATIONS:
        for name in SCALINGS:
            label = f"{act} / {name}"
            arms[label] = {
                "sizes": (784, 256, 10),
                "activation": act,
                "init": init,
                "optimizer": "momentum",
                "lr": lr,
                "epochs": epochs,
                "backend": backend,
            }
            where[label] = name
    seeds_ = seed_list(seed, seeds)
    trials_all = []
    summary = {}
    for name in SCALINGS:  # one data set per scaling: its arms through the seam together
        a, b = data[name]
        sub = {k: v for k, v in arms.items() if where[k] == name}
        t = run_trials(sub, ((a, ytr), (b, yte)), seeds=seeds_)
        trials_all.extend(t)
        summary.update({r["arm"]: (r, t.mean_history(r["arm"])) for r in t.summary()})
    rows = []
    for act, _ in ACTIVATIONS:
        row = {"activation": act}
        for name in SCALINGS:
            row[name] = summary[f"{act} / {name}"][0]["best val_accuracy"]
        rows.append(row)
    rep.table(
        f"best validation accuracy by input scaling (784-256-10, SGD + momentum, lr {lr:g}, {epochs} epochs, "
        f"mean over {len(seeds_)} seed(s))",
        rows,
    )
    rep.table(
        "every arm: mean (± std) over the seeds",
        [{k: v for k, v in r.items()} for r, _ in summary.values()],
    )
    curves = {label: h for label, (_, h) in summary.items() if label.startswith("relu") or label.startswith("tanh")}
    rep.figure(
        plots.lines(
            list(range(len(SCALINGS))),
            {act: [r[name] for name in SCALINGS] for act, r in zip((a for a, _ in ACTIVATIONS), rows)},
            xlabel="input scaling (statistics from the training split)",
            xticklabels=SCALINGS,
            ylabel="best validation accuracy",
            title="accuracy by input scaling",
            diverged="diverged (loss not finite)",
        ),
        "accuracy_by_scaling.png",
        "Best validation accuracy for each input scaling and activation (statistics from the training split only).",
    )
    rep.figure(
        plots.training_curves(curves, metrics=("loss", "val_accuracy"), title="tanh and ReLU by input scaling"),
        "curves.png",
        "Training loss and validation accuracy per epoch for tanh and ReLU under each input scaling.",
    )
    return rep.finish({"first_layer": fl, "rows": rows, "arms": [r for r, _ in summary.values()], "units": units})
