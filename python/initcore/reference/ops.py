"""NumPy twins of :mod:`initcore.ops`: the same names, signatures and conventions."""

from .matmul import matmul
from .optim import sgd_step, adagrad_step, rmsprop_step, adam_step, adamw_step, nadam_step

__all__ = ["matmul", "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "adamw_step", "nadam_step"]
