"""Losses on the network's raw outputs, each returning ``(loss, dloss/doutput)``.

- ``cross_entropy(logits, labels)``: softmax cross-entropy with integer labels,
  ``L = −(1/n) Σ_i log softmax(z_i)[y_i]``, gradient ``(softmax(z) − onehot(y)) / n``.
- ``binary_cross_entropy(logits, targets)``: sigmoid BCE in the stable form
  ``max(z, 0) − z·t + log(1 + e^{−|z|})``, averaged over all entries.
- ``mse(pred, target)``: ``mean((p − t)²)`` over all entries (PyTorch's ``MSELoss``).
"""

from .backend import get_ops

NAMES = ("cross_entropy", "binary_cross_entropy", "mse")
ALIASES = {
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "ce": "cross_entropy",
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "mean_squared_error": "mse",
}


def canonical(name: str) -> str:
    """The canonical loss name for ``name`` or one of its Keras-style aliases."""
    n = ALIASES.get(name, name)
    if n not in NAMES:
        raise ValueError(f"loss must be one of {NAMES} (or an alias {sorted(ALIASES)}), got {name!r}")
    return n


def compute(name: str, output, target, backend: str = "rust", reduction: str = "mean"):
    """``(loss, grad)`` of loss ``name`` with the kernels of ``backend``."""
    return getattr(get_ops(backend), canonical(name))(output, target, reduction=reduction)


def cross_entropy(logits, labels, reduction="mean", backend="rust"):
    return get_ops(backend).cross_entropy(logits, labels, reduction=reduction)


def binary_cross_entropy(logits, targets, reduction="mean", backend="rust"):
    return get_ops(backend).binary_cross_entropy(logits, targets, reduction=reduction)


def mse(pred, target, reduction="mean", backend="rust"):
    return get_ops(backend).mse(pred, target, reduction=reduction)
