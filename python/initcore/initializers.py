"""Weight initializers: by name (``"he_normal"``) or as objects (``VarianceScaling(2.0)``).

Every initializer is a callable ``init(shape, rng, dtype=np.float32) -> ndarray``. A Dense
kernel has the Keras layout ``shape = (fan_in, fan_out)``; a vector ``(n,)`` has
``fan_in = fan_out = n``; for ``ndim > 2`` (convolution-like, channels last) the leading axes
are the receptive field: ``fan_in = shape[-2]·r``, ``fan_out = shape[-1]·r``, ``r = Π shape[:-2]``
(Keras's rule). Samples are drawn in float64 from the given ``numpy.random.Generator`` and
rounded once to ``dtype``, so float32 and float64 models built from one seed start from the
same weights up to that rounding.

The variance-scaling family draws ``w`` with ``Var[w] = scale / n``, ``n`` being ``fan_in``,
``fan_out`` or ``(fan_in + fan_out)/2``:

======================  =====================================  ==================================
name                    distribution                           paper
======================  =====================================  ==================================
``glorot_uniform``      U(−a, a), a = √(6 / (fan_in+fan_out))  Glorot & Bengio 2010 ("Xavier")
``glorot_normal``       N(0, σ²), σ = √(2 / (fan_in+fan_out))  Glorot & Bengio 2010
``he_normal``           N(0, σ²), σ = √(2 / fan_in)            He et al. 2015 ("Kaiming")
``he_uniform``          U(−a, a), a = √(6 / fan_in)            He et al. 2015
``lecun_normal``        N(0, σ²), σ = √(1 / fan_in)            LeCun et al. 1998; SELU (Klambauer 2017)
``lecun_uniform``       U(−a, a), a = √(3 / fan_in)            LeCun et al. 1998
======================  =====================================  ==================================

A uniform U(−a, a) has variance a²/3, hence ``a = √(3·scale/n)``.

Truncation. The named ``*_normal`` initializers draw an *untruncated* normal with exactly the
stated σ, as in the papers and in ``torch.nn.init`` (Keras draws these from a normal truncated
at ±2σ whose σ is divided by 0.87962566103423978, the standard deviation of a unit normal
truncated at ±2, so the *resulting* standard deviation is the same but the tails are cut).
``VarianceScaling(distribution="truncated_normal")`` (its default, as in Keras) does exactly that
Keras correction; ``TruncatedNormal(stddev)`` truncates at ±2·stddev with *no* correction
(``stddev`` is that of the normal before truncation), again as Keras.

Others: ``Zeros``, ``Ones``, ``Constant``, ``RandomNormal``, ``RandomUniform``,
``TruncatedNormal`` (Keras defaults: σ = 0.05, U(−0.05, 0.05)), ``Orthogonal(gain)`` (Saxe et al.
2014: a Haar-distributed orthogonal matrix from the QR factorization of a Gaussian matrix, with
the sign correction ``Q ← Q·diag(sign(diag R))``), ``Identity(gain)``, and PyTorch's
parametrisations ``KaimingNormal/KaimingUniform(a, mode, nonlinearity)`` and
``XavierNormal/XavierUniform(gain)`` with :func:`calculate_gain` (``torch.nn.init.calculate_gain``).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Union

import numpy as np

from .backend import check_dtype

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "KaimingNormal",
    "KaimingUniform",
    "XavierNormal",
    "XavierUniform",
    "Orthogonal",
    "Identity",
    "calculate_gain",
    "compute_fans",
    "get",
    "serialize",
    "deserialize",
    "TRUNCATED_NORMAL_STDDEV_CORRECTION",
]

#: Standard deviation of a unit normal truncated to [−2, 2]; Keras divides σ by it so that the
#: truncated draw keeps the intended variance.
TRUNCATED_NORMAL_STDDEV_CORRECTION = 0.87962566103423978

Shape = Union[int, tuple[int, ...]]


def _finite(name: str, value) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` if it is NaN or infinite (an
    initializer would silently fill every weight with it)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    return v


def _shape(shape: Shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        # operator.index refuses 1.5, which int() would silently make 1.
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must have non-negative dimensions, got {shape}")
    return shape


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def compute_fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` in the Keras layout (see the module doc)."""
    shape = _shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity``, as ``torch.nn.init.calculate_gain``:

    ==================  =========================
    linear, identity,   1
    sigmoid, conv*
    tanh                5/3
    relu                √2
    leaky_relu          √(2 / (1 + α²)), α = ``param`` (default 0.01)
    selu                3/4
    ==================  =========================
    """
    linear = {
        "linear",
        "identity",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    }
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, np.bool_)) or not isinstance(param, (int, float, np.integer, np.floating)):
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        # PyTorch's choice (not derived in a paper): keeps a SELU network near its fixed point
        # when used with Xavier/Kaiming-style scaling.
        return 3.0 / 4.0
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}")


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple[int, ...], bound: float = 2.0) -> np.ndarray:
    """Unit normal restricted to [−bound, bound] by redrawing the rejects (as TensorFlow does):
    exact, and about 4.6% of the draws are repeated at bound 2."""
    out = rng.standard_normal(shape)
    flat = out.reshape(-1)
    bad = np.flatnonzero(np.abs(flat) > bound)
    while bad.size:
        flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(flat[bad]) > bound]
    return out


class Initializer:
    """Base class. Subclasses implement :meth:`sample` (float64) and :meth:`get_config`."""

    def __call__(self, shape: Shape, rng: np.random.Generator | None = None, dtype=np.float32) -> np.ndarray:
        shape = _shape(shape)
        dt = check_dtype(dtype)
        out = self.sample(shape, _rng(rng))
        return np.ascontiguousarray(out, dtype=dt)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """``w = 0``."""

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """``w = 1``."""

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """``w = value``."""

    def __init__(self, value: float = 0.0):
        self.value = _finite("value", value)

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """``w ~ N(mean, stddev²)`` (Keras defaults mean 0, stddev 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = _finite("mean", mean), _finite("stddev", stddev)

    def sample(self, shape, rng):
        return self.mean + self.stddev * rng.standard_normal(shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    """``w ~ U(minval, maxval)`` (Keras defaults ±0.05)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        if not maxval >= minval:
            raise ValueError(f"maxval must be >= minval, got minval={minval}, maxval={maxval}")
        self.minval, self.maxval = _finite("minval", minval), _finite("maxval", maxval)

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class TruncatedNormal(Initializer):
    """``w ~ N(mean, stddev²)`` restricted to ``[mean − 2·stddev, mean + 2·stddev]`` (Keras).

    ``stddev`` is that of the normal *before* truncation: the result's standard deviation is
    ``0.8796·stddev``. ``VarianceScaling(distribution="truncated_normal")`` corrects for it.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = _finite("mean", mean), _finite("stddev", stddev)

    def sample(self, shape, rng):
        return self.mean + self.stddev * _truncated_standard_normal(rng, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """Draws ``w`` with ``Var[w] = scale / n`` (Keras ``VarianceScaling``).

    ``n = fan_in`` (``mode="fan_in"``), ``fan_out`` or ``(fan_in + fan_out) / 2`` (``"fan_avg"``),
    at least 1. ``distribution``:

    - ``"truncated_normal"`` (default, as Keras): N(0, σ²) cut at ±2σ with
      ``σ = √(scale/n) / 0.87962566103423978`` so that the truncated draw has variance scale/n;
    - ``"untruncated_normal"``: N(0, σ²), ``σ = √(scale/n)``;
    - ``"uniform"``: U(−a, a), ``a = √(3·scale/n)``.
    """

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"):
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if distribution not in self.DISTRIBUTIONS:
            hint = " ('normal' is ambiguous: Keras 2 read it as truncated_normal)" if distribution == "normal" else ""
            raise ValueError(f"distribution must be one of {self.DISTRIBUTIONS}, got {distribution!r}{hint}")
        self.scale, self.mode, self.distribution = _finite("scale", scale), mode, distribution

    def variance(self, shape: Shape) -> float:
        """The target variance ``scale / n`` for ``shape``."""
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        return self.scale / max(1.0, n)

    def sample(self, shape, rng):
        var = self.variance(shape)
        if self.distribution == "truncated_normal":
            return (math.sqrt(var) / TRUNCATED_NORMAL_STDDEV_CORRECTION) * _truncated_standard_normal(rng, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(var) * rng.standard_normal(shape)
        limit = math.sqrt(3.0 * var)
        return rng.uniform(-limit, limit, shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class _Named(VarianceScaling):
    """A fixed member of the variance-scaling family; no constructor arguments."""

    _args: tuple[float, str, str] = (1.0, "fan_in", "untruncated_normal")

    def __init__(self):
        super().__init__(*self._args)

    def get_config(self):
        return {}


class GlorotUniform(_Named):
    """Glorot & Bengio (2010): ``w ~ U(−a, a)``, ``a = √(6 / (fan_in + fan_out))``
    (Var = 2/(fan_in+fan_out)); PyTorch ``xavier_uniform_``; the Keras Dense default."""

    _args = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Named):
    """Glorot & Bengio (2010): ``w ~ N(0, σ²)``, ``σ = √(2 / (fan_in + fan_out))``
    (untruncated, as PyTorch ``xavier_normal_``)."""

    _args = (1.0, "fan_avg", "untruncated_normal")


class HeNormal(_Named):
    """He et al. (2015): ``w ~ N(0, σ²)``, ``σ = √(2 / fan_in)``, so a ReLU layer keeps
    ``E[y²]`` from layer to layer (untruncated, as PyTorch ``kaiming_normal_(nonlinearity="relu")``)."""

    _args = (2.0, "fan_in", "untruncated_normal")


class HeUniform(_Named):
    """He et al. (2015): ``w ~ U(−a, a)``, ``a = √(6 / fan_in)``."""

    _args = (2.0, "fan_in", "uniform")


class LecunNormal(_Named):
    """LeCun et al. (1998): ``w ~ N(0, σ²)``, ``σ = √(1 / fan_in)``; with SELU it gives
    self-normalizing networks (Klambauer et al. 2017). Untruncated."""

    _args = (1.0, "fan_in", "untruncated_normal")


class LecunUniform(_Named):
    """LeCun et al. (1998): ``w ~ U(−a, a)``, ``a = √(3 / fan_in)``."""

    _args = (1.0, "fan_in", "uniform")


class KaimingNormal(Initializer):
    """PyTorch ``kaiming_normal_``: ``w ~ N(0, σ²)``, ``σ = gain / √fan`` with
    ``gain = calculate_gain(nonlinearity, a)`` and ``fan = fan_in`` or ``fan_out`` (``mode``).
    With the defaults (``a=0``, leaky_relu) the gain is √2: He normal."""

    def __init__(self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
        calculate_gain(nonlinearity, a)  # validates
        self.a, self.mode, self.nonlinearity = _finite("a", a), mode, nonlinearity

    def std(self, shape: Shape) -> float:
        fan_in, fan_out = compute_fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return calculate_gain(self.nonlinearity, self.a) / math.sqrt(max(1, fan))

    def sample(self, shape, rng):
        return self.std(shape) * rng.standard_normal(shape)

    def get_config(self):
        return {"a": self.a, "mode": self.mode, "nonlinearity": self.nonlinearity}


class KaimingUniform(KaimingNormal):
    """PyTorch ``kaiming_uniform_``: ``w ~ U(−b, b)``, ``b = gain · √(3 / fan)``."""

    def sample(self, shape, rng):
        bound = math.sqrt(3.0) * self.std(shape)
        return rng.uniform(-bound, bound, shape)


class XavierNormal(Initializer):
    """PyTorch ``xavier_normal_``: ``w ~ N(0, σ²)``, ``σ = gain · √(2 / (fan_in + fan_out))``."""

    def __init__(self, gain: float = 1.0):
        if not gain > 0:
            raise ValueError(f"gain must be > 0, got {gain}")
        self.gain = _finite("gain", gain)

    def std(self, shape: Shape) -> float:
        fan_in, fan_out = compute_fans(shape)
        return self.gain * math.sqrt(2.0 / max(1, fan_in + fan_out))

    def sample(self, shape, rng):
        return self.std(shape) * rng.standard_normal(shape)

    def get_config(self):
        return {"gain": self.gain}


class XavierUniform(XavierNormal):
    """PyTorch ``xavier_uniform_``: ``w ~ U(−a, a)``, ``a = gain · √(6 / (fan_in + fan_out))``."""

    def sample(self, shape, rng):
        bound = math.sqrt(3.0) * self.std(shape)
        return rng.uniform(-bound, bound, shape)


class Orthogonal(Initializer):
    """Saxe et al. (2014): ``w = gain · Q`` with ``Q`` Haar-distributed on the orthogonal matrices.

    The weight is flattened to ``rows × cols`` with ``rows = Π shape[:-1]``, ``cols = shape[-1]``
    (Keras). ``A`` (``max × min`` of them) ~ N(0, 1) entrywise, ``A = QR``, and
    ``Q ← Q · diag(sign(diag R))``: without this sign correction ``Q`` depends on LAPACK's sign
    convention and is not uniformly distributed (Mezzadri 2007). When ``rows < cols`` the
    result is ``Qᵀ``. So ``wᵀw = gain²·I`` if ``fan_in ≥ fan_out`` (orthonormal columns), else
    ``wwᵀ = gain²·I`` (orthonormal rows).
    """

    def __init__(self, gain: float = 1.0):
        self.gain = _finite("gain", gain)

    def sample(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a weight with at least 2 dimensions, got shape {shape}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        if rows == 0 or cols == 0:
            return np.zeros(shape)
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0  # a zero pivot has probability 0; keep Q orthogonal anyway
        q = q * d
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain}


class Identity(Initializer):
    """``w = gain · I`` (2-D only; rectangular: ones on the main diagonal, as Keras)."""

    def __init__(self, gain: float = 1.0):
        self.gain = _finite("gain", gain)

    def sample(self, shape, rng):
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D weight, got shape {shape}")
        return self.gain * np.eye(shape[0], shape[1])

    def get_config(self):
        return {"gain": self.gain}


_CLASSES = {
    cls.__name__: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        KaimingNormal,
        KaimingUniform,
        XavierNormal,
        XavierUniform,
        Orthogonal,
        Identity,
    )
}

#: snake_case names (Keras's) and PyTorch aliases → class.
ALIASES: dict[str, type] = {
    "zeros": Zeros,
    "zero": Zeros,
    "ones": Ones,
    "one": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "normal": RandomNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "xavier_uniform": XavierUniform,
    "xavier_normal": XavierNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "kaiming_normal": KaimingNormal,
    "kaiming_uniform": KaimingUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
    "eye": Identity,
}


def serialize(initializer: Initializer) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}``, the inverse of :func:`get` / :func:`deserialize`."""
    if not isinstance(initializer, Initializer):
        raise TypeError(f"can only serialize an initcore Initializer, got {type(initializer).__name__}")
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict[str, Any]) -> Initializer:
    """An initializer from :func:`serialize`'s dict."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"an initializer config is a dict with 'class_name' (and 'config'), got {config!r}")
    name = config["class_name"]
    cls = _CLASSES.get(name) or ALIASES.get(name)
    if cls is None:
        raise ValueError(f"unknown initializer class {name!r}; known: {sorted(_CLASSES)}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier: None | str | dict[str, Any] | Initializer | Callable) -> Initializer | None:
    """Resolves ``identifier``: an :class:`Initializer` (returned as is), a name (``"he_normal"``,
    ``"HeNormal"``, ``"kaiming_normal"``...), a :func:`serialize` dict, any other callable with
    the ``(shape, rng, dtype)`` signature (returned as is), or None (returns None)."""
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}; known names: {sorted(ALIASES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer must be a name, a config dict, an Initializer or a callable, got {identifier!r}")
