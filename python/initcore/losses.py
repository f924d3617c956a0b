"""Losses on the network's raw outputs, each returning ``(loss, dloss/doutput)``.

- ``cross_entropy(logits, labels)``: softmax cross-entropy with integer labels,
  ``L = −(1/n) Σ_i log softmax(z_i)[y_i]``, gradient ``(softmax(z) − onehot(y)) / n``; with soft
  targets ``(n, C)`` (rows of probabilities) ``L = −(1/n) Σ_ij t_ij log softmax(z_i)_j``, and with
  ``label_smoothing=ε`` the targets are ``(1 − ε)·t + ε/C`` (``torch.nn.CrossEntropyLoss``).
- ``binary_cross_entropy(logits, targets)``: sigmoid BCE in the stable form
  ``max(z, 0) − z·t + log(1 + e^{−|z|})``, averaged over all entries.
- ``mse(pred, target)``: ``mean((p − t)²)`` over all entries (PyTorch's ``MSELoss``).
- ``mae(pred, target)``: ``mean(|p − t|)`` (``L1Loss``).
- ``huber(pred, target, delta=1)``: ``½d²`` if ``|d| ≤ δ`` else ``δ(|d| − ½δ)`` (``HuberLoss``).

Every built-in loss takes ``sample_weight`` (one weight per row): the reported loss is
``Σ_i w_i·l_i / n`` (Keras's ``sum_over_batch_size``; ``n`` rows, or all entries for the
elementwise losses) and the gradient is weighted the same way.

A loss with options is a :class:`Loss`: ``Loss("cross_entropy", label_smoothing=0.1)``,
``Loss("huber", delta=2.0)``; ``fit``/``compile``/``evaluate`` take a name, a :class:`Loss` or a
Python callable ``loss(output, y) -> (value, grad)`` (``output`` the network output ``(n, C)``,
``y`` the targets as given, ``grad`` = d value / d output of the output's shape and dtype).
A callable runs on the layer-by-layer path; every built-in loss runs fused.
"""

from __future__ import annotations

import math

from .backend import get_ops

NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")
ALIASES = {
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "ce": "cross_entropy",
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "l1": "mae",
    "huber_loss": "huber",
}
# Losses whose targets are class labels (or soft class probabilities).
CLASSIFICATION = ("cross_entropy", "binary_cross_entropy")


def canonical(name: str) -> str:
    """The canonical loss name for ``name`` or one of its Keras-style aliases."""
    n = ALIASES.get(name, name)
    if n not in NAMES:
        raise ValueError(f"loss must be one of {NAMES} (or an alias {sorted(ALIASES)}), got {name!r}")
    return n


class Loss:
    """A built-in loss and its options (see the module docstring).

    Args:
        name: one of ``NAMES`` or an alias.
        label_smoothing: ``ε ∈ [0, 1]``, cross-entropy only.
        delta: the Huber threshold ``δ > 0``, Huber only.
    """

    def __init__(self, name: str, label_smoothing: float = 0.0, delta: float = 1.0):
        self.name = canonical(name)
        ls, d = float(label_smoothing), float(delta)
        if not 0.0 <= ls <= 1.0:
            raise ValueError(f"Loss: label_smoothing must be in [0, 1], got {label_smoothing!r}")
        if ls and self.name != "cross_entropy":
            raise ValueError(f"Loss: label_smoothing applies to cross_entropy only, not {self.name}")
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"Loss: delta must be a finite number > 0, got {delta!r}")
        self.label_smoothing = ls
        self.delta = d

    @property
    def options(self) -> dict:
        """The keyword arguments of the kernel (empty when none applies)."""
        if self.name == "cross_entropy" and self.label_smoothing:
            return {"label_smoothing": self.label_smoothing}
        if self.name == "huber":
            return {"delta": self.delta}
        return {}

    def key(self) -> tuple:
        """What identifies the loss for a fused plan."""
        return (self.name, self.label_smoothing, self.delta if self.name == "huber" else 1.0)

    def __call__(self, output, target, sample_weight=None, reduction="mean", backend="rust"):
        kw = self.options
        if sample_weight is not None:
            kw["sample_weight"] = sample_weight
        return getattr(get_ops(backend), self.name)(output, target, reduction=reduction, **kw)

    def get_config(self) -> dict:
        return {"name": self.name, "label_smoothing": self.label_smoothing, "delta": self.delta}

    def __eq__(self, other):
        return isinstance(other, Loss) and other.key() == self.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Loss({self.name!r}{', ' + opts if opts else ''})"


def get(loss) -> Loss | object:
    """A :class:`Loss` for a name (or a ``Loss``, returned as is), or the callable itself."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        return Loss(loss)
    if isinstance(loss, dict):
        return Loss(**loss)
    if callable(loss):
        return loss
    raise TypeError(f"loss must be a name, an initcore.losses.Loss or a callable, got {type(loss).__name__}")


def compute(name, output, target, backend: str = "rust", reduction: str = "mean", sample_weight=None):
    """``(loss, grad)`` of loss ``name`` (a name or a :class:`Loss`) with the kernels of ``backend``."""
    return get(name)(output, target, sample_weight=sample_weight, reduction=reduction, backend=backend)


def cross_entropy(logits, labels, reduction="mean", backend="rust", label_smoothing=0.0, sample_weight=None):
    return get_ops(backend).cross_entropy(
        logits, labels, reduction=reduction, label_smoothing=label_smoothing, sample_weight=sample_weight
    )


def binary_cross_entropy(logits, targets, reduction="mean", backend="rust", sample_weight=None):
    return get_ops(backend).binary_cross_entropy(logits, targets, reduction=reduction, sample_weight=sample_weight)


def mse(pred, target, reduction="mean", backend="rust", sample_weight=None):
    return get_ops(backend).mse(pred, target, reduction=reduction, sample_weight=sample_weight)


def mae(pred, target, reduction="mean", backend="rust", sample_weight=None):
    return get_ops(backend).mae(pred, target, reduction=reduction, sample_weight=sample_weight)


def huber(pred, target, reduction="mean", backend="rust", delta=1.0, sample_weight=None):
    return get_ops(backend).huber(pred, target, reduction=reduction, delta=delta, sample_weight=sample_weight)
