"""Layers of a :class:`initcore.Sequential` model (Keras-shaped, PyTorch numerics).

Every layer follows one protocol, which the model and a fused Rust training step rely on:

- ``build(input_dim, *, rng, dtype, backend) -> output_dim`` creates the parameters (drawing from
  the model's seeded ``numpy.random.Generator`` ``rng``) and remembers ``rng`` for layers that
  need randomness at training time (``Dropout``, ``AlphaDropout``).
- ``forward(x, training) -> y`` on a 2-D C-contiguous array ``x (n, input_dim)`` of ``dtype``; it
  caches what ``backward`` needs (references, no copies).
- ``backward(dy, need_dx=True) -> dx`` overwrites (never accumulates) ``p.grad`` of every
  parameter, in place, so that references to the grad arrays stay valid. With
  ``need_dx=False`` a layer may skip the input gradient and return ``None``.
- ``parameters() -> list[Parameter]`` named ``"<layer name>/<param>"``, e.g. ``"dense_0/kernel"``;
  ``buffers() -> dict[str, ndarray]`` for non-trainable state updated in place
  (``BatchNorm``'s running statistics).
- ``get_config()`` / ``from_config(config)``; :func:`serialize` / :func:`deserialize` add the class
  name.

Attributes a fused training step reads (all documented per class below): ``kind`` (the snake-case
layer type: ``"dense"``, ``"batch_norm"``, ``"activation"``, ``"prelu"``, ``"maxout"``,
``"dropout"``, ``"alpha_dropout"``), ``name``, ``input_dim``, ``output_dim``, ``dtype``,
``backend``, ``built``, and per type:

- ``Dense``: ``kernel`` (Parameter ``(input_dim, units)``), ``bias`` (Parameter ``(units,)`` or
  ``None`` without bias), ``activation`` (canonical kernel name: ``"identity"``, ``"sigmoid"``,
  ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"elu"``, ``"selu"``), ``alpha`` (float for
  ``leaky_relu``/``elu``, else ``None``), ``units``, ``use_bias``.
- ``BatchNorm``: ``gamma``, ``beta`` (Parameters ``(c,)``), ``running_mean``, ``running_var``
  (float arrays ``(c,)`` of the layer dtype, updated in place), ``momentum``, ``eps``.
- ``Activation`` (and ``LeakyReLU``, ``ELU``, ``SELU``): ``activation`` (kernel name, or
  ``"softmax"`` / ``"log_softmax"``), ``alpha``.
- ``PReLU``: ``slope`` (Parameter ``(c,)``), ``init``.  ``Maxout``: ``k``.
- ``Dropout``: ``rate``.  ``AlphaDropout``: ``rate`` and the affine correction ``a``, ``b``,
  ``alpha_p``.
- ``Dropout``/``AlphaDropout`` draw their masks from ``rng`` (the model's Generator): ``rng.random(
  x.shape, dtype=dtype) >= rate`` keeps a unit; a fused path must draw the same way to stay
  bit-identical with this one.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeVar, Union

import numpy as np
from numpy.typing import DTypeLike

from .backend import BACKENDS, check_dtype, get_ops
from .parameter import Parameter

# What an activation argument may be: a name, an Activation object or its config dict.
ActivationLike = Union[str, "Activation", dict, None]
_L = TypeVar("_L", bound="Layer")

# The elementwise activations the kernels fuse (``_core.pyi``), and the layer-only softmax family.
KERNEL_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu")
SOFTMAX_ACTIVATIONS = ("softmax", "log_softmax")
ACTIVATIONS = KERNEL_ACTIVATIONS + SOFTMAX_ACTIVATIONS
ACTIVATION_ALIASES = {"linear": "identity", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu"}
DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}

# Klambauer et al. (2017), "Self-Normalizing Neural Networks".
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _check_rate(cls, rate):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{cls}: rate must be a float in [0, 1), got {rate!r}")
    return float(rate)


def _check_positive_int(cls, arg, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{cls}: {arg} must be a positive int, got {v!r}")
    return int(v)


def _check_finite(cls, arg, v, lo=None, lo_open=False, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{cls}: {arg} must be a finite float, got {v!r}")
    v = float(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{cls}: {arg} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{cls}: {arg} must be <= {hi}, got {v}")
    return v


def resolve_activation(
    activation: ActivationLike, alpha: float | None = None, where: str = "activation"
) -> tuple[str, float | None]:
    """``(name, alpha)`` for an activation given as ``None``, a name, an ``Activation`` object
    (``LeakyReLU(0.2)``, ``SELU()``, ...) or its config dict. ``alpha`` (leaky_relu's negative
    slope, default 0.01; elu's alpha, default 1.0) is ``None`` for the other activations."""
    if isinstance(activation, dict):
        activation = deserialize(activation)
    if isinstance(activation, Activation):
        if alpha is not None and alpha != activation.alpha:
            raise ValueError(f"{where}: alpha={alpha!r} conflicts with {activation!r}")
        return activation.activation, activation.alpha
    if isinstance(activation, Layer):
        raise ValueError(
            f"{where}: expected an activation name or Activation object, got the layer {type(activation).__name__} "
            "(layers with parameters or their own shape, such as PReLU or Maxout, go into the model as their own layer)"
        )
    if activation is None:
        name = "identity"
    elif isinstance(activation, str):
        key = activation.lower()
        name = ACTIVATION_ALIASES.get(key, key)
        if name not in ACTIVATIONS:
            raise ValueError(f"{where}: unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    else:
        raise TypeError(f"{where}: activation must be None, a str or an Activation, got {type(activation).__name__}")
    if name in DEFAULT_ALPHA:
        a = DEFAULT_ALPHA[name] if alpha is None else _check_finite(where, "alpha", alpha)
        if name == "elu" and a < 0:
            raise ValueError(f"{where}: elu's alpha must be >= 0, got {a}")
        return name, a
    if alpha is not None:
        raise ValueError(
            f"{where}: alpha must be None for activation {name!r} (only leaky_relu and elu take one), got {alpha!r}"
        )
    return name, None


class Layer:
    """Base class; see the module docstring for the protocol and the attributes."""

    kind = "layer"

    def __init__(self, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty str without '/', got {name!r}")
        self.name = name or self.kind
        self._user_name = name is not None
        self.built = False
        self.input_dim: int | None = None
        self.output_dim: int | None = None
        self.dtype: np.dtype | None = None
        self.backend: str | None = None
        self.rng: np.random.Generator | None = None
        self.ops: Any = None
        self._cache: Any = None

    def build(self, input_dim: int, *, rng: np.random.Generator, dtype: DTypeLike, backend: str) -> int:
        """Creates the parameters for inputs of width ``input_dim``; returns the output width."""
        input_dim = _check_positive_int(type(self).__name__, "input_dim", input_dim)
        if backend not in BACKENDS:
            raise ValueError(f"{type(self).__name__}: backend must be one of {BACKENDS}, got {backend!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{type(self).__name__}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.input_dim = input_dim
        self.dtype = check_dtype(dtype)
        self.backend = backend
        self.ops = get_ops(backend)
        self.rng = rng
        self.output_dim = self._build(input_dim)
        self.built = True
        self._cache = None
        return self.output_dim

    def _build(self, input_dim):
        return input_dim

    # Pickling (also ``copy.deepcopy`` and ``joblib``): the ops module cannot be pickled and is
    # found again from ``backend``; the forward cache only links one forward to its backward.
    # ``rng`` is pickled with the layer, so inside a pickled model it stays the model's Generator.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["ops"] = None
        state["_cache"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.backend is not None:
            self.ops = get_ops(self.backend)

    def set_backend(self, backend: str) -> None:
        """Switches the kernels (and the backend of the parameters) to ``backend``."""
        self.ops = get_ops(backend)
        self.backend = backend
        for p in self.parameters():
            p.backend = backend

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        return self._cache

    def parameters(self) -> list[Parameter]:
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        return {}

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name} if self._user_name else {}

    @classmethod
    def from_config(cls: type[_L], config: dict[str, Any]) -> _L:
        return cls(**config)

    def _param(self, value, pname):
        return Parameter(np.ascontiguousarray(value, dtype=self.dtype), f"{self.name}/{pname}", self.backend)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer ``y = f(x·W + b)``, Keras layout: ``kernel W (input_dim, units)``,
    ``bias b (units,)``, ``f`` fused into the kernel (``dense_forward``/``dense_backward``).

    ``activation``: ``None``/``"linear"`` (logits), ``"relu"``, ``"leaky_relu"``, ``"elu"``,
    ``"selu"``, ``"sigmoid"``, ``"tanh"`` or an ``Activation`` object such as ``LeakyReLU(0.2)``;
    ``alpha`` sets leaky_relu's slope or elu's alpha. Softmax is not fused: the losses take
    logits (add ``Activation("softmax")`` only for a model that must output probabilities).
    Initializers: a name, an ``initializers`` object or its config (``initializers.get``).
    """

    kind = "dense"

    def __init__(
        self,
        units: int,
        activation: ActivationLike = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        alpha: float | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        from . import initializers

        self.units = _check_positive_int("Dense", "units", units)
        self.activation, self.alpha = resolve_activation(activation, alpha, "Dense")
        if self.activation in SOFTMAX_ACTIVATIONS:
            raise ValueError(
                f"Dense: activation {self.activation!r} is not fused; the losses take logits, so use Dense(units) "
                f"and, if probabilities are wanted, a separate Activation({self.activation!r}) layer"
            )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        if self.kernel_initializer is None or (use_bias and self.bias_initializer is None):
            raise ValueError("Dense: kernel_initializer and bias_initializer must not be None")
        self.kernel: Parameter | None = None
        self.bias: Parameter | None = None

    def _build(self, input_dim):
        self.kernel = self._param(self.kernel_initializer((input_dim, self.units), self.rng, self.dtype), "kernel")
        self.bias = None
        if self.use_bias:
            self.bias = self._param(self.bias_initializer((self.units,), self.rng, self.dtype), "bias")
        return self.units

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        b = self.bias.value if self.bias is not None else None
        y, z = self.ops.dense_forward(x, self.kernel.value, b, self.activation, self.alpha)
        self._cache = (x, z, y)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x, z, y = self._cached()
        dx, dw, db = self.ops.dense_backward(dy, x, self.kernel.value, z, y, self.activation, self.alpha, need_dx)
        np.copyto(self.kernel.grad, dw)
        if self.bias is not None:
            np.copyto(self.bias.grad, db)
        return dx

    def parameters(self) -> list[Parameter]:
        return [self.kernel] + ([self.bias] if self.bias is not None else []) if self.built else []

    def get_config(self) -> dict[str, Any]:
        from . import initializers

        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "alpha": self.alpha,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class BatchNorm(Layer):
    """Batch normalization over the rows (Ioffe & Szegedy 2015), PyTorch's ``BatchNorm1d``
    conventions: ``y = (x − mean)/sqrt(var + eps)·gamma + beta`` with the biased batch variance
    in training; ``running ← (1 − momentum)·running + momentum·batch`` (unbiased variance),
    updated in place by the kernel; evaluation mode normalizes with the running statistics.
    Training needs at least 2 rows per batch (as PyTorch).

    Parameters ``gamma`` (ones), ``beta`` (zeros); buffers ``running_mean`` (zeros),
    ``running_var`` (ones). ``Sequential.population_statistics`` replaces the running statistics
    by exact ones over a data set."""

    kind = "batch_norm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, name: str | None = None) -> None:
        super().__init__(name)
        self.momentum = _check_finite("BatchNorm", "momentum", momentum, lo=0.0, hi=1.0)
        self.eps = _check_finite("BatchNorm", "eps", eps, lo=0.0, lo_open=True)
        self.gamma: Parameter | None = None
        self.beta: Parameter | None = None
        self.running_mean: np.ndarray | None = None
        self.running_var: np.ndarray | None = None

    def _build(self, input_dim):
        self.gamma = self._param(np.ones(input_dim), "gamma")
        self.beta = self._param(np.zeros(input_dim), "beta")
        self.running_mean = np.zeros(input_dim, self.dtype)
        self.running_var = np.ones(input_dim, self.dtype)
        return input_dim

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        training = bool(training)
        y, mean, invstd = self.ops.batch_norm_forward(
            x,
            self.gamma.value,
            self.beta.value,
            self.running_mean,
            self.running_var,
            training=training,
            momentum=self.momentum,
            eps=self.eps,
        )
        self._cache = (x, mean, invstd, training)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x, mean, invstd, training = self._cached()
        dx, dgamma, dbeta = self.ops.batch_norm_backward(dy, x, self.gamma.value, mean, invstd, training=training)
        np.copyto(self.gamma.grad, dgamma)
        np.copyto(self.beta.grad, dbeta)
        return dx

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta] if self.built else []

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var} if self.built else {}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "eps": self.eps}


class Activation(Layer):
    """Elementwise activation ``y = f(x)`` (``activation_forward``/``activation_backward``), or
    the row-wise ``"softmax"`` / ``"log_softmax"``. ``name_or_obj``: a name (see ``Dense``) or
    another ``Activation`` object; ``alpha`` for leaky_relu (default 0.01) and elu (default 1)."""

    kind = "activation"

    def __init__(
        self, name_or_obj: ActivationLike = "identity", alpha: float | None = None, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.activation, self.alpha = resolve_activation(name_or_obj, alpha, type(self).__name__)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        a = self.activation
        if a == "identity":
            y = x
        elif a == "softmax":
            y = self.ops.softmax(x)
        elif a == "log_softmax":
            y = self.ops.log_softmax(x)
        else:
            y = self.ops.activation_forward(x, a, self.alpha)
        self._cache = (x, y)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x, y = self._cached()
        a = self.activation
        if a == "identity":
            return dy
        if a == "softmax":
            return self.ops.softmax_backward(dy, y)
        if a == "log_softmax":
            return self.ops.log_softmax_backward(dy, y)
        return self.ops.activation_backward(dy, x, y, a, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "name_or_obj": self.activation, "alpha": self.alpha}


class LeakyReLU(Activation):
    """``y = x if x > 0 else alpha·x`` (Maas et al. 2013; PyTorch's default slope 0.01)."""

    def __init__(self, alpha: float = 0.01, name: str | None = None) -> None:
        super().__init__("leaky_relu", alpha, name=name)

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "alpha": self.alpha}


class ELU(Activation):
    """``y = x if x > 0 else alpha·(eˣ − 1)`` (Clevert et al. 2015)."""

    def __init__(self, alpha: float = 1.0, name: str | None = None) -> None:
        super().__init__("elu", alpha, name=name)

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), "alpha": self.alpha}


class SELU(Activation):
    """``y = λx if x > 0 else λα(eˣ − 1)``, λ ≈ 1.0507, α ≈ 1.6733 (Klambauer et al. 2017); pair
    it with ``lecun_normal`` weights and ``AlphaDropout``."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__("selu", name=name)

    def get_config(self) -> dict[str, Any]:
        return Layer.get_config(self)


class PReLU(Layer):
    """Parametric ReLU (He et al. 2015): ``y = x if x > 0 else a_j·x`` with one learned slope
    per unit, Parameter ``slope (input_dim,)`` initialised to ``init``."""

    kind = "prelu"

    def __init__(self, init: float = 0.25, name: str | None = None) -> None:
        super().__init__(name)
        self.init = _check_finite("PReLU", "init", init)
        self.slope: Parameter | None = None

    def _build(self, input_dim):
        self.slope = self._param(np.full(input_dim, self.init), "slope")
        return input_dim

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x
        return self.ops.prelu_forward(x, self.slope.value)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        dx, dslope = self.ops.prelu_backward(dy, self._cached(), self.slope.value)
        np.copyto(self.slope.grad, dslope)
        return dx

    def parameters(self) -> list[Parameter]:
        return [self.slope] if self.built else []

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init": self.init}


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013) over contiguous groups of ``k`` units:
    ``y_j = max_{p<k} x_{j·k+p}``, output width ``input_dim / k`` (``Dense(m·k)`` then
    ``Maxout(k)`` is a maxout layer of ``m`` units). The gradient goes to the first maximum."""

    kind = "maxout"

    def __init__(self, k: int, name: str | None = None) -> None:
        super().__init__(name)
        self.k = _check_positive_int("Maxout", "k", k)

    def _build(self, input_dim):
        if input_dim % self.k:
            raise ValueError(f"Maxout: k={self.k} does not divide input_dim={input_dim}")
        return input_dim // self.k

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y, argmax = self.ops.maxout_forward(x, self.k)
        self._cache = argmax
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return self.ops.maxout_backward(dy, self._cached(), self.k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class Dropout(Layer):
    """Inverted dropout (Srivastava et al. 2014): in training each unit is kept with
    probability ``1 − rate`` (mask ``rng.random(x.shape, dtype) >= rate`` from the model's
    Generator) and scaled by ``1/(1 − rate)``, so evaluation is the identity. ``rate = 0`` draws
    nothing."""

    kind = "dropout"

    def __init__(self, rate: float, name: str | None = None) -> None:
        super().__init__(name)
        self.rate = _check_rate(type(self).__name__, rate)

    def _uniforms(self, x):
        return self.rng.random(x.shape, dtype=self.dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._cache = None
            return x
        y, self._cache = self.ops.dropout_forward(x, self._uniforms(x), self.rate)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy if self._cache is None else self.ops.dropout_backward(dy, self._cache)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


class AlphaDropout(Dropout):
    """Alpha dropout for SELU networks (Klambauer et al. 2017): dropped units are set to SELU's
    negative saturation ``alpha_p = −λα`` instead of 0, then ``y = a·(x·keep + alpha_p·(1 −
    keep)) + b`` with ``q = 1 − rate``, ``a = (q + alpha_p²·q·(1 − q))^(−1/2)``,
    ``b = −a·alpha_p·(1 − q)``, which keeps zero mean and unit variance inputs at mean 0 and
    variance 1. Evaluation is the identity."""

    kind = "alpha_dropout"
    alpha_p = -SELU_LAMBDA * SELU_ALPHA

    def __init__(self, rate: float, name: str | None = None) -> None:
        super().__init__(rate, name)
        q = 1.0 - self.rate
        self.a = (q + self.alpha_p**2 * q * (1.0 - q)) ** -0.5
        self.b = -self.a * self.alpha_p * (1.0 - q)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._cache = None
            return x
        y, self._cache = self.ops.alpha_dropout_forward(x, self._uniforms(x), self.rate, self.a, self.b, self.alpha_p)
        return y


LAYERS = {
    c.__name__: c for c in (Dense, BatchNorm, Activation, LeakyReLU, ELU, SELU, PReLU, Maxout, Dropout, AlphaDropout)
}


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` of a layer."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any]) -> Layer:
    """The layer described by ``serialize``'s dict."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"layer config must be a dict with 'class_name' and 'config', got {config!r}")
    cls = LAYERS.get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown layer class {config['class_name']!r}; expected one of {sorted(LAYERS)}")
    return cls.from_config(dict(config.get("config", {})))
