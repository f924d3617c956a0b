"""``annealing``: constant learning rate vs step decay vs ReduceLROnPlateau, against the best
constant rate.

With a constant learning rate, SGD's iterates keep bouncing around a minimum in a band whose
width grows with η and the gradient noise; lowering η late in training lets them settle lower
(annealing). Two ways of lowering it:

- **step decay** ``η_e = η₀·γ^⌊e/s⌋`` (PyTorch ``StepLR``): on a fixed calendar;
- **ReduceLROnPlateau**: ``η ← factor·η`` once the validation loss has not improved (by a
  relative ``1e-4``) for more than ``patience`` epochs: when progress stalls.

784-256-128-10 (ReLU, He) on the MNIST subset with SGD + momentum 0.9 (η₀ = 0.05, batch 32:
small, noisy batches and a large step, so that a constant rate keeps the iterates bouncing and
eventually kicks them out of the minimum they had found); the learning rate of each epoch is
recorded and checked against the rule. A schedule only earns its keep against the **best
constant rate**, not against the too-large η₀ it starts from: the constant rate is swept
(``--lrs``) and the best one (mean best validation accuracy over the seeds) is the baseline.
"""

from __future__ import annotations

import numpy as np

from ._common import Report, get_plots, mnist, run_trials, seed_list

CONSTANT_LRS = (0.005, 0.01, 0.02, 0.05)
QUICK_LRS = (0.01, 0.05)


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    lr: float = 0.05,
    batch_size: int = 32,
    seeds: int = 1,
    lrs=None,
) -> dict:
    plots = get_plots()
    epochs = epochs or (6 if quick else 20)
    step_size = 2 if quick else 6
    gamma = 0.2
    patience = 1 if quick else 2
    lrs = tuple(lrs or (QUICK_LRS if quick else CONSTANT_LRS))
    rep = Report(
        "annealing",
        "Constant learning rate vs step decay vs ReduceLROnPlateau, against the best constant rate",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    base = {
        "sizes": (784, 256, 128, 10),
        "activation": "relu",
        "init": "he_normal",
        "optimizer": "momentum",
        "epochs": epochs,
        "batch_size": batch_size,
        "backend": backend,
    }
    step_label = f"step decay (s={step_size}, γ={gamma})"
    plateau_label = f"plateau (patience {patience}, factor {gamma})"
    arms = {f"constant {v:g}": dict(base, lr=v) for v in sorted(set(lrs) | {lr})}
    arms[step_label] = dict(base, lr=lr, schedule=("step", step_size, gamma))
    arms[plateau_label] = dict(base, lr=lr, schedule=("plateau", patience, gamma))
    trials = run_trials(arms, (train, test), seeds=seed_list(seed, seeds))
    summary = {r["arm"]: r for r in trials.summary()}
    constants = [k for k in arms if k.startswith("constant")]
    best_const = max(constants, key=lambda k: summary[k]["best val_accuracy"])
    first = {t["arm"]: t["metrics"] for t in trials if t["seed"] == seed}
    const_label = f"constant (η₀ = {lr:g})"
    curves = {
        const_label: first[f"constant {lr:g}"],
        step_label: first[step_label],
        plateau_label: first[plateau_label],
    }
    rows = []
    for label, h in curves.items():
        lrs_e = np.asarray(h["lr"])
        s = summary[f"constant {lr:g}" if label == const_label else label]
        rows.append(
            {
                "schedule": label,
                "final lr": float(lrs_e[-1]),
                "lr changes": int(np.sum(lrs_e[1:] != lrs_e[:-1])),
                "final train loss": h["loss"][-1],
                "final val loss": h["val_loss"][-1],
                "final val acc": s["final val_accuracy"],
                "best val acc": s["best val_accuracy"],
                "best epoch": s["best epoch"],
            }
        )
    table = []
    for label in arms:
        s = summary[label]
        table.append(
            {
                "arm": label + (" (best constant)" if label == best_const else ""),
                **{k: v for k, v in s.items() if k != "arm"},
            }
        )
    k = len(seed_list(seed, seeds))
    rep.table(f"SGD + momentum 0.9, η₀ = {lr}, batch {batch_size}, {epochs} epochs (seed {seed})", rows)
    rep.table(f"every arm over {k} seed(s): mean (± std) validation accuracy; constant rates swept", table)
    best_sched = max((step_label, plateau_label), key=lambda a: summary[a]["best val_accuracy"])
    margin = summary[best_sched]["best val_accuracy"] - summary[best_const]["best val_accuracy"]
    verdict = (
        f"the best schedule ({best_sched}) beats the best constant rate ({best_const}) by {margin:+.3f}"
        if margin > 0
        else f"no schedule beats the best constant rate: {best_const} reaches "
        f"{summary[best_const]['best val_accuracy']:.3f}, the best schedule ({best_sched}) "
        f"{summary[best_sched]['best val_accuracy']:.3f} ({margin:+.3f})"
    )
    rep.note(f"Against the best constant rate: {verdict} (best validation accuracy, mean over {k} seed(s)).")
    rep.table(
        "learning rate per epoch",
        [{"epoch": e + 1, **{name: h["lr"][e] for name, h in curves.items()}} for e in range(epochs)],
    )
    shown = dict(curves)
    shown[f"{best_const} (best constant)"] = trials.mean_history(best_const)
    rep.figure(
        plots.training_curves(
            shown, metrics=("loss", "val_loss", "val_accuracy", "lr"), title="annealing the learning rate"
        ),
        "curves.png",
        "Training loss, validation loss and accuracy, and the learning rate per epoch: constant η₀, step "
        f"decay, plateau, and the best constant rate of the sweep ({best_const}).",
    )
    return rep.finish(
        {
            "rows": rows,
            "histories": curves,
            "lr0": lr,
            "step_size": step_size,
            "gamma": gamma,
            "patience": patience,
            "arms": table,
            "best_constant": best_const,
            "schedule_margin": margin,
            "verdict": verdict,
            "trials": trials,
        }
    )
