"""Shared machinery of the experiments: the report (tables printed and written to summary.md,
figures, notes), the embedded data, model builders and a quiet ``fit``."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..diagnostics.tables import StatsTable


class Report:
    """Collects what an experiment shows and writes ``summary.md`` into ``out_dir``.

    ``table`` prints a table at once (the experiment's key numbers) and keeps it for the
    summary; ``figure`` saves a matplotlib figure as a PNG in ``out_dir``; ``note`` adds a
    paragraph; ``finish`` writes the summary and returns the experiment's result dict."""

    def __init__(self, name: str, title: str, out_dir: str | None, quick: bool, intro: str = "", verbose: bool = True):
        self.name = name
        self.title = title
        self.out_dir = os.fspath(out_dir) if out_dir is not None else os.path.join("runs", name)
        os.makedirs(self.out_dir, exist_ok=True)
        self.quick = quick
        self.intro = intro.strip()
        self.verbose = verbose
        self.sections: list[tuple] = []
        self.figures: list[str] = []
        self.t0 = time.perf_counter()
        if verbose:
            print(f"== {name}: {title}{' (quick)' if quick else ''}", flush=True)

    def table(self, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> StatsTable:
        t = StatsTable(rows, columns=columns, title=title)
        self.sections.append(("table", t))
        if self.verbose:
            print(f"\n{t}\n", flush=True)
        return t

    def figure(self, fig, filename: str, caption: str) -> str:
        from .. import plots

        path = os.path.join(self.out_dir, filename)
        plots.save(fig, path, dpi=72 if self.quick else 110)  # quick runs are for tests: smaller, faster PNGs
        self.figures.append(path)
        self.sections.append(("figure", (filename, caption)))
        return path

    def note(self, text: str) -> None:
        self.sections.append(("note", text.strip()))
        if self.verbose:
            print(text.strip(), flush=True)

    def finish(self, results: dict[str, Any]) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t0
        lines = [f"# {self.title}", ""]
        if self.intro:
            lines += [self.intro, ""]
        for kind, item in self.sections:
            if kind == "table":
                if item.title:
                    lines += [f"**{item.title}**", ""]
                lines += [item.to_markdown(), ""]
            elif kind == "figure":
                lines += [f"![{item[1]}]({item[0]})", "", f"*{item[1]}*", ""]
            else:
                lines += [item, ""]
        lines += [f"Run: `initcore experiment {self.name}{' --quick' if self.quick else ''}`, {seconds:.1f} s."]
        path = os.path.join(self.out_dir, "summary.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        out = dict(results)
        out.update(
            {
                "name": self.name,
                "out_dir": self.out_dir,
                "summary": path,
                "figures": list(self.figures),
                "seconds": seconds,
                "quick": self.quick,
            }
        )
        if self.verbose:
            print(f"-> {path} ({len(self.figures)} figures, {seconds:.1f} s)", flush=True)
        return out


# --- data ---------------------------------------------------------------------------------------
def mnist(quick: bool, seed: int = 0, n_train: int | None = None, n_test: int | None = None, standardize: bool = True):
    """The embedded MNIST subset: a stratified train/test split (4000/1000; quick: 1000/500),
    standardized per feature with statistics of the training part (constant pixels become 0)."""
    from .. import data

    (xtr, ytr), (xte, yte) = data.load_mnist_subset(split=True, test_size=1000, seed=seed)
    n_train = n_train or (1000 if quick else len(ytr))
    n_test = n_test or (500 if quick else len(yte))
    if n_train < len(ytr):
        xtr, _, ytr, _ = data.train_test_split(xtr, ytr, test_size=len(ytr) - n_train, seed=seed, stratify=ytr)
    if n_test < len(yte):
        xte, _, yte, _ = data.train_test_split(xte, yte, test_size=len(yte) - n_test, seed=seed, stratify=yte)
    if standardize:
        s = data.Standardizer().fit(xtr)
        xtr, xte = s.transform(xtr), s.transform(xte)
    return (np.ascontiguousarray(xtr, np.float32), ytr), (np.ascontiguousarray(xte, np.float32), yte)


def boston(seed: int = 0):
    """Boston housing (kept as a historical benchmark only, see ``initcore.data``): 404/102
    split, features and target standardized with training statistics."""
    from .. import data

    (xtr, ytr), (xte, yte) = data.load_boston_housing(split=True, test_size=102, seed=seed, dtype="float64")
    s = data.Standardizer().fit(xtr)
    mu, sd = float(np.mean(ytr)), float(np.std(ytr))
    f = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    return (f(s.transform(xtr)), f((ytr - mu) / sd)), (f(s.transform(xte)), f((yte - mu) / sd)), sd


# --- models -------------------------------------------------------------------------------------
def mlp(
    sizes: Sequence[int],
    activation: str,
    init,
    batchnorm: str = "none",
    out_init="glorot_uniform",
    seed: int = 0,
    backend: str = "rust",
    dtype: str = "float32",
):
    """``sizes = (input, hidden..., output)``; hidden layers ``Dense(init)`` with ``activation``
    fused, or with BatchNorm ``"before"``/``"after"`` the activation as separate layers; a
    linear output layer."""
    from .. import layers as L
    from ..model import Sequential

    if batchnorm not in ("none", "before", "after"):
        raise ValueError(f"batchnorm must be 'none', 'before' or 'after', got {batchnorm!r}")
    stack = []
    for units in sizes[1:-1]:
        if batchnorm == "none":
            stack.append(L.Dense(units, activation=activation, kernel_initializer=init))
        elif batchnorm == "before":
            stack += [L.Dense(units, kernel_initializer=init), L.BatchNorm(), L.Activation(activation)]
        else:
            stack += [L.Dense(units, activation=activation, kernel_initializer=init), L.BatchNorm()]
    stack.append(L.Dense(sizes[-1], kernel_initializer=out_init))
    return Sequential(stack, input_dim=sizes[0], seed=seed, dtype=dtype, backend=backend)


def quiet_check(model, x) -> list[str]:
    """``diagnostics.check`` messages without emitting the warnings (the report lists them)."""
    from ..diagnostics import check

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return check(model, x, warn=False)


def _stop_on_nan():
    """A callback ending ``fit`` at the first non-finite batch loss, silently (the report says
    which runs diverged; ``callbacks.TerminateOnNaN`` would print a line each time)."""
    from ..callbacks import Callback

    class StopOnNaN(Callback):
        def on_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                self.model.stop_training = True

    return StopOnNaN()


def fit(model, train, test, optimizer, epochs: int, batch_size: int = 128, loss: str = "cross_entropy", callbacks=None):
    """``model.fit`` silently, stopping at a non-finite loss (a diverged run keeps NaN rows so
    curves end visibly); returns the history dict of per-epoch lists."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = model.fit(
            train[0],
            train[1],
            optimizer=optimizer,
            loss=loss,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=test,
            callbacks=[_stop_on_nan()] + list(callbacks or []),
            verbose=0,
        )
    hist = {k: list(v) for k, v in h.history.items()}
    n = len(hist.get("loss", []))
    if n < epochs:  # diverged: pad so every run has one value per epoch
        for k, v in hist.items():
            if k in ("lr", "seconds"):
                continue
            v.extend([math.nan] * (epochs - n))
    return hist


def best_epoch(values: Sequence[float], mode: str = "max"):
    """``(epoch from 1, value)`` of the best finite value."""
    arr = np.asarray(values, dtype=float)
    ok = np.isfinite(arr)
    if not ok.any():
        return None, math.nan
    cand = np.where(ok, arr, -np.inf if mode == "max" else np.inf)
    i = int(np.argmax(cand) if mode == "max" else np.argmin(cand))
    return i + 1, float(arr[i])
