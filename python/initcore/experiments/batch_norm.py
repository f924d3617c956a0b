"""``batchnorm``: BatchNorm none / before / after the activation, at increasing learning rates.

Batch normalization (Ioffe & Szegedy 2015) standardizes each unit over the batch. A layer
followed by BatchNorm computes the same function whatever the scale of its weights, so large
steps cannot blow its outputs up: growing weights only shrink the effective learning rate
(``η/‖w‖²``). Without it the network's scale is whatever the updates make it, and past some
learning rate plain SGD overshoots, the logits explode and the loss becomes NaN.

The same network (784-128-128-128-10, ReLU, He weights) is trained on the MNIST subset with
plain SGD (batch 128) at learning rates growing by about 3× per step, with no BatchNorm, with
BatchNorm before the ReLU (``Dense → BN → ReLU``, the paper's placement) and after it
(``Dense → ReLU → BN``, common in practice). ✕ marks a run that diverged (non-finite loss).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, get_plots, mnist, run_trials, seed_list

PLACEMENTS = ("none", "before", "after")
LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
QUICK_LRS = (0.03, 0.3, 3.0)


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    lrs=None,
    seeds: int = 1,
) -> dict:
    plots = get_plots()

    epochs = epochs or (2 if quick else 5)
    lrs = tuple(lrs or (QUICK_LRS if quick else LRS))
    sizes = (784, 128, 128, 128, 10)
    rep = Report(
        "batchnorm",
        "BatchNorm before / after / without, at increasing learning rates",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    arms = {
        f"{place}, lr {lr:g}": {
            "sizes": sizes,
            "activation": "relu",
            "init": "he_normal",
            "batchnorm": place,
            "optimizer": "sgd",
            "lr": lr,
            "epochs": epochs,
            "backend": backend,
        }
        for place in PLACEMENTS
        for lr in lrs
    }
    seeds_ = seed_list(seed, seeds)
    trials = run_trials(arms, (train, test), seeds=seeds_)
    summ = {r["arm"]: r for r in trials.summary()}
    rows, acc, curves = [], {p: [] for p in PLACEMENTS}, {}
    for place in PLACEMENTS:
        for lr in lrs:
            label = f"{place}, lr {lr:g}"
            s_ = summ[label]
            diverged = s_["diverged"] == len(seeds_)  # every seed diverged
            final = s_["final val_accuracy"]
            acc[place].append(math.nan if diverged else final)
            h = trials.mean_history(label)
            if lr == lrs[-1] or lr == lrs[len(lrs) // 2]:
                curves[label] = h
            rows.append(
                {
                    "batchnorm": place,
                    "lr": lr,
                    "final train loss": h["loss"][-1],
                    "final val acc": final,
                    "± std": s_["± std"],
                    "best val acc": s_["best val_accuracy"],
                    "diverged": diverged,
                    "seeds diverged": s_["diverged"],
                }
            )
    rep.table(
        f"SGD (no momentum), batch 128, {epochs} epochs: final validation accuracy (mean over {len(seeds_)} seed(s))",
        rows,
    )
    best = {p: lrs[int(np.nanargmax(np.where(np.isfinite(acc[p]), acc[p], -1.0)))] for p in PLACEMENTS}
    rep.table(
        "best learning rate and largest learning rate that trains (no divergence)",
        [
            {
                "batchnorm": p,
                "best lr": best[p],
                "best val acc": float(np.nanmax(acc[p])),
                "largest stable lr": max((lr for lr, a in zip(lrs, acc[p]) if math.isfinite(a)), default=None),
            }
            for p in PLACEMENTS
        ],
    )
    rep.figure(
        plots.lines(
            lrs,
            {f"BN {p}" if p != "none" else "no BN": acc[p] for p in PLACEMENTS},
            logx=True,
            xlabel="learning rate (SGD)",
            ylabel=f"validation accuracy after {epochs} epochs",
            title="accuracy vs learning rate",
            diverged="diverged (loss not finite; a diverged net is at chance, 0.10)",
        ),
        "accuracy_vs_lr.png",
        "Validation accuracy after training, against the learning rate; the y axis spans the runs that "
        "trained, and diverged runs (at chance, 0.10, not 0) are marked ✕ on its bottom edge.",
    )
    rep.figure(
        plots.training_curves(curves, metrics=("loss", "val_accuracy"), title="training curves"),
        "curves.png",
        f"Training at a middle and at the largest learning rate ({lrs[len(lrs) // 2]:g}, {lrs[-1]:g}).",
    )
    return rep.finish({"rows": rows, "accuracy": acc, "lrs": lrs, "histories": curves, "trials": trials})
