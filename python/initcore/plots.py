"""Pictures of the diagnostics (matplotlib, imported on first use: ``pip install initcore[plot]``).

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg backend, so nothing
here touches pyplot's global state or needs a display. Every function returns the ``Figure``
and, given ``path``, saves it as a PNG there (creating the directory).

- :func:`activation_histograms`: one panel per layer, the histogram of the (pre-)activations at
  a pass (an :func:`initcore.diagnostics.activation_stats` table);
- :func:`layer_profile` / :func:`stats_vs_depth`: per-layer mean and std (or any per-layer key)
  against depth for several runs, on a log scale where values span decades, with overflow
  (inf/NaN) and collapse (exactly 0) marked;
- :func:`watch_heatmap`: each layer's histogram over training steps (a ``Watch`` log);
- :func:`training_curves`: loss/accuracy per epoch of several runs on one plot;
- :func:`lines`: any family of curves (e.g. accuracy against learning rate);
- :func:`trajectories`: optimizer paths over the contours of a 2-D loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Callable

import numpy as np

#: axis labels for the record keys (a raw key such as ``act_std`` is not a label)
LABELS = {
    "layer": "layer (depth)",
    "act_mean": "activation mean",
    "act_std": "activation std",
    "act_var": "activation variance",
    "pre_mean": "pre-activation mean",
    "pre_std": "pre-activation std",
    "pre_var": "pre-activation variance",
    "grad_norm": "weight-gradient norm ‖∂L/∂W‖",
    "grad_rms": "weight-gradient RMS",
    "update_ratio": "update/weight ratio ‖Δw‖/‖w‖",
    "dead": "dead units (share)",
    "saturated": "saturated activations (share)",
    "zero": "zero activations (share)",
    "lr": "learning rate",
    "loss": "training loss",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "seconds": "seconds per epoch",
    "step": "training step",
    "epoch": "epoch",
}


def label(key: str) -> str:
    """The axis label of a record key (``LABELS``, else the key with ``_`` as spaces)."""
    return LABELS.get(key, key.replace("_", " "))


def _integer_ticks(axis) -> None:
    """Whole-number ticks (layers, epochs, steps: there is no layer 2.5)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "initcore.plots needs matplotlib: pip install initcore[plot]  (or: pip install matplotlib)"
        ) from e
    return matplotlib, Figure


def _figure(ncols: int, nrows: int = 1, size: tuple[float, float] = (4.0, 3.0), **kw):
    _, Figure = _mpl()
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig, path: str | None, dpi: int = 110):
    """Saves ``fig`` as a PNG at ``path`` (if given) and returns it."""
    if path is not None:
        d = os.path.dirname(os.path.abspath(os.fspath(path)))
        os.makedirs(d, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def _grid(n: int, max_cols: int = 5) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return cols, int(math.ceil(n / cols))


def _records(table) -> list[dict]:
    return [dict(r) for r in table]


# --- first-pass histograms ------------------------------------------------------------------------
def activation_histograms(
    stats,
    path: str | None = None,
    stage: str = "act",
    layers: Sequence[int] | None = None,
    title: str | None = None,
    max_cols: int = 5,
):
    """Histograms (counts) of the activations (``stage="act"``), pre-activations (``"pre"``) or
    both overlaid (``"both"``) of every layer of an ``activation_stats`` table, one panel per
    layer, with the layer's mean, std and saturated/dead share in the panel title. The exact
    zeros of ReLU-like activations are left out of the bars (their share is in the title); a
    linear last layer is titled "logits (linear)". ``stats`` may also
    be a mapping label → table: one row of panels per table, one column per layer. ``layers``:
    depths to show (default all)."""
    if stage not in ("act", "pre", "both"):
        raise ValueError(f"activation_histograms: stage must be 'act', 'pre' or 'both', got {stage!r}")
    grid = isinstance(stats, Mapping)
    tables = {k: _records(v) for k, v in stats.items()} if grid else {"": _records(stats)}
    if layers is not None:
        want = set(layers)
        tables = {k: [r for r in recs if r["layer"] in want] for k, recs in tables.items()}
    n = max((len(r) for r in tables.values()), default=0)
    if n == 0:
        raise ValueError("activation_histograms: no layer to draw")
    if grid:
        cols, rows = n, len(tables)
    else:
        cols, rows = _grid(n, max_cols)
    fig, axes = _figure(cols, rows, (2.6 if grid else 3.2, 2.2 if grid else 2.4))
    stages = ("pre", "act") if stage == "both" else (stage,)
    colors = {"pre": "tab:gray", "act": "tab:blue"}
    from .diagnostics.activations import RELU_LIKE

    for row, (run, recs) in enumerate(tables.items()):
        panel = axes[row] if grid else list(axes.flat)
        for k, (ax, r) in enumerate(zip(panel, recs)):
            zero_note = None
            for s in stages:
                hist, edges = np.asarray(r[f"{s}_hist"]).astype(float), np.asarray(r[f"{s}_edges"])
                if s == "act" and r["activation"] in RELU_LIKE and r.get("act_zero"):
                    # the exact zeros of a ReLU would be one spike swallowing the bulk: leave them
                    # out of the bars and state their share instead
                    j = int(np.searchsorted(edges, 0.0, side="right")) - 1
                    if 0 <= j < hist.size:
                        n_total = hist.sum()
                        hist[j] = max(hist[j] - round(r["act_zero"] * n_total), 0.0)
                        zero_note = f"zeros {100 * r['act_zero']:.0f}% (not drawn)"
                ax.stairs(
                    hist,
                    edges,
                    fill=(s == "act" or stage != "both"),
                    alpha=0.6 if stage == "both" else 0.85,
                    color=colors[s],
                    label="pre-activation" if s == "pre" else "activation",
                )
            s0 = stages[-1]
            extra = []
            if r.get("saturated") is not None and s0 == "act":
                extra.append(f"sat {100 * r['saturated']:.0f}%")
            if r.get("dead") is not None and s0 == "act":
                extra.append(f"dead units {100 * r['dead']:.0f}%")
            if zero_note and s0 == "act":
                extra.append(zero_note)
            name = "logits (linear)" if r["activation"] == "identity" else r["activation"]
            head = (
                f"L{r['layer']} {name}"
                if not grid
                else (f"layer {r['layer']}" + (": logits (linear)" if r["activation"] == "identity" else ""))
            )
            ax.set_title(
                f"{head}: μ {_fmt(r[f'{s0}_mean'])}, σ {_fmt(r[f'{s0}_std'])}"
                + (f"\n{', '.join(extra)}" if extra else ""),
                fontsize=8,
            )
            ax.tick_params(labelsize=7)
            if k == 0 or not grid:
                ax.set_ylabel(f"{run}\ncount" if grid and run else "count", fontsize=8)
            ax.set_xlabel("pre-activation" if s0 == "pre" else "activation", fontsize=7)
        for ax in list(panel)[len(recs) :]:
            ax.set_visible(False)
    if stage == "both":
        axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def _fmt(v) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e3):
        return f"{v:.1e}"
    return f"{v:.2f}"


# --- per-layer profiles -----------------------------------------------------------------------------
def _profile_axis(ax, runs: Mapping[str, Sequence[dict]], key: str, log, xkey: str = "layer", styles=None):
    """Plots ``key`` against ``xkey`` for every run on ``ax``; on a log axis, a run that hits 0
    is marked ▼ at the bottom and one that overflows (inf/NaN) ✕ at the top. ``log``: True,
    False, or ``"symlog"`` (signed values spanning decades, such as means of an exploding net)."""
    symlog = log == "symlog"
    log = log is True
    finite_all = []
    for recs in runs.values():
        for r in recs:
            v = r.get(key)
            if v is not None and math.isfinite(v) and (v > 0 or not log):
                finite_all.append(abs(v) if log else v)
    lo = min(finite_all) if finite_all else 1e-3
    hi = max(finite_all) if finite_all else 1.0
    for i, (run, recs) in enumerate(runs.items()):
        xs = np.array([r[xkey] for r in recs], dtype=float)
        ys = np.array([np.nan if r.get(key) is None else r.get(key) for r in recs], dtype=float)
        color = f"C{i % 10}"
        good = np.isfinite(ys) & ((ys > 0) if log else True)
        style = dict(color=color, lw=1.5)
        style.update((styles or {}).get(run, {}))
        color = style["color"]
        ax.plot(np.where(good, xs, np.nan), np.where(good, ys, np.nan), label=run, **style)
        if log:
            zero = np.flatnonzero(ys == 0)
            if zero.size:
                (m,) = ax.plot(xs[zero[0]], lo, marker="v", color=color, ms=8, clip_on=False, ls="none")
                m.set_in_layout(False)  # a marker outside a cut axis must not squeeze the layout
        bad = np.flatnonzero(~np.isfinite(ys))
        if bad.size:
            (m,) = ax.plot(xs[bad[0]], hi, marker="X", color=color, ms=9, clip_on=False, ls="none")
            m.set_in_layout(False)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(lo / 3, hi * 3)
    elif symlog:
        big = max((abs(v) for v in finite_all), default=1.0)
        if big > 10:
            ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel(label(xkey))
    ax.set_ylabel(label(key))
    if xkey in ("layer", "epoch", "step"):
        _integer_ticks(ax.xaxis)
    ax.grid(alpha=0.3)


def layer_profile(
    runs: Mapping[str, Iterable[dict]],
    keys: Sequence[str] = ("act_mean", "act_std"),
    path: str | None = None,
    log: Sequence[bool] = None,
    title: str | None = None,
    xkey: str = "layer",
    legend_cols: int = 1,
    size=(5.0, 3.6),
):
    """One panel per ``key``, one line per run (``runs``: label → records with ``xkey``, e.g.
    ``activation_stats`` tables or ``gradient_stats`` rows with a ``layer`` number); ``log``: one
    flag per key, True, False or ``"symlog"`` (default: log scale for keys ending in
    std/norm/ratio/var, else symlog when the values exceed 10 in magnitude)."""
    runs = {k: _records(v) for k, v in runs.items()}
    if log is None:
        log = [True if k.endswith(("std", "norm", "ratio", "var")) else "symlog" for k in keys]
    fig, axes = _figure(len(keys), 1, size)
    for ax, key, lg in zip(axes.flat, keys, log):
        _profile_axis(ax, runs, key, lg, xkey)
    axes.flat[-1].legend(fontsize=7, ncols=legend_cols, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def profile_grid(
    groups: Mapping[str, Mapping[str, Iterable[dict]]],
    key: str = "act_std",
    path: str | None = None,
    log=True,
    title: str | None = None,
    xkey: str = "layer",
    size=(4.4, 3.4),
    sharey: bool = True,
    styles: Mapping[str, dict] | None = None,
    ylims: Mapping[str, tuple[float, float]] | None = None,
):
    """One panel per group (``groups``: panel title → runs, runs: label → records), each
    plotting ``key`` against ``xkey`` for its runs (see :func:`layer_profile`); ``sharey=False``
    gives each panel its own scale; ``styles``: run label → line keywords (a theory curve);
    ``ylims``: group → y range of that panel (a line leaving it is noted in the panel)."""
    fig, axes = _figure(len(groups), 1, size)
    for ax, (name, runs) in zip(axes.flat, groups.items()):
        _profile_axis(ax, {k: _records(v) for k, v in runs.items()}, key, log, xkey, styles)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="best")
    if sharey and log is True:
        lims = [ax.get_ylim() for ax in axes.flat]
        lo, hi = min(a for a, _ in lims), max(b for _, b in lims)
        for ax in axes.flat:
            ax.set_ylim(lo, hi)
    for ax, name in zip(axes.flat, groups):
        if ylims and name in ylims:
            ax.set_ylim(*ylims[name])
            ax.text(
                0.98,
                0.02,
                f"y axis cut at {ylims[name][0]:g}",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.35",
            )
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def stats_vs_depth(runs, path: str | None = None, stage: str = "act", title: str | None = None, **kw):
    """Mean (linear scale, symlog when it explodes) and std (log scale) of each layer's
    ``stage`` against depth."""
    return layer_profile(runs, (f"{stage}_mean", f"{stage}_std"), path, log=("symlog", True), title=title, **kw)


# --- heat map from a Watch log ----------------------------------------------------------------------
def watch_heatmap(
    log,
    path: str | None = None,
    stage: str = "act",
    layers: Sequence[int] | None = None,
    title: str | None = None,
    max_cols: int = 4,
):
    """For each layer, its histogram (vertical: value, colour: share of entries on a log scale
    from 1e-4, black: none) at every recorded step (horizontal) of a ``Watch`` log; the white
    line is the mean."""
    if not len(log):
        raise ValueError("watch_heatmap: the log is empty")
    matplotlib, _ = _mpl()
    from matplotlib.colors import LogNorm

    n_layers = len(log[0]["layers"])
    layers = list(layers) if layers is not None else list(range(1, n_layers + 1))
    cols, rows = _grid(len(layers), max_cols)
    fig, axes = _figure(cols, rows, (3.6, 2.8))
    for ax, layer in zip(axes.flat, layers):
        steps, edges, counts = log.heatmap(layer, stage)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        x = np.append(steps, steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1)).astype(float)
        mesh = ax.pcolormesh(
            x, edges, np.ma.masked_equal(share.T, 0), norm=LogNorm(vmin=1e-4, vmax=1.0), cmap="viridis", shading="flat"
        )
        ax.set_facecolor("black")
        ax.plot(steps + (x[1] - x[0]) / 2, log.series(f"{stage}_mean", layer=layer), color="white", lw=1)
        rec = log[0]["layers"][layer - 1]
        ax.set_title(f"L{layer} {rec['name']} ({rec['activation']})", fontsize=8)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel("activation value" if stage == "act" else "pre-activation value", fontsize=8)
        _integer_ticks(ax.xaxis)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(layers) :]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=axes, shrink=0.8, label="share of entries")
    fig.suptitle(
        title or f"{'activation' if stage == 'act' else 'pre-activation'} histograms over training", fontsize=10
    )
    return save(fig, path)


# --- training curves --------------------------------------------------------------------------------
def _history_dict(h) -> dict[str, list]:
    return dict(getattr(h, "history", h))


def training_curves(
    runs: Mapping[str, object],
    path: str | None = None,
    metrics: Sequence[str] = ("loss", "val_accuracy"),
    title: str | None = None,
    logy: Sequence[str] = ("loss", "val_loss", "lr"),
    legend_cols: int = 1,
    size=(4.6, 3.4),
):
    """One panel per metric, one line per run (``runs``: label → ``History`` or a dict of
    per-epoch lists, or a single ``History``); epochs from 1; losses (and ``lr``) on a log
    scale. Metrics absent from every run are skipped; non-finite values (a diverged run) end
    the line with ✕, and only then does the title say what ✕ means. With a single History,
    each panel shows the metric and its ``val_`` twin (training solid, validation dashed)."""
    if isinstance(getattr(runs, "history", None), dict):  # a single History
        return _single_history(runs, path, metrics, title, logy, size)
    hs = {k: _history_dict(v) for k, v in runs.items()}
    metrics = [m for m in metrics if any(m in h for h in hs.values())]
    if not metrics:
        raise ValueError("training_curves: none of the metrics is in the histories")
    cols, rows = _grid(len(metrics), 2 if len(metrics) == 4 else 3)
    fig, axes = _figure(cols, rows, size)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics):
        for i, (run, h) in enumerate(hs.items()):
            if m not in h:
                continue
            ys = np.asarray(h[m], dtype=float)
            xs = np.arange(1, len(ys) + 1)
            color = f"C{i % 10}"
            ok = np.isfinite(ys)
            ax.plot(xs[ok], ys[ok], color=color, label=run, lw=1.5, marker="." if len(ys) < 30 else None)
            if not ok.all():
                j = int(np.flatnonzero(~ok)[0])
                y_mark = ys[ok][-1] if ok[:j].any() else 1.0
                ax.plot(xs[j], y_mark, marker="X", color=color, ms=9, ls="none")
        if m in logy:
            ax.set_yscale("log")
        _integer_ticks(ax.xaxis)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label(m))
        ax.grid(alpha=0.3)
    axes.flat[len(metrics) - 1].legend(fontsize=7, ncols=legend_cols)
    diverged = any(
        not np.all(np.isfinite(np.asarray(h[m], dtype=float))) for h in hs.values() for m in metrics if m in h
    )
    if title or diverged:
        fig.suptitle((title or "") + (" (✕: diverged)" if diverged else ""), fontsize=10)
    return save(fig, path)


def _single_history(history, path, metrics, title, logy, size):
    h = _history_dict(history)
    base = []
    for m in metrics:
        m = m[4:] if m.startswith("val_") else m
        if m not in base and (m in h or f"val_{m}" in h):
            base.append(m)
    if not base:
        raise ValueError(f"training_curves: none of the metrics {list(metrics)} is in the history ({sorted(h)})")
    cols, rows = _grid(len(base), 2 if len(base) == 4 else 3)
    fig, axes = _figure(cols, rows, size)
    for ax in list(axes.flat)[len(base) :]:
        ax.set_visible(False)
    from matplotlib.ticker import MaxNLocator

    epochs = [e + 1 for e in getattr(history, "epoch", [])]
    for ax, m in zip(axes.flat, base):
        for key, style, label in ((m, "-", "training"), (f"val_{m}", "--", "validation")):
            if key not in h:
                continue
            ys = np.asarray(h[key], dtype=float)
            xs = np.asarray(epochs if len(epochs) == len(ys) else np.arange(1, len(ys) + 1))
            ok = np.isfinite(ys)
            ax.plot(xs[ok], ys[ok], style, color="C0", label=label, lw=1.5, marker="." if len(ys) < 30 else None)
            if not ok.all():
                j = int(np.flatnonzero(~ok)[0])
                ax.plot(xs[j], ys[ok][-1] if ok[:j].any() else 1.0, marker="X", color="C0", ms=9, ls="none")
        if m in logy and np.all(np.asarray(h.get(m, [1.0]), dtype=float) > 0):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def lines(
    xs: Sequence[float],
    series: Mapping[str, Sequence[float]],
    path: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    size=(5.0, 3.6),
    diverged: str = "diverged",
    xticklabels: Sequence[str] | None = None,
):
    """One line per entry of ``series`` (label → values at ``xs``). The y axis spans the finite
    values (not 0 to 1); non-finite values (a diverged run) are marked ✕ on the bottom edge,
    and ``diverged`` (e.g. "diverged: accuracy at chance, 0.10") says so in the legend."""
    fig, axes = _figure(1, 1, size)
    ax = axes[0, 0]
    xs = np.asarray(xs, dtype=float)
    finite = np.concatenate([np.asarray(v, dtype=float) for v in series.values()])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    bottom = lo - pad
    any_bad = False
    for i, (run, ys) in enumerate(series.items()):
        ys = np.asarray(ys, dtype=float)
        ok = np.isfinite(ys)
        ax.plot(xs[ok], ys[ok], marker="o", color=f"C{i % 10}", label=run)
        if not ok.all():
            any_bad = True
            ax.plot(
                xs[~ok], np.full((~ok).sum(), bottom), marker="X", color=f"C{i % 10}", ms=10, ls="none", clip_on=False
            )
    if any_bad:
        ax.plot([], [], marker="X", color="0.3", ls="none", ms=8, label=f"✕ {diverged}")
    if not logy:
        ax.set_ylim(bottom, hi + pad)
    if xticklabels is not None:
        ax.set_xticks(xs, list(xticklabels), fontsize=8)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)


# --- 2-D optimizer landscapes ----------------------------------------------------------------------
def trajectories(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    paths: Mapping[str, np.ndarray],
    path: str | None = None,
    xlim=(-2.0, 2.0),
    ylim=(-2.0, 2.0),
    levels: int = 30,
    title: str | None = None,
    log_levels: bool = False,
    marks: Sequence[tuple[float, float]] = (),
    saddles: Sequence[tuple[float, float]] = (),
    size=(7.2, 4.8),
    facet: bool = False,
    max_cols: int = 4,
):
    """Contours of ``f(X, Y)`` (vectorized over grids) with one trajectory per optimizer
    (``paths``: label → array ``(steps + 1, 2)`` of the iterates); ``marks``: minima to star,
    ``saddles``: saddle points (a red diamond: ✕ means "diverged" in the other figures).
    ``facet=True``: one panel per optimizer on the same contours (paths that would lie on top of
    each other stay readable)."""
    gx = np.linspace(*xlim, 300)
    gy = np.linspace(*ylim, 300)
    X, Y = np.meshgrid(gx, gy)
    Z = f(X, Y)
    items = list(paths.items())
    if facet:
        cols, rows = _grid(len(items), max_cols)
        fig, axes = _figure(cols, rows, (3.3, 2.6))
        panels = [(ax, [(i, it)]) for i, (ax, it) in enumerate(zip(axes.flat, items))]
        for ax in list(axes.flat)[len(items) :]:
            ax.set_visible(False)
    else:
        fig, axes = _figure(1, 1, size)
        panels = [(axes[0, 0], list(enumerate(items)))]
    start = np.asarray(items[0][1], dtype=float)[0]
    for ax, group in panels:
        if log_levels:
            zmin = Z.min()
            lv = zmin + np.geomspace(1e-3, Z.max() - zmin + 1e-3, levels)
            ax.contour(X, Y, Z, levels=lv, cmap="Greys", linewidths=0.6)
        else:
            ax.contour(X, Y, Z, levels=levels, cmap="Greys", linewidths=0.6)
        for i, (run, p) in group:
            p = np.asarray(p, dtype=float)
            p = p[np.all(np.isfinite(p), axis=1)]
            ax.plot(p[:, 0], p[:, 1], color=f"C{i % 10}", lw=1.4, label=run, marker=".", ms=2.5)
            ax.plot(p[-1, 0], p[-1, 1], color=f"C{i % 10}", marker="o", ms=5)
        ax.plot(*start, marker="s", color="k", ms=6, ls="none", label="start")
        for m in marks:
            ax.plot(m[0], m[1], marker="*", color="gold", mec="k", ms=13, ls="none", label="minimum")
        for m in saddles:
            ax.plot(m[0], m[1], marker="D", color="red", mec="k", ms=7, ls="none", label="saddle")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("w₁")
        ax.set_ylabel("w₂")
        if facet:
            ax.set_title(group[0][1][0], fontsize=9)
            ax.tick_params(labelsize=7)
        else:
            # one legend entry per marker kind
            h, lab = ax.get_legend_handles_labels()
            seen = dict(zip(lab, h))
            ax.legend(seen.values(), seen.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if facet:
        h, lab = panels[0][0].get_legend_handles_labels()
        seen = {k: v for k, v in zip(lab, h) if k in ("start", "minimum", "saddle")}
        if seen:
            fig.legend(seen.values(), seen.keys(), fontsize=7, loc="outside lower center", ncols=len(seen))
    if title:
        (fig.suptitle if facet else panels[0][0].set_title)(title, fontsize=10)
    return save(fig, path)
