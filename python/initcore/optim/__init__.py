"""Optimizers with the update rules, defaults and argument checks of ``torch.optim``.

Every optimizer updates its parameters' ``value`` arrays in place by calling one kernel per
parameter, ``get_ops(p.backend).<kind>_step(p.value, p.grad, **state, step=t, **hyper)``
(``initcore.ops`` in Rust, ``initcore.reference.ops`` in NumPy; same math). Step counts start
at 1. ``g`` below is the gradient (negated when ``maximize=True``), ``η`` the learning rate,
``λ`` the weight decay, ``t`` the step.

============  =====================================================================================
SGD           ``g ← g + λw``; ``b ← ρb + (1 − τ)g`` (``b₁ = g``); ``g ← g + ρb`` (Nesterov) or ``g ← b``;
              ``w ← w − ηg``
Adagrad       ``g ← g + λw``; ``η_t = η / (1 + (t − 1)·lr_decay)``; ``s ← s + g²``;
              ``w ← w − η_t·g / (√s + ε)``
RMSprop       ``g ← g + λw``; ``v ← αv + (1 − α)g²``; centered: ``ḡ ← αḡ + (1 − α)g``,
              ``v̂ = v − ḡ²`` else ``v̂ = v``; ``b ← ρb + g/(√v̂ + ε)``, ``w ← w − ηb`` (ρ > 0) or
              ``w ← w − ηg/(√v̂ + ε)``
Adam          ``g ← g + λw``; ``m ← β₁m + (1 − β₁)g``; ``v ← β₂v + (1 − β₂)g²``
              (AMSGrad: ``v_max ← max(v_max, v)`` used in place of ``v``);
              ``w ← w − η·m̂ / (√v̂ + ε)``, ``m̂ = m/(1 − β₁ᵗ)``, ``v̂ = v/(1 − β₂ᵗ)``
AdamW         Adam with decoupled decay (Loshchilov & Hutter 2019): ``w ← w·(1 − ηλ)`` first, no λw in g
Nadam         Dozat (2016) with PyTorch's momentum schedule ``μ_t = β₁(1 − ½·0.96^{t·ψ})``,
              ``Π_t = Π μ_i``: ``w ← w − η(1 − μ_t)/(1 − Π_t)·g/(√v̂ + ε)
              − η·μ_{t+1}/(1 − Π_t μ_{t+1})·m/(√v̂ + ε)``
============  =====================================================================================

Where ε sits: Adam, AdamW, Nadam, RMSprop and Adagrad all add ε *outside* the square root, to
``√v̂`` (PyTorch; Kingma & Ba's Algorithm 1). TensorFlow's Adam instead adds an ε̂ to
``√v`` before the bias correction, which differs by a factor √(1 − β₂ᵗ) early on.

Textbook momentum ``v ← ρv − ηg; w ← w + v`` (Sutskever et al. 2013) is PyTorch's rule with
``v = −η·b``: the same trajectory at a constant learning rate. They differ only when η changes:
PyTorch's buffer ``b`` holds raw gradients and a new η scales the whole accumulated step at once,
the textbook ``v`` carries the old η in its past terms. Nesterov here is PyTorch's (Bengio et
al. 2013's reformulation): the step is ``g + ρb``, the look-ahead expressed at the current point.

State. Arrays are created *eagerly* at construction (zeros, or ``initial_accumulator_value``
for Adagrad), C-contiguous and of the parameter's dtype, keyed by the kernel's argument names:
``state[p.name] = {"momentum_buffer": ..., "exp_avg": ..., ...}``; a later fused training step
may read and update them in place, so they are never replaced, only written into (also by
:meth:`Optimizer.load_state_dict`). A buffer that a hyper-parameter change makes necessary
(e.g. setting ``hyper["momentum"]`` later) is created at the next step. SGD's first momentum
step sets ``b = g`` as PyTorch does (the zero buffer is overwritten, not decayed).

``hyper`` is a flat dict of the kernel's keyword arguments (``lr``, ``beta1``, ``beta2``, ...);
``lr`` is also a property, which the schedules set. One global ``step_count`` is shared by all
parameters (every ``step()`` updates every parameter).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..parameter import Parameter
from .base import Optimizer, ParamGroup, _number
from .rules import SGD, Adagrad, Adam, AdamW, NAdam, Nadam, RMSprop

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "NAdam",
    "Nadam",
    "get",
    "OPTIMIZERS",
    "clip_grad_norm",
    "clip_grad_value",
    "decay_groups",
    "ParamGroup",
]


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "nadam": NAdam}


def get(name, params: Iterable[Parameter] | None = None, **kwargs) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
    ``"nadam"``; case-insensitive) over ``params`` with keyword hyper-parameters; an
    :class:`Optimizer` instance is returned as is."""
    if isinstance(name, Optimizer):
        return name
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    if params is None:
        raise ValueError(f"optim.get({name!r}): params are required")
    return OPTIMIZERS[name.lower()](params, **kwargs)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float, norm_type: float = 2.0) -> float:
    """Scales all gradients together so that their joint norm is at most ``max_norm``
    (``torch.nn.utils.clip_grad_norm_``: factor ``max_norm / (‖g‖ + 1e-6)`` clamped to 1).
    Returns the norm before clipping."""
    params = list(params)
    max_norm = _number("max_norm", max_norm, what="max_norm")
    if norm_type == math.inf:
        total = max((float(np.max(np.abs(p.grad))) for p in params if p.grad.size), default=0.0)
    else:
        total = float(sum(float(np.sum(np.abs(p.grad.astype(np.float64)) ** norm_type)) for p in params)) ** (
            1.0 / norm_type
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad *= p.grad.dtype.type(coef)
    return total


def clip_grad_value(params: Iterable[Parameter], clip_value: float) -> None:
    """Clamps every gradient entry to ``[−clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``)."""
    c = _number("clip_value", clip_value, what="clip_value")
    for p in params:
        np.clip(p.grad, -c, c, out=p.grad)


def decay_groups(params, weight_decay: float = 1e-2) -> list[dict[str, Any]]:
    """Splits parameters (a model or its ``parameters()``) into the two usual groups:
    ``[{"params": <kernels>, "weight_decay": weight_decay}, {"params": <the rest>,
    "weight_decay": 0.0}]``. The rest are the 1-D parameters: biases, BatchNorm γ and β, PReLU
    slopes (decay on them only pulls the normalization or the offsets towards 0; Loshchilov &
    Hutter 2019 and common practice exclude them). Pass the result to any optimizer."""
    ps = params.parameters() if callable(getattr(params, "parameters", None)) else list(params)
    wd = _number("weight_decay", weight_decay, what="weight_decay value")
    decay = [p for p in ps if p.value.ndim >= 2]
    rest = [p for p in ps if p.value.ndim < 2]
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": wd})
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups
