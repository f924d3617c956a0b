"""Learning-rate schedules: callbacks that set ``model.optimizer.lr`` at epoch boundaries, with
the semantics of ``torch.optim.lr_scheduler`` (one scheduler step per epoch).

``η₀`` is the optimizer's learning rate when the schedule first sees it (``on_train_begin``,
kept afterwards, like PyTorch's ``initial_lr``); ``e`` is the epoch, counted from 0 and
continuing across ``fit`` calls and save/load. Epoch ``e`` trains with:

====================================  =============================================================
``StepDecay(step_size, gamma=0.1)``   ``η₀·γ^⌊e / step_size⌋``                         (``StepLR``)
``MultiStepDecay(milestones, γ)``     ``η₀·γ^(number of milestones ≤ e)``            (``MultiStepLR``)
``ExponentialDecay(gamma)``           ``η₀·γ^e``                                      (``ExponentialLR``)
``CosineDecay(t_max, eta_min=0)``     ``η_min + (η₀ − η_min)(1 + cos(π·e/T_max))/2``  (``CosineAnnealingLR``;
                                      Loshchilov & Hutter 2017 without restarts; periodic past T_max)
``LinearLR(start, end, total_iters)`` ``η₀·(s + (f − s)·min(e, n)/n)``                (``LinearLR``, warm-up)
``LambdaSchedule(fn)``                ``η₀·fn(e)``                                     (``LambdaLR``)
``ReduceLROnPlateau(...)``            ``η ← max(η·factor, min_lr)`` after ``patience`` epochs without
                                      improvement of ``monitor``          (``ReduceLROnPlateau``)
====================================  =============================================================

The closed forms are what PyTorch's ``_get_closed_form_lr`` gives; they equal its recursive
updates when nothing else changes the learning rate. With several closed-form schedules in one
``fit``, the last one in the callback list wins. Each schedule's progress is in
``get_state()`` / ``set_state()``, which ``model.save`` stores, so a resumed run continues the
same schedule.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Sequence
from typing import Any, Callable

from .callbacks import Callback, _monitored

__all__ = [
    "LearningRateSchedule",
    "StepDecay",
    "MultiStepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "LinearLR",
    "LambdaSchedule",
    "ReduceLROnPlateau",
    "get",
    "SCHEDULES",
]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _optimizer(cb):
    opt = getattr(cb.model, "optimizer", None)
    if opt is None:
        raise RuntimeError(f"{type(cb).__name__}: the model has no optimizer (use it as a fit callback)")
    return opt


class LearningRateSchedule(Callback):
    """Base of the closed-form schedules: sets ``optimizer.lr = lr_at(epoch)`` at each
    ``on_epoch_begin``. Subclasses implement :meth:`factor` or :meth:`lr_at`."""

    def __init__(self):
        super().__init__()
        self.base_lr: float | None = None
        self.last_epoch = -1

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        """The learning rate of epoch ``epoch`` (from ``base_lr``, default the captured η₀)."""
        base = self.base_lr if base_lr is None else base_lr
        if base is None:
            raise RuntimeError(f"{type(self).__name__}: no base learning rate yet (pass base_lr)")
        return base * self.factor(int(epoch))

    def on_train_begin(self, logs=None):
        if self.base_lr is None:
            self.base_lr = float(_optimizer(self).lr)

    def on_epoch_begin(self, epoch, logs=None):
        _optimizer(self).lr = self.lr_at(epoch)
        self.last_epoch = int(epoch)

    def get_state(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.base_lr = None if state["base_lr"] is None else float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if k not in ("model", "params", "base_lr", "last_epoch")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class StepDecay(LearningRateSchedule):
    """``η_e = η₀·γ^⌊e / step_size⌋`` (PyTorch ``StepLR``)."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        super().__init__()
        self.step_size = _positive_int("step_size", step_size)
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)


class MultiStepDecay(LearningRateSchedule):
    """``η_e = η₀·γ^k``, ``k`` = number of milestones ≤ e (PyTorch ``MultiStepLR``)."""

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1):
        super().__init__()
        ms = [int(m) for m in milestones]
        if not ms or any(m < 0 for m in ms) or ms != sorted(ms):
            raise ValueError(f"milestones must be a non-empty increasing list of epochs >= 0, got {list(milestones)}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.milestones, self.gamma = ms, float(gamma)

    def factor(self, epoch):
        return self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialDecay(LearningRateSchedule):
    """``η_e = η₀·γ^e`` (PyTorch ``ExponentialLR``)."""

    def __init__(self, gamma: float):
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def factor(self, epoch):
        return self.gamma**epoch


class CosineDecay(LearningRateSchedule):
    """``η_e = η_min + (η₀ − η_min)·(1 + cos(π·e / T_max)) / 2`` (PyTorch ``CosineAnnealingLR``,
    SGDR without restarts): η₀ at e = 0, η_min at e = T_max, rising again after (period 2·T_max)."""

    def __init__(self, t_max: int, eta_min: float = 0.0):
        super().__init__()
        self.t_max = _positive_int("t_max", t_max)
        if not eta_min >= 0:
            raise ValueError(f"eta_min must be >= 0, got {eta_min}")
        self.eta_min = float(eta_min)

    def lr_at(self, epoch, base_lr=None):
        base = self.base_lr if base_lr is None else base_lr
        if base is None:
            raise RuntimeError("CosineDecay: no base learning rate yet (pass base_lr)")
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * int(epoch) / self.t_max)) / 2


class LinearLR(LearningRateSchedule):
    """``η_e = η₀·(s + (f − s)·min(e, n)/n)`` with ``s = start_factor``, ``f = end_factor``,
    ``n = total_iters`` (PyTorch ``LinearLR``; a linear warm-up with the defaults)."""

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5):
        super().__init__()
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or equal to 1, "
                f"ending factor between 0 and 1; got {start_factor}, {end_factor}"
            )
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _positive_int("total_iters", total_iters)

    def factor(self, epoch):
        return (
            self.start_factor + (self.end_factor - self.start_factor) * min(epoch, self.total_iters) / self.total_iters
        )


class LambdaSchedule(LearningRateSchedule):
    """``η_e = η₀·fn(e)`` (PyTorch ``LambdaLR``). ``fn`` itself is not saved with the model."""

    def __init__(self, fn: Callable[[int], float]):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def factor(self, epoch):
        return float(self.fn(epoch))


class ReduceLROnPlateau(Callback):
    """Divides the learning rate when ``monitor`` stops improving (PyTorch ``ReduceLROnPlateau``).

    At each epoch end, with ``a`` the monitored value and ``best`` the best so far, ``a`` is an
    improvement if (``mode``/``threshold_mode``, δ = ``min_delta``, PyTorch's ``threshold``):
    min/rel ``a < best·(1 − δ)``; min/abs ``a < best − δ``; max/rel ``a > best·(1 + δ)``;
    max/abs ``a > best + δ``. Otherwise a bad epoch is counted. During ``cooldown`` epochs after
    a reduction bad epochs are not counted. After more than ``patience`` bad epochs:
    ``η ← max(η·factor, min_lr)`` (skipped if it changes η by less than ``eps``).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "min",
        threshold_mode: str = "rel",
        eps: float = 1e-8,
        verbose: int = 0,
    ):
        super().__init__()
        if not factor < 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise ValueError(f"cooldown must be an int >= 0, got {cooldown!r}")
        if not min_lr >= 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = patience
        self.min_delta = float(min_delta)
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self.mode = mode
        self.threshold_mode = threshold_mode
        self.eps = float(eps)
        self.verbose = verbose
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = -1

    def is_better(self, a: float, best: float) -> bool:
        d = self.min_delta
        if self.mode == "min":
            return a < best * (1.0 - d) if self.threshold_mode == "rel" else a < best - d
        return a > best * (d + 1.0) if self.threshold_mode == "rel" else a > best + d

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, current: float, epoch: int | None = None) -> None:
        """One scheduler step with the monitored value (what ``on_epoch_end`` calls)."""
        current = float(current)
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            opt = _optimizer(self)
            old = float(opt.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                opt.lr = new
                if self.verbose:
                    print(f"Epoch {self.last_epoch + 1}: reducing learning rate to {new:.4e}.")
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(self, logs, epoch)
        if current is not None:
            if math.isnan(current):
                warnings.warn(
                    f"ReduceLROnPlateau: {self.monitor} is NaN at epoch {epoch + 1}", RuntimeWarning, stacklevel=2
                )
            self.step(current, epoch)

    def get_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "last_epoch": self.last_epoch,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.last_epoch = int(state["last_epoch"])

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, patience={self.patience}, "
            f"min_delta={self.min_delta}, cooldown={self.cooldown}, min_lr={self.min_lr}, mode={self.mode!r}, "
            f"threshold_mode={self.threshold_mode!r})"
        )


SCHEDULES = {
    "step": StepDecay,
    "multistep": MultiStepDecay,
    "exponential": ExponentialDecay,
    "cosine": CosineDecay,
    "linear": LinearLR,
    "lambda": LambdaSchedule,
    "plateau": ReduceLROnPlateau,
}


def get(name: str | None, **kwargs):
    """A schedule by name (``"step"``, ``"multistep"``, ``"exponential"``, ``"cosine"``,
    ``"linear"``, ``"lambda"``, ``"plateau"``) with its keyword arguments; ``None``/``"none"``
    gives None; a schedule object is returned as is."""
    if name is None or (isinstance(name, str) and name.lower() == "none"):
        return None
    if isinstance(name, Callback):
        return name
    if not isinstance(name, str) or name.lower() not in SCHEDULES:
        raise ValueError(f"schedule must be one of {['none', *SCHEDULES]}, got {name!r}")
    return SCHEDULES[name.lower()](**kwargs)
