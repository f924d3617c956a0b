"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .matmul import matmul
from .activation import activation_forward, activation_backward, softmax, softmax_backward, log_softmax, log_softmax_backward, prelu_forward, prelu_backward, maxout_forward, maxout_backward
from .dense import dense_forward, dense_backward

__all__ = [
    "matmul",
    "activation_forward", "activation_backward", "softmax", "softmax_backward", "log_softmax",
    "log_softmax_backward", "prelu_forward", "prelu_backward", "maxout_forward", "maxout_backward",
    "dense_forward", "dense_backward",
]
