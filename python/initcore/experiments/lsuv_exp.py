"""``lsuv``: LSUV and orthogonal initialization against Glorot and He in deep networks.

Orthogonal weights (Saxe et al. 2014) preserve the norm of every input of a linear square layer
exactly, not only on average: a linear network of orthogonal layers keeps each sample's norm
through any depth. With a nonlinearity they behave like Glorot at the same variance (σ_w² =
1/n): ReLU halves the second moment per layer unless the gain is √2, tanh contracts.

LSUV (Mishkin & Matas 2015, :func:`initcore.lsuv.lsuv`) starts from orthonormal kernels and
rescales each layer in turn, on one batch, until its pre-activation has variance 1 (within 0.1):
a data-driven He/Glorot that corrects for whatever the activation does to the variance.

Deep networks (ReLU and tanh, 20 hidden layers of 100 units on the MNIST subset, standardized)
with Glorot, He, orthogonal (gain 1) and LSUV: the pre-activation variance of each layer at the
first pass, then SGD + momentum 0.9 (lr 0.01, batch 128).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ._common import Report, build_model, get_plots, mnist, run_trials, seed_list

INITS = ("Glorot", "He", "orthogonal", "LSUV")
ACTIVATIONS = ("relu", "tanh")


def config(act: str, init: str, depth: int, width: int, lr: float, epochs: int, backend: str) -> dict:
    return {
        "sizes": (784,) + (width,) * depth + (10,),
        "activation": act,
        "init": "orthogonal" if init == "LSUV" else init,
        "prepare": "lsuv" if init == "LSUV" else None,
        "optimizer": "momentum",
        "lr": lr,
        "epochs": epochs,
        "backend": backend,
    }


def pre_variances(model, x) -> np.ndarray:
    """Variance of every Dense layer's pre-activation ``z = x·W + b`` on ``x`` (all entries pooled)."""
    from ..diagnostics import trace

    bl, stages = trace(model, x)
    return np.array([float(np.var(np.asarray(pre, dtype=np.float64))) for pre, _ in stages])


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    depth: int = None,
    width: int = None,
    epochs: int = None,
    seeds: int = 1,
    inits=None,
    lrs=None,
) -> dict:
    from ..lsuv import lsuv

    plots = get_plots()
    depth = depth or (10 if quick else 20)
    width = width or (64 if quick else 100)
    epochs = epochs or (2 if quick else 5)
    inits = tuple(inits or INITS)
    lr = float(lrs[0]) if lrs else 0.01
    if lrs and len(lrs) > 1:
        raise ValueError("lsuv trains at one learning rate: give --lrs one value")
    rep = Report(
        "lsuv",
        f"LSUV and orthogonal vs Glorot and He, {depth}×{width}",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    probe = train[0][:256]
    first, profiles, arms = [], {}, {}
    for act in ACTIVATIONS:
        for init in inits:
            c = config(act, init, depth, width, lr, epochs, backend)
            model = build_model(c, seed)
            if init == "LSUV":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lsuv(model, train[0][:256])
            v = pre_variances(model, probe)[:-1]  # hidden layers
            profiles[f"{act} + {init}"] = [{"layer": k + 1, "pre_var": float(x)} for k, x in enumerate(v)]
            first.append(
                {
                    "activation": act,
                    "init": init,
                    "pre var L1": v[0],
                    f"pre var L{depth // 2}": v[depth // 2 - 1],
                    f"pre var L{depth}": v[-1],
                    "max |var − 1|": float(np.max(np.abs(v - 1.0))),
                    "gain/layer": float((v[-1] / v[0]) ** (0.5 / (depth - 1))) if v[0] > 0 and v[-1] > 0 else math.nan,
                }
            )
            arms[f"{act} + {init}"] = c
    # the linear check: orthogonal square layers keep every sample's norm exactly
    lin = build_model(config("identity", "orthogonal", depth, width, lr, epochs, backend), seed)
    from ..diagnostics import trace

    _, st = trace(lin, probe)
    norms = [np.linalg.norm(np.asarray(a, dtype=np.float64), axis=1) for _, a in st[:-1]]
    norm_ratio = float(np.max(np.abs(norms[-1] / norms[1] - 1.0)))  # layers 2..depth are square
    rep.table(
        f"first pass on {len(probe)} images: pre-activation variance per hidden layer (LSUV targets 1 within 0.1)",
        first,
    )
    rep.note(
        f"Linear check: {depth} orthogonal layers without activation keep each sample's norm from layer 2 "
        f"(the first square layer) to layer {depth} within {norm_ratio:.1e} (exact up to float32 rounding)."
    )
    trials = run_trials(arms, (train, test), seeds=seed_list(seed, seeds))
    summ = trials.summary()
    rep.table(f"training (SGD + momentum 0.9, lr {lr:g}, {epochs} epochs): mean (± std) over the seeds", summ)
    rep.figure(
        plots.profile_grid(
            {act: {k: v for k, v in profiles.items() if k.startswith(act)} for act in ACTIVATIONS},
            "pre_var",
            title="first pass: pre-activation variance per hidden layer",
            sharey=False,
        ),
        "variance_per_layer.png",
        "Pre-activation variance layer by layer (log scale, own scale per panel): LSUV holds every layer at 1; "
        "He holds ReLU's; Glorot and orthogonal (both σ_w² = 1/n) halve ReLU's second moment per layer.",
    )
    rep.figure(
        plots.training_curves(
            {k: trials.mean_history(k) for k in arms}, metrics=("loss", "val_accuracy"), title="training"
        ),
        "curves.png",
        "Training loss and validation accuracy per epoch (mean over the seeds).",
    )
    return rep.finish(
        {"first_pass": first, "training": summ, "linear_norm_error": norm_ratio, "profiles": profiles, "trials": trials}
    )
