"""``Parameter``: a trainable array and its gradient, both plain NumPy arrays the user can read
and write. Optimizers update ``value`` in place, so references to it stay valid."""

import numpy as np


class Parameter:
    """A named trainable array.

    Attributes:
        value: the parameter (float32/float64 ndarray, C-contiguous, updated in place).
        grad: its gradient, same shape and dtype, filled by ``model.backward``.
        name: a stable name such as ``"dense_0/kernel"`` (used by ``save`` and ``state_dict``).
        backend: ``"rust"`` or ``"numpy"``: which ops module the optimizer uses for it.
    """

    __slots__ = ("value", "grad", "name", "backend")

    def __init__(self, value: np.ndarray, name: str, backend: str = "rust"):
        value = np.ascontiguousarray(value)
        if value.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter {name!r}: value must be float32 or float64, got {value.dtype}")
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name
        self.backend = backend

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def size(self) -> int:
        return self.value.size

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"
