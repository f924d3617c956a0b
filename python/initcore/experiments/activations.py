"""``activations``: eight activations on the same network and data.

sigmoid and tanh (Glorot), ReLU, Leaky ReLU (α = 0.01), PReLU (a learned slope per unit, from
0.25), ELU (α = 1) and Maxout (k = 2: twice the Dense units and weights) with He, and SELU with
LeCun normal, each in 784-256-256-10 trained with SGD + momentum 0.9 on the MNIST subset
(standardized). Besides accuracy and time per epoch, the dead fraction (ReLU-like units that
are zero on every sample of a fixed probe batch) and the saturated fraction (sigmoid/tanh
outputs in the flat zone) are measured before training and after every epoch.

Expected (Glorot & Bengio 2010; He et al. 2015; Maas et al. 2013; Goodfellow et al. 2013;
Klambauer et al. 2017): a ReLU unit with a negative pre-activation on every sample gets no
gradient and stays dead, which a slope below zero (Leaky ReLU, PReLU, ELU, SELU) prevents by
construction — their dead fraction is 0. Maxout is never dead either (its max of two linear
pieces has a gradient everywhere) and costs twice the first-layer parameters. Too high a
learning rate is what kills ReLU units during training: the sweep (``--lrs``) includes one.
"""

from __future__ import annotations

import math

from ._common import Report, build_model, get_plots, mnist, run_trials, seed_list

ACTIVATIONS = {
    "sigmoid": "glorot_normal",
    "tanh": "glorot_normal",
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "prelu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
    "maxout": "he_normal",
}
LRS = (0.01, 0.3)
QUICK_LRS = (0.01, 0.3)


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    width: int = None,
    seeds: int = 1,
    lrs=None,
) -> dict:
    plots = get_plots()
    epochs = epochs or (2 if quick else 5)
    width = width or (128 if quick else 256)
    lrs = tuple(lrs or (QUICK_LRS if quick else LRS))
    rep = Report(
        "activations",
        f"Eight activations, 784-{width}-{width}-10",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    arms, params = {}, {}
    for act, init in ACTIVATIONS.items():
        for lr in lrs:
            c = {
                "sizes": (784, width, width, 10),
                "activation": act,
                "init": init,
                "optimizer": "momentum",
                "lr": lr,
                "epochs": epochs,
                "backend": backend,
                "probe": 500,
            }
            arms[f"{act} @ lr {lr:g}"] = c
        params[act] = sum(p.value.size for p in build_model(c, seed).parameters())
    trials = run_trials(arms, (train, test), seeds=seed_list(seed, seeds))
    summ = {r["arm"]: r for r in trials.summary()}
    from ..diagnostics.activations import RELU_LIKE, SATURATION

    def cell(v, applies):
        return (None if not math.isfinite(v) else v) if applies else None

    rows = []
    for label, c in arms.items():
        h = trials.mean_history(label)
        s = summ[label]
        rows.append(
            {
                "activation": c["activation"],
                "lr": c["lr"],
                "params": params[c["activation"]],
                "best val acc": s["best val_accuracy"],
                "± std": s["± std "],
                "final val acc": s["final val_accuracy"],
                "s/epoch": s["s/epoch"],
                "dead at start": cell(h["dead"][0], c["activation"] in RELU_LIKE),
                "dead at end": cell(h["dead"][-1], c["activation"] in RELU_LIKE),
                "saturated at start": cell(h["saturated"][0], c["activation"] in SATURATION),
                "saturated at end": cell(h["saturated"][-1], c["activation"] in SATURATION),
                "diverged": bool(s["diverged"]),
            }
        )
    k = len(seed_list(seed, seeds))
    rep.table(
        f"SGD + momentum 0.9, batch 128, {epochs} epochs, mean over {k} seed(s); dead: ReLU-like units zero on all "
        "500 probe images (hidden layers' mean); saturated: sigmoid/tanh outputs in the flat zone",
        rows,
    )
    series = {}
    for label in arms:
        h = trials.mean_history(label)
        series[label] = [
            {"epoch": e, "dead": d, "saturated": s_} for e, (d, s_) in enumerate(zip(h["dead"], h["saturated"]))
        ]
    acts = list(ACTIVATIONS)
    styles = {
        label: {"color": f"C{acts.index(c['activation']) % 10}", "ls": "-" if c["lr"] == min(lrs) else "--"}
        for label, c in arms.items()
    }
    relu_like = {k_: v for k_, v in series.items() if arms[k_]["activation"] in RELU_LIKE}
    bounded = {k_: v for k_, v in series.items() if arms[k_]["activation"] in SATURATION}
    rep.figure(
        plots.profile_grid(
            {"dead fraction (ReLU-like)": relu_like},
            "dead",
            log=False,
            xkey="epoch",
            title="dead units over training (epoch 0: before training; dashed: the higher lr; ✕: diverged)",
            size=(7.0, 3.8),
            styles=styles,
        ),
        "dead_over_training.png",
        "Share of dead hidden units (zero on every probe image) before training (epoch 0) and after each epoch, "
        f"solid at lr {min(lrs):g}, dashed at lr {max(lrs):g}; ✕ marks a run whose loss diverged.",
    )
    rep.figure(
        plots.profile_grid(
            {"saturated fraction": bounded},
            "saturated",
            log=False,
            xkey="epoch",
            title="saturated activations over training (sigmoid, tanh; dashed: the higher lr)",
            size=(6.0, 3.6),
            styles=styles,
        ),
        "saturated_over_training.png",
        "Share of sigmoid/tanh activations in the flat zone before training (epoch 0) and after each epoch.",
    )
    rep.figure(
        plots.training_curves(
            {k_: trials.mean_history(k_) for k_ in arms if k_.endswith(f"lr {lrs[0]:g}")},
            metrics=("loss", "val_accuracy", "seconds"),
            logy=("loss",),
            title=f"training at lr {lrs[0]:g}",
            legend_cols=2,
        ),
        "curves.png",
        f"Training loss, validation accuracy and seconds per epoch at lr {lrs[0]:g} (timings: a shared machine).",
    )
    dead_end = {r["activation"]: r["dead at end"] for r in rows if r["lr"] == max(lrs)}
    return rep.finish({"rows": rows, "params": params, "dead_at_high_lr": dead_end, "lrs": lrs, "trials": trials})
