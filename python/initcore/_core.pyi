"""Type stubs of the Rust extension. This is the contract of ``initcore.ops``; the NumPy twin
``initcore.reference.ops`` has the same names, signatures and return conventions.

Every ``Array`` is a float32 or float64 ``numpy.ndarray``; the float arrays of one call share
one dtype. Integer label/index arrays are noted. Bad input raises ``TypeError`` (dtype, type)
or ``ValueError`` (shape, value, layout, aliasing) naming the argument, before anything is
written.
"""

from collections.abc import Sequence
from typing import Literal, TypedDict

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]
Activation = Literal["identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"]

__version__: str

#: The most threads ``set_num_threads`` (and ``INITCORE_NUM_THREADS``) accept.
MAX_THREADS: int

def set_num_threads(n: int) -> None:
    """``1 <= n <= MAX_THREADS``; a forked child starts with a fresh pool of the parent's size."""

def get_num_threads() -> int: ...

# --- matmul.rs --------------------------------------------------------------------------------
def matmul(a: Array, b: Array, trans_a: bool = False, trans_b: bool = False, out: Array | None = None) -> Array:
    """``op(a) @ op(b)``; 2-D or NumPy-broadcast 3-D; ``op`` transposes the last two axes."""

# --- dense.rs: z = x·W + b, y = act(z) (Keras layout: x (n, in), W (in, out), b (out,)) -------
def dropout_forward(x: Array, u: Array, rate: float) -> tuple[Array, Array]:
    """``mask = (u >= rate) / (1 - rate)``, ``y = x * mask``; returns ``(y, mask)``."""

def alpha_dropout_forward(x: Array, u: Array, rate: float, a: float, b: float, alpha_p: float) -> tuple[Array, Array]:
    """``mask = keep * a``, ``y = x * mask + ((1 - keep) * (a * alpha_p) + b)``; ``(y, mask)``."""

def dropout_backward(dy: Array, mask: Array) -> Array:
    """``dx = dy * mask``."""

def dense_forward(
    x: Array, w: Array, b: Array | None = None, activation: Activation = "identity", alpha: float | None = None
) -> tuple[Array, Array]:
    """Returns ``(y, z)``. ``alpha``: leaky_relu's negative slope (default 0.01) or elu's alpha
    (default 1.0); must be None for the other activations."""

def dense_backward(
    dy: Array,
    x: Array,
    w: Array,
    z: Array,
    y: Array,
    activation: Activation = "identity",
    alpha: float | None = None,
    need_dx: bool = True,
) -> tuple[Array | None, Array, Array]:
    """``dz = dy·act'(z)``; returns ``(dx = dz·Wᵀ or None, dW = xᵀ·dz, db = Σ_rows dz)``."""

# --- activation.rs (elementwise: any shape; softmax family: 2-D, along the last axis) ---------
def activation_forward(
    x: Array, activation: Activation, alpha: float | None = None, out: Array | None = None
) -> Array: ...
def activation_backward(
    dy: Array, x: Array, y: Array, activation: Activation, alpha: float | None = None, out: Array | None = None
) -> Array:
    """``dx = dy · act'(x)``, where ``y = act(x)`` is the forward's output (sigmoid, tanh, elu,
    selu use it, so nothing transcendental is recomputed)."""

def softmax(x: Array, out: Array | None = None) -> Array: ...
def softmax_backward(dy: Array, y: Array) -> Array:
    """``dx = y ⊙ (dy − Σ_j dy_j y_j)`` with ``y = softmax(x)``."""

def log_softmax(x: Array, out: Array | None = None) -> Array: ...
def log_softmax_backward(dy: Array, y: Array) -> Array:
    """``dx = dy − exp(y) Σ_j dy_j`` with ``y = log_softmax(x)``."""

def prelu_forward(x: Array, slope: Array) -> Array:
    """``x (n, m)``, ``slope (m,)``: ``y = x if x > 0 else slope·x``."""

def prelu_backward(dy: Array, x: Array, slope: Array) -> tuple[Array, Array]:
    """Returns ``(dx, dslope)`` with ``dslope_j = Σ_i dy_ij·x_ij·[x_ij ≤ 0]``."""

def maxout_forward(x: Array, k: int) -> tuple[Array, IntArray]:
    """``x (n, m·k)`` → ``y (n, m)``, ``y_ij = max_{p<k} x_{i, j·k+p}``; also returns the int64
    arg-max ``p`` (first maximum wins)."""

def maxout_backward(dy: Array, argmax: IntArray, k: int) -> Array:
    """Routes ``dy (n, m)`` to the arg-max column of each group: ``dx (n, m·k)``."""

# --- batch_norm.rs (x (n, c); per-column statistics) ------------------------------------------
def batch_norm_forward(
    x: Array,
    gamma: Array,
    beta: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array, Array]:
    """Returns ``(y, save_mean, save_invstd)``. Training: biased batch variance (two passes),
    ``running ← (1−momentum)·running + momentum·batch`` with the unbiased variance, in place.
    Evaluation: the running statistics (required)."""

def batch_norm_backward(
    dy: Array, x: Array, gamma: Array, save_mean: Array, save_invstd: Array, training: bool = True
) -> tuple[Array, Array, Array]:
    """Returns ``(dx, dgamma, dbeta)``."""

# --- losses.rs (reduction "mean" or "sum"; the loss is a Python float) ---------------------------
def cross_entropy(
    logits: Array,
    labels: IntArray | Array,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    sample_weight: Array | None = None,
) -> tuple[float, Array]:
    """Softmax cross-entropy on logits ``(n, C)`` with integer labels ``(n,)`` in ``[0, C)`` or
    soft targets ``(n, C)``; label smoothing ``ε``; per-row weights; returns ``(loss, dlogits)``."""

def binary_cross_entropy(
    logits: Array, targets: Array, reduction: str = "mean", sample_weight: Array | None = None
) -> tuple[float, Array]:
    """Sigmoid BCE on logits (numerically stable form); targets in [0, 1], same shape."""

def mse(
    pred: Array, target: Array, reduction: str = "mean", sample_weight: Array | None = None
) -> tuple[float, Array]: ...
def mae(
    pred: Array, target: Array, reduction: str = "mean", sample_weight: Array | None = None
) -> tuple[float, Array]: ...
def huber(
    pred: Array, target: Array, reduction: str = "mean", delta: float = 1.0, sample_weight: Array | None = None
) -> tuple[float, Array]: ...

# --- clip.rs: gradient clipping in place ---------------------------------------------------------
def clip_gradients(grads: tuple[Array, ...], mode: str, threshold: float) -> float:
    """``mode``: ``"norm"`` (per array), ``"global_norm"``, ``"value"``, ``"torch_norm"``; returns
    the norm before clipping."""

# --- optim.rs: in-place updates, rules and defaults of torch.optim (step counts from 1) -------
def sgd_step(
    param: Array,
    grad: Array,
    momentum_buffer: Array | None = None,
    *,
    step: int,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> None: ...
def adagrad_step(
    param: Array,
    grad: Array,
    state_sum: Array,
    *,
    step: int,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None: ...
def rmsprop_step(
    param: Array,
    grad: Array,
    square_avg: Array,
    momentum_buffer: Array | None = None,
    grad_avg: Array | None = None,
    *,
    step: int,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None: ...
def adam_step(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array | None = None,
    *,
    step: int,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None:
    """Adam; with ``decoupled_weight_decay`` it is AdamW (``adamw_step``)."""

def adamw_step(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array | None = None,
    *,
    step: int,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None: ...
def nadam_step(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    *,
    step: int,
    mu_product: float,
    lr: float = 2e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> float:
    """Returns the updated ``mu_product`` (start it at 1.0)."""

# --- stats.rs: one pass over an activation matrix x (n, m), for diagnostics ---------------------
class ColumnStats(TypedDict):
    mean: npt.NDArray[np.float64]  # (m,)
    var: npt.NDArray[np.float64]  # (m,) biased
    min: npt.NDArray[np.float64]  # (m,)
    max: npt.NDArray[np.float64]  # (m,)
    hist: npt.NDArray[np.int64]  # (len(edges) − 1,) as np.histogram(x, edges)
    saturated_fraction: float  # share of entries ≤ low or ≥ high
    dead_fraction: float  # share of columns that are 0 for every row

def column_stats(
    x: Array, edges: Array | None = None, saturation: tuple[float, float] | None = None
) -> ColumnStats: ...

# --- fused.rs: a whole network's training step in one call (used by initcore.fused) -----------
LayerDesc = tuple  # ("dense", in, out, use_bias, activation, alpha), ("batch_norm", m, momentum, eps),
# ("activation", m, name, alpha), ("prelu", m), ("maxout", in, k), ("dropout", m, rate),
# ("alpha_dropout", m, rate, a, b, alpha_p)

class FusedPlan:
    """Workspaces and layer list of one network, dtype, optimizer and loss. Parameters,
    gradients, optimizer states and BatchNorm buffers are the caller's arrays (tuples, model
    order), read and written in place at every call; the GIL is released during the compute."""

    capacity: int
    dtype: str
    state_names: list
    param_state_names: list
    param_shapes: list
    uniform_widths: list

    def __init__(
        self,
        layers: tuple[LayerDesc, ...],
        input_dim: int,
        dtype: str,
        capacity: int = 1,
        optimizer: tuple[str, dict] | None = None,
        loss: str | None = None,
        param_names: list = ...,
        label_smoothing: float = 0.0,
        delta: float = 1.0,
        clip: tuple[str, float] | None = None,
        param_optimizers: list[tuple[dict, float]] | None = None,
    ) -> None: ...
    def step(
        self,
        x: Array,
        y: Array,
        params: tuple,
        grads: tuple,
        states: tuple,
        buffers: tuple,
        uniforms: tuple,
        step: int,
        lr: float,
        out: Array,
        mu_products: list | None = None,
        sample_weight: Array | None = None,
        param_lrs: list[float] | None = None,
        momentum: float | None = None,
    ) -> float:
        """Forward (training), mean loss and its gradient, backward, optimizer update; returns the
        loss and writes the network output into ``out``. ``momentum``: this step's momentum /
        β₁ for every parameter instead of the plan's (a cycled momentum)."""
    def epoch(
        self,
        x: Array,
        y: Array,
        order: Array,
        batch_size: int,
        first: int,
        count: int,
        params: tuple,
        grads: tuple,
        states: tuple,
        buffers: tuple,
        uniforms: Array,
        step: int,
        lr: float,
        out: Array,
        progress: list,
        mu_products: list | None = None,
        lrs: Sequence[float] | None = None,
        max_seconds: float = 0.0,
        loss_sum: float = 0.0,
        sample_weight: Array | None = None,
        param_lrs: list[float] | None = None,
        momentums: Sequence[float] | None = None,
    ) -> None:
        """Steps over batches ``first .. first + count`` of ``order`` in one call, GIL released;
        ``progress`` receives ``[steps, loss_sum, samples, correct, count, last_rows]``;
        ``momentums``: one momentum / β₁ per step (OneCycle's cycled momentum)."""
    def predict(self, x: Array, out: Array, batch_size: int, params: tuple, buffers: tuple) -> None: ...
    def evaluate(
        self,
        x: Array,
        y: Array,
        loss: str,
        batch_size: int,
        params: tuple,
        buffers: tuple,
        top_k: list[int] = [],  # noqa: B006 (a stub: the default is what the binding uses)
        errors: bool = False,
        r2: bool = False,
        label_smoothing: float = 0.0,
        delta: float = 1.0,
        sample_weight: Array | None = None,
    ) -> tuple[float, int, int] | tuple[float, int, int, dict]:
        """``(summed loss, correct, count)`` in evaluation mode; with ``top_k`` (cross-entropy:
        the k of each top-k accuracy), ``errors`` (the summed absolute and squared errors) or
        ``r2`` (the sums R² needs), a fourth item holds those sums (``initcore.metrics``).
        ``loss`` may be ``"mae"``/``"huber"``, ``y`` soft targets for cross-entropy;
        ``label_smoothing``, ``delta`` and ``sample_weight (n,)`` make the summed loss the
        weighted kernel's ``Σ w_i·l_i``."""
    def reserve(self, rows: int) -> None: ...
