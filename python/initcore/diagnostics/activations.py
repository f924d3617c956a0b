"""Per-layer statistics of the pre-activations and activations of a ``Sequential`` model.

A *layer* here is what a textbook draws as one layer: a ``Dense`` together with the layers that
follow it up to the next ``Dense`` (BatchNorm, an activation, dropout). Its *pre-activation* is
what enters the nonlinearity and its *activation* what leaves it:

- ``Dense(units, activation="relu")`` (fused): pre-activation ``z = x·W + b``, activation ``relu(z)``;
- ``Dense`` → [``BatchNorm``] → ``Activation``/``PReLU``/``Maxout``: the activation layer's input
  and output (so with BatchNorm before the activation the pre-activation is the normalized one);
- a linear ``Dense`` with no activation after it (the logits): both are the ``Dense`` output.

Layers before the first ``Dense`` (an input BatchNorm, say) form a layer of their own.
Statistics are computed by the ``column_stats`` kernel of the model's backend (float64
accumulation): mean, std (biased), min, max, a histogram, the saturated fraction (sigmoid
outputs ``≤ 0.01`` or ``≥ 0.99``; tanh outputs with ``|y| ≥ 0.99``; ``None`` for activations
that do not saturate) and the dead fraction (units whose activation is 0 on every row of the
batch; it is what "dead ReLU" means and is 0 for smooth activations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..backend import get_ops
from .tables import StatsTable

#: ``column_stats`` saturation interval per activation: outside it an activation is saturated.
SATURATION: dict[str, tuple[float, float]] = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}
#: Natural output range of bounded activations (fixed histogram edges in ``Watch``).
BOUNDED: dict[str, tuple[float, float]] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softmax": (0.0, 1.0)}
ACTIVATION_KINDS = ("activation", "prelu", "maxout")
RELU_LIKE = ("relu", "leaky_relu", "elu", "prelu", "maxout")


@dataclass
class Block:
    """One textbook layer: ``model.layers[start:stop]``; ``dense`` and ``act`` are indices into
    ``model.layers`` (``None`` when absent); ``activation`` the nonlinearity's name."""

    index: int
    name: str
    start: int
    stop: int
    dense: int | None
    act: int | None
    activation: str
    batchnorm: str | None  # "before" or "after" the activation, or None
    units: int


def _act_name(layer) -> str:
    if layer.kind == "activation":
        return layer.activation
    return layer.kind  # "prelu", "maxout"


def blocks(model) -> list[Block]:
    """The textbook layers of ``model`` (see the module docstring)."""
    if not getattr(model, "built", False):
        raise ValueError("diagnostics: the model is not built; pass input_dim= or call model.build(input_dim)")
    layers = model.layers
    starts = [i for i, layer in enumerate(layers) if layer.kind == "dense"]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    out = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(layers)
        dense = start if layers[start].kind == "dense" else None
        act = None
        if dense is None or layers[dense].activation == "identity":
            act = next((i for i in range(start, stop) if layers[i].kind in ACTIVATION_KINDS), None)
        if dense is not None and layers[dense].activation != "identity":
            activation = layers[dense].activation
        elif act is not None:
            activation = _act_name(layers[act])
        else:
            activation = "identity"
        bn = [i for i in range(start, stop) if layers[i].kind == "batch_norm"]
        where = None
        if bn and act is not None:
            where = "before" if bn[0] < act else "after"
        elif bn:  # fused activation inside the Dense: BatchNorm can only come after it
            where = "after" if activation != "identity" else "before"
        name = layers[dense].name if dense is not None else layers[start].name
        out.append(Block(k + 1, name, start, stop, dense, act, activation, where, layers[stop - 1].output_dim))
    return out


def as_input(model, x) -> np.ndarray:
    """``x`` as a C-contiguous 2-D array of the model's dtype with ``input_dim`` columns."""
    a = np.ascontiguousarray(x, dtype=model.dtype)
    if a.ndim != 2 or a.shape[1] != model.input_dim:
        raise ValueError(f"diagnostics: x has shape {np.shape(x)}, expected (n, {model.input_dim}) for this model")
    if a.shape[0] == 0:
        raise ValueError("diagnostics: x has no rows")
    return a


def trace(model, x, batch_stats: bool = True):
    """Runs ``x`` through ``model`` layer by layer without side effects and returns
    ``(blocks, stages)``: ``stages[k] = (pre_activation, activation)`` of block ``k``.

    Dropout is off (evaluation mode). BatchNorm normalizes with the statistics of ``x`` itself
    when ``batch_stats`` (what training sees; its running statistics are not updated), else with
    its running statistics (evaluation mode)."""
    bl = blocks(model)
    h = x = as_input(model, x)
    outputs, zs = [], {}
    for i, layer in enumerate(model.layers):
        if layer.kind == "dense":
            b = layer.bias.value if layer.bias is not None else None
            y, z = layer.ops.dense_forward(h, layer.kernel.value, b, layer.activation, layer.alpha)
            zs[i] = z
        elif layer.kind == "batch_norm" and batch_stats:
            if h.shape[0] < 2:
                raise ValueError(f"diagnostics: x has {h.shape[0]} row; BatchNorm batch statistics need at least 2")
            y, _, _ = layer.ops.batch_norm_forward(
                h,
                layer.gamma.value,
                layer.beta.value,
                None,
                None,
                training=True,
                momentum=layer.momentum,
                eps=layer.eps,
            )
        elif layer.kind in ("dropout", "alpha_dropout"):
            y = h
        else:
            y = layer.forward(h, False)
        outputs.append(y)
        h = y
    inputs = [None] + outputs[:-1]
    stages = []
    for blk in bl:
        if blk.dense is not None and model.layers[blk.dense].activation != "identity":
            stages.append((zs[blk.dense], outputs[blk.dense]))
        elif blk.act is not None:
            pre = inputs[blk.act] if blk.act > 0 else x
            stages.append((pre, outputs[blk.act]))
        else:
            first = blk.dense if blk.dense is not None else blk.start
            stages.append((outputs[first], outputs[first]))
    return bl, stages


def auto_edges(a: np.ndarray, bins: int, activation: str | None = None, margin: float = 0.0) -> np.ndarray:
    """``bins + 1`` equal-width histogram edges covering the finite values of ``a`` (or the
    natural range of a bounded activation), widened by ``margin`` of the span on each side."""
    if activation in BOUNDED:
        lo, hi = BOUNDED[activation]
    else:
        finite = a[np.isfinite(a)] if a.size else a
        if finite.size == 0:
            lo, hi = -1.0, 1.0
        else:
            lo, hi = float(finite.min()), float(finite.max())
        span = hi - lo
        if not span > 0 or not math.isfinite(span):
            c = lo if math.isfinite(lo) else 0.0
            half = max(abs(c) * 1e-3, 0.5) if math.isfinite(span) else 1.0
            lo, hi = c - half, c + half
            span = hi - lo
        # non-negative data (ReLU outputs) keeps its lower edge at its minimum: nothing goes below
        lo, hi = (lo if lo >= 0 else lo - margin * span), hi + margin * span
    return np.linspace(lo, hi, int(bins) + 1)


def summarize(ops, a: np.ndarray, edges: np.ndarray | None, saturation=None) -> dict[str, object]:
    """Scalar statistics and histogram of the 2-D array ``a`` from one ``column_stats`` call."""
    s = ops.column_stats(a, edges, saturation)
    mean, var = s["mean"], s["var"]
    n = a.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):
        # pooled over the batch and the units: E[x] and E[(x − E x)²] from the column moments
        m = float(mean.mean()) if mean.size else math.nan
        v = float((var + (mean - m) ** 2).mean()) if var.size else math.nan
    hist = s["hist"]
    total = a.size
    return {
        "mean": m,
        "std": math.sqrt(v) if v >= 0 else math.nan,
        "min": float(s["min"].min()) if n else math.nan,
        "max": float(s["max"].max()) if n else math.nan,
        "hist": hist,
        "edges": edges,
        "outside": (1.0 - float(hist.sum()) / total) if edges is not None and total else None,
        "saturated": s["saturated_fraction"] if saturation is not None else None,
        "dead": s["dead_fraction"],
        "unit_mean": mean,
        "unit_var": var,
    }


def stage_records(model, bl, stages, bins=50, edges=None, margin=0.0) -> list[dict[str, object]]:
    """One record per block from its ``(pre, act)`` arrays; ``edges`` maps ``(block index,
    "pre"|"act")`` to fixed histogram edges (else they cover the data, see :func:`auto_edges`)."""
    ops = get_ops(model.backend)
    records = []
    for blk, (pre, act) in zip(bl, stages):
        rec = {
            "layer": blk.index,
            "name": blk.name,
            "activation": blk.activation,
            "units": blk.units,
            "batchnorm": blk.batchnorm,
        }
        for stage, arr, sat in (("pre", pre, None), ("act", act, SATURATION.get(blk.activation))):
            e = None if edges is None else edges.get((blk.index, stage))
            if e is None:
                e = auto_edges(arr, bins, blk.activation if stage == "act" else None, margin)
            s = summarize(ops, arr, e, sat)
            for key in ("mean", "std", "min", "max", "hist", "edges", "outside"):
                rec[f"{stage}_{key}"] = s[key]
            if stage == "act":
                rec["act_zero"] = float(np.count_nonzero(arr == 0)) / arr.size if arr.size else math.nan
                rec["saturated"] = s["saturated"]
                rec["dead"] = s["dead"] if blk.activation in RELU_LIKE else None
                rec["dead_any"] = s["dead"]
        records.append(rec)
    return records


PRINTED = [
    "layer",
    "name",
    "activation",
    "units",
    "pre_mean",
    "pre_std",
    "act_mean",
    "act_std",
    "act_min",
    "act_max",
    "saturated",
    "dead",
]


def activation_stats(model, x, bins: int = 50, batch_stats: bool = True) -> StatsTable:
    """Per-layer statistics of ``model`` on the batch ``x`` (see the module docstring).

        Returns a :class:`StatsTable` with one record per layer: ``layer`` (depth, from 1), ``name``,
        ``activation``, ``units``, ``batchnorm`` (``"before"``/``"after"`` the activation or None),
        ``pre_mean``, ``pre_std``, ``pre_min``, ``pre_max``, ``pre_hist``, ``pre_edges`` and the same
        ``act_*`` for the activation, ``saturated`` (share of activation entries in the saturated
        zone, None when the activation does not saturate), ``dead`` (share of units zero on every row,
        for ReLU-like activations; None otherwise), ``act_zero`` (share of activation entries exactly
    0, per entry rather than per unit). Histograms have ``bins`` equal bins spanning each
        array's range (``np.histogram(a, edges)``). The forward pass has no side effects: dropout
        off, BatchNorm on the batch's own statistics when ``batch_stats`` (else its running ones).
    """
    bl, stages = trace(model, x, batch_stats=batch_stats)
    return StatsTable(
        stage_records(model, bl, stages, bins=bins),
        columns=PRINTED,
        title=f"activation statistics ({np.shape(x)[0]} samples)",
    )
