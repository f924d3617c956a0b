"""``snn``: self-normalizing networks (Klambauer et al. 2017) against ReLU, with and without BatchNorm.

SELU, ``selu(z) = λ·z`` for ``z > 0`` and ``λα(eᶻ − 1)`` otherwise with λ ≈ 1.0507, α ≈ 1.6733,
is built so that the map from the mean and variance of a layer's inputs to those of its
outputs has a stable fixed point at (0, 1) when the weights have ``Σ_i w_i = 0`` and ``Σ_i w_i² =
1`` on average, i.e. ``lecun_normal`` (``Var(w) = 1/n_in``) — and the inputs are standardized.
Activations then stay near mean 0 and variance 1 through any depth without BatchNorm.

Four networks of 20 hidden layers of 100 units — SELU + lecun_normal and ReLU + He, each with
and without BatchNorm (before the activation) — trained with Nadam on the MNIST subset
(classification, batch 128) and on Boston housing (regression, mse on the standardized target,
batch 32, lr 7e-4). On MNIST every network first gets a small learning-rate sweep (``--lrs``,
over ``--seeds``) and the networks are compared each at its own best rate: the ranking depends
on the rate (ReLU + BatchNorm loses at 7e-4 and trains well at 1e-2, where ReLU and SELU
without BatchNorm fail). The tables give each network's per-layer activation statistics at
the first pass and the epoch of its best validation score.

Gradients at the first pass tell the other half of the story: ``grad growth/layer`` is the
geometric mean of ``‖dW_l‖/‖dW_(l+1)‖`` over the hidden layers (above 1: gradients grow towards
the input). SELU and ReLU + He keep it near 1; BatchNorm without skip connections makes it
explode, by ``√(π/(π − 1)) ≈ 1.21`` per layer for ReLU (Yang et al. 2019, "A mean field theory of
batch normalization"), which is why the 20-layer ReLU + BN network trains slowly here.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, best_epoch, boston, fit, get_plots, mlp, mnist, quiet_check, run_trials, seed_list
from .vanishing import first_pass_gradients

CONFIGS = {  # label → (activation, initializer, BatchNorm placement)
    "SELU + lecun_normal": ("selu", "lecun_normal", "none"),
    "SELU + lecun_normal + BN": ("selu", "lecun_normal", "before"),
    "ReLU + He": ("relu", "he_normal", "none"),
    "ReLU + He + BN": ("relu", "he_normal", "before"),
}
LR = 7e-4
MNIST_LRS = (7e-4, 3e-3, 1e-2)
QUICK_LRS = (7e-4, 1e-2)


def layer_band(stats, skip_first: int = 0):
    """Max |mean| and the range of std over the hidden layers of an ``activation_stats`` table."""
    hidden = list(stats)[skip_first:-1]
    means = np.array([r["act_mean"] for r in hidden])
    stds = np.array([r["act_std"] for r in hidden])
    return float(np.max(np.abs(means))), float(stds.min()), float(stds.max())


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    depth: int = 20,
    width: int = 100,
    epochs: int = None,
    boston_epochs: int = None,
    seeds: int = 1,
    lrs=None,
) -> dict:
    from .. import optim

    plots = get_plots()
    from ..diagnostics import activation_stats

    epochs = epochs or (3 if quick else 15)
    lrs = tuple(lrs or (QUICK_LRS if quick else MNIST_LRS))
    boston_epochs = boston_epochs or (15 if quick else 60)
    rep = Report(
        "snn",
        f"Self-normalizing networks: {depth}×{width} SELU vs ReLU, ± BatchNorm",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    btrain, btest, target_sd = boston(seed)
    stats_rows, train_rows, profiles, mnist_curves, boston_curves, warns = [], [], {}, {}, {}, {}
    first_pass = {}
    for label, (act, init, bn) in CONFIGS.items():
        sizes = (784,) + (width,) * depth + (10,)
        model = mlp(sizes, act, init, batchnorm=bn, seed=seed, backend=backend)
        warns[label] = quiet_check(model, train[0][:1000])
        st = activation_stats(model, train[0][:1000], bins=40)
        g = np.array([r["grad_norm"] for r in first_pass_gradients(model, train[0][:512], train[1][:512])])
        growth = float(np.exp(np.mean(np.log(g[1 : depth - 1] / g[2:depth]))))  # hidden layers 2..depth
        first_pass[label] = st
        profiles[label] = list(st)[:-1]
        m, lo, hi = layer_band(st)

        bmodel = mlp(
            (btrain[0].shape[1],) + (width,) * depth + (1,), act, init, batchnorm=bn, seed=seed, backend=backend
        )
        bst = activation_stats(bmodel, btrain[0], bins=40)
        bm, blo, bhi = layer_band(bst)
        bh = fit(
            bmodel, btrain, btest, optim.NAdam(bmodel.parameters(), lr=LR), boston_epochs, batch_size=32, loss="mse"
        )
        boston_curves[label] = bh
        bep, bloss = best_epoch(bh["val_loss"], "min")
        stats_rows.append(
            {
                "network": label,
                "MNIST max|mean|": m,
                "MNIST std min": lo,
                "MNIST std max": hi,
                "Boston max|mean|": bm,
                "Boston std min": blo,
                "Boston std max": bhi,
                "grad growth/layer": growth,
                "theory": math.sqrt(math.pi / (math.pi - 1))
                if (act, bn) == ("relu", "before")
                else (1.0 if bn == "none" else None),
            }
        )
        train_rows.append(
            {
                "network": label,
                "Boston best val RMSE ($1000s)": math.sqrt(bloss) * target_sd if math.isfinite(bloss) else math.nan,
                "Boston best epoch": bep,
                "warnings": len(warns[label]),
            }
        )
    # MNIST: every network over a small learning-rate sweep and the seeds, compared at its best rate
    arms = {
        (label, lr): {
            "sizes": (784,) + (width,) * depth + (10,),
            "activation": act,
            "init": init,
            "batchnorm": bn,
            "optimizer": "nadam",
            "lr": lr,
            "epochs": epochs,
            "backend": backend,
        }
        for label, (act, init, bn) in CONFIGS.items()
        for lr in lrs
    }
    named = {f"{label} @ lr {lr:g}": c for (label, lr), c in arms.items()}
    trials = run_trials(named, (train, test), seeds=seed_list(seed, seeds))
    summ = {r["arm"]: r for r in trials.summary()}
    sweep_rows, best_lr = [], {}
    for label in CONFIGS:
        accs = {lr: summ[f"{label} @ lr {lr:g}"]["best val_accuracy"] for lr in lrs}
        best_lr[label] = max(lrs, key=lambda v: accs[v] if math.isfinite(accs[v]) else -1.0)
        sweep_rows.append({"network": label, **{f"lr {lr:g}": accs[lr] for lr in lrs}, "best lr": best_lr[label]})
    for row in train_rows:
        label = row["network"]
        s_ = summ[f"{label} @ lr {best_lr[label]:g}"]
        mnist_curves[label] = trials.mean_history(f"{label} @ lr {best_lr[label]:g}")
        row.update(
            {
                "MNIST best lr": best_lr[label],
                "MNIST best val acc": s_["best val_accuracy"],
                "± std": s_["± std "],
                "MNIST best epoch": s_["best epoch"],
                f"acc after {epochs}": s_["final val_accuracy"],
                f"MNIST acc at lr {LR:g}": summ[f"{label} @ lr {LR:g}"]["best val_accuracy"] if LR in lrs else None,
            }
        )
    rep.table(
        f"first pass: activation mean and std over the {depth} hidden layers (MNIST: 1000 training images, "
        "standardized; Boston: 404 towns, standardized) and gradient growth per layer (MNIST)",
        stats_rows,
    )
    sel = first_pass["SELU + lecun_normal"]
    rep.table(
        "SELU + lecun_normal on MNIST, layer by layer (first pass)",
        [
            {
                "layer": r["layer"],
                "act mean": r["act_mean"],
                "act std": r["act_std"],
                "pre mean": r["pre_mean"],
                "pre std": r["pre_std"],
            }
            for r in list(sel)[:-1]
        ],
    )
    k = len(seed_list(seed, seeds))
    rep.table(
        f"MNIST learning-rate sweep (Nadam, {epochs} epochs, batch 128): best validation accuracy, "
        f"mean over {k} seed(s)",
        sweep_rows,
    )
    rep.table(
        f"training with Nadam: MNIST at each network's best lr, {epochs} epochs (batch 128, {k} seed(s)); "
        f"Boston at lr {LR}, {boston_epochs} epochs (batch 32)",
        train_rows,
    )
    rep.figure(
        plots.stats_vs_depth(profiles, title="first pass on MNIST: activation mean and std per hidden layer"),
        "mean_std_per_layer.png",
        "Per-layer activation mean and std at the first pass: SELU with "
        "lecun_normal stays near (0, 1) over 20 layers without any normalization.",
    )
    rep.figure(
        plots.training_curves(
            mnist_curves, metrics=("loss", "val_accuracy"), title="MNIST subset, each at its best lr"
        ),
        "mnist_curves.png",
        "MNIST subset: training loss and validation accuracy of each network at its own best learning rate "
        f"({', '.join(f'{k_}: {v:g}' for k_, v in best_lr.items())}; mean over the seeds).",
    )
    rep.figure(
        plots.training_curves(boston_curves, metrics=("loss", "val_loss"), title="Boston housing (mse)"),
        "boston_curves.png",
        "Boston housing: training and validation mse on the standardized target.",
    )
    lines = [f"- **{k}**: " + "; ".join(v) for k, v in warns.items() if v]
    rep.note("`diagnostics.check` warnings at the first pass:\n\n" + ("\n".join(lines) if lines else "none"))
    return rep.finish(
        {
            "stats": stats_rows,
            "training": train_rows,
            "first_pass": first_pass,
            "mnist": mnist_curves,
            "boston": boston_curves,
            "warnings": warns,
            "lr_sweep": sweep_rows,
            "best_lr": best_lr,
            "trials": trials,
        }
    )
