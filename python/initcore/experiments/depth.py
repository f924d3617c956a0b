"""``depth``: what 100 layers do to the signal, for three activations and four initializations.

A Dense layer with ``n`` inputs and zero-mean weights of standard deviation ``σ_w`` maps an
input of second moment ``q`` to pre-activations of variance ``n·σ_w²·q``. Without activation the
standard deviation is multiplied by ``g = σ_w·√n`` at every layer; with ReLU, which keeps half
of the second moment, by ``g = σ_w·√(n/2)``. So after ``L`` layers the scale is ``g^L``:

- N(0, 1): ``g = √n`` (22.6 for n = 512): float32 overflows (3.4e38) after about 28 layers;
- N(0, 1)·0.01: ``g = 0.01·√n`` (0.23): the signal collapses, to exactly 0 once it falls
  below float32's smallest subnormal (1.4e-45);
- Glorot (σ_w² = 2/(n_in + n_out) = 1/n): ``g = 1`` without activation (preserved), ``1/√2``
  with ReLU (halved variance per layer: 1e-15 after 100 layers), and tanh, linear near 0 and
  contracting elsewhere, shrinks slowly;
- He (σ_w² = 2/n): ``g = √2`` without activation (explodes, but stays finite over 100
  layers), ``1`` with ReLU: preserved.

tanh is bounded: N(0, 1) saturates every unit at ±1 (std ≈ 1, but no gradient flows).
Input: N(0, 1) samples (mean 0, variance 1, as standardized data), float32, biases 0.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Report, get_plots, seed_list

ACTIVATIONS = ("identity", "tanh", "relu")
INITS = ("N(0,1)", "N(0,1)·0.01", "Glorot", "He")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _initializer(name: str):
    from .. import initializers as I

    return {
        "N(0,1)": I.RandomNormal(0.0, 1.0),
        "N(0,1)·0.01": I.RandomNormal(0.0, 0.01),
        "Glorot": I.GlorotNormal(),
        "He": I.HeNormal(),
    }[name]


def theory_gain(activation: str, init: str, n: int) -> float:
    """Per-layer multiplier of the activation std predicted by the variance formula (None for
    tanh, which has no closed form)."""
    var_w = {"N(0,1)": 1.0, "N(0,1)·0.01": 1e-4, "Glorot": 1.0 / n, "He": 2.0 / n}[init]
    if activation == "identity":
        return math.sqrt(n * var_w)
    if activation == "relu":
        return math.sqrt(n * var_w / 2.0)
    return None


def tanh_glorot_std(layer: int) -> float:
    """Std of tanh activations at depth ``layer`` with σ_w² = 1/n, standardized input: the
    variance map ``q ← E[tanh²(√q·z)] ≈ q − 2q²`` for small ``q`` gives ``q_L ≈ 1/(2L)``, so the
    std decays as ``1/√(2L)`` (0.071 at layer 100), slowly but without end."""
    return 1.0 / math.sqrt(2.0 * layer)


def fate(stds: np.ndarray, saturated=None, decay: str | None = None) -> str:
    """``overflow at layer k``, ``collapses to 0 at layer k``, ``vanishes``/``explodes`` (more
    than 1e3× over the net), ``shrinks``/``grows`` (2× to 1e3×), ``saturated`` (more than half
    of the last layer's units at ±1) or ``preserved`` (last std within 2× of the first);
    ``decay``: a named predicted decay the measured one follows (e.g. ``"1/√(2L)"``)."""
    bad = np.flatnonzero(~np.isfinite(stds))
    if bad.size:
        return f"overflow at layer {bad[0] + 1}"
    zero = np.flatnonzero(stds == 0)
    if zero.size:
        return f"collapses to 0 at layer {zero[0] + 1}"
    ratio = stds[-1] / stds[0]
    if saturated is not None and saturated > 0.5:
        return f"saturated ({100 * saturated:.0f}% at ±1)"
    for lim, word in ((1e-3, "vanishes"), (0.5, "shrinks")):
        if ratio < lim:
            return f"{word} ({ratio:.2g}x" + (f", as the predicted {decay})" if decay else ")")
    for lim, word in ((1e3, "explodes"), (2.0, "grows")):
        if ratio > lim:
            return f"{word} ({ratio:.1e}x)"
    return f"preserved ({ratio:.2g}x)"


def measured_gain(stds: np.ndarray, layers: int = 10) -> float:
    """Geometric mean of the per-layer std ratio over the first ``layers`` finite, nonzero layers."""
    ok = np.flatnonzero(np.isfinite(stds) & (stds > 0))
    k = min(layers, len(ok) - 1)
    if k < 1 or ok[k] != k:
        return math.nan
    return float((stds[k] / stds[0]) ** (1.0 / k))


def run(
    out_dir,
    quick: bool = False,
    seed: int = 0,
    backend: str = "rust",
    verbose: bool = True,
    depth: int = 100,
    width: int = None,
    samples: int = None,
    seeds: int = 1,
    inits=None,
) -> dict:
    from .. import layers as L
    from ..diagnostics import activation_stats
    from ..model import Sequential

    plots = get_plots()

    width = width or (128 if quick else 512)
    samples = samples or (128 if quick else 256)
    inits = tuple(inits or INITS)
    bad = [i for i in inits if i not in INITS]
    if bad:
        raise ValueError(f"depth: --inits takes {', '.join(INITS)}; got {', '.join(bad)}")
    extra_seeds = seed_list(seed, seeds)[1:]
    rep = Report(
        "depth",
        f"Signal through {depth} layers of {width} units",
        out_dir,
        quick,
        intro=__doc__.split("\n\n", 1)[1],
        verbose=verbose,
    )
    x = np.random.default_rng(seed + 1).standard_normal((samples, width)).astype(np.float32)
    stats, rows, runs = {}, [], {}
    with np.errstate(all="ignore"):
        for act in ACTIVATIONS:
            for init in inits:
                model = Sequential(
                    [L.Dense(width, activation=act, kernel_initializer=_initializer(init)) for _ in range(depth)],
                    input_dim=width,
                    seed=seed,
                    backend=backend,
                )
                t = activation_stats(model, x, bins=40)
                stds = np.array(t.column("act_std"), dtype=float)
                runs[(act, init)] = t
                stats[f"{act}/{init}"] = stds
                pick = [1, 10, depth // 2, depth]
                g = theory_gain(act, init, width)
                if g is not None:
                    with np.errstate(over="ignore", under="ignore"):
                        last_theory = float(x.std()) * float(np.float64(g) ** depth)
                    last_theory = last_theory if last_theory <= FLOAT32_MAX else math.inf
                elif (act, init) == ("tanh", "Glorot"):
                    last_theory = tanh_glorot_std(depth)
                else:
                    last_theory = None
                decay = "1/√(2L)" if (act, init) == ("tanh", "Glorot") else None
                if decay and not abs(stds[-1] / last_theory - 1) < 0.25:
                    decay = None
                gains = [measured_gain(stds)]
                for s_ in extra_seeds:  # the same network with other weight draws (--seeds)
                    other = Sequential(
                        [L.Dense(width, activation=act, kernel_initializer=_initializer(init)) for _ in range(depth)],
                        input_dim=width,
                        seed=s_,
                        backend=backend,
                    )
                    gains.append(measured_gain(np.array(activation_stats(other, x, bins=4).column("act_std"), float)))
                rows.append(
                    {
                        "activation": act,
                        "init": init,
                        "gain theory": theory_gain(act, init, width),
                        "gain measured": float(np.mean(gains)),
                        "± std": float(np.std(gains)) if extra_seeds else None,
                        **{f"std L{k}": stds[k - 1] for k in pick},
                        f"theory L{depth}": last_theory,
                        f"saturated L{depth}": t[-1]["saturated"],
                        f"dead L{depth}": t[-1]["dead"],
                        "fate": fate(stds, t[-1]["saturated"], decay),
                    }
                )
    rep.table(f"activation std per layer (input std {float(x.std()):.3f}); gain = std ratio per layer", rows)
    groups = {a: {i: runs[(a, i)] for i in inits} for a in ACTIVATIONS}
    theory = "1/√(2L) (theory, Glorot)"
    groups["tanh"][theory] = [{"layer": k, "act_std": tanh_glorot_std(k)} for k in range(1, depth + 1)]
    tg = {r["init"]: r for r in rows if r["activation"] == "tanh"}.get("Glorot")
    tanh_note = (
        f"tanh + Glorot is not preserved: it decays from {tg['std L1']:.2f} to {tg[f'std L{depth}']:.3f}, "
        f"the predicted 1/√(2L) decay (dashed; {tanh_glorot_std(depth):.3f} at layer {depth})."
        if tg
        else "The dashed line is tanh + Glorot's predicted 1/√(2L) decay."
    )
    rep.figure(
        plots.profile_grid(
            groups,
            "act_std",
            title=f"activation std through {depth} layers of {width} (✕ overflow, ▼ exactly 0; own scale per panel)",
            sharey=False,
            styles={theory: {"color": "k", "ls": "--", "lw": 1.0}},
            ylims={"tanh": (1e-3, 3.0)},
        ),
        "std_vs_depth.png",
        "Activation standard deviation layer by layer, one panel per activation with its own (log) scale, "
        "one line per initialization (✕ marks float32 overflow, ▼ a collapse to exactly 0; the tanh panel is cut "
        "at 1e-3, below which N(0,1)·0.01 falls within a few layers). " + tanh_note,
    )
    show = sorted({1, 2, 5, 10, 25, 50, depth})
    picks = [
        p
        for p in (("tanh", "N(0,1)"), ("tanh", "Glorot"), ("tanh", "He"), ("relu", "Glorot"), ("relu", "He"))
        if p[1] in inits
    ]
    if not picks:
        picks = [(a, i) for a in ACTIVATIONS for i in inits][:5]
    dead_rows = [{"layer": k, **{f"relu + {i}": runs[("relu", i)][k - 1]["dead"] for i in inits}} for k in show]
    rep.table("ReLU: share of dead units (zero on every sample of the batch) per layer", dead_rows)
    dead_note = ", ".join(f"{100 * v:.0f}% with {k.split(' + ')[1]}" for k, v in dead_rows[-1].items() if k != "layer")
    rep.figure(
        plots.activation_histograms(
            {f"{a} + {i}": runs[(a, i)] for a, i in picks}, layers=show, title="activation histograms at a few depths"
        ),
        "histograms.png",
        "Activation histograms at a few depths (counts; ReLU's exact zeros left out of the bars, their share "
        "in each title): tanh with N(0,1) saturates at ±1 from the first layer, with Glorot it narrows as "
        "1/√(2L); ReLU with Glorot shrinks by 1/√2 per layer, with He it keeps its scale, but ReLU units die "
        f"with depth whatever the scale: dead at layer {depth}: {dead_note}.",
    )
    rep.note(
        "Reading: without activation and with ReLU the measured per-layer gain matches "
        "σ_w·√n and σ_w·√(n/2); N(0,1) overflows float32, N(0,1)·0.01 collapses to exactly 0, "
        "He keeps ReLU's scale over the whole depth, Glorot keeps the linear network's, and tanh "
        "with N(0,1) pins every unit at ±1 (std ≈ 1, saturated)."
    )
    he1 = runs[("relu", "He")][0] if "He" in inits else {"act_mean": math.nan, "act_std": math.nan}
    return rep.finish(
        {
            "rows": rows,
            "std": stats,
            "depth": depth,
            "width": width,
            "dead": dead_rows,
            "relu_he_layer1": {"mean": he1["act_mean"], "std": he1["act_std"]},
        }
    )
