"""What ``Sequential.fit`` / ``train_step`` / ``evaluate`` need besides the network itself:
per-sample weights (``sample_weight``, ``class_weight``), ``validation_split``, the output-layer
check (the softmax trap), a loss's value and gradient for every kind of loss, and ``compile``'s
optimizer binding. Keras's definitions throughout.
"""

from __future__ import annotations

import math

import numpy as np

from . import layers as layers_mod
from . import losses

# The activation each logit-taking loss applies itself.
_OWN_ACTIVATION = {"cross_entropy": ("softmax", "log_softmax"), "binary_cross_entropy": ("sigmoid",)}


def check_output_layer(model, loss_name: str) -> None:
    """Raises if the model ends in the activation that ``loss_name`` applies itself: a softmax
    (or log-softmax) before cross-entropy, a sigmoid before binary cross-entropy. Both losses
    take raw logits, so the activation would be applied twice; training then runs but silently
    learns worse (the digits reach about 83% instead of 92%)."""
    own = _OWN_ACTIVATION.get(loss_name)
    if not own or not model.layers:
        return
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    if act not in own:
        return
    what = f"Activation({act!r})" if isinstance(last, layers_mod.Activation) else f"activation={act!r}"
    fix = "remove that layer" if isinstance(last, layers_mod.Activation) else f"drop {what} from {last.name}"
    raise ValueError(
        f"Sequential: the model ends in {act} ({last.name}: {what}) and is trained with {loss_name}, which takes raw "
        f"logits and applies {own[0]} itself, so {act} would be applied twice and training silently goes wrong. "
        f"To fix it, {fix}: the model then outputs logits, and predict_proba() gives the probabilities."
    )


def weights_array(sample_weight, class_weight, y, loss_name: str, n: int, dtype) -> np.ndarray | None:
    """Per-sample weights ``(n,)`` of ``dtype`` from ``sample_weight`` or ``class_weight``
    (``{class: weight}``; classes not in the dict weigh 1, as in Keras), or ``None``."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("Sequential: give sample_weight or class_weight, not both (as Keras)")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"Sequential: class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}"
            )
        labels = _class_labels(y, loss_name)
        w = np.ones(n, dtype=np.float64)
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise TypeError(f"Sequential: class_weight keys must be int class labels, got {k!r}")
            w[labels == int(k)] = float(v)
        sample_weight = w
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"Sequential: sample_weight must hold numbers, got dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w.reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"Sequential: sample_weight has shape {w.shape}, expected ({n},) (one weight per row of x)")
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"Sequential: sample_weight[{i}] = {w[i]}; weights must be finite and >= 0")
    return np.ascontiguousarray(w, dtype=dtype)


def _class_labels(y, loss_name):
    if loss_name == "cross_entropy" and y.ndim == 1:
        return y
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if loss_name in ("cross_entropy", "binary_cross_entropy"):
        return np.round(y.reshape(-1)).astype(np.int64)
    raise ValueError(f"Sequential: class_weight needs class labels; loss {loss_name!r} is a regression loss")


def split_validation(fraction, arrays, n: int):
    """Keras's ``validation_split``: the last ``⌊n·fraction⌋``-complement rows, taken before any
    shuffling, are the validation set: ``split = ⌊n·(1 − fraction)⌋``. Returns ``(train,
    validation)`` lists of the ``arrays`` (``None`` entries stay ``None``)."""
    f = float(fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"Sequential.fit: validation_split must be in (0, 1), got {fraction!r}")
    split = int(math.floor(n * (1.0 - f)))
    if split == 0 or split == n:
        raise ValueError(
            f"Sequential.fit: x has {n} rows, too few to split into a training and a validation set "
            f"with validation_split={fraction}"
        )
    train = [None if a is None else a[:split] for a in arrays]
    val = [None if a is None else a[split:] for a in arrays]
    return train, val


def loss_and_grad(spec, out, y, weights, backend, dtype, reduction="mean"):
    """``(value, grad)`` of a built-in :class:`initcore.losses.Loss` (with the weights) or of a
    Python loss ``spec(out, y) -> (value, grad)``, whose result is checked."""
    if isinstance(spec, losses.Loss):
        return spec(out, y, sample_weight=weights, reduction=reduction, backend=backend)
    if weights is not None:
        raise ValueError(
            "Sequential: sample_weight / class_weight need a built-in loss (a Python loss returns the batch's value)"
        )
    result = spec(out, y)
    try:
        value, grad = result
    except (TypeError, ValueError):
        raise TypeError(f"Sequential: a Python loss must return (value, grad), got {type(result).__name__}") from None
    grad = np.asarray(grad)
    if grad.shape != out.shape:
        raise ValueError(f"Sequential: the Python loss returned a gradient of shape {grad.shape}, expected {out.shape}")
    value = float(value)
    if reduction == "sum":
        value *= out.shape[0]
    return value, np.ascontiguousarray(grad, dtype=dtype)


def bind_optimizer(model, spec, lr, kwargs):
    """The optimizer ``compile`` asked for, over the built model's parameters: a name
    (``optim.get``), an ``Optimizer`` subclass, an ``Optimizer`` (checked to hold the
    parameters) or a callable ``f(model) -> Optimizer`` (for parameter groups)."""
    from . import optim

    extra = dict(kwargs)
    if lr is not None:
        extra["lr"] = lr
    if isinstance(spec, str):
        return optim.get(spec, model.parameters(), **extra)
    if isinstance(spec, type) and issubclass(spec, optim.Optimizer):
        return spec(model.parameters(), **extra)
    if isinstance(spec, optim.Optimizer):
        if extra:
            raise ValueError(
                "Sequential.compile: lr and optimizer keywords apply to an optimizer given by name or class"
            )
        return spec
    if callable(spec):
        if extra:
            raise ValueError(
                "Sequential.compile: lr and optimizer keywords apply to an optimizer given by name or class"
            )
        opt = spec(model)
        if not isinstance(opt, optim.Optimizer):
            raise TypeError(f"Sequential.compile: optimizer(model) returned {type(opt).__name__}, not an Optimizer")
        return opt
    raise TypeError(
        f"Sequential.compile: optimizer must be a name, an Optimizer class or object, or a callable, got {spec!r}"
    )
