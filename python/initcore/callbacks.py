"""Keras-style training callbacks for ``Sequential.fit``.

A callback receives ``set_model(model)`` and then, during ``fit``, the hooks
``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_batch_begin(batch, logs)``,
``on_batch_end(batch, logs)`` (``logs``: ``loss``, ``size``, ``accuracy``), ``on_epoch_end(epoch,
logs)`` (``logs``: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``) and
``on_train_end(logs)``. Epochs are numbered from 0 and continue across ``fit`` calls and a
save/load (``model.epochs_completed``); messages print them from 1, as Keras does. A callback
stops training by setting ``model.stop_training = True``; it reaches the optimizer as
``model.optimizer``. ``fit``'s parameters (``epochs``, ``initial_epoch``, ``steps``, ``samples``,
``batch_size``) are in ``callback.params`` (from ``set_params``, else ``model.fit_params``).

Callbacks whose progress matters for resuming (schedules, :class:`EarlyStopping`,
:class:`ModelCheckpoint`) have ``get_state()`` / ``set_state()``; ``model.save`` stores them.

Here: :class:`Callback`, :class:`CallbackList`, :class:`History`, :class:`ProgressBar`,
:class:`EarlyStopping`, :class:`ModelCheckpoint`, :class:`TerminateOnNaN`, :class:`CSVLogger`,
:class:`LambdaCallback`; learning-rate schedules are in :mod:`initcore.schedules`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from ._files import write_text

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgressBar",
    "EarlyStopping",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "CSVLogger",
    "LambdaCallback",
    "format_logs",
    "wrap_entries",
]


class Callback:
    """Base class: every hook does nothing. ``model`` and ``params`` are set by ``fit``."""

    def __init__(self):
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)

    def _fit_params(self) -> dict[str, Any]:
        return self.params or dict(getattr(self.model, "fit_params", None) or {})

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def next_batch_hook(self, batch: int) -> int | None:
        """The first batch, from ``batch`` on, whose ``on_batch_begin``/``on_batch_end`` this
        callback must see; ``None``: no batch of this epoch. ``fit`` runs the batches before it
        in one native call and reports them through :meth:`on_batches_end` instead. Default:
        every batch if the callback overrides a batch hook (a class or an instance attribute),
        none otherwise."""
        return batch if _has_batch_hooks(self) else None

    def on_batches_end(self, first: int, last: int, logs: dict[str, Any] | None = None) -> None:
        """Batches ``first .. last`` ran without per-batch hooks (one native call); ``logs``:
        ``size`` (samples), ``loss_sum`` (Σ batch loss · batch size), and for classification
        losses ``correct`` and ``count``. Called about every 0.1 s during an epoch."""


def _has_batch_hooks(cb) -> bool:
    """Whether ``cb`` overrides ``on_batch_begin`` or ``on_batch_end`` (in its class or, as
    ``LambdaCallback`` does, on the instance)."""
    for name in ("on_batch_begin", "on_batch_end"):
        fn = getattr(cb, name, None)
        if getattr(fn, "__func__", None) is not getattr(Callback, name):
            return True
    return False


class CallbackList:
    """Dispatches every hook to its callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] | None = None, model=None):
        self.callbacks: list[Callback] = list(callbacks or [])
        for cb in self.callbacks:
            if not all(callable(getattr(cb, h, None)) for h in _HOOKS):
                raise TypeError(f"callbacks must be Callback objects (with every hook), got {type(cb).__name__}")
        self.model = None
        if model is not None:
            self.set_model(model)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if callable(getattr(cb, "set_params", None)):
                cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_batch_begin(batch, logs)

    def on_batch_end(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    def next_batch_hook(self, batch):
        """The first batch from ``batch`` on that some callback must see one at a time (objects
        without ``next_batch_hook`` see every batch when they override a batch hook); ``None``
        if none does."""
        due = None
        for cb in self.callbacks:
            own = getattr(cb, "next_batch_hook", None)
            b = own(batch) if own is not None else (batch if _has_batch_hooks(cb) else None)
            if b is not None:
                if b <= batch:
                    return batch
                due = b if due is None else min(due, b)
        return due

    def wants_batches_end(self):
        """Whether a callback reports progress within an epoch (then a native epoch returns
        about every 0.1 s to call :meth:`on_batches_end`)."""
        return any(
            getattr(getattr(cb, "on_batches_end", None), "__func__", None) not in (None, Callback.on_batches_end)
            for cb in self.callbacks
        )

    def on_batches_end(self, first, last, logs=None):
        for cb in self.callbacks:
            fn = getattr(cb, "on_batches_end", None)
            if fn is not None:
                fn(first, last, logs)


_HOOKS = (
    "set_model",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
)


class History(Callback):
    """Records the epoch logs: ``history.history[key]`` is the list of per-epoch values
    (``"loss"``, ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``, ``"lr"``, ``"seconds"``, and
    any other key a callback adds) and ``history.epoch`` the epoch numbers. A History passed to
    several ``fit`` calls keeps appending (``fit`` itself returns a fresh one per call).
    ``history.notes`` lists what ``fit`` did that the logs do not show (a skipped one-row batch)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []
        self.notes: list[str] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(int(epoch))
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str | None = None, metrics=None, title: str | None = None):
        """Draws the loss and metric curves, training and validation in one panel per metric
        (``initcore.plots.training_curves``; needs matplotlib, the ``plot`` extra). ``metrics``:
        default every recorded metric except ``lr`` and ``seconds``. Saves to ``path`` if given;
        returns the figure."""
        from .plots import training_curves

        if metrics is None:
            metrics = [k for k in self.history if k not in ("lr", "seconds") and not k.startswith("val_")]
        return training_curves(self, path=path, metrics=list(metrics), title=title)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    return str(value)


def format_logs(logs: dict[str, Any], skip=("seconds", "size")) -> str:
    """``"loss 0.1234  accuracy 0.9650  lr 0.001"``: the logs in one line."""
    return "  ".join(
        f"{k} {v:.4g}" if k == "lr" and isinstance(v, (float, np.floating)) else f"{k} {_fmt(v)}"
        for k, v in logs.items()
        if k not in skip
    )


def wrap_entries(entries: list[str], width: int, sep: str = "  ") -> list[str]:
    """Greedy lines of ``entries`` joined by ``sep``, each at most ``width`` characters. An
    entry longer than a line is broken at its spaces, and a single word longer than a line
    continues on the next one: nothing is dropped."""
    lines: list[str] = []
    cur = ""

    def add(piece: str, joiner: str) -> None:
        nonlocal cur
        if cur and len(cur) + len(joiner) + len(piece) <= width:
            cur += joiner + piece
            return
        if cur:
            lines.append(cur)
        while len(piece) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        cur = piece

    for e in entries:
        if not e:
            continue
        if len(e) <= width:
            add(e, sep)
        else:
            for i, word in enumerate(e.split(" ")):
                add(word, sep if i == 0 else " ")
    if cur:
        lines.append(cur)
    return lines


class ProgressBar(Callback):
    """Progress of ``fit``: on a terminal, one tqdm bar per epoch (steps, running loss and
    accuracy, samples per second), ending with the epoch's logs; otherwise (a file, a pipe, a
    notebook log) one line per epoch: ``epoch 3/20  loss …  val_accuracy …  lr …  1.2 s  (3400 samples/s)``.
    ``fit(verbose=1)`` adds one; ``verbose=0`` does not."""

    def __init__(self, stream=None, bar: bool | None = None):
        super().__init__()
        self._stream = stream
        self._bar_mode = bar
        self.bar = None

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def _use_bar(self) -> bool:
        if self._bar_mode is not None:
            return self._bar_mode
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except (ValueError, OSError):  # a closed stream
            return False

    def on_train_begin(self, logs=None):
        p = self._fit_params()
        self.steps = p.get("steps")
        self.last_epoch = p.get("initial_epoch", 0) + p["epochs"] if "epochs" in p else None

    def _label(self, epoch) -> str:
        return f"epoch {epoch + 1}/{self.last_epoch}" if self.last_epoch else f"epoch {epoch + 1}"

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.samples = 0
        self.loss_sum = 0.0
        self.acc_sum = 0.0
        self.acc_n = 0
        if self._use_bar():
            from tqdm.auto import tqdm

            # An explicit size: a pseudo-terminal without one reports 0 × 0, and tqdm hides
            # every bar below row 0.
            size = shutil.get_terminal_size((100, 20))
            self.columns = max(int(size.columns), 40)
            # A compact format without the rate, so that the running loss and accuracy fit in
            # 80 columns next to the bar (tqdm cuts whatever does not fit in ncols).
            self.bar = tqdm(
                total=self.steps,
                desc=self._label(epoch),
                unit="step",
                file=self.stream,
                leave=True,
                ncols=self.columns,
                nrows=size.lines,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}",
            )

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 1))
        self.samples += size
        if "loss" in logs:
            self.loss_sum += float(logs["loss"]) * size
        if "accuracy" in logs:
            self.acc_sum += float(logs["accuracy"]) * size
            self.acc_n += size
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)

    def _postfix(self) -> None:
        """The running loss and accuracy after the bar, and the speed where it fits (the bar
        keeps at least 10 columns): nothing tqdm would have to cut at the terminal width."""
        post = f"loss {self.loss_sum / max(self.samples, 1):.4f}"
        if self.acc_n:
            post += f" acc {self.acc_sum / self.acc_n:.4f}"
        dt = time.perf_counter() - self.t0
        speed = f" {self.samples / dt:.0f}/s" if dt > 0 else ""
        fixed = len(self._label(0)) + 40 + len(post)
        self.bar.postfix = post + (speed if fixed + len(speed) <= self.columns else "")

    def next_batch_hook(self, batch):
        return None  # on_batches_end keeps it up to date

    def on_batches_end(self, first, last, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 0))
        self.samples += size
        self.loss_sum += float(logs.get("loss_sum", 0.0))
        if logs.get("count"):
            # Σ batch accuracy · batch size, as on_batch_end sums it (count = size·outputs).
            self.acc_sum += logs["correct"] * size / logs["count"]
            self.acc_n += size
        if self.bar is not None:
            self._postfix()
            self.bar.update(last - first)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = float(logs.get("seconds", time.perf_counter() - self.t0))
        speed = f"  ({self.samples / seconds:.0f} samples/s)" if seconds > 0 and self.samples else ""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            # The epoch's logs (validation metrics included) below the bar, wrapped at the
            # terminal width between entries: shortened or wrapped, never cut.
            text = f"{format_logs(logs)}  {seconds:.2f} s{speed}".strip()
            for line in wrap_entries(text.split("  "), self.columns - 2):
                print("  " + line, file=self.stream, flush=True)
        else:
            print(f"{self._label(epoch)}  {format_logs(logs)}  {seconds:.2f} s{speed}", file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:  # stopped mid-epoch
            self.bar.close()
            self.bar = None


def _auto_mode(mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    # Keras's rule: accuracies and AUC-like scores grow, everything else (losses) shrinks.
    m = monitor.lower()
    return "max" if ("acc" in m or m.startswith("fmeasure") or "auc" in m) else "min"


def _monitored(cb, logs, epoch) -> float | None:
    value = (logs or {}).get(cb.monitor)
    if value is None:
        warnings.warn(
            f"{type(cb).__name__}: the monitored metric {cb.monitor!r} is not in the epoch logs "
            f"(available: {', '.join(sorted(logs or {}))}); epoch {epoch + 1} skipped",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return float(value)


def _model_weights(model) -> list[np.ndarray]:
    arrays = [p.value for p in model.parameters()]
    buffers = getattr(model, "buffers", None)
    if callable(buffers):
        arrays += [v for _, v in sorted(buffers().items())]
    return arrays


class EarlyStopping(Callback):
    """Stops ``fit`` when ``monitor`` has not improved for ``patience`` epochs (Keras semantics).

    Improvement: ``current − min_delta > best`` (``mode="max"``) or ``current + min_delta <
    best`` (``"min"``); ``"auto"`` picks max for accuracies, min otherwise. ``baseline``: training
    also stops if the metric does not beat it within ``patience`` epochs. ``start_from_epoch``:
    epochs before it are not counted. ``restore_best_weights``: at the stop (or the end, if the
    best epoch was not the last), the parameters and BatchNorm buffers go back to their values
    at the best epoch. The state resets at each ``on_train_begin`` unless ``set_state`` has
    loaded one since (resuming a saved run).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.monitor = monitor
        self.mode = _auto_mode(mode, monitor)
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self._restored = False
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = -1
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_weights: list[np.ndarray] | None = None

    def _improved(self, current: float, reference: float) -> bool:
        if self.mode == "max":
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def on_train_begin(self, logs=None):
        if not self._restored:
            self._reset()
        self._restored = False

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(self, logs, epoch)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = [a.copy() for a in _model_weights(self.model)]
        self.wait += 1
        if self._improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = [a.copy() for a in _model_weights(self.model)]
            if self.baseline is None or self._improved(current, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch >= 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch >= 0:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            for live, saved in zip(_model_weights(self.model), self.best_weights):
                np.copyto(live, saved)

    def get_state(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": None if self.best_weights is None else [a.copy() for a in self.best_weights],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.stopped_epoch = int(state["stopped_epoch"])
        bw = state.get("best_weights")
        self.best_weights = None if bw is None else [np.array(a) for a in bw]
        self._restored = True


class ModelCheckpoint(Callback):
    """Saves the model (``model.save(path)``) at the end of every epoch, or only when
    ``monitor`` improves (``save_best_only``). ``path`` may contain ``str.format`` fields filled
    from the epoch (numbered from 1, as Keras) and the logs: ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``."""

    def __init__(
        self, path, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto", verbose: int = 0
    ):
        super().__init__()
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _auto_mode(mode, monitor)
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf

    def _filepath(self, epoch, logs) -> str:
        try:
            return self.path.format(epoch=epoch + 1, **(logs or {}))
        except KeyError as e:
            raise KeyError(
                f"ModelCheckpoint: path {self.path!r} names {e}, which is not in the epoch logs "
                f"(available: {', '.join(sorted(logs or {}))})"
            ) from None

    def on_epoch_end(self, epoch, logs=None):
        path = self._filepath(epoch, logs)
        if self.save_best_only:
            current = _monitored(self, logs, epoch)
            if current is None:
                return
            better = current > self.best if self.mode == "max" else current < self.best
            if not better:
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving to {path}"
                )
            self.best = current
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        self.model.save(path)

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def _check(self, where: str, logs) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"{where}: invalid loss {float(loss)}, terminating training", file=sys.stderr)
            self.model.stop_training = True

    def on_batch_end(self, batch, logs=None):
        self._check(f"Batch {batch}", logs)

    def on_epoch_end(self, epoch, logs=None):
        self._check(f"Epoch {epoch + 1}", logs)


class CSVLogger(Callback):
    """Writes one row per epoch (``epoch`` and the epoch logs, columns sorted, ``NA`` where an
    epoch lacks a key) to ``path``; the file is rewritten atomically (temporary file +
    ``os.replace``) after each epoch. ``append=True`` keeps the rows already in the file."""

    def __init__(self, path, separator: str = ",", append: bool = False):
        super().__init__()
        self.path = os.fspath(path)
        self.sep = separator
        self.append = bool(append)
        self.rows: list[dict[str, str]] = []
        self.keys: list[str] = []

    def on_train_begin(self, logs=None):
        self.rows, self.keys = [], []
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=self.sep)
                self.keys = [k for k in (reader.fieldnames or []) if k != "epoch"]
                self.rows = [dict(r) for r in reader]

    @staticmethod
    def _cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        if isinstance(v, (np.integer,)):
            return str(int(v))
        if isinstance(v, (list, tuple, np.ndarray)):
            return "[" + " ".join(repr(float(x)) for x in np.asarray(v, dtype=np.float64).ravel()) + "]"
        return str(v)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": str(int(epoch))}
        row.update({k: self._cell(v) for k, v in logs.items()})
        self.rows.append(row)
        self.keys = sorted(set(self.keys) | set(logs))
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=["epoch"] + self.keys,
            delimiter=self.sep,
            restval="NA",
            lineterminator="\n",
            extrasaction="ignore",
        )
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (v if v != "" else "NA") for k, v in r.items()})
        write_text(self.path, buf.getvalue(), suffix=".csv")


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(
        self,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_batch_begin: Callable | None = None,
        on_batch_end: Callable | None = None,
    ):
        super().__init__()
        for name, fn in (
            ("on_train_begin", on_train_begin),
            ("on_train_end", on_train_end),
            ("on_epoch_begin", on_epoch_begin),
            ("on_epoch_end", on_epoch_end),
            ("on_batch_begin", on_batch_begin),
            ("on_batch_end", on_batch_end),
        ):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)
