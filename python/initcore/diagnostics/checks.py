"""``check(model, x)``: warnings (category :class:`InitWarning`) about a bad start.

Rules, each from the paper that explains it:

- **sigmoid/tanh with He or N(0, 1) weights** (Glorot & Bengio 2010): ``Var(z) = n_in·Var(x)·
  Var(w)``; He doubles the variance that keeps tanh in its linear zone and N(0, 1) multiplies
  it by ``n_in``, so the units saturate and their gradients vanish. Detected from the
  initializer's name (He/Kaiming with the ReLU gain) or from the weights themselves:
  ``n_in·Var(w) > 4`` (four times LeCun's variance).
- **ReLU-like with tiny weights such as N(0, 0.01)** (He et al. 2015): each layer multiplies
  the signal's second moment by ``n_in·Var(w)/2``; below 0.1 (He's 2 divided by 20) the signal
  dies out within a few layers (and above 8, four times He's, it explodes: N(0, 1) weights).
- **SELU without lecun_normal, or without standardized input** (Klambauer et al. 2017): the
  self-normalizing fixed point (mean 0, variance 1) needs ``Var(w) = 1/n_in`` (normal) and
  inputs of mean 0 and variance 1. Detected from the initializer (LeCun normal or an equivalent
  ``VarianceScaling(1, "fan_in", normal)`` / Kaiming with the linear gain) or, for other
  callables, ``n_in·Var(w)`` outside [0.8, 1.25]; the input from its pooled mean and variance
  (|mean| > 0.1 or variance outside [0.5, 2]).
- **un-standardized input** (LeCun et al. 1998, "Efficient BackProp"): pooled mean of ``x``
  with |mean| > 0.5, or pooled variance outside [0.2, 5] (raw MNIST pixels in [0, 1] have mean
  0.13 and variance 0.095).
- **more than half of a layer's units saturated or dead at the first pass**: from
  :func:`activation_stats` on ``x`` (sigmoid/tanh saturated share > 0.5; ReLU-like dead share
  > 0.5).

Weight rules are skipped for a layer whose Dense is followed by BatchNorm before the
activation: BatchNorm rescales the pre-activations whatever the weights' scale.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .activations import RELU_LIKE, activation_stats, as_input, blocks


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


def _messages(model, x) -> list[str]:
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
    bl = blocks(model)
    selu_input_ok = abs(mean) <= 0.1 and 0.5 <= var <= 2.0
    for blk in bl:
        if blk.dense is None:
            continue
        dense = model.layers[blk.dense]
        if blk.batchnorm == "before":
            continue
        w = dense.kernel.value
        n_in = w.shape[0]
        gain2 = n_in * float(np.var(w.astype(np.float64))) if w.size else 0.0
        kind = _init_kind(dense.kernel_initializer)
        act = blk.activation
        where = f"layer {blk.index} ({dense.name}, {act})"
        if act in ("sigmoid", "tanh"):
            if kind == "he":
                msgs.append(
                    f"{where} uses He initialization, made for ReLU: n_in·Var(w) = {gain2:.2f}, twice what keeps "
                    f"{act} out of saturation; use glorot_uniform/glorot_normal (Glorot & Bengio 2010)"
                )
            elif gain2 > 4.0:
                msgs.append(
                    f"{where}: weights with n_in·Var(w) = {gain2:.3g} (std {math.sqrt(gain2 / n_in):.3g}, N(0,1)-like) "
                    f"make pre-activations of std about {math.sqrt(gain2):.3g}·std(input), which saturates {act}; "
                    "use glorot_uniform/glorot_normal"
                )
        elif act in RELU_LIKE and act != "maxout":
            if gain2 > 8.0:
                msgs.append(
                    f"{where}: weights with n_in·Var(w) = {gain2:.3g} (std {math.sqrt(gain2 / n_in):.3g}, N(0,1)-like) "
                    f"multiply the signal by about {math.sqrt(gain2 / 2):.3g}× per layer; "
                    "use he_normal (He et al. 2015)"
                )
            elif gain2 < 0.1:
                msgs.append(
                    f"{where}: weights with n_in·Var(w) = {gain2:.3g} "
                    f"(std {math.sqrt(gain2 / n_in):.3g}, like N(0, 0.01)) "
                    f"shrink the signal by about {math.sqrt(gain2 / 2):.3g}× per layer; use he_normal (He et al. 2015)"
                )
        elif act == "selu":
            from ..initializers import Initializer

            plain = not isinstance(dense.kernel_initializer, Initializer)  # a user's callable: judge the weights
            ok = kind == "lecun_normal" or (plain and 0.8 <= gain2 <= 1.25)
            if not ok:
                msgs.append(
                    f"{where}: SELU self-normalizes only with lecun_normal weights (Var(w) = 1/n_in); "
                    f"this layer has {type(dense.kernel_initializer).__name__} (n_in·Var(w) = {gain2:.3g})"
                )
            if blk.index == 1 and not selu_input_ok:
                msgs.append(
                    f"{where}: SELU needs standardized input (mean 0, variance 1), got mean {mean:.3g}, "
                    f"variance {var:.3g} (Klambauer et al. 2017)"
                )
    stats = activation_stats(model, xa, bins=10)
    for r in stats:
        if r["saturated"] is not None and r["saturated"] > 0.5:
            msgs.append(
                f"layer {r['layer']} ({r['name']}, {r['activation']}): {100 * r['saturated']:.0f}% of the "
                "activations are saturated at the first pass; their gradients vanish"
            )
        if r["dead"] is not None and r["dead"] > 0.5:
            msgs.append(
                f"layer {r['layer']} ({r['name']}, {r['activation']}): {100 * r['dead']:.0f}% of the units "
                "are dead (zero for every sample) at the first pass; they receive no gradient"
            )
    return msgs


def check(model, x, warn: bool = True) -> list[str]:
    """Inspects ``model`` (its initializers, weights and activations) on the batch ``x`` and
    issues one :class:`InitWarning` per problem found (see the module docstring for the rules);
    returns the messages (an empty list when all is well). ``warn=False`` only returns them."""
    msgs = _messages(model, x)
    if warn:
        for m in msgs:
            warnings.warn(m, InitWarning, stacklevel=2)
    return msgs
