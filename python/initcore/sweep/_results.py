"""Trial records, the per-config summary (mean ± std over seeds, ranked) and the files a sweep
writes: ``trials.csv`` (one row per trial), ``epochs.csv`` (one row per trial and epoch),
``summary.csv``, ``summary.md`` and the figures ``curves.png`` (the metric per epoch, mean ± 1 std
over seeds, one line per config) and ``final.png`` (the final metric per config, error bars ± 1
std). Every file is written to a temporary name in the same folder and renamed into place, so a
reader (or an interrupted sweep) never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._files import write_bytes
from ..diagnostics.tables import StatsTable
from ._space import _seeds_text

__all__ = ["TrialRecord", "SweepResult", "metric_mode", "config_label", "write_atomic"]


def metric_mode(name: str) -> str:
    """``"min"`` for losses and errors, else ``"max"``: what "best" means for metric ``name``."""
    low = name.lower()
    return "min" if ("loss" in low or "error" in low or low.endswith("mse") or low.endswith("mae")) else "max"


def _best(values: list[float], mode: str) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return max(finite) if mode == "max" else min(finite)


def config_label(config: dict[str, Any], names: list[str] | None = None) -> str:
    """``"init=he_normal activation=relu"``: a config in one line."""
    names = list(config) if names is None else names
    return " ".join(f"{k}={_fmt_value(config[k])}" for k in names if k in config) or "(defaults)"


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _key(config: dict[str, Any]) -> tuple:
    return tuple((k, repr(v)) for k, v in config.items())


@dataclass
class TrialRecord:
    """One trial: ``config`` (the space's options for it), ``seed``, ``metrics`` (metric name →
    per-epoch values), ``final`` and ``best`` (metric name → the last epoch's value, and the best
    epoch's: max, or min for losses), ``epochs`` (epochs run), ``seconds`` (wall time of the
    trial inside its worker), ``error`` (``None``, or the exception's type, message and traceback
    when the trial raised), ``stopped_early`` (``True`` when the scheduler, ASHA, ended it before
    its last epoch) and ``index`` (its position in the sweep's order)."""

    index: int
    config: dict[str, Any]
    seed: int
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = math.nan
    error: str | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.metrics.values()), default=0)

    @property
    def final(self) -> dict[str, float]:
        return {k: (v[-1] if v else math.nan) for k, v in self.metrics.items()}

    @property
    def best(self) -> dict[str, float]:
        return {k: _best(v, metric_mode(k)) for k, v in self.metrics.items()}

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self, names: list[str] | None = None, metric_names: list[str] | None = None) -> dict[str, Any]:
        """The ``trials.csv`` row: the options, ``seed``, ``final_*`` and ``best_*`` of each
        metric, ``epochs``, ``seconds``, ``stopped_early``, ``error`` (its first line)."""
        names = list(self.config) if names is None else names
        metric_names = list(self.metrics) if metric_names is None else metric_names
        out: dict[str, Any] = {k: self.config.get(k) for k in names}
        out["seed"] = self.seed
        final, best = self.final, self.best
        for m in metric_names:
            out[f"final_{m}"] = final.get(m, math.nan)
            out[f"best_{m}"] = best.get(m, math.nan)
        out["epochs"] = self.epochs
        out["seconds"] = self.seconds
        out["stopped_early"] = self.stopped_early
        out["error"] = self.error.strip().splitlines()[-1] if self.error else ""
        return out


class SweepResult:
    """What ``sweep.run`` returns: ``trials`` (a list of :class:`TrialRecord` in the sweep's
    order: config by config, seed by seed), ``summary()``, ``curves()``, ``to_frame()`` and
    ``write(out_dir)``."""

    def __init__(self, trials, names, metric, mode, seeds, epochs, engine, interrupted=False):
        self.trials: list[TrialRecord] = sorted(trials, key=lambda t: t.index)
        self.names = list(names)
        self.metric = metric
        self.mode = mode
        self.seeds = list(seeds)
        self.epochs = epochs
        self.engine = engine
        self.interrupted = interrupted
        self.files: dict[str, Any] = {"written": [], "skipped": []}  # what `run(out=...)` wrote

    @property
    def metric_names(self) -> list[str]:
        out: list[str] = []
        for t in self.trials:
            for k in t.metrics:
                if k not in out:
                    out.append(k)
        return out

    def swept_names(self) -> list[str]:
        """The options that differ between the trials (all of them if none does)."""
        out = [k for k in self.names if len({repr(t.config.get(k)) for t in self.trials}) > 1]
        return out or list(self.names)

    @property
    def errors(self) -> list[TrialRecord]:
        return [t for t in self.trials if not t.ok]

    def groups(self) -> list[tuple[dict[str, Any], list[TrialRecord]]]:
        """``(config, trials)`` per config, in the sweep's order."""
        out: dict[tuple, tuple[dict, list]] = {}
        for t in self.trials:
            out.setdefault(_key(t.config), (t.config, []))[1].append(t)
        return list(out.values())

    def summary(self, metric: str | None = None, mode: str | None = None, by: str = "final") -> StatsTable:
        """Per config: its options, ``n_seeds`` (trials that ran without error), ``n_errors``,
        then ``{final,best}_{m}_mean`` and ``..._std`` for every metric ``m`` (the sample standard
        deviation over seeds, ddof=1; NaN for one seed), ranked by the ``by`` value ("final" or
        "best") of ``metric`` (default: the sweep's) in ``mode`` (default: the sweep's for its
        metric, else min for losses and max otherwise); a ``rank`` column (1 = best).
        Configs whose trials all failed, or whose metric is NaN, rank last."""
        if mode is None:
            mode = self.mode if metric in (None, self.metric) else metric_mode(metric)
        metric = metric or self.metric
        if by not in ("final", "best"):
            raise ValueError(f"summary: by must be 'final' or 'best', got {by!r}")
        metric_names = self.metric_names
        rows = []
        for config, trials in self.groups():
            good = [t for t in trials if t.ok]
            row: dict[str, Any] = {k: config.get(k) for k in self.names}
            row["n_seeds"] = len(good)
            row["n_errors"] = len(trials) - len(good)
            for m in metric_names:
                for kind in ("final", "best"):
                    vals = np.array([getattr(t, kind).get(m, math.nan) for t in good], dtype=np.float64)
                    row[f"{kind}_{m}_mean"] = float(vals.mean()) if vals.size else math.nan
                    row[f"{kind}_{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
            rows.append(row)
        col = f"{by}_{metric}_mean"

        def order(r):
            v = r.get(col, math.nan)
            if v is None or math.isnan(v):
                return (1, 0.0)
            return (0, -v if mode == "max" else v)

        rows.sort(key=order)  # stable: ties keep the sweep's order
        for i, r in enumerate(rows, 1):
            r["rank"] = i
        columns = ["rank", *self.names, "n_seeds", "n_errors"]
        for m in metric_names:
            columns += [f"final_{m}_mean", f"final_{m}_std", f"best_{m}_mean", f"best_{m}_std"]
        title = f"ranked by {by} {metric} ({mode}), mean ± std over seeds {_seeds_text(self.seeds)}"
        return StatsTable(rows, columns=columns, title=title)

    def summary_table(self, metric: str | None = None, mode: str | None = None, by: str = "final") -> StatsTable:
        """The summary with ``mean ± std`` text cells for the sweep metric: the table printed by
        ``initcore sweep`` and written to ``summary.md``."""
        metric = metric or self.metric
        full = self.summary(metric, mode, by)
        others = [m for m in self.metric_names if m != metric]
        rows = []
        shown = self.swept_names()  # the options fixed for every trial are in trials.csv
        for r in full:
            row = {"rank": r["rank"], **{k: _fmt_value(r[k]) for k in shown}}
            row[f"final {metric}"] = _pm(r.get(f"final_{metric}_mean"), r.get(f"final_{metric}_std"))
            row[f"best {metric}"] = _pm(r.get(f"best_{metric}_mean"), r.get(f"best_{metric}_std"))
            for m in others:
                row[f"final {m}"] = _pm(r.get(f"final_{m}_mean"), r.get(f"final_{m}_std"))
            row["seeds"] = r["n_seeds"]
            if any(x["n_errors"] for x in full):
                row["errors"] = r["n_errors"]
            rows.append(row)
        return StatsTable(rows, title=full.title)

    def curves(self, metric: str | None = None):
        """Per config: ``(config, mean, std, n)``, the per-epoch mean and sample std of ``metric``
        over the seeds that ran it to that epoch (arrays as long as the longest trial)."""
        metric = metric or self.metric
        out = []
        for config, trials in self.groups():
            series = [t.metrics.get(metric, []) for t in trials if t.ok and t.metrics.get(metric)]
            if not series:
                continue
            length = max(len(s) for s in series)
            a = np.full((len(series), length), np.nan)
            for i, s in enumerate(series):
                a[i, : len(s)] = s
            n = np.sum(~np.isnan(a), axis=0)
            mean = np.array([np.nanmean(a[:, j]) if n[j] else np.nan for j in range(length)])
            std = np.array([np.nanstd(a[:, j], ddof=1) if n[j] > 1 else np.nan for j in range(length)])
            out.append((config, mean, std, n))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The ``trials.csv`` rows."""
        return [t.row(self.names, self.metric_names) for t in self.trials]

    def to_frame(self):
        """``trials.csv`` as a ``pandas.DataFrame`` (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - pandas is optional
            raise ImportError("SweepResult.to_frame needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows())

    def write(self, out_dir, figures: bool = True, command: str | None = None) -> dict[str, Any]:
        """Writes ``trials.csv``, ``epochs.csv``, ``summary.csv``, ``summary.md`` and (with
        matplotlib, if ``figures``) ``curves.png`` and ``final.png`` into ``out_dir``. Returns
        ``{"written": [paths], "skipped": [(file, reason)]}``."""
        os.makedirs(out_dir, exist_ok=True)
        written = write_trials(self, out_dir)
        summary = self.summary()
        written.append(write_atomic(os.path.join(out_dir, "summary.csv"), _csv(summary, summary.columns)))
        skipped: list[tuple[str, str]] = []
        figs: list[str] = []
        if figures:
            try:
                figs = write_figures(self, out_dir)
            except ImportError:
                skipped = [("curves.png", "matplotlib is not installed"), ("final.png", "matplotlib is not installed")]
        written += figs
        written.append(write_atomic(os.path.join(out_dir, "summary.md"), self.markdown(figs, command)))
        return {"written": written, "skipped": skipped}

    def markdown(self, figs: list[str], command: str | None = None) -> str:
        """``summary.md``: the sweep in a line, the ranked table, the figures, the failed trials."""
        table = self.summary_table()
        lines = ["# Sweep", ""]
        if command:
            lines += [f"`{command}`", ""]
        n_ok = sum(t.ok for t in self.trials)
        lines += [
            f"{len(self.groups())} configs × {len(self.seeds)} seeds = {len(self.trials)} trials "
            f"({n_ok} ran, {len(self.trials) - n_ok} failed), {self.epochs} epoch{'s' if self.epochs != 1 else ''}, "
            f"engine {self.engine}" + (" (interrupted)" if self.interrupted else "") + ".",
            "",
            f"**{table.title}**",
            "",
            table.to_markdown(),
            "",
        ]
        for path in figs:
            lines += [f"![{os.path.basename(path)}]({os.path.basename(path)})", ""]
        for t in self.errors:
            lines += [f"- trial {t.index} ({config_label(t.config, self.names)}, seed {t.seed}): {t.row()['error']}"]
        return "\n".join(lines).rstrip() + "\n"


def _pm(mean, std) -> str:
    if mean is None or math.isnan(mean):
        return "nan"
    if std is None or math.isnan(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}"


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # round-trips exactly: the file holds the bits the trial produced
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _csv(rows, columns) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def write_atomic(path: str, content: str | bytes) -> str:
    """Writes ``content`` to ``path`` atomically (``initcore._files``); returns ``path``."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return write_bytes(path, data)


def write_trials(result: SweepResult, out_dir: str) -> list[str]:
    """``trials.csv`` and ``epochs.csv`` of the trials in ``result`` (called after every finished
    trial, so an interrupted sweep keeps what it completed)."""
    names, metric_names = result.names, result.metric_names
    rows = result.rows()
    columns = [*names, "seed"] + [f"{k}_{m}" for m in metric_names for k in ("final", "best")]
    columns += ["epochs", "seconds", "stopped_early", "error"]
    paths = [write_atomic(os.path.join(out_dir, "trials.csv"), _csv(rows, columns))]
    epoch_rows = []
    for t in result.trials:
        for e in range(t.epochs):
            r = {"trial": t.index, **{k: t.config.get(k) for k in names}, "seed": t.seed, "epoch": e + 1}
            for m in metric_names:
                v = t.metrics.get(m, [])
                r[m] = v[e] if e < len(v) else math.nan
            epoch_rows.append(r)
    ecols = ["trial", *names, "seed", "epoch", *metric_names]
    paths.append(write_atomic(os.path.join(out_dir, "epochs.csv"), _csv(epoch_rows, ecols)))
    return paths


def write_figures(result: SweepResult, out_dir: str, dpi: int = 100) -> list[str]:
    """``curves.png`` and ``final.png``; raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metric = result.metric
    labels = {_key(c): config_label(c, result.swept_names()) for c, _ in result.groups()}
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for config, mean, std, _n in result.curves(metric):
        x = np.arange(1, len(mean) + 1)
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=labels[_key(config)])
        ok = ~np.isnan(std)
        if ok.any():
            ax.fill_between(x[ok], (mean - std)[ok], (mean + std)[ok], color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch: mean ± 1 std over {len(result.seeds)} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    paths.append(_save_fig(fig, os.path.join(out_dir, "curves.png"), dpi))
    plt.close(fig)

    table = result.summary()
    col = f"final_{metric}"
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.45 * len(table) + 1.2)))
    cfgs = [{k: r[k] for k in result.names} for r in table]
    means = [r[f"{col}_mean"] for r in table]
    stds = [0.0 if math.isnan(r[f"{col}_std"]) else r[f"{col}_std"] for r in table]
    y = np.arange(len(table))[::-1]
    ax.barh(y, means, xerr=stds, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([labels.get(_key(c), config_label(c)) for c in cfgs], fontsize=7)
    ends = [(m - s, m + s) for m, s in zip(means, stds) if not math.isnan(m)]
    if ends:  # zoom on the bars' ends: the differences between configs are what the chart is for
        lo, hi = min(e[0] for e in ends), max(e[1] for e in ends)
        pad = 0.2 * (hi - lo) or 0.05 * abs(hi) or 1.0
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(f"final {metric} (mean ± 1 std over seeds)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths.append(_save_fig(fig, os.path.join(out_dir, "final.png"), dpi))
    plt.close(fig)
    return paths


def _save_fig(fig, path: str, dpi: int) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return write_atomic(path, buf.getvalue())
