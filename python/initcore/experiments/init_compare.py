"""``init-compare``: naive N(0, 1) vs Glorot vs He weights, with sigmoid and with ReLU, on MNIST.

For a Dense layer ``z_j = Σ_i x_i·w_ij`` with independent zero-mean weights of variance
``Var(w)`` and inputs of mean 0, the pre-activation variance is

    Var(z) = n_in · Var(x) · Var(w)

(Glorot & Bengio 2010; ``Var(x)`` the variance of the input entries pooled over features). With
784 standardized pixels (about 700 non-constant, so ``n_in·Var(x) ≈ 700``), N(0, 1) weights give
pre-activations of std ≈ 26: a sigmoid is then 0 or 1 for most inputs (saturated, with a
vanishing derivative) and a ReLU network's outputs are enormous. Glorot's ``Var(w) = 2/(n_in +
n_out)`` and He's ``2/n_in`` give std ≈ 1.2 and 1.3. Conditional on the drawn weights, the
measured variance fluctuates around the formula with a standard error
``Var(w)·√(2·tr(C²)/units)`` (``C`` the input covariance; Gaussian weights), which the table
uses as its tolerance.

Then each of the six networks (784-256-128-10, biases 0, linear output, softmax cross-entropy)
is trained with SGD + momentum 0.9 (lr 0.01, batch 128) and its accuracy curves compared.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, get_plots, mlp, mnist, quiet_check, resolve_init, run_trials, seed_list

INITS = ("N(0,1)", "Glorot", "He")
ACTIVATIONS = ("sigmoid", "relu")


def _initializer(name: str):
    from .. import initializers as I

    known = {"N(0,1)": I.RandomNormal(0.0, 1.0), "Glorot": I.GlorotNormal(), "He": I.HeNormal()}
    return known[name] if name in known else resolve_init(name)


def weight_variance(name: str, fan_in: int, fan_out: int, kernel=None) -> float:
    """Var(w) of initializer ``name``; for others (``--inits``) the drawn kernel's own variance."""
    known = {"N(0,1)": 1.0, "Glorot": 2.0 / (fan_in + fan_out), "He": 2.0 / fan_in}
    if name in known:
        return known[name]
    return float(np.var(np.asarray(kernel, dtype=np.float64)))


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    epochs: int = None,
    seeds: int = 1,
    inits=None,
) -> dict:
    plots = get_plots()
    inits = tuple(inits or INITS)
    from ..diagnostics import activation_stats

    epochs = epochs or (3 if quick else 10)
    sizes = (784, 256, 128, 10)
    rep = Report(
        "init-compare",
        "Naive N(0,1) vs Glorot vs He, with sigmoid and ReLU (MNIST subset)",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    x = train[0]
    x64 = x.astype(np.float64)
    n_in = x.shape[1]
    var_x = float(x64.var())
    xc = x64 - x64.mean(axis=0)
    cov = xc.T @ xc / x.shape[0]
    tr_c, tr_c2 = float(np.trace(cov)), float(np.sum(cov * cov))

    first, rows, curves, tables, warns = [], [], {}, {}, {}
    arms = {
        f"{act} + {init}": {
            "sizes": sizes,
            "activation": act,
            "init": _initializer(init),
            "optimizer": "momentum",
            "lr": 0.01,
            "epochs": epochs,
            "backend": backend,
        }
        for act in ACTIVATIONS
        for init in inits
    }
    seeds_ = seed_list(seed, seeds)
    trials = run_trials(arms, (train, test), seeds=seeds_)
    summ = {r["arm"]: r for r in trials.summary()}
    for act in ACTIVATIONS:
        for init in inits:
            label = f"{act} + {init}"
            model = mlp(sizes, act, _initializer(init), seed=seed, backend=backend)
            warns[label] = quiet_check(model, x)
            t = activation_stats(model, x, bins=50)
            tables[label] = t
            var_w = weight_variance(init, n_in, sizes[1], model.layers[0].kernel.value)
            if act == ACTIVATIONS[0]:  # the first layer's weights are the same draw for both activations
                pred = n_in * var_x * var_w
                meas = t[0]["pre_std"] ** 2
                se = var_w * math.sqrt(2.0 * tr_c2 / sizes[1])
                first.append(
                    {
                        "init": init,
                        "Var(w)": var_w,
                        "n_in": n_in,
                        "Var(x)": var_x,
                        "n_in·Var(x)·Var(w)": pred,
                        "measured Var(z)": meas,
                        "ratio": meas / pred,
                        "std error": se,
                        "|diff|/SE": abs(meas - pred) / se,
                        "within 3 SE": abs(meas - pred) <= 3 * se,
                    }
                )
            h = trials.mean_history(label)
            curves[label] = h
            rows.append(
                {
                    "activation": act,
                    "init": init,
                    "L1 saturated": t[0]["saturated"],
                    "L2 saturated": t[1]["saturated"],
                    "L1 dead": t[0]["dead"],
                    "L2 dead": t[1]["dead"],
                    "logit std": t[-1]["act_std"],
                    "first-epoch loss": h["loss"][0],
                    "final val acc": summ[label]["final val_accuracy"],
                    "± std": summ[label]["± std"],
                    "best val acc": summ[label]["best val_accuracy"],
                    "warnings": len(warns[label]),
                }
            )
    rep.table(
        f"first layer at the first pass: Var(z) vs n_in·Var(x)·Var(w) ({x.shape[0]} samples, "
        f"{sizes[1]} units; tr(C) = {tr_c:.1f})",
        first,
    )
    rep.table(
        f"first pass and training (SGD momentum 0.9, lr 0.01, {epochs} epochs, mean over {len(seeds_)} seed(s))", rows
    )
    rep.figure(
        plots.activation_histograms(tables, stage="act", title="activations at the first pass"),
        "first_pass_histograms.png",
        "Activation histograms (counts) of each layer at the first pass (rows: activation + init; the last "
        "column is the linear logits layer). Sigmoid with N(0,1) is pinned at 0 and 1; Glorot and He keep it "
        "in its sensitive range. ReLU's exact zeros are left out of the bars (their share is in each title).",
    )
    rep.figure(
        plots.training_curves(curves, metrics=("loss", "val_accuracy"), title="training"),
        "accuracy_curves.png",
        "Training loss and validation accuracy per epoch for the six networks.",
    )
    lines = [f"- **{k}**: " + "; ".join(v) for k, v in warns.items() if v]
    if lines:
        rep.note("`diagnostics.check` warnings (InitWarning) at the first pass:\n\n" + "\n".join(lines))
    return rep.finish({"first_layer": first, "rows": rows, "histories": curves, "warnings": warns, "var_x": var_x})
