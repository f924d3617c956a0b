"""``check(model, x)``: warnings (category :class:`InitWarning`) about a bad start, each grounded
in what is measured on the batch ``x``.

One forward pass (side-effect free, :func:`~initcore.diagnostics.trace`) and one backward pass
(training mode; every piece of state it touches is restored) on ``x`` give, per textbook layer:

- **saturation** (sigmoid/tanh): the share of activations in the flat zone, where ``f' < 0.01``
  (Glorot & Bengio 2010); warned above 20% (N(0, 1) weights with sigmoid: about 80%; Glorot or
  He: under 1%);
- **zeros** (ReLU-like): the share of zero activations, the share of units zero on every sample
  ("dead units") and of samples for which the whole layer is zero; warned when more than 80% of
  the activations are zero, more than half of the units are dead, or more than 10% of the
  samples see an all-zero layer (a healthy ReLU layer is zero about half of the time);
- **forward gain**: the std of each layer's pre-activation over the RMS of the layer's input
  (``√(n·Var(w))`` for zero-mean weights: ``Var(z) = n·E[x²]·Var(w)``; a bias shifts ``z`` but
  does not count).
  Warned when one layer changes the scale by more than 8× (either way), or when the product since
  the input leaves [1e-2, 1e2] (ReLU + Glorot over 50 layers: 0.71× a layer, 4e-8 at the end;
  tanh + N(0, 0.01²) with 500 units: 0.22× a layer);
- **backward gain**: the RMS of d loss / d (layer input) over that of the last layer. Warned
  when it leaves [1e-3, 1e3] somewhere (sigmoid + N(0, 0.01²), 8×256: about 0.04× a layer,
  6e-10 at layer 1). With ``y`` the loss's gradient is back-propagated, else a fixed random
  output gradient (the backward Jacobian's gain does not depend on which);
- **symmetry**: a Dense kernel whose entries are all equal (zeros, a constant): every unit
  computes the same function, receives the same gradient and stays equal to its neighbours;
  measured as well on the activations (all units equal on every sample);
- **input scaling** (LeCun et al. 1998): the pooled mean and variance of ``x`` (|mean| > 0.5 or
  variance outside [0.2, 5]); SELU needs |mean| ≤ 0.1 and variance in [0.5, 2] (Klambauer et
  al. 2017), and its layers are checked against the fixed point (|mean| < 0.25, std in
  [0.6, 1.6]).

Every message names the layer, the measured number and a fix: an initializer matched to the
activation (Glorot for sigmoid/tanh, He for ReLU-like, LeCun normal for SELU), BatchNorm before
the activation, or standardized input.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .activations import RELU_LIKE, SATURATION, as_input, blocks, trace

#: thresholds of the measured rules (see the module docstring)
SATURATED_MAX = 0.2
ZERO_MAX = 0.8
DEAD_UNITS_MAX = 0.5
DEAD_SAMPLES_MAX = 0.1
LAYER_GAIN_MAX = 8.0
FORWARD_RANGE = (1e-2, 1e2)
BACKWARD_RANGE = (1e-3, 1e3)


class InitWarning(UserWarning):
    """A likely problem with a model's initialization, activation or input scaling."""


def _init_kind(init) -> str:
    """``"he"``, ``"lecun_normal"``, ``"lecun"``, ``"glorot"`` or ``"other"`` from an initializer."""
    from .. import initializers as I

    name = type(init).__name__
    if isinstance(init, (I.HeNormal, I.HeUniform)):
        return "he"
    if isinstance(init, I.KaimingNormal):  # KaimingUniform subclasses it
        gain = I.calculate_gain(init.nonlinearity, init.a)
        if abs(gain - math.sqrt(2.0)) < 1e-6:
            return "he"
        if abs(gain - 1.0) < 1e-12 and init.mode == "fan_in":
            return "lecun_normal" if type(init) is I.KaimingNormal else "lecun"
        return "other"
    if isinstance(init, I.LecunNormal):
        return "lecun_normal"
    if isinstance(init, I.LecunUniform):
        return "lecun"
    if isinstance(init, (I.GlorotNormal, I.GlorotUniform, I.XavierNormal, I.XavierUniform)):
        return "glorot"
    if isinstance(init, I.VarianceScaling) and name == "VarianceScaling":
        if init.mode == "fan_in" and abs(init.scale - 1.0) < 1e-12:
            return "lecun" if init.distribution == "uniform" else "lecun_normal"
        if init.mode == "fan_in" and abs(init.scale - 2.0) < 1e-12:
            return "he"
    return "other"


def _fix(activation: str, kind: str = "other") -> str:
    """The usual remedy for a layer with ``activation`` initialized with ``kind``."""
    if activation in ("sigmoid", "tanh"):
        init = "glorot_uniform/glorot_normal (Glorot & Bengio 2010)"
    elif activation == "selu":
        init = "lecun_normal (Klambauer et al. 2017)"
    elif activation in RELU_LIKE:
        init = "he_normal (He et al. 2015)"
    else:
        init = "glorot_uniform or lecun_normal"
    if kind in ("glorot", "he", "lecun_normal") and init.startswith(kind):
        return "add BatchNorm before the activation, or use fewer layers (the initializer is already the matched one)"
    return f"use {init}, or add BatchNorm before the activation"


def _rms(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.mean(a * a))) if a.size else math.nan


def _state(model):
    """What a training-mode forward/backward pass changes: gradients, BatchNorm buffers, the RNG
    (dropout masks), the layers' caches and ``last_output``."""
    return (
        [(p, p.grad.copy()) for p in model.parameters()],
        {k: v.copy() for k, v in model.buffers().items()},
        model.rng.bit_generator.state if getattr(model, "rng", None) is not None else None,
        [layer._cache for layer in model.layers],
        getattr(model, "last_output", None),
    )


def _restore(model, state):
    grads, bufs, rng, caches, last = state
    for p, g in grads:
        np.copyto(p.grad, g)
    live = model.buffers()
    for k, v in bufs.items():
        np.copyto(live[k], v)
    if rng is not None:
        model.rng.bit_generator.state = rng
    for layer, c in zip(model.layers, caches):
        layer._cache = c
    model.last_output = last


def backward_gains(model, x, y=None, loss: str | None = None) -> list[float]:
    """RMS of d loss / d (input of each textbook layer), layer 1 first, from one backward pass on
    ``x`` in training mode (``y`` and ``loss``: the real loss; else a fixed random gradient at the
    output, seed 0). The model's state (gradients, BatchNorm statistics, RNG, caches) is restored."""
    from .. import losses

    bl = blocks(model)
    xa = as_input(model, x)
    state = _state(model)
    try:
        with np.errstate(all="ignore"):
            out = model._forward(xa, True)
            if y is not None:
                name = model._loss_name(loss or getattr(model, "loss", None) or "cross_entropy")
                _, grad = losses.compute(name, out, model._target(y, name, xa.shape[0]), model.backend)
            else:
                g = np.random.default_rng(0).standard_normal(out.shape) / math.sqrt(out.size)
                grad = g.astype(model.dtype)
            grad = np.ascontiguousarray(grad)
            at = {}
            starts = {blk.start: blk.index for blk in bl}
            for i in range(len(model.layers) - 1, -1, -1):
                grad = model.layers[i].backward(grad, need_dx=True)
                if i in starts:
                    at[starts[i]] = _rms(grad)
    finally:
        _restore(model, state)
    return [at[blk.index] for blk in bl]


def _symmetry(model, bl, stages) -> list[str]:
    msgs = []
    for blk, (_, act) in zip(bl, stages):
        if blk.dense is None:
            continue
        dense = model.layers[blk.dense]
        w = dense.kernel.value
        if w.shape[1] > 1 and w.size and float(np.ptp(w)) == 0.0:
            msgs.append(
                f"layer {blk.index} ({dense.name}, {blk.activation}): all {w.size} weights are equal "
                f"({float(w.flat[0]):.3g}), so all {w.shape[1]} units compute the same function and receive the "
                "same gradient: the symmetry is never broken; use a random initializer (glorot_uniform, he_normal)"
            )
        elif act.shape[1] > 1 and act.size and bool(np.all(np.ptp(act, axis=1) == 0)) and float(np.ptp(act)) > 0:
            msgs.append(
                f"layer {blk.index} ({dense.name}, {blk.activation}): its {act.shape[1]} units are equal on every "
                "sample (symmetric weights): they will receive the same gradient and stay equal; "
                "use a random initializer (glorot_uniform, he_normal)"
            )
    return msgs


def measure(model, x, y=None, loss: str | None = None) -> list[dict]:
    """The per-layer measurements ``check`` judges (one dict per textbook layer): ``layer``,
    ``name``, ``activation``, ``saturated``, ``zero``, ``dead_units``, ``dead_samples``,
    ``in_rms``, ``pre_std``, ``act_std``, ``gain`` (pre_std / in_rms), ``cum_gain`` (pre_std /
    RMS of x), ``grad_rms`` (at the layer's input) and ``grad_gain`` (over the last layer's)."""
    xa = as_input(model, x)
    bl, stages = trace(model, xa, batch_stats=True)
    grads = backward_gains(model, xa, y, loss)
    x_rms = _rms(xa)
    prev = x_rms
    rows = []
    for blk, (pre, act), g in zip(bl, stages, grads):
        a = np.asarray(act, dtype=np.float64)
        rec = {"layer": blk.index, "name": blk.name, "activation": blk.activation, "batchnorm": blk.batchnorm}
        sat = SATURATION.get(blk.activation)
        rec["saturated"] = float(np.mean((a <= sat[0]) | (a >= sat[1]))) if sat else None
        zero = a == 0
        relu = blk.activation in RELU_LIKE
        rec["zero"] = float(zero.mean()) if relu else None
        rec["dead_units"] = float(zero.all(axis=0).mean()) if relu else None
        rec["dead_samples"] = float(zero.all(axis=1).mean()) if relu else None
        pre_rms = float(np.std(np.asarray(pre, dtype=np.float64))) if np.size(pre) else math.nan
        rec["in_rms"] = prev
        rec["pre_std"] = pre_rms
        with np.errstate(all="ignore"):
            rec["act_std"] = float(np.std(a))
            rec["gain"] = pre_rms / prev if prev > 0 else math.nan
            rec["cum_gain"] = pre_rms / x_rms if x_rms > 0 else math.nan
        rec["grad_rms"] = g
        prev = _rms(a)
        rows.append(rec)
    last = rows[-1]["grad_rms"]
    for r in rows:
        with np.errstate(all="ignore"):
            r["grad_gain"] = r["grad_rms"] / last if last > 0 else math.nan
    return rows


def _where(model, r) -> str:
    return f"layer {r['layer']} ({r['name']}, {r['activation']})"


def _kind(model, bl, layer):
    blk = bl[layer - 1]
    return _init_kind(model.layers[blk.dense].kernel_initializer) if blk.dense is not None else "other"


def _messages(model, x, y=None, loss=None) -> list[str]:
    msgs = []
    xa = as_input(model, x)
    x64 = xa.astype(np.float64)
    mean = float(x64.mean())
    var = float(x64.var())
    if abs(mean) > 0.5 or not 0.2 <= var <= 5.0:
        msgs.append(
            f"the input is not standardized (mean {mean:.3g}, variance {var:.3g}; expected about 0 and 1): "
            "fit initcore.data.Standardizer on the training set and apply it to every split"
        )
    bl, stages = trace(model, xa, batch_stats=True)
    symmetric = _symmetry(model, bl, stages)
    msgs += symmetric
    rows = measure(model, xa, y, loss)
    for r in rows:
        where = _where(model, r)
        fix = _fix(r["activation"], _kind(model, bl, r["layer"]))
        if r["saturated"] is not None and r["saturated"] > SATURATED_MAX:
            msgs.append(
                f"{where}: {100 * r['saturated']:.0f}% of the activations are saturated (f' < 0.01) at the first "
                f"pass, so their gradients vanish; {fix}"
            )
        if r["zero"] is not None:
            bits = []
            if r["dead_units"] > DEAD_UNITS_MAX:
                bits.append(f"{100 * r['dead_units']:.0f}% of the units are dead (zero for every sample)")
            if r["zero"] > ZERO_MAX:
                bits.append(f"{100 * r['zero']:.1f}% of the activations are zero")
            if r["dead_samples"] > DEAD_SAMPLES_MAX:
                bits.append(f"{100 * r['dead_samples']:.0f}% of the samples see an all-zero layer")
            if bits:
                msgs.append(
                    f"{where}: at the first pass " + ", ".join(bits) + "; zero units receive no gradient: "
                    "check the bias (use 0), use he_normal, Leaky ReLU/PReLU, or BatchNorm before the activation"
                )
    # SELU's fixed point, on the activations themselves
    for blk, (_, act), r in zip(bl, stages, rows):
        if blk.activation != "selu" or r is rows[-1]:
            continue
        a = np.asarray(act, dtype=np.float64)
        m, s = float(a.mean()), float(a.std())
        if abs(m) > 0.25 or not 0.6 <= s <= 1.6:
            msgs.append(
                f"{_where(model, r)}: SELU activations have mean {m:.3g} and std {s:.3g}, away from the "
                f"self-normalizing fixed point (0, 1); {_fix('selu', _kind(model, bl, r['layer']))}"
            )
            break
    if any(blk.activation == "selu" for blk in bl[:1]) and not (abs(mean) <= 0.1 and 0.5 <= var <= 2.0):
        msgs.append(
            f"{_where(model, rows[0])}: SELU needs standardized input (mean 0, variance 1), got mean {mean:.3g}, "
            f"variance {var:.3g} (Klambauer et al. 2017): fit initcore.data.Standardizer on the training set"
        )
    if symmetric:  # the gains of equal (zero) weights follow from the symmetry already reported
        return msgs
    # forward gain: one layer's jump, then the drift accumulated since the input
    for r in rows:
        if r["batchnorm"] == "before":
            continue  # BatchNorm rescales the pre-activation whatever the weights
        g = r["gain"]
        if not math.isfinite(g) or g > LAYER_GAIN_MAX or g < 1.0 / LAYER_GAIN_MAX:
            kind = _kind(model, bl, r["layer"])
            msgs.append(
                f"{_where(model, r)}: multiplies the scale of its input by {g:.3g} (input RMS {r['in_rms']:.3g} -> "
                f"pre-activation std {r['pre_std']:.3g}); {_fix(r['activation'], kind)}"
            )
            break
    lo, hi = FORWARD_RANGE
    for r in rows:
        c = r["cum_gain"]
        if not (lo <= c <= hi):
            what = "vanished" if c < lo else "exploded"
            per = c ** (1.0 / r["layer"]) if c > 0 and math.isfinite(c) else c
            msgs.append(
                f"{_where(model, r)}: the activations have {what}: pre-activation std {r['pre_std']:.3g} is "
                f"{c:.3g}× the input's ({per:.3g}× per layer); {_fix(r['activation'], _kind(model, bl, r['layer']))}"
            )
            break
    lo, hi = BACKWARD_RANGE
    for r in rows[:-1]:
        c = r["grad_gain"]
        if not (lo <= c <= hi):
            L = rows[-1]["layer"]
            n = L - r["layer"]
            per = c ** (1.0 / n) if c > 0 and math.isfinite(c) and n > 0 else c
            worst = (
                min(rows[:-1], key=lambda q: q["grad_gain"]) if c < lo else max(rows[:-1], key=lambda q: q["grad_gain"])
            )
            what = "vanish" if c < lo else "explode"
            msgs.append(
                f"{_where(model, r)}: gradients {what} towards the input: the gradient reaching this layer is "
                f"{c:.3g}× the one at layer {L} ({per:.3g}× per layer; {worst['grad_gain']:.3g}× at layer "
                f"{worst['layer']}); {_fix(r['activation'], _kind(model, bl, r['layer']))}"
            )
            break
    return msgs


def check(model, x, warn: bool = True, y=None, loss: str | None = None) -> list[str]:
    """Measures ``model`` on the batch ``x`` (a forward and a backward pass; see the module
    docstring) and issues one :class:`InitWarning` per problem found; returns the messages (an
    empty list when all is well). ``warn=False`` only returns them. ``y`` (and ``loss``, default
    the model's or cross-entropy): back-propagate the real loss instead of a random gradient."""
    msgs = _messages(model, x, y, loss)
    if warn:
        for m in msgs:
            warnings.warn(m, InitWarning, stacklevel=2)
    return msgs
