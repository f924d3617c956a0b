"""``vanishing``: a deep sigmoid network with N(0, 0.01²) weights against ReLU with He weights.

Backpropagation multiplies the error signal by ``Wᵀ`` and by the activation's derivative at
every layer: ``δ_l = f'(z_l) ⊙ (W_{l+1}·δ_{l+1})``. With ``n`` units per layer and weights of std
``σ_w`` the norm of ``W·δ`` is about ``σ_w·√n·‖δ‖``, and the sigmoid's derivative is at most
1/4 (at 0, where tiny weights keep every unit), so each layer down scales the gradient by about

    r = σ_w·√n / 4            (0.01·√256 / 4 = 0.04),

and the first layer of an 8-hidden-layer network gets a gradient ``0.04⁷ ≈ 1.6e-10`` times the
last one's. The forward pass is different for the two bounded activations: every sigmoid unit
sits at 0.5, and that mean keeps feeding the next layer, so the variance levels off at
``n·σ_w²/64`` (4e-4 for 256 units) instead of collapsing; tanh is centred at 0, so its variance
is multiplied by ``n·σ_w²`` (0.026) at every layer and does collapse. Its error signal ``δ``
shrinks by ``σ_w·√n`` per layer down, but the layer inputs grow by the same factor in that
direction, so tanh's weight-gradient norms ``‖dW_l‖ = ‖a_(l−1)ᵀ·δ_l‖`` stay of one size (ratio
``r = 1``), all tiny. ReLU with He weights
(``σ_w = √(2/n)``, derivative 1 on the half of the units that are active) has ``r = 1``: gradient
norms stay of the same order at every depth (Glorot & Bengio 2010; He et al. 2015).

Measured on a batch of the MNIST subset at the first pass (the table compares the per-layer
ratio of weight-gradient norms with ``r``), then during a few epochs of SGD with momentum,
recorded every few steps by ``diagnostics.Watch``.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, fit, get_plots, mlp, mnist, quiet_check, run_trials, seed_list


def _configs(width: int):
    from .. import initializers as I

    return {
        "sigmoid + N(0, 0.01²)": ("sigmoid", I.RandomNormal(0.0, 0.01), 0.01 * math.sqrt(width) / 4.0),
        # tanh: δ shrinks by σ_w·√n per layer down, but each layer's input grows by 1/(σ_w·√n)
        # going down (the forward collapse), so ‖dW_l‖ = ‖a_(l−1)ᵀ·δ_l‖ keeps its size: ratio 1
        "tanh + N(0, 0.01²)": ("tanh", I.RandomNormal(0.0, 0.01), 1.0),
        "ReLU + He": ("relu", I.HeNormal(), 1.0),
    }


def sigmoid_floor(width: int, sigma: float = 0.01) -> float:
    """Variance at which a deep sigmoid layer with N(0, σ²) weights levels off: its inputs sit
    at 0.5 (E[a²] ≈ 1/4), so ``Var(z) = n·σ²/4`` and, with slope 1/4 at 0, ``Var(a) ≈ n·σ²/64``
    (4e-4 for 256 units): the mean 0.5 keeps feeding every layer, the variance does not
    collapse. tanh's mean is 0, so its variance shrinks by ``n·σ²`` per layer, to nothing."""
    return width * sigma**2 / 64.0


def first_pass_gradients(model, x, y):
    """Per-layer weight-gradient norms after one forward/backward pass on ``(x, y)``."""
    from .. import losses
    from ..diagnostics import gradient_stats

    out = model.forward(x, training=True)
    _, grad = losses.compute("cross_entropy", out, y, model.backend)
    model.backward(grad)
    kernels = [r for r in gradient_stats(model) if r["param"].endswith("/kernel")]
    return [
        {"layer": i + 1, "name": r["layer"], "grad_norm": r["grad_norm"], "grad_rms": r["grad_rms"]}
        for i, r in enumerate(kernels)
    ]


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    hidden: int = 8,
    width: int = None,
    epochs: int = None,
    seeds: int = 1,
) -> dict:
    from .. import optim

    plots = get_plots()
    from ..diagnostics import Watch, activation_stats

    width = width or (128 if quick else 256)
    epochs = epochs or (2 if quick else 8)
    sizes = (784,) + (width,) * hidden + (10,)
    rep = Report(
        "vanishing",
        f"Vanishing gradients: {hidden}×{width} sigmoid + N(0, 0.01²) vs ReLU + He",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    train, test = mnist(quick, seed)
    xb, yb = train[0][:512], train[1][:512]
    act_rows, grad_rows, profiles, grads, curves, watches, ratio_rows, warns = [], [], {}, {}, {}, {}, [], {}
    for label, (act, init, r_theory) in _configs(width).items():
        model = mlp(sizes, act, init, seed=seed, backend=backend)
        warns[label] = quiet_check(model, xb)
        stats = activation_stats(model, xb, bins=40)
        profiles[label] = [dict(r, act_var=r["act_std"] ** 2) for r in stats[:-1]]  # hidden layers only
        g = first_pass_gradients(model, xb, yb)
        grads[label] = g
        norms = np.array([r["grad_norm"] for r in g])
        # ‖dW_l‖/‖dW_{l+1}‖ for l = 2 .. hidden−1: both layers see sigmoid (≈ constant) inputs and
        # W_{l+1} has the initialization under test (layer 1 sees the data, the output is Glorot)
        ratios = norms[1 : hidden - 1] / norms[2:hidden]
        measured = float(np.exp(np.mean(np.log(ratios)))) if np.all(ratios > 0) else 0.0
        for r in stats:
            act_rows.append(
                {
                    "network": label,
                    "layer": r["layer"],
                    "act mean": r["act_mean"],
                    "act var": r["act_std"] ** 2,
                    "pre std": r["pre_std"],
                }
            )
        for r in g:
            grad_rows.append({"network": label, "layer": r["layer"], "‖dW‖": r["grad_norm"]})
        watch = Watch(every=2 if quick else 5, x=xb[:256])
        h = fit(model, train, test, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs, callbacks=[watch])
        # --seeds: the other seeds' training (the same network and optimizer) through the seam
        finals = [h["val_accuracy"][-1]]
        more = seed_list(seed, seeds)[1:]
        if more:
            cfg = {
                "sizes": sizes,
                "activation": act,
                "init": init,
                "optimizer": "momentum",
                "lr": 0.05,
                "epochs": epochs,
                "backend": backend,
            }
            finals += [t["final"] for t in run_trials({label: cfg}, (train, test), seeds=more)]
        curves[label] = h
        watches[label] = watch.log
        ratio_rows.append(
            {
                "network": label,
                "r (theory)": r_theory,
                "ratio measured": measured,
                "measured / r": measured / r_theory,
                f"‖dW1‖/‖dW{hidden}‖": norms[0] / norms[hidden - 1],
                f"r^{hidden - 1}": r_theory ** (hidden - 1),
                "last hidden act var": stats[-2]["act_std"] ** 2,
                "final val acc": float(np.nanmean(finals)),
                "± std": float(np.nanstd(finals)) if len(finals) > 1 else None,
            }
        )
    rep.table(
        f"per-layer ratio of weight-gradient norms ‖dW_l‖/‖dW_(l+1)‖ (geometric mean over hidden layers "
        f"2..{hidden}) vs r (σ_w·√n/4 for sigmoid; 1 for tanh, whose inputs grow as δ shrinks, and for ReLU + He)",
        ratio_rows,
    )
    rep.table("first pass: per-layer activation mean and variance", act_rows)
    rep.table("first pass: per-layer weight-gradient norm", grad_rows)
    sig_var = profiles["sigmoid + N(0, 0.01²)"][-1]["act_var"]
    # layers 2..hidden all see inputs near 0.5: each levels off at the same floor; their mean has
    # a relative standard error of about √(2/(width·(hidden − 1))) (independent weight draws)
    sig_floor_measured = float(np.mean([r["act_var"] for r in profiles["sigmoid + N(0, 0.01²)"][1:]]))
    tanh_var = profiles["tanh + N(0, 0.01²)"][-1]["act_var"]
    floor = sigmoid_floor(width)
    rep.table(
        f"activation variance of the deep layers against theory (layers 2..{hidden})",
        [
            {
                "network": "sigmoid + N(0, 0.01²)",
                "measured": sig_floor_measured,
                "theory": floor,
                "rel. std error": math.sqrt(2.0 / (width * (hidden - 1))),
                "rule": f"n·σ²/64, every layer (levels off; layer {hidden}: {sig_var:.2e})",
            },
            {
                "network": "tanh + N(0, 0.01²)",
                "measured": tanh_var,
                "theory": profiles["tanh + N(0, 0.01²)"][0]["act_var"] * (width * 1e-4) ** (hidden - 1),
                "rel. std error": None,
                "rule": f"Var(L1)·(n·σ²)^{hidden - 1} at layer {hidden} (collapses)",
            },
        ],
    )
    rep.figure(
        plots.layer_profile(
            profiles,
            ("act_mean", "act_var"),
            log=(False, True),
            title="first pass: activation mean and variance per layer",
        ),
        "activations_per_layer.png",
        f"Per-layer activation mean and variance of the hidden layers at the first pass. Sigmoid + N(0, 0.01²) "
        f"sits at mean 0.5 and its variance levels off at {sig_var:.1e} (theory n·σ²/64 = {floor:.1e}): it does "
        f"not collapse. tanh + N(0, 0.01²) is centred at 0 and its variance collapses, to {tanh_var:.1e} at "
        f"layer {hidden}. ReLU + He keeps its scale.",
    )
    rep.figure(
        plots.layer_profile(grads, ("grad_norm",), title="first pass: weight-gradient norm per layer"),
        "gradient_norms.png",
        "Weight-gradient norm per layer (log scale): the sigmoid network's gradient "
        "shrinks by about r = σ_w·√n/4 per layer towards the input; tanh's stays level (its δ shrinks as "
        "fast as its inputs grow towards the input) but tiny.",
    )
    rep.figure(
        plots.training_curves(curves, metrics=("loss", "val_accuracy"), title="training (SGD, momentum 0.9)"),
        "training.png",
        "Training of the three networks: the networks with N(0, 0.01²) weights barely learn.",
    )
    for label, log in watches.items():
        slug = label.split(" ")[0].lower()
        rep.figure(
            plots.watch_heatmap(
                log,
                stage="act",
                layers=[1, hidden // 2, hidden],
                title=f"{label}: activation histograms during training",
            ),
            f"watch_{slug}.png",
            f"{label}: activation histograms of layers 1, {hidden // 2} and {hidden} "
            "on a fixed probe batch over training (diagnostics.Watch).",
        )
    lines = [f"- **{k}**: " + "; ".join(v) for k, v in warns.items() if v]
    if lines:
        rep.note("`diagnostics.check` warnings at the first pass:\n\n" + "\n".join(lines))
    return rep.finish(
        {
            "ratios": ratio_rows,
            "activations": profiles,
            "gradients": grads,
            "histories": curves,
            "watch": watches,
            "warnings": warns,
            "width": width,
            "sigmoid_floor": sig_floor_measured,
        }
    )
