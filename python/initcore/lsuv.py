"""Layer-sequential unit-variance initialization (Mishkin & Matas 2015, "All you need is a good init").

Algorithm 1 of the paper, on a built :class:`~initcore.Sequential`:

1. pre-initialize every ``Dense`` kernel with an orthonormal matrix (Saxe et al. 2014; drawn from
   the model's Generator, as ``initializers.Orthogonal``);
2. for each ``Dense`` layer ``L`` in order: forward the batch to ``L``, take the variance ``v`` of
   ``L``'s output ``B_L`` over all its entries; while ``|v − 1| ≥ tol`` and fewer than ``max_iter``
   rescalings were done, ``W_L ← W_L / √v`` and measure again.

``B_L`` is the pre-activation ``z = x·W + b`` (what the authors' hook-based PyTorch port
measures; it scales exactly with ``W`` when ``b = 0``): the activation fused into the ``Dense``
layer comes after it. Biases are left as they are (zero with the default initializer). The
forward passes run in evaluation mode (no dropout; BatchNorm uses, and does not update, its
running statistics), so ``lsuv`` changes nothing but the kernels and the model's RNG state.
"""

import math
import warnings

import numpy as np

from . import initializers
from .layers import Dense


def lsuv(model, x_batch, tol=0.1, max_iter=10, orthonormal=True):
    """Rescales every Dense kernel of ``model`` so that its pre-activation has variance 1 on
    ``x_batch`` within ``tol``; ``orthonormal=False`` keeps the current kernels as the start.

    Returns one dict per Dense layer: ``{"layer": name, "variance": final variance,
    "iterations": rescalings done, "converged": |variance − 1| < tol}``. A layer whose output
    has zero variance cannot be rescaled: it is reported unconverged with a warning.
    """
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(f"lsuv: tol must be a float in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"lsuv: max_iter must be a positive int, got {max_iter!r}")
    h = model._input(x_batch, "x_batch")
    if h.shape[0] < 2:
        raise ValueError(f"lsuv: x_batch needs at least 2 rows to measure a variance, got shape {h.shape}")
    if not any(isinstance(layer, Dense) for layer in model.layers):
        raise ValueError("lsuv: the model has no Dense layer")
    ortho = initializers.Orthogonal()
    report = []
    for layer in model.layers:
        if not isinstance(layer, Dense):
            h = layer.forward(h, False)
            continue
        w = layer.kernel.value
        if orthonormal:
            np.copyto(w, ortho(w.shape, model.rng, model.dtype))
        iterations = 0
        while True:
            y = layer.forward(h, False)
            var = float(np.var(layer._cache[1], dtype=np.float64))
            if abs(var - 1.0) < tol or iterations >= max_iter or not var > 0 or not math.isfinite(var):
                break
            w *= w.dtype.type(1.0 / math.sqrt(var))
            iterations += 1
        if not var > 0:
            warnings.warn(
                f"lsuv: {layer.name}'s output has variance {var} on x_batch; it cannot be rescaled", stacklevel=2
            )
        report.append(
            {"layer": layer.name, "variance": var, "iterations": iterations, "converged": abs(var - 1.0) < tol}
        )
        h = y
    return report
