"""Shared machinery of the experiments: the report (tables printed and written to summary.md,
figures, notes), the data (embedded, or IDX files from ``--data``), model builders, a quiet
``fit``, and the one seam every multi-seed run goes through (:func:`run_trials`, a module-level
trial function per arm, mean ± std over seeds)."""

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
        self.skipped: list[str] = []
        self.t0 = time.perf_counter()
        if verbose:
            print(f"== {name}: {title}{' (quick)' if quick else ''}", flush=True)

    def table(self, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> StatsTable:
        t = StatsTable(rows, columns=columns, title=title)
        self.sections.append(("table", t))
        if self.verbose:
            print(f"\n{t}\n", flush=True)
        return t

    def figure(self, fig, filename: str, caption: str) -> str | None:
        """Saves ``fig``; ``fig is None`` (matplotlib missing: :func:`get_plots`) records the
        figure as skipped, and ``finish`` lists it."""
        from .. import plots

        if fig is None:
            self.skipped.append(filename)
            return None
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
        if self.skipped:
            lines += [f"Figures skipped (matplotlib is not installed): {', '.join(self.skipped)}.", ""]
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
                "skipped_figures": list(self.skipped),
                "tables": [t for kind, t in self.sections if kind == "table"],
                "captions": {
                    os.path.basename(f): c for kind, (f, c) in ((k, i) for k, i in self.sections if k == "figure")
                },
                "title": self.title,
                "seconds": seconds,
                "quick": self.quick,
            }
        )
        if self.verbose:
            print(f"-> {path} ({len(self.figures)} figures, {seconds:.1f} s)", flush=True)
            if self.skipped:
                print(f"   skipped {len(self.skipped)} figures (no matplotlib): {', '.join(self.skipped)}", flush=True)
        return out


# --- plots (optional) ------------------------------------------------------------------------------
class _NoPlots:
    """Stands in for :mod:`initcore.plots` without matplotlib: every picture is ``None``, which
    ``Report.figure`` records as skipped (the numbers are still computed and printed)."""

    def __getattr__(self, name):
        return lambda *a, **k: None


def get_plots():
    """:mod:`initcore.plots`, or a stand-in drawing nothing when matplotlib is missing."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return _NoPlots()
    from .. import plots

    return plots


# --- data ---------------------------------------------------------------------------------------
#: ``--data PATH``: a directory of MNIST-layout IDX files (full MNIST or Fashion-MNIST); None: the
#: embedded 5,000-image MNIST subset. Set by ``initcore experiment --data`` (``set_data_path``).
DATA_PATH: str | None = None


def set_data_path(path: str | None) -> None:
    global DATA_PATH
    if path is not None and not os.path.isdir(os.fspath(path)):
        raise FileNotFoundError(f"--data {path}: no such directory (expected MNIST-layout IDX files)")
    DATA_PATH = None if path is None else os.fspath(path)


def raw_images(quick: bool, seed: int = 0, n_train: int | None = None, n_test: int | None = None):
    """Pixels in [0, 1] (unstandardized): from ``DATA_PATH`` (its train and t10k files) or the
    embedded subset (stratified 4000/1000). ``quick`` takes 1000/500; ``n_train``/``n_test`` cap
    the sizes (stratified subsets, seeded)."""
    from .. import data

    if DATA_PATH is None:
        (xtr, ytr), (xte, yte) = data.load_mnist_subset(split=True, test_size=1000, seed=seed)
    else:
        (xtr, ytr), (xte, yte) = data.load_mnist_dir(DATA_PATH)
    n_train = n_train or (1000 if quick else len(ytr))
    n_test = n_test or (500 if quick else len(yte))
    n_train, n_test = min(n_train, len(ytr)), min(n_test, len(yte))
    if n_train < len(ytr):
        xtr, _, ytr, _ = data.train_test_split(xtr, ytr, test_size=len(ytr) - n_train, seed=seed, stratify=ytr)
    if n_test < len(yte):
        xte, _, yte, _ = data.train_test_split(xte, yte, test_size=len(yte) - n_test, seed=seed, stratify=yte)
    return (xtr, ytr), (xte, yte)


def mnist(quick: bool, seed: int = 0, n_train: int | None = None, n_test: int | None = None, standardize: bool = True):
    """:func:`raw_images` (the embedded MNIST subset, 4000/1000, quick 1000/500; or ``--data``),
    standardized per feature with statistics of the training part (constant pixels become 0)."""
    from .. import data

    (xtr, ytr), (xte, yte) = raw_images(quick, seed, n_train, n_test)
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


# --- arms over seeds: the one seam ------------------------------------------------------------------
#: initializer names an experiment's ``--inits`` accepts besides initcore's own (``he_normal``, ...)
INIT_ALIASES = {
    "N(0,1)": ("RandomNormal", 0.0, 1.0),
    "N(0,0.01)": ("RandomNormal", 0.0, 0.01),
    "Glorot": "glorot_normal",
    "He": "he_normal",
    "LeCun": "lecun_normal",
    "orthogonal": "orthogonal",
}


def resolve_init(spec):
    """An initializer from a name: ``INIT_ALIASES`` or an ``initcore.initializers`` name."""
    from .. import initializers as I

    if not isinstance(spec, str):
        return spec
    alias = INIT_ALIASES.get(spec, spec)
    if isinstance(alias, tuple):
        return getattr(I, alias[0])(*alias[1:])
    return alias


def make_optimizer(name: str, params, lr: float):
    """``sgd``, ``momentum`` (0.9), ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``, ``nadam``."""
    from .. import optim

    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if name == "nesterov":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    table = {"adagrad": optim.Adagrad, "rmsprop": optim.RMSprop, "adam": optim.Adam, "nadam": optim.NAdam}
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r}")
    return table[name](params, lr=lr)


def _schedule(spec):
    from .. import schedules

    if not spec:
        return []
    kind, *args = spec
    if kind == "step":
        return [schedules.StepDecay(args[0], gamma=args[1])]
    if kind == "plateau":
        return [schedules.ReduceLROnPlateau(monitor="val_loss", factor=args[1], patience=args[0])]
    raise ValueError(f"unknown schedule {spec!r}")


def hidden_layers(units: int, activation: str, init):
    """The layers of one hidden layer of ``units`` units with ``activation``: fused into the
    Dense where the kernels have it, else a separate ``PReLU`` or a ``Maxout`` (``maxout``:
    k = 2, so twice the Dense units and parameters)."""
    from .. import layers as L

    if activation == "prelu":
        return [L.Dense(units, kernel_initializer=init), L.PReLU()]
    if activation == "maxout":
        return [L.Dense(2 * units, kernel_initializer=init), L.Maxout(2)]
    return [L.Dense(units, activation=activation, kernel_initializer=init)]


def build_model(config: dict, seed: int):
    """The network of a trial ``config``: ``sizes``, ``activation``, ``init``, optional
    ``batchnorm`` and ``backend``; ``activation`` ``prelu``/``maxout`` builds those layers
    (:func:`hidden_layers`)."""
    from .. import layers as L
    from ..model import Sequential

    if config["activation"] in ("prelu", "maxout"):
        init = resolve_init(config["init"])
        stack = [la for u in config["sizes"][1:-1] for la in hidden_layers(u, config["activation"], init)]
        stack.append(L.Dense(config["sizes"][-1], kernel_initializer="glorot_uniform"))
        return Sequential(stack, input_dim=config["sizes"][0], seed=seed, backend=config.get("backend", "rust"))
    return mlp(
        config["sizes"],
        config["activation"],
        resolve_init(config["init"]),
        batchnorm=config.get("batchnorm", "none"),
        seed=seed,
        backend=config.get("backend", "rust"),
    )


def trial_mlp(config: dict, seed: int, data) -> dict[str, list]:
    """One arm, one seed: build ``config``'s network with ``seed``, train it (``optimizer``,
    ``lr``, ``epochs``, ``batch_size``, ``loss``, ``schedule``) on ``data = (train, test)``;
    returns the per-epoch metric lists (``loss``, ``val_accuracy``, ``lr``, ``seconds``, ...).
    ``config["prepare"] == "lsuv"`` runs LSUV (Mishkin & Matas 2015) on 256 training rows
    before training; ``config["probe"]`` (optional) adds per-epoch ``dead`` and ``saturated`` fractions
    of the hidden layers on that many training rows. Module level, so it pickles."""
    train, test = data
    model = build_model(config, seed)
    if config.get("prepare") == "lsuv":
        from ..lsuv import lsuv

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lsuv(model, train[0][:256])
    elif config.get("prepare") is not None:
        raise ValueError(f"unknown prepare step {config['prepare']!r}")
    callbacks = _schedule(config.get("schedule"))
    probe = None
    if config.get("probe"):
        probe = _Probe(train[0][: int(config["probe"])])
        callbacks.append(probe)
    opt = make_optimizer(config.get("optimizer", "momentum"), model.parameters(), config["lr"])
    h = fit(
        model,
        train,
        test,
        opt,
        config["epochs"],
        batch_size=config.get("batch_size", 128),
        loss=config.get("loss", "cross_entropy"),
        callbacks=callbacks,
    )
    if probe is not None:
        h.update(probe.series(config["epochs"]))
    return h


def _Probe(x):
    """A callback measuring the dead (ReLU-like: units zero on every probe row) and saturated
    (sigmoid/tanh) fractions of the hidden layers at the start and after every epoch."""
    from ..callbacks import Callback
    from ..diagnostics import activation_stats

    class Probe(Callback):
        def __init__(self):
            super().__init__()
            self.dead, self.saturated = [], []

        def _measure(self):
            with np.errstate(all="ignore"):
                t = list(activation_stats(self.model, x, bins=4))[:-1]
            d = [r["dead"] for r in t if r["dead"] is not None]
            s = [r["saturated"] for r in t if r["saturated"] is not None]
            self.dead.append(float(np.mean(d)) if d else math.nan)
            self.saturated.append(float(np.mean(s)) if s else math.nan)

        def on_train_begin(self, logs=None):
            self._measure()

        def on_epoch_end(self, epoch, logs=None):
            self._measure()

        def series(self, epochs):
            pad = lambda v: (v + [math.nan] * (epochs + 1))[: epochs + 1]  # noqa: E731
            return {"dead": pad(self.dead), "saturated": pad(self.saturated)}

    return Probe()


class Trials(list):
    """Records of :func:`run_trials`, one per (arm, seed): ``arm`` (label), ``config``,
    ``seed``, ``metrics`` (per-epoch lists), ``final``/``best`` (of the metric), ``best_epoch``,
    ``seconds``, ``error`` (None, or the message of an arm that raised)."""

    metric = "val_accuracy"
    mode = "max"

    def arm(self, label: str) -> list[dict]:
        return [t for t in self if t["arm"] == label]

    def mean_history(self, label: str) -> dict[str, list]:
        """Per-epoch mean over the seeds of arm ``label`` (NaN where every seed diverged)."""
        recs = [t["metrics"] for t in self.arm(label) if t["metrics"]]
        keys = recs[0].keys() if recs else ()
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for k in keys:
                n = min(len(r[k]) for r in recs)
                out[k] = list(np.nanmean(np.array([r[k][:n] for r in recs], dtype=float), axis=0))
        return out

    def summary(self) -> list[dict]:
        """One row per arm: seeds, mean ± std of the final and best metric, mean best epoch,
        mean seconds per epoch; in the arms' order."""
        rows = []
        for label in dict.fromkeys(t["arm"] for t in self):
            ts = self.arm(label)
            fin = np.array([t["final"] for t in ts], dtype=float)
            best = np.array([t["best"] for t in ts], dtype=float)
            ep = np.array([t["best_epoch"] if t["best_epoch"] is not None else math.nan for t in ts], dtype=float)
            sec = np.array([np.nanmean(t["metrics"].get("seconds", [math.nan])) for t in ts], dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rows.append(
                    {
                        "arm": label,
                        "seeds": len(ts),
                        f"final {self.metric}": float(np.nanmean(fin)),
                        "± std": float(np.nanstd(fin)) if len(ts) > 1 else None,
                        f"best {self.metric}": float(np.nanmean(best)),
                        "± std ": float(np.nanstd(best)) if len(ts) > 1 else None,
                        "best epoch": float(np.nanmean(ep)),
                        "s/epoch": float(np.nanmean(sec)),
                        "diverged": int(np.sum(~np.isfinite(fin))),
                    }
                )
        return rows


def seed_list(seed: int, seeds: int) -> list[int]:
    """``--seeds K`` from base seed ``seed``: ``seed, seed + 1, ..., seed + K − 1``."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"--seeds must be a positive int, got {seeds!r}")
    return [int(seed) + i for i in range(int(seeds))]


def _arm_trial(config: dict, seed: int, data, *, arms: dict, fn) -> dict:
    """The trial ``sweep.run`` runs: arm ``config["arm"]`` of ``arms`` through ``fn`` on
    ``data`` (a ``sweep.Data``) as ``((x, y), (x_val, y_val))``. Module level (with
    ``functools.partial``), so it pickles to the worker processes."""
    x, y, xv, yv = data[:4]
    return fn(arms[config["arm"]], seed, ((x, y), (xv, yv)))


def run_trials(
    arms: dict[str, dict],
    data,
    *,
    seeds: Sequence[int],
    trial=trial_mlp,
    metric: str = "val_accuracy",
    mode: str = "max",
) -> Trials:
    """Runs every arm (label → config) for every seed through ``trial(config, seed, data)``
    (``data = (train, test)``) and returns the :class:`Trials`: the one place experiments run
    arms over seeds. It goes through ``initcore.sweep.run`` (the local engine: one process per
    CPU, one initcore thread each; a trial's result depends only on its config and seed), with
    the space a grid over the arm labels; ``trial`` must be a module-level function."""
    import functools

    from .. import sweep

    (x, y), (xv, yv) = data
    epochs = max(int(c.get("epochs", 1)) for c in arms.values()) if arms else 1
    fn = functools.partial(_arm_trial, arms=dict(arms), fn=trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sweep.run(
            {"arm": list(arms)},
            (x, y, xv, yv),
            seeds=list(seeds),
            epochs=epochs,
            trial=fn,
            metric=metric,
            mode=mode,
            progress=False,
        )
    out = Trials()
    out.metric, out.mode = metric, mode
    for rec in sorted(res.trials, key=lambda r: r.index):
        hist = {k: list(v) for k, v in rec.metrics.items()}
        values = hist.get(metric, [])
        ep, best = best_epoch(values, mode) if values else (None, math.nan)
        err = rec.error.strip().splitlines()[-1] if rec.error else None
        out.append(
            {
                "arm": rec.config["arm"],
                "config": arms[rec.config["arm"]],
                "seed": rec.seed,
                "metrics": hist,
                "final": float(values[-1]) if values else math.nan,
                "best": best,
                "best_epoch": ep,
                "seconds": rec.seconds,
                "error": err,
            }
        )
    return out
