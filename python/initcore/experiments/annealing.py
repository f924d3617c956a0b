"""``annealing``: constant learning rate vs step decay vs ReduceLROnPlateau.

With a constant learning rate, SGD's iterates keep bouncing around a minimum in a band whose
width grows with η and the gradient noise; lowering η late in training lets them settle lower
(annealing). Two ways of lowering it:

- **step decay** ``η_e = η₀·γ^⌊e/s⌋`` (PyTorch ``StepLR``): on a fixed calendar;
- **ReduceLROnPlateau**: ``η ← factor·η`` once the validation loss has not improved (by a
  relative ``1e-4``) for more than ``patience`` epochs: when progress stalls.

784-256-128-10 (ReLU, He) on the MNIST subset with SGD + momentum 0.9 (η₀ = 0.05, batch 32:
small, noisy batches and a large step, so that a constant rate keeps the iterates bouncing and
eventually kicks them out of the minimum they had found); the learning rate of each epoch is
recorded and checked against the rule.
"""

from __future__ import annotations

import numpy as np

from ._common import Report, best_epoch, fit, mlp, mnist


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    lr: float = 0.05,
    batch_size: int = 32,
) -> dict:
    from .. import optim, plots, schedules

    epochs = epochs or (6 if quick else 20)
    step_size = 2 if quick else 6
    gamma = 0.2
    patience = 1 if quick else 2
    rep = Report(
        "annealing",
        "Constant learning rate vs step decay vs ReduceLROnPlateau",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    configs = {
        "constant": lambda: [],
        f"step decay (s={step_size}, γ={gamma})": lambda: [schedules.StepDecay(step_size, gamma=gamma)],
        f"plateau (patience {patience}, factor {gamma})": lambda: [
            schedules.ReduceLROnPlateau(monitor="val_loss", factor=gamma, patience=patience)
        ],
    }
    rows, curves = [], {}
    for label, make in configs.items():
        model = mlp((784, 256, 128, 10), "relu", "he_normal", seed=seed, backend=backend)
        h = fit(
            model,
            train,
            test,
            optim.SGD(model.parameters(), lr=lr, momentum=0.9),
            epochs,
            batch_size=batch_size,
            callbacks=make(),
        )
        curves[label] = h
        ep, best = best_epoch(h["val_accuracy"])
        lrs = np.asarray(h["lr"])
        rows.append(
            {
                "schedule": label,
                "final lr": float(lrs[-1]),
                "lr changes": int(np.sum(lrs[1:] != lrs[:-1])),
                "final train loss": h["loss"][-1],
                "final val loss": h["val_loss"][-1],
                "final val acc": h["val_accuracy"][-1],
                "best val acc": best,
                "best epoch": ep,
            }
        )
    rep.table(f"SGD + momentum 0.9, η₀ = {lr}, batch {batch_size}, {epochs} epochs", rows)
    rep.table(
        "learning rate per epoch",
        [{"epoch": e + 1, **{k: h["lr"][e] for k, h in curves.items()}} for e in range(epochs)],
    )
    rep.figure(
        plots.training_curves(
            curves, metrics=("loss", "val_loss", "val_accuracy", "lr"), title="annealing the learning rate"
        ),
        "curves.png",
        "Training loss, validation loss and accuracy, and the learning rate per epoch.",
    )
    return rep.finish(
        {"rows": rows, "histories": curves, "lr0": lr, "step_size": step_size, "gamma": gamma, "patience": patience}
    )
