"""The callback protocol: :class:`Callback` (every hook a no-op), :class:`CallbackList` (what
``fit`` calls), :class:`History` (what ``fit`` returns) and :class:`LambdaCallback`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable


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
        from ..plots import training_curves

        if metrics is None:
            metrics = [k for k in self.history if k not in ("lr", "seconds") and not k.startswith("val_")]
        return training_curves(self, path=path, metrics=list(metrics), title=title)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


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
