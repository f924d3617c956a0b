"""scikit-learn estimators on initcore: :class:`MLPClassifier` and :class:`MLPRegressor`.

``pip install 'initcore[sklearn]'``. They take the parameters of scikit-learn's estimators of the
same names where they mean the same thing, and initcore's own on top:

- scikit-learn's: ``hidden_layer_sizes``, ``activation`` (``"identity"``, ``"logistic"``,
  ``"tanh"``, ``"relu"``, and initcore's ``"sigmoid"``, ``"leaky_relu"``, ``"elu"``, ``"selu"``),
  ``alpha``, ``batch_size`` (``"auto"``: ``min(200, n_samples)``), ``learning_rate_init``,
  ``max_iter`` (epochs), ``shuffle``, ``random_state``, ``tol``, ``early_stopping``,
  ``validation_fraction``, ``n_iter_no_change``, ``verbose``. Stopping follows scikit-learn's
  ``BaseMultilayerPerceptron``: training ends when the epoch loss (or, with ``early_stopping``,
  the validation score, after which the best weights are restored) has not improved by ``tol``
  for more than ``n_iter_no_change`` epochs; a ``ConvergenceWarning`` when ``max_iter`` is hit.
- initcore's: ``kernel_initializer`` (any ``initcore.initializers`` name), ``batchnorm``
  (``None``, ``"before"`` or ``"after"`` the activation of every hidden layer), ``dropout``
  (a rate after every hidden layer), ``optimizer`` (an ``initcore.optim`` name: ``"adam"``,
  ``"sgd"``, ``"rmsprop"``, ...) and ``standardize`` (z-score the inputs with statistics of the
  first ``fit``/``partial_fit`` data, stored in ``scaler_``).

Differences from scikit-learn's MLPs, on purpose: ``alpha`` is passed as the optimizer's
``weight_decay = alpha / batch_size`` (scikit-learn adds ``alpha·W / batch`` to the weight
gradients: the same L2 term, but here it acts on biases and BatchNorm scales too); the classifier
always has one softmax output per class (also for two classes), trained with cross-entropy; the
network is float32.

Fitted attributes: ``model_`` (the :class:`initcore.Sequential`), ``optimizer_``, ``n_iter_``,
``t_`` (samples seen), ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
``best_validation_score_``, ``n_features_in_``, ``feature_names_in_`` (for DataFrames),
``n_outputs_``, ``scaler_``, and the classifier's ``classes_``. Fitted estimators pickle (and
``joblib`` / ``clone`` / ``GridSearchCV(n_jobs=...)``) and predict bit for bit the same after a
round trip.

``sample_weight`` weights each sample's loss: the batch gradient is ``Σ w_i ∇ℓ_i / Σ w_i``.
Unweighted batches use the fused training step; weighted ones the layer-by-layer path (the same
bits when every weight is equal). Batches whose weights are all zero are skipped.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import data as data_mod
from . import layers as L
from . import losses, optim
from .backend import get_ops
from .model import Sequential

__all__ = ["MLPClassifier", "MLPRegressor", "expected_failed_checks"]

_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "selu": "selu",
}

# scikit-learn's estimator checks these estimators cannot pass, with the reason; passed to
# ``check_estimator`` / ``parametrize_with_checks`` as ``expected_failed_checks``.
_EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch training: repeating a sample changes how the rows fall into batches and the "
        "number of steps per epoch (and BatchNorm's batch statistics count rows, not weights), so "
        "integer weights are not equivalent to repeated rows; the weighted loss itself is exact "
        "(scikit-learn runs this check on its MLPs only with full-batch solvers)"
    ),
}


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """``{check name: reason}`` for ``sklearn.utils.estimator_checks``."""
    return dict(_EXPECTED_FAILED_CHECKS)


class _BaseMLP(BaseEstimator):
    _loss = ""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        kernel_initializer="glorot_uniform",
        batchnorm=None,
        dropout=0.0,
        optimizer="adam",
        standardize=True,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.kernel_initializer = kernel_initializer
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.optimizer = optimizer
        self.standardize = standardize

    # --- checks and construction ---------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        name = type(self).__name__
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in sizes):
            raise ValueError(f"{name}: hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"{name}: activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        for arg, low in (("alpha", 0.0), ("tol", 0.0)):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= low:
                raise ValueError(f"{name}: {arg} must be a float >= {low}, got {v!r}")
        v = self.learning_rate_init
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
            raise ValueError(f"{name}: learning_rate_init must be a float > 0, got {v!r}")
        for arg in ("max_iter", "n_iter_no_change"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        b = self.batch_size
        if b != "auto" and (isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1):
            raise ValueError(f"{name}: batch_size must be 'auto' or a positive int, got {b!r}")
        v = self.validation_fraction
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < 1:
            raise ValueError(f"{name}: validation_fraction must be in (0, 1), got {v!r}")
        if self.batchnorm not in (None, "before", "after"):
            raise ValueError(f"{name}: batchnorm must be None, 'before' or 'after', got {self.batchnorm!r}")
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in optim.OPTIMIZERS:
            raise ValueError(f"{name}: optimizer must be one of {sorted(optim.OPTIMIZERS)}, got {self.optimizer!r}")
        L._check_rate(name, self.dropout)
        return sizes

    def _batch(self, n: int) -> int:
        return min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)

    def _build(self, n_features: int, n_outputs: int, n_samples: int, seed: int) -> None:
        sizes = self._check_params()
        act = _ACTIVATIONS[self.activation]
        layers: list[L.Layer] = []
        for h in sizes:
            if self.batchnorm == "before":
                layers += [L.Dense(h, kernel_initializer=self.kernel_initializer), L.BatchNorm(), L.Activation(act)]
            else:
                layers.append(L.Dense(h, act, kernel_initializer=self.kernel_initializer))
                if self.batchnorm == "after":
                    layers.append(L.BatchNorm())
            if self.dropout:
                layers.append(L.AlphaDropout(self.dropout) if act == "selu" else L.Dropout(self.dropout))
        layers.append(L.Dense(n_outputs, kernel_initializer=self.kernel_initializer))
        self.model_ = Sequential(layers, input_dim=n_features, seed=seed)
        self.optimizer_ = optim.get(
            self.optimizer,
            self.model_.parameters(),
            lr=float(self.learning_rate_init),
            weight_decay=float(self.alpha) / self._batch(n_samples),
        )
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self.best_loss_ = np.inf
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement = 0

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and 0 <= rs < 2**63:
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _scale(self, x: np.ndarray, first: bool) -> np.ndarray:
        if first:
            self.scaler_ = data_mod.Standardizer().fit(x) if self.standardize else None
        return x if self.scaler_ is None else self.scaler_.transform(x)

    # --- training --------------------------------------------------------------------------------
    def _sample_loss(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample loss of the network output (float64), for weighted loss curves."""
        out = out.astype(np.float64)
        if self._loss == "cross_entropy":
            m = out.max(axis=1, keepdims=True)
            lse = (m + np.log(np.exp(out - m).sum(axis=1, keepdims=True)))[:, 0]
            return lse - out[np.arange(len(y)), y]
        return ((out - y) ** 2).mean(axis=1)

    def _step(self, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None) -> tuple[float, float] | None:
        """One training step; ``(summed loss, summed weight)`` of the batch, ``None`` if skipped."""
        model, opt = self.model_, self.optimizer_
        if wb is None:
            return model.train_step(xb, yb, opt, self._loss) * len(xb), float(len(xb))
        total = float(wb.sum())
        if total <= 0:
            return None
        out = model.forward(xb, training=True)
        _, grad = losses.compute(self._loss, out, yb, model.backend)
        scale = (wb * (len(wb) / total)).astype(model.dtype)
        model.backward(grad * scale[:, None], need_dx=False)
        opt.step()
        return float(self._sample_loss(out, yb) @ wb), total

    def _epochs(self, x, y, sw, epochs: int, stopping: bool, val=None) -> None:
        model = self.model_
        n = x.shape[0]
        bs = self._batch(n)
        best = None
        for _ in range(epochs):
            order = model.rng.permutation(n) if self.shuffle else np.arange(n)
            loss_sum, weight_sum = 0.0, 0.0
            for idx in model._batches(n, bs, order):
                r = self._step(x[idx], y[idx], None if sw is None else sw[idx])
                if r is not None:
                    loss_sum += r[0]
                    weight_sum += r[1]
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = loss_sum / weight_sum if weight_sum else np.nan
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if not stopping:
                self.best_loss_ = min(self.best_loss_, self.loss_)
                continue
            if val is not None:
                score = self._val_score(*val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + self.tol:
                    self._no_improvement += 1
                else:
                    self._no_improvement = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best = model.state_dict()
            else:
                if self.loss_ > self.best_loss_ - self.tol:
                    self._no_improvement += 1
                else:
                    self._no_improvement = 0
                self.best_loss_ = min(self.best_loss_, self.loss_)
            if self._no_improvement > self.n_iter_no_change:
                what = "Validation score" if val is not None else "Training loss"
                if self.verbose:
                    print(f"{what} did not improve more than tol={self.tol} for {self.n_iter_no_change} epochs.")
                break
        else:
            if stopping:
                warnings.warn(
                    f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached and the optimization "
                    "hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        if best is not None:
            model.load_state_dict(best)

    def _fit(self, X, y, sample_weight, partial: bool, classes=None):
        first = not (partial and hasattr(self, "model_"))
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            dtype=(np.float64, np.float32),
            multi_output=self._multi_output,
            y_numeric=self._loss == "mse",
        )
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        if sw is not None and np.any(sw < 0):
            raise ValueError(f"{type(self).__name__}: sample_weight must be non-negative")
        y = self._encode(y, first, classes)
        x = np.ascontiguousarray(self._scale(X, first), dtype=np.float32)
        if first:
            self._build(x.shape[1], self._n_outputs(y), x.shape[0], self._seed())
        val = None
        if self.early_stopping and not partial:
            split = train_test_split(
                *(a for a in (x, y, sw) if a is not None),
                test_size=self.validation_fraction,
                random_state=self.model_.seed,
                stratify=y if self._loss == "cross_entropy" else None,
            )
            x, xv, y, yv = split[:4]
            sw = split[4] if sw is not None else None
            val = (xv, yv)
        self._epochs(x, y, sw, 1 if partial else int(self.max_iter), not partial, val)
        return self

    def fit(self, X, y, sample_weight=None):
        """Trains a new network on ``X``, ``y`` (``sample_weight`` optional); returns self."""
        return self._fit(X, y, sample_weight, partial=False)

    def _predict_raw(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        x = np.ascontiguousarray(self._scale(X, False), dtype=np.float32)
        return self.model_.predict(x)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (softmax outputs, cross-entropy), scikit-learn's
    ``MLPClassifier`` interface on initcore; see the module docstring for the parameters.
    Labels may be of any type (``classes_`` holds them, sorted)."""

    _loss = "cross_entropy"
    _multi_output = False

    def _encode(self, y, first: bool, classes) -> np.ndarray:
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"{type(self).__name__}: y holds labels {unknown.tolist()} not in classes_")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_outputs(self, y) -> int:
        return len(self.classes_)

    def _val_score(self, xv, yv) -> float:
        return float(np.mean(self.model_.predict(xv).argmax(axis=1) == yv))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X``, ``y``; the first call builds the network and needs ``classes``
        (every label that will ever be seen), as in scikit-learn."""
        first_call = _check_partial_fit_first_call(self, classes)
        if first_call:
            for attr in ("model_", "optimizer_"):
                self.__dict__.pop(attr, None)
        return self._fit(X, y, sample_weight, partial=True, classes=self.classes_)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))``, softmax of the network output."""
        logits = self._predict_raw(X)
        return get_ops("rust").softmax(logits).astype(np.float64)

    def predict_log_proba(self, X) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row (from ``classes_``)."""
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (linear outputs, mean squared error), scikit-learn's
    ``MLPRegressor`` interface on initcore; see the module docstring for the parameters. ``y``
    may be ``(n,)`` or ``(n, targets)``."""

    _loss = "mse"
    _multi_output = True

    def _encode(self, y, first: bool, classes) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if first:
            self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{type(self).__name__}: y has {y2.shape[1]} targets, the model was fitted on {self.n_outputs_}"
            )
        return np.ascontiguousarray(y2, dtype=np.float32)

    def _n_outputs(self, y) -> int:
        return y.shape[1]

    def _val_score(self, xv, yv) -> float:
        pred = self.model_.predict(xv).astype(np.float64)
        yv = yv.astype(np.float64)
        ss_res = ((yv - pred) ** 2).sum(axis=0)
        ss_tot = ((yv - yv.mean(axis=0)) ** 2).sum(axis=0)
        ok = ss_tot > 0
        return float(np.mean(np.where(ok, 1 - ss_res / np.where(ok, ss_tot, 1), 0.0)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``; the first call builds the network."""
        return self._fit(X, y, sample_weight, partial=True)

    def predict(self, X) -> np.ndarray:
        """The network output, ``(n,)`` for a single target."""
        out = self._predict_raw(X).astype(np.float64)
        return out[:, 0] if out.shape[1] == 1 else out
