"""What one trial trains on and how: the data sources, the default trial (any ``initcore train``
option) and the per-epoch report hook through which an engine (Ray Tune) sees a running trial.

A trial's result depends only on its config and seed: the data are split once, with a fixed
seed, before any trial runs (so every trial of a sweep sees the same train/validation rows, and
a seed varies only the weights, the shuffling and dropout), and each trial builds its own model
and optimizer from ``(config, seed)``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import numpy as np

from ..callbacks import Callback

__all__ = ["Data", "resolve_data", "train_trial", "TRAIN_OPTIONS", "check_train_config", "report_epoch"]

#: The validation split of data given as ``(x, y)`` (stratified for class labels), seeded once.
VAL_FRACTION = 0.2
SPLIT_SEED = 0


class Data(NamedTuple):
    """The data every trial of a sweep trains on: ``x, y`` (training) and ``x_val, y_val``
    (validation, the ``val_*`` metrics). Unpacks as a 4-tuple."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    name: str = "arrays"

    @property
    def task(self) -> str:
        """``"classification"`` for integer labels, else ``"regression"``."""
        return "classification" if self.y.dtype.kind in "iub" else "regression"


def _check_pair(x, y, what: str):
    what = f" {what}" if what else ""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"sweep: data{what} x must be 2-D (samples, features), got shape {x.shape} ({x.dtype})")
    if x.dtype.kind not in "fiu":
        raise ValueError(f"sweep: data{what} x must hold numbers, got dtype {x.dtype}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"sweep: data{what} y has shape {y.shape} ({y.dtype}) but x has shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"sweep: data{what} has no rows")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def resolve_data(data, dtype="float32") -> Data:
    """``data`` as a :class:`Data`: ``"mnist"`` (the embedded subset's stratified 4,000 / 1,000
    split, seed 0), ``"boston"`` (Boston housing, 80 / 20, seed 0), the path of a folder of MNIST /
    Fashion-MNIST IDX files (its test files are the validation set), ``(x, y)`` (20% held out,
    stratified for class labels, seed 0) or ``(x, y, x_val, y_val)``."""
    from .. import data as D

    if isinstance(data, Data):
        return data
    if isinstance(data, (str, os.PathLike)):
        name = os.fspath(data)
        if name == "mnist":
            (x, y), (xv, yv) = D.load_mnist_subset(split=True, test_size=1000, seed=SPLIT_SEED, dtype=dtype)
            return Data(x, y, xv, yv, "mnist")
        if name == "boston":
            (x, y), (xv, yv) = D.load_boston_housing(split=True, test_size=VAL_FRACTION, seed=SPLIT_SEED, dtype=dtype)
            return Data(x, y, xv, yv, "boston")
        if not os.path.isdir(name):
            raise ValueError(f"sweep: data must be 'mnist', 'boston', an IDX folder, or arrays; {name!r} is none")
        (x, y), (xv, yv) = D.load_mnist_dir(name, dtype=dtype)
        return Data(x, y, xv, yv, name)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = _check_pair(*data, "")
        strat = y if y.dtype.kind in "iub" and y.ndim == 1 else None
        x, xv, y, yv = D.train_test_split(x, y, test_size=VAL_FRACTION, seed=SPLIT_SEED, stratify=strat)
        return Data(x, y, xv, yv)
    if isinstance(data, (tuple, list)) and len(data) == 4:
        x, y = _check_pair(data[0], data[1], "(training)")
        xv, yv = _check_pair(data[2], data[3], "(validation)")
        if xv.shape[1] != x.shape[1]:
            raise ValueError(f"sweep: validation x has {xv.shape[1]} features, training x has {x.shape[1]}")
        return Data(x, y, xv, yv)
    raise TypeError(
        "sweep: data must be 'mnist', 'boston', an IDX folder path, (x, y) or (x, y, x_val, y_val); "
        f"got {type(data).__name__}"
    )


# --- the per-epoch report hook ----------------------------------------------------------------

_reporter: Callable[[dict[str, float]], None] | None = None


def set_reporter(fn: Callable[[dict[str, float]], None] | None) -> None:
    global _reporter
    _reporter = fn


def report_epoch(metrics: Mapping[str, float]) -> None:
    """Tells the engine a trial finished an epoch with ``metrics`` (e.g. ``{"val_accuracy": 0.9,
    "loss": 0.3}``). Under the Ray engine this is a ``tune.report`` (so ASHA can stop the trial
    here); under the local engine it does nothing. A custom trial calls it once per epoch if it
    wants early stopping; the engine still takes the trial's results from its return value."""
    if _reporter is not None:
        _reporter({k: float(v) for k, v in metrics.items()})


# --- the default trial: `initcore train` options -----------------------------------------------

#: The ``initcore train`` options a sweep may set (names as in ``initcore train --help``, with
#: ``_`` for ``-``). The seed comes from the sweep; data, split and output options do not apply.
TRAIN_OPTIONS = (
    "layers",
    "activation",
    "init",
    "batchnorm",
    "dropout",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "epochs",
    "batch_size",
    "standardize",
    "dtype",
    "backend",
)

_train_parser: argparse.ArgumentParser | None = None


def _parser() -> argparse.ArgumentParser:
    global _train_parser
    if _train_parser is None:
        from .. import cli

        sub = cli._Parser(prog="initcore").add_subparsers(parser_class=cli._Parser)
        cli.add_subcommand(sub)  # `initcore train`'s own parser: its types, choices and defaults
        _train_parser = sub.choices["train"]
    return _train_parser


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(int(v)) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _typed(name: str, value):
    """``value`` of option ``name`` converted and checked by ``initcore train``'s own parser."""
    from ..cli import UsageError

    if name not in TRAIN_OPTIONS:
        raise ValueError(f"sweep: {name!r} is not an initcore train option; the options are {', '.join(TRAIN_OPTIONS)}")
    if value is None and name in ("lr", "momentum", "weight_decay"):
        return None
    flag = "--" + name.replace("_", "-")
    try:
        ns = _parser().parse_args([flag, _as_text(value)])
    except UsageError as e:
        msg = str(e).split("error: ", 1)[-1]
        raise ValueError(f"sweep: option {name}={value!r}: {msg}") from None
    return getattr(ns, name)


def train_defaults() -> dict[str, Any]:
    """The ``initcore train`` defaults of :data:`TRAIN_OPTIONS`."""
    ns = _parser().parse_args([])
    return {k: getattr(ns, k) for k in TRAIN_OPTIONS}


def check_train_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every value converted as ``initcore train`` would; a ``ValueError`` names
    an unknown option or a bad value."""
    return {k: _typed(k, v) for k, v in config.items()}


class _Reporter(Callback):
    """Per-epoch hook of the default trial: hands the epoch's metrics to :func:`report_epoch`."""

    def __init__(self, keys):
        super().__init__()
        self.keys = keys

    def on_epoch_end(self, epoch, logs=None):
        report_epoch({k: logs[k] for k in self.keys if k in (logs or {})})


def train_trial(config: Mapping[str, Any], seed: int, data: Data) -> dict[str, list[float]]:
    """The default trial: ``initcore train`` with the options in ``config`` (the rest at its
    defaults; ``epochs`` from the sweep) and ``--seed seed``, on ``data`` (standardized by the
    ``standardize`` option fitted on the training part: default ``channel`` for class labels,
    ``feature`` for a regression target). Classification trains with cross-entropy and reports
    ``loss, accuracy, val_loss, val_accuracy`` per epoch; regression (a float target, e.g.
    Boston housing) a single linear output with MSE, reporting ``loss, val_loss``."""
    from .. import cli
    from .. import data as D

    task = data.task
    opts = train_defaults()
    if task == "regression":
        opts["standardize"] = "feature"
    opts.update(check_train_config(config))
    args = argparse.Namespace(**opts, seed=int(seed), quiet=True)
    x, y, xv, yv = data.x, data.y, data.x_val, data.y_val
    dt = np.dtype(args.dtype)
    x, xv = x.astype(dt, copy=False), xv.astype(dt, copy=False)
    if args.standardize != "none":
        scaler = D.Standardizer(args.standardize).fit(x)
        x, xv = scaler.transform(x), scaler.transform(xv)
    if task == "classification":
        n_out, loss, keys = (
            int(max(y.max(), yv.max())) + 1,
            "cross_entropy",
            ("loss", "accuracy", "val_loss", "val_accuracy"),
        )
    else:
        n_out, loss, keys = (1 if y.ndim == 1 else y.shape[1]), "mse", ("loss", "val_loss")
        y, yv = y.astype(dt, copy=False), yv.astype(dt, copy=False)
    try:
        model = cli._build_model(args, x.shape[1], n_out)
        opt = cli._optimizer(args, model.parameters())
        sched = cli._schedule(args, "val_loss")
    except cli.UsageError as e:
        raise ValueError(str(e).replace("initcore train: error: ", "sweep: ")) from None
    cbs = ([sched] if sched is not None else []) + [_Reporter(keys)]
    history = model.fit(
        x, y, optimizer=opt, loss=loss, epochs=args.epochs, batch_size=args.batch_size,
        validation_data=(xv, yv), callbacks=cbs, verbose=0,
    )  # fmt: skip
    return {k: [float(v) for v in history.history[k]] for k in keys if k in history.history}


def is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)
