"""The update rules: SGD, Adagrad, RMSprop, Adam, AdamW and Nadam, each one kernel call per
parameter with ``torch.optim``'s defaults (the math is in :mod:`initcore.optim`'s docstring)."""

from __future__ import annotations

import math

from ..backend import get_ops
from .base import Optimizer, _betas, _number


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    ``g ← g + λw``; with momentum ρ: ``b₁ = g``, ``b ← ρb + (1 − τ)g`` (τ = dampening);
    ``g ← g + ρb`` if Nesterov else ``g ← b``; ``w ← w − ηg``.
    Textbook ``v ← ρv − ηg; w ← w + v`` is the same at constant η with ``v = −ηb``.
    State: ``momentum_buffer`` when ``momentum > 0``.
    """

    kind = "sgd"

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        **clip,
    ):
        lr = _number("lr", lr, what="learning rate")
        momentum = _number("momentum", momentum, what="momentum value")
        weight_decay = _number("weight_decay", weight_decay, what="weight_decay value")
        dampening = _number("dampening", dampening, low=-math.inf, what="dampening value")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=bool(nesterov),
                maximize=bool(maximize),
            ),
            **clip,
        )

    def _state_spec(self, hyper=None):
        return {"momentum_buffer": 0.0} if (hyper or self.hyper)["momentum"] > 0 else {}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

    ``g ← g + λw``; ``η_t = η / (1 + (t − 1)·lr_decay)``; ``s ← s + g²``; ``w ← w − η_t·g/(√s + ε)``.
    State: ``state_sum`` (starts at ``initial_accumulator_value``).
    """

    kind = "adagrad"

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        **clip,
    ):
        lr = _number("lr", lr, what="learning rate")
        lr_decay = _number("lr_decay", lr_decay, what="lr_decay value")
        weight_decay = _number("weight_decay", weight_decay, what="weight_decay value")
        self.initial_accumulator_value = _number(
            "initial_accumulator_value", initial_accumulator_value, what="initial_accumulator_value value"
        )
        eps = _number("eps", eps, what="epsilon value")
        super().__init__(
            params,
            dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=bool(maximize)),
            **clip,
        )

    def _state_spec(self, hyper=None):
        return {"state_sum": self.initial_accumulator_value}


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; centered variant: Graves 2013), as ``torch.optim.RMSprop``.

    ``g ← g + λw``; ``v ← αv + (1 − α)g²``; centered: ``ḡ ← αḡ + (1 − α)g`` and
    ``d = √(v − ḡ²) + ε``, else ``d = √v + ε``; with momentum ρ > 0: ``b ← ρb + g/d``,
    ``w ← w − ηb``; otherwise ``w ← w − η·g/d``.
    State: ``square_avg``; ``momentum_buffer`` if ρ > 0; ``grad_avg`` if centered.
    """

    kind = "rmsprop"

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        **clip,
    ):
        lr = _number("lr", lr, what="learning rate")
        eps = _number("eps", eps, what="epsilon value")
        momentum = _number("momentum", momentum, what="momentum value")
        weight_decay = _number("weight_decay", weight_decay, what="weight_decay value")
        alpha = _number("alpha", alpha, what="alpha value")
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=bool(centered),
                maximize=bool(maximize),
            ),
            **clip,
        )

    def _state_spec(self, hyper=None):
        hyper = hyper or self.hyper
        spec = {"square_avg": 0.0}
        if hyper["momentum"] > 0:
            spec["momentum_buffer"] = 0.0
        if hyper["centered"]:
            spec["grad_avg"] = 0.0
        return spec


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with AMSGrad (Reddi et al. 2018), as ``torch.optim.Adam``.

    ``g ← g + λw`` (L2, coupled); ``m ← β₁m + (1 − β₁)g``; ``v ← β₂v + (1 − β₂)g²``;
    AMSGrad: ``v_max ← max(v_max, v)`` replaces ``v`` below;
    ``w ← w − η/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)``, i.e. ``w ← w − η·m̂/(√v̂ + ε)``.
    State: ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` if amsgrad.
    """

    kind = "adam"
    _default_wd = 0.0

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        **clip,
    ):
        lr = _number("lr", lr, what="learning rate")
        eps = _number("eps", eps, what="epsilon value")
        b1, b2 = _betas(betas)
        wd = self._default_wd if weight_decay is None else weight_decay
        wd = _number("weight_decay", wd, what="weight_decay value")
        super().__init__(
            params,
            dict(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd, amsgrad=bool(amsgrad), maximize=bool(maximize)),
            **clip,
        )

    @property
    def betas(self) -> tuple[float, float]:
        return (self.hyper["beta1"], self.hyper["beta2"])

    def _state_spec(self, hyper=None):
        spec = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if (hyper or self.hyper)["amsgrad"]:
            spec["max_exp_avg_sq"] = 0.0
        return spec


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``: Adam whose weight decay is
    decoupled from the gradient, ``w ← w·(1 − ηλ)`` before the Adam step (``λ`` not added to
    ``g``, so it is not rescaled by ``1/√v̂``). Default ``weight_decay=1e-2``."""

    kind = "adamw"
    _default_wd = 1e-2


class NAdam(Optimizer):
    """Nadam (Dozat 2016: Adam with Nesterov momentum), as ``torch.optim.NAdam``.

    ``g ← g + λw`` (or decoupled ``w ← w·(1 − ηλ)``, Loshchilov & Hutter's NAdamW);
    momentum schedule ``μ_t = β₁(1 − ½·0.96^{t·ψ})`` (ψ = momentum_decay), ``Π_t = Π_{i≤t} μ_i``;
    ``m ← β₁m + (1 − β₁)g``, ``v ← β₂v + (1 − β₂)g²``, ``d = √(v/(1 − β₂ᵗ)) + ε``;
    ``w ← w − η(1 − μ_t)/(1 − Π_t)·g/d − η·μ_{t+1}/(1 − Π_t·μ_{t+1})·m/d``.
    State: ``exp_avg``, ``exp_avg_sq`` and the float ``mu_product`` (Π_t, starting at 1).
    """

    kind = "nadam"

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        **clip,
    ):
        lr = _number("lr", lr, what="learning rate")
        eps = _number("eps", eps, what="epsilon value")
        b1, b2 = _betas(betas)
        wd = _number("weight_decay", weight_decay, what="weight_decay value")
        md = _number("momentum_decay", momentum_decay, what="momentum_decay value")
        super().__init__(
            params,
            dict(
                lr=lr,
                beta1=b1,
                beta2=b2,
                eps=eps,
                weight_decay=wd,
                momentum_decay=md,
                decoupled_weight_decay=bool(decoupled_weight_decay),
                maximize=bool(maximize),
            ),
            **clip,
        )

    @property
    def betas(self) -> tuple[float, float]:
        return (self.hyper["beta1"], self.hyper["beta2"])

    def _state_spec(self, hyper=None):
        return {"exp_avg": 0.0, "exp_avg_sq": 0.0, "mu_product": ("scalar", 1.0)}

    def _update(self, p, st, arrays, step, hyper):
        fn = get_ops(p.backend).nadam_step
        st["mu_product"] = float(
            fn(
                p.value,
                p.grad,
                st["exp_avg"],
                st["exp_avg_sq"],
                step=step,
                mu_product=st["mu_product"],
                **hyper,
            )
        )


#: Keras's spelling of :class:`NAdam` (the class was named ``Nadam`` before 0.2).
Nadam = NAdam
