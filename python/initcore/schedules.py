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

Per-step schedules (:class:`StepSchedule`) change the learning rate before every optimizer
step instead; their unit is the step ``s`` = ``optimizer.step_count`` before the step (0-based,
continuing across ``fit`` calls and save/load). ``η₀`` as above:

====================================  =============================================================
``WarmupCosine(warmup_steps,          ``η₀·(f + (1 − f)·s/w)`` for ``s < w``, then
total_steps, start_factor=0,          ``η_min + (η₀ − η_min)(1 + cos(π(s − w)/(T − w)))/2``
eta_min=0)``                          (``SequentialLR([LinearLR, CosineAnnealingLR], [w])``)
``OneCycle(max_lr, total_steps,       ``OneCycleLR``: from ``max_lr/div_factor`` up to ``max_lr``
pct_start=0.3, ...)``                 over the first ``pct_start·T`` steps, then down to
                                      ``max_lr/(div_factor·final_div_factor)`` (cos or linear)
``ExponentialPerStep(gamma)``         ``η₀·γ^s``                          (``ExponentialLR`` stepped per batch)
====================================  =============================================================

Every schedule answers ``lr_at(i)``, the learning rate of the 0-based epoch (closed-form
schedules) or step (per-step ones) ``i``, and ``lrs(start, count)`` gives an array of them.

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

from .callbacks import Callback
from .callbacks.monitor import _monitored

__all__ = [
    "LearningRateSchedule",
    "StepDecay",
    "MultiStepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "LinearLR",
    "LambdaSchedule",
    "ReduceLROnPlateau",
    "StepSchedule",
    "WarmupCosine",
    "OneCycle",
    "ExponentialPerStep",
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

    def lrs(self, start: int, count: int, base_lr: float | None = None):
        """``[lr_at(start), …, lr_at(start + count − 1)]`` as a float64 array."""
        import numpy as np

        return np.array([self.lr_at(e, base_lr) for e in range(int(start), int(start) + int(count))], dtype=np.float64)

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


# --- per-step schedules ----------------------------------------------------------------------------
class StepSchedule(Callback):
    """Base of the per-step schedules: sets ``optimizer.lr = lr_at(optimizer.step_count)``
    before every step (``on_batch_begin``). Subclasses implement :meth:`factor` (relative to
    the captured η₀) or :meth:`lr_at`. ``per_step`` tells ``fit`` that the learning rate is a
    function of the step alone, so the whole epoch's rates can be computed up front."""

    per_step = True

    def __init__(self):
        super().__init__()
        self.base_lr: float | None = None

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        """The learning rate of the 0-based step ``step`` (from ``base_lr``, default η₀)."""
        base = self.base_lr if base_lr is None else base_lr
        if base is None:
            raise RuntimeError(f"{type(self).__name__}: no base learning rate yet (pass base_lr)")
        return base * self.factor(int(step))

    def lrs(self, start: int, count: int, base_lr: float | None = None):
        """``[lr_at(start), …, lr_at(start + count − 1)]`` as a float64 array."""
        import numpy as np

        return np.array([self.lr_at(s, base_lr) for s in range(int(start), int(start) + int(count))], dtype=np.float64)

    def on_train_begin(self, logs=None):
        if self.base_lr is None:
            self.base_lr = float(_optimizer(self).lr)

    def on_batch_begin(self, batch, logs=None):
        opt = _optimizer(self)
        opt.lr = self.lr_at(opt.step_count)

    def next_batch_hook(self, batch):
        # fit passes the rates of natively run batches (``lrs``) instead of calling the hook.
        return None

    def get_state(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr}

    def set_state(self, state: dict[str, Any]) -> None:
        self.base_lr = None if state["base_lr"] is None else float(state["base_lr"])

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if k not in ("model", "params", "base_lr")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


def _nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


class WarmupCosine(StepSchedule):
    """Linear warm-up for ``warmup_steps`` steps from ``start_factor·η₀`` to η₀, then cosine
    annealing to ``eta_min`` at ``total_steps`` (Goyal et al. 2017's warm-up, Loshchilov &
    Hutter 2017's cosine): PyTorch's ``SequentialLR([LinearLR(start_factor, 1, warmup_steps),
    CosineAnnealingLR(total_steps − warmup_steps, eta_min)], milestones=[warmup_steps])``.
    ``start_factor=0`` starts from 0 (PyTorch's LinearLR needs a factor > 0)."""

    def __init__(self, warmup_steps: int, total_steps: int, start_factor: float = 0.0, eta_min: float = 0.0):
        super().__init__()
        self.warmup_steps = _nonnegative_int("warmup_steps", warmup_steps)
        self.total_steps = _positive_int("total_steps", total_steps)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps ({warmup_steps}) must be < total_steps ({total_steps})")
        if not 0.0 <= start_factor <= 1.0:
            raise ValueError(f"start_factor must be in [0, 1], got {start_factor}")
        if not eta_min >= 0:
            raise ValueError(f"eta_min must be >= 0, got {eta_min}")
        self.start_factor, self.eta_min = float(start_factor), float(eta_min)

    def lr_at(self, step, base_lr=None):
        base = self.base_lr if base_lr is None else base_lr
        if base is None:
            raise RuntimeError("WarmupCosine: no base learning rate yet (pass base_lr)")
        s, w = int(step), self.warmup_steps
        if s < w:
            return base * (self.start_factor + (1.0 - self.start_factor) * s / w)
        t = (s - w) / (self.total_steps - w)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t)) / 2


class OneCycle(StepSchedule):
    """The 1cycle policy (Smith & Topin 2019) as ``torch.optim.lr_scheduler.OneCycleLR``: the
    learning rate starts at ``max_lr/div_factor``, rises to ``max_lr`` at step
    ``pct_start·total_steps − 1``, then falls to ``max_lr/(div_factor·final_div_factor)`` at
    step ``total_steps − 1`` (``three_phase``: back to the start value at ``2·pct_start·total
    − 2`` first, then to the minimum). ``anneal_strategy``: ``"cos"`` or ``"linear"``. The
    optimizer's own learning rate is ignored (``max_lr`` sets the scale).

    ``cycle_momentum`` (default, as PyTorch): the momentum (SGD, RMSprop) or β₁ (Adam family)
    of every group moves the other way, from ``max_momentum`` down to ``base_momentum`` while
    the rate rises and back up while it falls (three phases: it stays at ``max_momentum`` in
    the last); :meth:`momentum_at` gives it per step. ``fit`` evaluates both inside the native
    epoch. Adagrad has neither, and is refused (as PyTorch refuses it)."""

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ):
        super().__init__()
        if not max_lr > 0:
            raise ValueError(f"max_lr must be > 0, got {max_lr}")
        self.total_steps = _positive_int("total_steps", total_steps)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not (div_factor > 0 and final_div_factor > 0):
            raise ValueError(f"div_factor and final_div_factor must be > 0, got {div_factor}, {final_div_factor}")
        self.max_lr, self.pct_start = float(max_lr), float(pct_start)
        self.anneal_strategy, self.three_phase = anneal_strategy, bool(three_phase)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum and not (0 <= base_momentum <= max_momentum < 1):
            raise ValueError(
                f"base_momentum and max_momentum must satisfy 0 <= base_momentum <= max_momentum < 1, "
                f"got {base_momentum}, {max_momentum}"
            )
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        lo_m, hi_m = self.base_momentum, self.max_momentum
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        t = self.total_steps
        # (end step, lr from, lr to, momentum from, momentum to) per phase, as OneCycleLR's.
        if self.three_phase:
            self.phases = [
                (float(self.pct_start * t) - 1, initial, self.max_lr, hi_m, lo_m),
                (float(2 * self.pct_start * t) - 2, self.max_lr, initial, lo_m, hi_m),
                (t - 1, initial, low, hi_m, hi_m),
            ]
        else:
            self.phases = [
                (float(self.pct_start * t) - 1, initial, self.max_lr, hi_m, lo_m),
                (t - 1, self.max_lr, low, lo_m, hi_m),
            ]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, step, momentum):
        s = int(step)
        if s < 0 or s > self.total_steps:
            raise ValueError(f"Tried to step {s} times. The specified number of total steps is {self.total_steps}")
        begin = 0.0
        for i, (end, lo, hi, m0, m1) in enumerate(self.phases):
            if s <= end or i == len(self.phases) - 1:
                pct = (s - begin) / (end - begin)
                return self._anneal(m0, m1, pct) if momentum else self._anneal(lo, hi, pct)
            begin = end
        raise AssertionError("unreachable")

    def lr_at(self, step, base_lr=None):
        return self._at(step, False)

    def momentum_at(self, step: int) -> float | None:
        """The momentum / β₁ of the 0-based step ``step`` (``None`` without ``cycle_momentum``)."""
        return self._at(step, True) if self.cycle_momentum else None

    def momentums(self, start: int, count: int):
        """``[momentum_at(start), …]`` for ``count`` steps (float64), or ``None``."""
        import numpy as np

        if not self.cycle_momentum:
            return None
        return np.array([self._at(s, True) for s in range(int(start), int(start) + int(count))], dtype=np.float64)

    def on_train_begin(self, logs=None):
        self.base_lr = self.max_lr
        if self.cycle_momentum:
            opt = _optimizer(self)
            if opt.momentum_key is None:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
            opt.set_momentum(self.momentum_at(opt.step_count))

    def on_batch_begin(self, batch, logs=None):
        super().on_batch_begin(batch, logs)
        if self.cycle_momentum:
            opt = _optimizer(self)
            opt.set_momentum(self.momentum_at(opt.step_count))


class ExponentialPerStep(StepSchedule):
    """``η_s = η₀·γ^s``: PyTorch's ``ExponentialLR`` stepped after every batch (Keras's
    ``ExponentialDecay(decay_steps=1)``)."""

    def __init__(self, gamma: float):
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def factor(self, step):
        return self.gamma**step


SCHEDULES = {
    "step": StepDecay,
    "multistep": MultiStepDecay,
    "exponential": ExponentialDecay,
    "cosine": CosineDecay,
    "linear": LinearLR,
    "lambda": LambdaSchedule,
    "plateau": ReduceLROnPlateau,
    "warmup_cosine": WarmupCosine,
    "onecycle": OneCycle,
    "exponential_per_step": ExponentialPerStep,
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
