"""Per-parameter gradient norms and update-to-weight ratios.

The update-to-weight ratio ``|Δw| / |w|`` of a step (Frobenius norms; ``w`` the weights before
the step) is measured from a **copy of the weights taken before the step**, not derived from the
optimizer's state: it is then exact for every optimizer, schedule, weight decay and clipping.
Take the copy with :func:`snapshot` just before ``optimizer.step()`` (``Watch`` does this itself
on the steps it records) and pass it as ``before=``. A common rule of thumb (Karpathy, CS231n) is
a ratio around 1e-3 for a healthy learning rate: much larger and training is unstable, much
smaller and it crawls. ``gradient_stats`` flags a ratio more than 10× away from it (``flag``:
``"high"`` above 1e-2, ``"low"`` below 1e-4, ``""`` in between).
"""

from __future__ import annotations

import math

import numpy as np

from .tables import StatsTable

#: the rule-of-thumb update/weight ratio and the band around it that is not flagged
UPDATE_RATIO = 1e-3
UPDATE_BAND = (1e-4, 1e-2)


def ratio_flag(ratio: float) -> str:
    """``"high"``, ``"low"`` or ``""`` for an update/weight ratio (see the module docstring)."""
    if not math.isfinite(ratio) or ratio > UPDATE_BAND[1]:
        return "high"
    if ratio < UPDATE_BAND[0]:
        return "low"
    return ""


def _norm(a: np.ndarray) -> float:
    """‖a‖ in the array's own dtype (a float64 copy of a big kernel costs more than the step it
    describes); float32 squares overflow above ~1e19, so a non-finite result is redone in float64."""
    v = a.ravel()
    s = float(np.einsum("i,i->", v, v))
    if not math.isfinite(s) and np.all(np.isfinite(v)):
        s = float(np.einsum("i,i->", v, v, dtype=np.float64))
    return math.sqrt(s)


def snapshot(model) -> dict[str, np.ndarray]:
    """Copies of every parameter's value, keyed by name (for ``gradient_stats(before=...)``)."""
    return {p.name: p.value.copy() for p in model.parameters()}


def gradient_stats(model, optimizer=None, before: dict[str, np.ndarray] | None = None) -> StatsTable:
    """One record per parameter: ``layer`` (the layer name), ``param`` (its full name),
        ``shape``, ``grad_norm`` (‖p.grad‖ of the last backward), ``grad_rms`` (‖g‖/√size),
        ``weight_norm`` (‖w‖ now), and with ``before`` (a :func:`snapshot` taken before the last
        ``optimizer.step()``) ``update_norm`` ‖w − w_before‖ and ``update_ratio`` ‖w − w_before‖ /
        ‖w_before‖, and ``flag`` (``"high"``/``"low"`` when the ratio is more than 10× away from the
    1e-3 rule of thumb, else ``""``). With ``optimizer``: ``step`` (its ``step_count``) and ``lr`` columns, and
        ``lr_grad_ratio = lr·‖g‖/‖w‖``, the ratio plain SGD would take (an upper-level sanity number;
        adaptive optimizers rescale each coordinate, so only ``update_ratio`` is their true step)."""
    rows = []
    for p in model.parameters():
        g = _norm(p.grad)
        w = _norm(p.value)
        rec = {
            "layer": p.name.split("/")[0],
            "param": p.name,
            "shape": "x".join(map(str, p.value.shape)),
            "grad_norm": g,
            "grad_rms": g / math.sqrt(max(p.value.size, 1)),
            "weight_norm": w,
        }
        if before is not None:
            if p.name not in before:
                raise ValueError(f"gradient_stats: before has no entry for parameter {p.name!r} (use snapshot(model))")
            w0 = before[p.name]
            if w0.shape != p.value.shape:
                raise ValueError(
                    f"gradient_stats: before[{p.name!r}] has shape {w0.shape}, the parameter {p.value.shape}"
                )
            d = _norm(p.value - w0)
            n0 = _norm(w0)
            rec["update_norm"] = d
            rec["update_ratio"] = d / n0 if n0 > 0 else (math.inf if d > 0 else 0.0)
            rec["flag"] = ratio_flag(rec["update_ratio"]) if (n0 > 0 or d > 0) else ""
        if optimizer is not None:
            lr = float(optimizer.lr)
            rec["step"] = int(getattr(optimizer, "step_count", 0))
            rec["lr"] = lr
            rec["lr_grad_ratio"] = lr * g / w if w > 0 else math.nan
        rows.append(rec)
    return StatsTable(rows, title="gradient statistics")
