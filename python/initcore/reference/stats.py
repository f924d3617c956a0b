"""Column statistics of an activation matrix ``x (n, m)``, for diagnostics.

Per column ``j`` (in float64)::

    mean_j = (1/n) Σ_i x_ij          var_j = (1/n) Σ_i (x_ij − mean_j)²   (biased)
    min_j, max_j

over all entries: ``hist`` counts as ``np.histogram(x, edges)`` (bin ``k`` is
``[e_k, e_{k+1})``, the last bin also holds ``e_last``; values outside the edges are not
counted), ``saturated_fraction`` is the share of entries ``≤ low`` or ``≥ high`` for
``saturation=(low, high)`` (0.0 without it), ``dead_fraction`` the share of columns that are
exactly 0 on every row.

NaN: a column holding a NaN has NaN ``mean``, ``var``, ``min`` and ``max`` (and is not dead);
NaNs fall in no histogram bin and are never saturated. ±inf lands in a bin only if the edges
reach it (they are finite, so never) but counts as saturated; as in NumPy, a column with an
infinity has an infinite mean and a NaN variance. ``x`` must hold at least one entry.
"""

import math

import numpy as np

from ._check import float_arrays


def check_edges(fname, edges):
    """float64 copy of ``edges`` (1-D, ≥ 2 finite, strictly increasing), else an error naming it."""
    if not isinstance(edges, np.ndarray) or edges.dtype.type not in (np.float32, np.float64):
        what = f"{edges.dtype} array" if isinstance(edges, np.ndarray) else type(edges).__name__
        raise TypeError(f"{fname}: argument 'edges' must be a float32 or float64 numpy.ndarray, got {what}")
    e = edges.astype(np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"{fname}: argument 'edges' must be 1-D with at least 2 entries, got shape {edges.shape}")
    if not np.all(np.isfinite(e)) or not np.all(e[1:] > e[:-1]):
        raise ValueError(f"{fname}: argument 'edges' must be finite and strictly increasing")
    return e


def check_saturation(fname, saturation):
    """``(low, high)`` as floats with ``low < high`` (not NaN), else a ValueError naming it."""
    try:
        low, high = (float(v) for v in saturation)
    except (TypeError, ValueError):
        raise ValueError(
            f"{fname}: argument 'saturation' must be a pair (low, high) of floats, got {saturation!r}"
        ) from None
    if math.isnan(low) or math.isnan(high) or not low < high:
        raise ValueError(f"{fname}: argument 'saturation' must have low < high, got ({low}, {high})")
    return low, high


def column_stats(x, edges=None, saturation=None):
    """Returns the dict described in the module docstring (``ColumnStats`` in ``_core.pyi``)."""
    f = "column_stats"
    (x,) = float_arrays(f, x=x)
    if x.ndim != 2:
        raise ValueError(f"{f}: argument 'x' must be 2-D (n, m), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{f}: argument 'x' is empty (shape {x.shape}); statistics need at least one entry")
    e = None if edges is None else check_edges(f, edges)
    sat = None if saturation is None else check_saturation(f, saturation)
    x64 = x.astype(np.float64)
    n, m = x.shape
    with np.errstate(invalid="ignore"):  # inf − inf in a column with an infinity: NaN, as documented
        mean = x64.sum(axis=0) / n
        var = ((x64 - mean) ** 2).sum(axis=0) / n
    if e is None:
        hist = np.zeros(0, dtype=np.int64)
    else:
        hist = np.histogram(x64[~np.isnan(x64)], e)[0].astype(np.int64)
    if sat is None:
        saturated = 0.0
    else:
        saturated = float(np.count_nonzero((x64 <= sat[0]) | (x64 >= sat[1]))) / x.size
    dead = float(np.count_nonzero(np.all(x64 == 0, axis=0))) / m
    return {
        "mean": mean,
        "var": var,
        "min": x64.min(axis=0),
        "max": x64.max(axis=0),
        "hist": hist,
        "saturated_fraction": saturated,
        "dead_fraction": dead,
    }
