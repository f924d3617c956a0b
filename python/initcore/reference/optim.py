"""Optimizer steps of ``torch.optim`` in plain NumPy, updating their arrays in place.

Each function is one step of one parameter tensor, with PyTorch's rules, defaults and argument
names (PyTorch 2.x, the algorithm boxes of its documentation and its ``_single_tensor_*``
implementations), so a trajectory can be checked against PyTorch step by step. ``step`` is the
number of this step, counting from 1 (PyTorch increments its ``state["step"]`` before using it).

Conventions shared by every step:

* ``g`` is ``grad``, or ``-grad`` with ``maximize=True`` (the negation comes first, before the
  weight decay, as in PyTorch).
* Coupled (L2) weight decay λ adds ``λ·p`` to the gradient; decoupled weight decay (AdamW,
  NAdamW) multiplies the parameter by ``1 − η·λ`` before the update.
* Scalars that depend only on hyper-parameters and the step number (bias corrections, step
  sizes, ``1 − β``) are computed in Python floats (float64) and rounded once to the arrays'
  dtype, as PyTorch does with its Python-scalar hyper-parameters.
* Every check runs before anything is written; bad input raises ``TypeError`` (dtype) or
  ``ValueError`` (shape, layout, read-only, aliasing, value) naming the argument. Arrays written
  in place (``param`` and the state) must be C-contiguous and writable; ``grad`` may have any
  layout but must not share memory with them. A state array is required exactly when the
  configuration uses it, and must be None otherwise.

The Rust kernels (``initcore.ops``, ``rust/kernels/optim``) evaluate the same expressions in the
same order, one rounding per operation and no fused multiply-add.
"""

import math
import numbers
import operator

import numpy as np

from ._check import float_arrays

# ------------------------------------------------------------------------------------------------
# Argument checks


def _step(fname, step):
    try:
        step = operator.index(step)
    except TypeError:
        raise TypeError(f"{fname}: argument 'step' must be an int, got {type(step).__name__}") from None
    if step < 1:
        raise ValueError(f"{fname}: argument 'step' must be >= 1 (steps count from 1), got {step}")
    return step


def _real(fname, name, v, lo=None, lo_open=False, hi_open=None):
    """A finite float hyper-parameter with ``lo <= v`` (``lo < v`` if ``lo_open``) and ``v < hi_open``."""
    if not isinstance(v, numbers.Real):
        raise TypeError(f"{fname}: argument '{name}' must be a real number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{fname}: argument '{name}' must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{fname}: argument '{name}' must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi_open is not None and not v < hi_open:
        raise ValueError(f"{fname}: argument '{name}' must be < {hi_open}, got {v}")
    return v


def _arrays(fname, param, grad, states, needed):
    """Checks ``param``, ``grad`` and the ``states`` (name → array or None): one float dtype, the
    shape of ``param``; each state given exactly when ``needed[name]`` is true (the value is the
    reason, for the message); written arrays C-contiguous, writable and disjoint; ``grad``
    sharing memory with none of them."""
    float_arrays(fname, param=param, grad=grad, **states)
    for name, x in states.items():
        why = needed[name]
        if why and x is None:
            raise ValueError(f"{fname}: argument '{name}' is required ({why})")
        if not why and x is not None:
            raise ValueError(f"{fname}: argument '{name}' must be None: this configuration does not use it")
    written = {"param": param, **{k: v for k, v in states.items() if v is not None}}
    for name, x in [("grad", grad), *written.items()]:
        if x.shape != param.shape:
            raise ValueError(
                f"{fname}: argument '{name}' has shape {x.shape}, expected {param.shape} (the shape of 'param')"
            )
    names = list(written)
    for i, name in enumerate(names):
        x = written[name]
        if not x.flags.writeable:
            raise ValueError(f"{fname}: argument '{name}' is read-only but is written in place")
        if not x.flags.c_contiguous:
            raise ValueError(f"{fname}: argument '{name}' must be C-contiguous to be written in place")
        for other in names[:i]:
            if np.shares_memory(x, written[other]):
                raise ValueError(f"{fname}: argument '{name}' shares memory with '{other}'; both are written in place")
        if np.shares_memory(grad, x):
            raise ValueError(f"{fname}: argument 'grad' shares memory with '{name}', which is written in place")


def _direction(grad, param, weight_decay, maximize):
    """``g = ±grad (+ λ·p)``: the gradient of the (maximized) objective plus coupled weight decay."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    return g


# ------------------------------------------------------------------------------------------------
# SGD


def sgd_step(
    param,
    grad,
    momentum_buffer=None,
    *,
    step,
    lr,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
):
    """SGD with momentum, dampening, Nesterov momentum and weight decay (``torch.optim.SGD``).

    PyTorch's rule, with learning rate η, momentum μ, dampening τ, weight decay λ::

        g ← g + λ·p
        b ← g                      on the first step (step == 1)
        b ← μ·b + (1 − τ)·g        afterwards                      (only when μ > 0)
        g ← g + μ·b  (Nesterov)    or    g ← b
        p ← p − η·g

    The textbook *classical momentum* (Polyak 1964; Sutskever et al. 2013) keeps a velocity
    ``v ← ρ·v − η·g; w ← w + v``. With τ = 0 and a constant η it is the same rule, with
    ``v = −η·b`` and ρ = μ; the two differ when η changes (PyTorch's buffer accumulates gradients,
    the textbook velocity accumulates steps).

    Textbook *Nesterov momentum* evaluates the gradient at the look-ahead point:
    ``v ← ρ·v − η·∇f(w + ρ·v); w ← w + v``. In the look-ahead variable ``w̃ = w + ρ·v`` this is
    ``w̃ ← w̃ + ρ·v_new − η·∇f(w̃)``, which with ``v = −η·b`` is PyTorch's
    ``p ← p − η·(g + μ·b_new)``: PyTorch's ``param`` is the look-ahead point.

    ``momentum_buffer`` is required exactly when μ > 0. Nesterov needs μ > 0 and τ = 0.
    """
    fname = "sgd_step"
    step = _step(fname, step)
    lr = _real(fname, "lr", lr, lo=0.0)
    momentum = _real(fname, "momentum", momentum, lo=0.0)
    dampening = _real(fname, "dampening", dampening)
    weight_decay = _real(fname, "weight_decay", weight_decay, lo=0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"{fname}: Nesterov momentum requires a momentum and zero dampening "
            f"(argument 'nesterov' with momentum={momentum}, dampening={dampening})"
        )
    _arrays(
        fname,
        param,
        grad,
        {"momentum_buffer": momentum_buffer},
        {"momentum_buffer": "momentum > 0" if momentum > 0 else None},
    )

    g = _direction(grad, param, weight_decay, maximize)
    if momentum > 0:
        buf = momentum_buffer
        if step == 1:
            buf[...] = g
        else:
            buf[...] = momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param[...] = param - lr * g


# ------------------------------------------------------------------------------------------------
# Adagrad and RMSprop


def adagrad_step(param, grad, state_sum, *, step, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False):
    """Adagrad (Duchi, Hazan & Singer 2011) as ``torch.optim.Adagrad``::

        g ← g + λ·p
        η_t = η / (1 + (t − 1)·lr_decay)
        G ← G + g²                       (state_sum, PyTorch's initial_accumulator_value is its start)
        p ← p − η_t · g / (√G + ε)

    ε sits outside the square root, as in PyTorch (some texts write ``√(G + ε)``).
    """
    fname = "adagrad_step"
    step = _step(fname, step)
    lr = _real(fname, "lr", lr, lo=0.0)
    lr_decay = _real(fname, "lr_decay", lr_decay, lo=0.0)
    weight_decay = _real(fname, "weight_decay", weight_decay, lo=0.0)
    eps = _real(fname, "eps", eps, lo=0.0)
    _arrays(fname, param, grad, {"state_sum": state_sum}, {"state_sum": "Adagrad's sum of squares"})

    g = _direction(grad, param, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum[...] = state_sum + g * g
    std = np.sqrt(state_sum) + eps
    param[...] = param - clr * (g / std)


def rmsprop_step(
    param,
    grad,
    square_avg,
    momentum_buffer=None,
    grad_avg=None,
    *,
    step,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    """RMSprop (Tieleman & Hinton 2012; centered: Graves 2013) as ``torch.optim.RMSprop``::

        g ← g + λ·p
        s ← α·s + (1 − α)·g²                      (square_avg)
        a ← α·a + (1 − α)·g                       (grad_avg, centered only)
        d = √(s − a²) + ε  (centered)   or   d = √s + ε
        b ← μ·b + g/d;  p ← p − η·b               (momentum μ > 0)
        p ← p − η·g/d                             (otherwise)

    ε is outside the square root, as in PyTorch (TensorFlow 1's RMSProp put it inside,
    ``√(s + ε)``). The momentum form ``b ← μ·b + g/d; p ← p − η·b`` is Graves' / TensorFlow's
    ``m ← μ·m + η·g/d; p ← p − m`` at a constant η (``m = η·b``).
    ``step`` does not enter the rule; it is checked (>= 1) for a uniform interface.
    """
    fname = "rmsprop_step"
    _step(fname, step)
    lr = _real(fname, "lr", lr, lo=0.0)
    alpha = _real(fname, "alpha", alpha, lo=0.0, hi_open=1.0)
    eps = _real(fname, "eps", eps, lo=0.0)
    weight_decay = _real(fname, "weight_decay", weight_decay, lo=0.0)
    momentum = _real(fname, "momentum", momentum, lo=0.0)
    _arrays(
        fname,
        param,
        grad,
        {"square_avg": square_avg, "momentum_buffer": momentum_buffer, "grad_avg": grad_avg},
        {
            "square_avg": "RMSprop's average of squares",
            "momentum_buffer": "momentum > 0" if momentum > 0 else None,
            "grad_avg": "centered=True" if centered else None,
        },
    )

    g = _direction(grad, param, weight_decay, maximize)
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        grad_avg[...] = alpha * grad_avg + (1 - alpha) * g
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer[...] = momentum * momentum_buffer + g / avg
        param[...] = param - lr * momentum_buffer
    else:
        param[...] = param - lr * (g / avg)


# ------------------------------------------------------------------------------------------------
# Adam, AdamW, NAdam


def _adam_hyper(fname, step, lr, beta1, beta2, eps, weight_decay):
    return (
        _step(fname, step),
        _real(fname, "lr", lr, lo=0.0),
        _real(fname, "beta1", beta1, lo=0.0, hi_open=1.0),
        _real(fname, "beta2", beta2, lo=0.0, hi_open=1.0),
        _real(fname, "eps", eps, lo=0.0, lo_open=True),
        _real(fname, "weight_decay", weight_decay, lo=0.0),
    )


def _adam(
    fname,
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    decoupled_weight_decay,
    maximize,
):
    step, lr, beta1, beta2, eps, weight_decay = _adam_hyper(fname, step, lr, beta1, beta2, eps, weight_decay)
    _arrays(
        fname,
        param,
        grad,
        {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, "max_exp_avg_sq": max_exp_avg_sq},
        {
            "exp_avg": "Adam's first moment",
            "exp_avg_sq": "Adam's second moment",
            "max_exp_avg_sq": "amsgrad=True" if amsgrad else None,
        },
    )

    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param[...] = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    step_size = lr / bias_correction1
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    else:
        v = exp_avg_sq
    denom = np.sqrt(v) / bias_correction2_sqrt + eps
    param[...] = param - step_size * (exp_avg / denom)


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq=None,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled_weight_decay=False,
    maximize=False,
):
    """Adam (Kingma & Ba 2015, Algorithm 1) as ``torch.optim.Adam``; AMSGrad; AdamW when
    ``decoupled_weight_decay``::

        g ← g + λ·p                       (coupled weight decay)   or   p ← p·(1 − η·λ)  (decoupled)
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        v_max ← max(v_max, v)             (AMSGrad: v_max replaces v below)
        bc₁ = 1 − β₁ᵗ,  bc₂ = 1 − β₂ᵗ
        p ← p − (η / bc₁) · m / (√v / √bc₂ + ε)

    This is Algorithm 1's ``θ ← θ − α·m̂/(√v̂ + ε)`` with ``m̂ = m/bc₁``, ``v̂ = v/bc₂``: ε is added
    after the bias correction, outside the square root (PyTorch:
    ``denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)``). The paper's "more efficient" ordering
    ``α_t = α·√bc₂/bc₁; θ ← θ − α_t·m/(√v + ε̂)`` (used by TensorFlow/Keras) adds ε̂ before the
    correction; it equals this rule only with ``ε̂ = ε·√bc₂``.
    AMSGrad (Reddi, Kale & Kumar 2018) keeps the running maximum of the uncorrected ``v`` and
    divides it by ``√bc₂`` like ``v``; ``max_exp_avg_sq`` is required exactly when ``amsgrad``.
    Decoupled decay (Loshchilov & Hutter 2019) multiplies λ by η, as PyTorch's AdamW does (the
    paper scales λ by the schedule multiplier only).
    """
    _adam(
        "adam_step",
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        step,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        decoupled_weight_decay,
        maximize,
    )


def adamw_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq=None,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=1e-2,
    amsgrad=False,
    maximize=False,
):
    """AdamW (Loshchilov & Hutter 2019) as ``torch.optim.AdamW``: :func:`adam_step` with
    ``decoupled_weight_decay=True`` and PyTorch's default ``weight_decay=1e-2``::

        p ← p·(1 − η·λ);  then Adam's update of p with the undecayed gradient.
    """
    _adam(
        "adamw_step",
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        step,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        True,
        maximize,
    )


def nadam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    step,
    mu_product,
    lr=2e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
):
    """NAdam (Dozat 2016) as ``torch.optim.NAdam``, with momentum decay ψ; returns the new
    ``mu_product`` (start it at 1.0)::

        g ← g + λ·p                       (coupled)   or   p ← p·(1 − η·λ)   (decoupled, PyTorch ≥ 2.2)
        μ_t = β₁·(1 − ½·0.96^(t·ψ)),  μ_{t+1} = β₁·(1 − ½·0.96^((t+1)·ψ))
        Π_t = Π_{t−1}·μ_t                 (mu_product)
        m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²
        d = √(v / bc₂) + ε,  bc₂ = 1 − β₂ᵗ
        p ← p − η·(1 − μ_t)/(1 − Π_t) · g/d − η·μ_{t+1}/(1 − Π_t·μ_{t+1}) · m/d

    Dozat's Nesterov-accelerated Adam: the first term is the bias-corrected current gradient, the
    second the bias-corrected momentum one step ahead (with the next step's μ). As in PyTorch,
    the second moment is divided by bc₂ *before* the square root and ε is added after it, and
    the update is applied as two successive additions. ``mu_product`` is kept in float64 here
    (PyTorch keeps it in a float32 tensor by default, which differs in the 7th digit).
    """
    fname = "nadam_step"
    step, lr, beta1, beta2, eps, weight_decay = _adam_hyper(fname, step, lr, beta1, beta2, eps, weight_decay)
    momentum_decay = _real(fname, "momentum_decay", momentum_decay, lo=0.0)
    mu_product = _real(fname, "mu_product", mu_product, lo=0.0)
    if mu_product > 1:
        raise ValueError(
            f"{fname}: argument 'mu_product' must be <= 1 (a product of momenta in [0, 1)), got {mu_product}"
        )
    _arrays(
        fname,
        param,
        grad,
        {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq},
        {"exp_avg": "NAdam's first moment", "exp_avg_sq": "NAdam's second moment"},
    )

    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param[...] = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    bias_correction2 = 1 - beta2**step
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    mu_product_next = mu_product * mu_next
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    denom = np.sqrt(exp_avg_sq / bias_correction2) + eps
    param[...] = param + (-lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
    param[...] = param + (-lr * mu_next / (1.0 - mu_product_next)) * (exp_avg / denom)
    return mu_product


def clip_gradients(grads, mode, threshold):
    """Clips the arrays ``grads`` in place (``kernels::clip``): ``"norm"`` scales each array
    with ``‖g‖ > c`` by ``c/‖g‖``; ``"global_norm"`` scales all by ``c/N`` when the joint norm
    ``N > c``; ``"value"`` clamps to ``[−c, c]``; ``"torch_norm"`` scales all by
    ``c/(N + 1e-6)`` when that is below 1. Returns the norm before clipping."""
    f = "clip_gradients"
    if mode not in ("norm", "global_norm", "value", "torch_norm"):
        raise ValueError(f"{f}: argument 'mode' must be 'norm', 'global_norm', 'value' or 'torch_norm', got {mode!r}")
    if not threshold > 0:
        raise ValueError(f"{f}: the clipping threshold must be > 0, got {threshold}")
    grads = tuple(grads)
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray) or g.dtype.type not in (np.float32, np.float64):
            raise TypeError(f"{f}: argument 'grads[{i}]' must be a float32 or float64 numpy.ndarray")
    if mode == "value":
        for g in grads:
            np.clip(g, -threshold, threshold, out=g)
        return 0.0
    norms = [float(np.sqrt(np.sum(g.astype(np.float64) ** 2))) for g in grads]
    if mode == "norm":
        for g, n in zip(grads, norms):
            if n > threshold:
                g *= g.dtype.type(threshold / n)
        return max(norms, default=0.0)
    total = float(np.sqrt(sum(n * n for n in norms)))
    factor = threshold / (total + 1e-6) if mode == "torch_norm" else threshold / total if total else np.inf
    if factor < 1.0 or np.isnan(total):
        for g in grads:
            g *= g.dtype.type(factor)
    return total
