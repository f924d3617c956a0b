"""Input standardization fitted on the training set: :class:`Standardizer` (per feature, per
channel or one global scale), with :class:`NotFittedError` for use before ``fit``."""

from __future__ import annotations

import math

import numpy as np

from .backend import check_dtype


class NotFittedError(ValueError, AttributeError):
    """A transformer was used before ``fit`` (like scikit-learn's ``NotFittedError``)."""


class Standardizer:
    """Input standardization fitted on the training set, ``y = (x − shift) / scale`` per feature.

    ``mode``:

    - ``"feature"`` (scikit-learn ``StandardScaler``): z-scores per feature,
      ``shift = μ_j``, ``scale = σ_j`` (biased standard deviation over the training rows);
    - ``"channel"``: one mean and standard deviation per channel over all samples and positions
      (torchvision's ``Normalize(mean, std)``; MNIST: μ ≈ 0.1307, σ ≈ 0.3081). The features are
      ``channels`` interleaved channels (channel-last layout); with the default ``channels=1``
      it is one global mean and standard deviation;
    - ``"mean_image"``: subtract the mean training image, no scaling (Krizhevsky et al. 2012);
    - ``"minmax"`` (``MinMaxScaler``): map each feature's training range to ``feature_range``.

    Any ``scale`` that is zero up to rounding (a constant feature, e.g. MNIST's always-black
    border pixels) is replaced by 1, as scikit-learn does, so nothing is divided by zero:
    those features become 0 (``feature``) or ``feature_range[0]`` (``minmax``).
    ``min_scale`` (default 0) also floors the scale: per-feature z-scores of pixels that are
    almost always 0 otherwise blow up rare test-time values (σ_j tiny). Statistics are
    computed in float64 with two passes (mean, then squared deviations) over blocks of rows;
    ``transform`` returns ``x``'s dtype if it is float32/float64, else ``dtype`` (float32).
    Arrays of any rank ``(n, ...)`` are standardized over their flattened features.
    """

    MODES = ("feature", "channel", "mean_image", "minmax")

    def __init__(
        self,
        mode: str = "feature",
        channels: int = 1,
        feature_range: tuple[float, float] = (0.0, 1.0),
        min_scale: float = 0.0,
        dtype="float32",
    ):
        if mode not in self.MODES:
            raise ValueError(f"Standardizer: mode must be one of {self.MODES}, got {mode!r}")
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"Standardizer: channels must be a positive int, got {channels!r}")
        lo, hi = (float(v) for v in feature_range)
        if not lo < hi:
            raise ValueError(f"Standardizer: feature_range must be (min, max) with min < max, got {feature_range}")
        if not min_scale >= 0:
            raise ValueError(f"Standardizer: min_scale must be >= 0, got {min_scale}")
        self.mode, self.channels, self.feature_range = mode, int(channels), (lo, hi)
        self.min_scale = float(min_scale)
        self.dtype = check_dtype(dtype)
        self.shift_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_features_in_: int | None = None
        self.n_samples_seen_: int | None = None

    # scikit-learn-style views of the fitted statistics
    @property
    def mean_(self) -> np.ndarray:
        self._check_fitted()
        return self._mean

    @property
    def var_(self) -> np.ndarray:
        self._check_fitted()
        return self._var

    def _check_fitted(self):
        if self.shift_ is None:
            raise NotFittedError("This Standardizer is not fitted yet: call fit(x_train) before transform")

    def _flat(self, x, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"Standardizer.{what}: x must hold real numbers, got dtype {x.dtype}")
        if x.ndim < 2:
            raise ValueError(
                f"Standardizer.{what}: x must be (n, features...) with at least 2 dimensions, got shape {x.shape}"
            )
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def fit(self, x) -> Standardizer:
        """Computes the statistics of ``x`` (the training set) and returns ``self``."""
        flat = self._flat(x, "fit")
        n, d = flat.shape
        if n == 0:
            raise ValueError("Standardizer.fit: x has no rows")
        if self.mode == "channel" and d % self.channels:
            raise ValueError(f"Standardizer.fit: {d} features are not a multiple of channels={self.channels}")
        block = max(1, (1 << 22) // max(d, 1))  # ~32 MiB of float64 per block
        total = np.zeros(d)
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for i in range(0, n, block):
            b = flat[i : i + block].astype(np.float64)
            if not np.isfinite(b).all():
                raise ValueError("Standardizer.fit: x contains NaN or infinity")
            total += b.sum(axis=0)
            lo, hi = np.minimum(lo, b.min(axis=0)), np.maximum(hi, b.max(axis=0))
        c = self.channels if self.mode == "channel" else None
        if c is not None:  # feature j = position·c + channel (channel-last)
            mean = np.tile(total.reshape(-1, c).sum(axis=0) / (n * (d // c)), d // c)
        else:
            mean = total / n
        sq = np.zeros(d)
        for i in range(0, n, block):
            sq += ((flat[i : i + block].astype(np.float64) - mean) ** 2).sum(axis=0)
        if c is not None:
            count = n * (d // c)
            var = np.tile(sq.reshape(-1, c).sum(axis=0) / count, d // c)
        else:
            var = sq / n
            count = n
        self._mean, self._var, self.data_min_, self.data_max_ = mean, var, lo, hi
        if self.mode in ("feature", "channel"):
            # scikit-learn's test for a variance that is zero up to rounding error.
            eps = np.finfo(np.float64).eps
            constant = var <= count * eps * var + (count * mean * eps) ** 2
            scale = np.where(constant, 1.0, np.sqrt(var))
            shift = mean
        elif self.mode == "mean_image":
            scale, shift = np.ones(d), mean
        else:
            span = hi - lo
            f_lo, f_hi = self.feature_range
            span = np.where(span <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(hi), 1.0), 1.0, span)
            scale = span / (f_hi - f_lo)
            shift = lo - f_lo * scale
        if self.min_scale > 0:
            scale = np.maximum(scale, self.min_scale)
        self.shift_, self.scale_ = shift, scale
        self.n_features_in_, self.n_samples_seen_ = d, n
        return self

    def _out_dtype(self, x: np.ndarray) -> np.dtype:
        return x.dtype if x.dtype in (np.float32, np.float64) else self.dtype

    def _check_features(self, flat, what):
        self._check_fitted()
        if flat.shape[1] != self.n_features_in_:
            raise ValueError(
                f"Standardizer.{what}: x has {flat.shape[1]} features, but the Standardizer was fitted "
                f"on {self.n_features_in_}"
            )

    def transform(self, x) -> np.ndarray:
        """``(x − shift) / scale`` with the fitted statistics; same shape as ``x``."""
        x = np.asarray(x)
        flat = self._flat(x, "transform")
        self._check_features(flat, "transform")
        dt = self._out_dtype(x)
        out = (flat.astype(dt, copy=False) - self.shift_.astype(dt)) / self.scale_.astype(dt)
        return np.ascontiguousarray(out.reshape(x.shape), dtype=dt)

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, z) -> np.ndarray:
        """``z·scale + shift``: back to the original units."""
        z = np.asarray(z)
        flat = self._flat(z, "inverse_transform")
        self._check_features(flat, "inverse_transform")
        dt = self._out_dtype(z)
        out = flat.astype(dt, copy=False) * self.scale_.astype(dt) + self.shift_.astype(dt)
        return np.ascontiguousarray(out.reshape(z.shape), dtype=dt)

    def get_config(self) -> dict:
        return {
            "mode": self.mode,
            "channels": self.channels,
            "feature_range": self.feature_range,
            "min_scale": self.min_scale,
            "dtype": self.dtype.name,
        }

    def state_dict(self) -> dict:
        """The config and fitted arrays (copies), for saving next to a model."""
        self._check_fitted()
        return {
            "config": self.get_config(),
            "shift": self.shift_.copy(),
            "scale": self.scale_.copy(),
            "mean": self._mean.copy(),
            "var": self._var.copy(),
            "n_samples_seen": self.n_samples_seen_,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> Standardizer:
        cfg = dict(state["config"])
        cfg["feature_range"] = tuple(cfg["feature_range"])
        s = cls(**cfg)
        s.shift_, s.scale_ = np.array(state["shift"], np.float64), np.array(state["scale"], np.float64)
        s._mean, s._var = np.array(state["mean"], np.float64), np.array(state["var"], np.float64)
        s.n_features_in_, s.n_samples_seen_ = s.shift_.shape[0], int(state["n_samples_seen"])
        return s

    def __repr__(self) -> str:
        fitted = f", fitted on {self.n_samples_seen_}×{self.n_features_in_}" if self.shift_ is not None else ""
        return f"Standardizer(mode={self.mode!r}{fitted})"


# --- mini-batches ------------------------------------------------------------------------------
