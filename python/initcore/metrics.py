"""Metrics for ``Sequential.fit`` / ``evaluate`` (``metrics=[...]``), with Keras's definitions.

A metric accumulates over batches and reports over the whole data set (not a mean of batch
means): ``reset()``, ``update(output, y)``, ``result()``. ``output`` is the network output
``(n, C)``; ``y`` the targets as the model prepared them (integer labels ``(n,)`` for
cross-entropy, else an array of the output's shape).

============================  ===============================================================
``"accuracy"``                classification: arg-max (first maximum) equals the label (the
                              arg-max of soft targets); binary: ``(z > 0) == (t ≥ 0.5)`` per entry
``"top_k_accuracy"``          the label is among the ``k`` largest outputs (``TopKAccuracy(k)``,
                              default 5; ties count in the label's favour, as Keras's ``in_top_k``)
``"mae"``, ``"mse"``          mean of ``|p − t|``, ``(p − t)²`` over all entries
``"r2"``                      ``1 − SS_res/SS_tot`` per output column, averaged over columns
                              (Keras ``R2Score``, ``class_aggregation="uniform_average"``)
a callable ``f(output, y)``   its value per batch, averaged weighted by the batch sizes
============================  ===============================================================

Metrics are unweighted (Keras's ``metrics``, not ``weighted_metrics``). ``evaluate`` on a fused
model computes accuracy, top-k, mae, mse and r2 in its native pass over the data
(``FusedPlan.evaluate``, sums in float64); the others, and every metric of the training batches
but accuracy, are computed here in NumPy on each batch's output (``fit`` then runs batch by
batch instead of one native call per epoch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Metric", "Accuracy", "TopKAccuracy", "MeanAbsoluteError", "MeanSquaredError", "R2Score", "get"]


class Metric:
    """Base class: ``name`` is the key in the logs."""

    name = "metric"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output, y) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Ratio(Metric):
    def reset(self):
        self.total = 0.0
        self.count = 0

    def result(self):
        return self.total / self.count if self.count else float("nan")


def _regression_target(name, output, y):
    if y.shape != output.shape:
        raise ValueError(
            f"metric {name}: targets of shape {y.shape} do not match the output {output.shape}; "
            f"{name} is a regression metric (targets of the output's shape)"
        )
    return output.astype(np.float64), y.astype(np.float64)


class Accuracy(_Ratio):
    name = "accuracy"

    def update(self, output, y):
        if y.ndim == 1 and y.dtype.kind in "iu":
            self.total += int(np.count_nonzero(output.argmax(axis=1) == y))
            self.count += y.shape[0]
        elif y.shape == output.shape and output.shape[1] > 1 and np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
            self.total += int(np.count_nonzero(output.argmax(axis=1) == y.argmax(axis=1)))
            self.count += y.shape[0]
        else:
            self.total += int(np.count_nonzero((output > 0) == (y >= 0.5)))
            self.count += y.size


class TopKAccuracy(_Ratio):
    def __init__(self, k: int = 5):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive int, got {k!r}")
        self.k = int(k)
        self.name = "top_k_accuracy" if self.k == 5 else f"top_{self.k}_accuracy"
        super().__init__()

    def update(self, output, y):
        if y.shape == output.shape:
            y = y.argmax(axis=1)
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"metric {self.name}: needs class labels (n,), got targets of shape {y.shape}")
        own = output[np.arange(y.shape[0]), y]
        # The label is in the top k when fewer than k outputs are strictly larger.
        self.total += int(np.count_nonzero((output > own[:, None]).sum(axis=1) < self.k))
        self.count += y.shape[0]

    def __repr__(self):
        return f"TopKAccuracy(k={self.k})"


class MeanAbsoluteError(_Ratio):
    name = "mae"

    def update(self, output, y):
        p, t = _regression_target(self.name, output, y)
        self.total += float(np.abs(p - t).sum())
        self.count += p.size


class MeanSquaredError(_Ratio):
    name = "mse"

    def update(self, output, y):
        p, t = _regression_target(self.name, output, y)
        self.total += float(((p - t) ** 2).sum())
        self.count += p.size


class R2Score(Metric):
    name = "r2"

    def reset(self):
        self.n = 0
        self.sum_y = self.sum_y2 = self.sum_res = None

    def update(self, output, y):
        p, t = _regression_target(self.name, output, y)
        if self.sum_y is None:
            self.sum_y = np.zeros(p.shape[1])
            self.sum_y2 = np.zeros(p.shape[1])
            self.sum_res = np.zeros(p.shape[1])
        self.n += p.shape[0]
        self.sum_y += t.sum(axis=0)
        self.sum_y2 += (t * t).sum(axis=0)
        self.sum_res += ((t - p) ** 2).sum(axis=0)

    def result(self):
        if not self.n:
            return float("nan")
        ss_tot = self.sum_y2 - self.sum_y**2 / self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1.0 - self.sum_res / ss_tot
        return float(np.mean(r2))


class _Callable(_Ratio):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "metric")
        super().__init__()

    def update(self, output, y):
        n = output.shape[0]
        self.total += float(self.fn(output, y)) * n
        self.count += n

    def __repr__(self):
        return f"metric({self.name})"


_NAMES = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "top_k_accuracy": TopKAccuracy,
    "top_k_categorical_accuracy": TopKAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "r2": R2Score,
    "r2_score": R2Score,
}


def get(spec) -> Metric:
    """A fresh metric for a name (``"accuracy"``, ``"top_k_accuracy"``, ``"mae"``, ``"mse"``,
    ``"r2"`` or a Keras alias), a :class:`Metric` (returned as is) or a callable."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        cls = _NAMES.get(spec.lower())
        if cls is None:
            raise ValueError(f"unknown metric {spec!r}; expected one of {sorted(_NAMES)} or a callable")
        return cls()
    if callable(spec):
        return _Callable(spec)
    raise TypeError(f"metrics must be names, Metric objects or callables, got {type(spec).__name__}")


def native_request(tracked, labels: bool):
    """``(top_k, errors, r2)`` for ``FusedPlan.evaluate`` if every metric in ``tracked`` is one
    it computes (top-k with labels; mae, mse, r2 with value targets), else ``None``."""
    top_k, errors, r2 = [], False, False
    for m in tracked:
        if type(m) is TopKAccuracy and labels:
            top_k.append(m.k)
        elif type(m) in (MeanAbsoluteError, MeanSquaredError) and not labels:
            errors = True
        elif type(m) is R2Score and not labels:
            r2 = True
        else:
            return None
    return top_k, errors, r2


def load_native(tracked, sums) -> None:
    """Sets each metric's state from ``FusedPlan.evaluate``'s sums, so ``result()`` reports them."""
    hits = dict(sums["top_k"])
    for m in tracked:
        if type(m) is TopKAccuracy:
            m.total, m.count = hits[m.k], sums["rows"]
        elif type(m) is MeanAbsoluteError:
            m.total, m.count = sums["abs_sum"], sums["entries"]
        elif type(m) is MeanSquaredError:
            m.total, m.count = sums["sq_sum"], sums["entries"]
        elif type(m) is R2Score:
            m.n = sums["rows"]
            m.sum_y, m.sum_y2, m.sum_res = (np.array(sums[k]) for k in ("col_sum", "col_sq", "col_res"))
