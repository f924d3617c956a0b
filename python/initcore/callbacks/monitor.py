"""Callbacks that watch a metric or the loss: :class:`EarlyStopping`, :class:`ModelCheckpoint`
and :class:`TerminateOnNaN` (Keras semantics)."""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any

import numpy as np

from .base import Callback


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
