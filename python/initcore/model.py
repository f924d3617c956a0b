"""``Sequential``: a stack of layers with a Keras-shaped training API and PyTorch numerics.

Input conversion rule (``forward``, ``train_step``, ``fit``, ``evaluate``, ``predict``): ``x``
must be a 2-D array (or nested sequence) of real numbers (bool, integer or float) with
``input_dim`` columns; it is cast to the model's dtype with ``np.ascontiguousarray(x,
dtype)``, so a C-contiguous array of that dtype is used as is, and anything else is copied
(float64 data given to a float32 model is rounded to float32). Targets: for ``cross_entropy``,
integer class labels ``(n,)`` in ``[0, C)`` (float arrays holding integers and one-hot matrices
``(n, C)`` are converted to int64 labels); for ``binary_cross_entropy`` and ``mse``, an array of
the output's shape ``(n, C)`` (``(n,)`` when ``C = 1``), cast to the model's dtype. Anything else
is a ``TypeError`` (non-numeric) or ``ValueError`` (shape, length, label range) naming the
argument and the shapes. Cross-entropy also takes soft targets, a float ``(n, C)`` array of
class probabilities that is not one-hot; ``mae`` and ``huber`` take targets as ``mse`` does; a
Python loss (a callable) receives ``y`` as given.

The forward and backward passes go layer by layer through ``get_ops(backend)``;
``train_step`` is kept small so that a fused Rust step can replace its body (see its docstring
for the state it must leave behind).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import fused as fused_mod
from . import layers as layers_mod
from . import losses, training
from ._fit import FitMixin
from ._guard import _exclusive
from .backend import BACKENDS, check_dtype, get_ops
from .parameter import Parameter
from .saving import load_model, save_model
from .weights import WeightsMixin

if TYPE_CHECKING:
    from .callbacks import Callback, History
    from .optim import Optimizer

# One lock per model: ``train_step``, ``fit``, ``predict``, ``evaluate`` and
# ``population_statistics`` of one model run one at a time (a second thread waits), because each
# reads and writes state shared by the whole model: the weights, the fused plan's workspaces and
# output buffer, the optimizer state and ``step_count``, the RNG. Different models run in
# parallel. The locks live outside the model, so copying or pickling a model is unaffected.


class Sequential(FitMixin, WeightsMixin):
    """A linear stack of layers.

    Args:
        layers: ``initcore.layers`` objects, each used by one model only. A layer without an
            explicit ``name`` is named ``"<kind>_<index>"`` (``dense_0``, ``batch_norm_1``, ...),
            which names its parameters (``"dense_0/kernel"``).
        input_dim: width of the inputs; the model is built at once when given, else on the
            first ``forward``/``fit`` (``parameters()`` needs a built model).
        seed: seeds the model's ``numpy.random.Generator`` ``rng``, the single source of
            randomness: weight initialization (layer by layer, in order), shuffling in ``fit``
            and dropout masks. Its state is saved with the model.
        dtype: ``"float32"`` (default) or ``"float64"``, of every parameter and activation.
        backend: ``"rust"`` (``initcore.ops``) or ``"numpy"`` (the reference twin).

    Attributes: ``layers``, ``input_dim``, ``output_dim``, ``dtype``, ``backend``, ``rng``,
    ``optimizer`` (set by ``fit`` and ``load``), ``loss`` (the loss of the last ``fit``),
    ``stop_training`` (callbacks set it to end ``fit``), ``epochs_completed``, ``history``,
    ``last_output`` (the network output of the last ``train_step``), ``compiled`` (``compile``'s
    choices), ``loss_fn`` (the ``initcore.losses.Loss`` or callable of the last ``fit``), ``fused`` (default True:
    with ``backend="rust"``, ``train_step``/``fit``/``evaluate``/``predict`` run the whole network
    in one Rust call, see ``initcore.fused``; False runs it layer by layer).

    Threads: ``train_step``, ``fit``, ``predict``, ``evaluate`` and ``population_statistics``
    hold a lock of the model, so a second thread using the same model waits for the first.
    """

    def __init__(
        self,
        layers: Iterable[layers_mod.Layer] = (),
        input_dim: int | None = None,
        seed: int | None = 0,
        dtype: DTypeLike = "float32",
        backend: str = "rust",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"Sequential: backend must be one of {BACKENDS}, got {backend!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"Sequential: seed must be a non-negative int or None, got {seed!r}")
        self.dtype = check_dtype(dtype)
        self.backend = backend
        self.seed = None if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.layers: list[layers_mod.Layer] = []
        self.input_dim: int | None = None
        self.output_dim: int | None = None
        self.built = False
        self.optimizer: Optimizer | None = None
        self.loss: str | None = None
        self.stop_training = False
        self.epochs_completed = 0
        self.history: History | None = None
        self.last_output: np.ndarray | None = None
        self.fused = True
        self.loss_fn = None  # the Loss (with options) or callable of the last fit
        self.compiled = None  # compile()'s choices, bound at build
        self._fit_callbacks = []
        self.callback_states = []
        for layer in layers:
            self.add(layer)
        if input_dim is not None:
            self.build(input_dim)

    # --- structure -------------------------------------------------------------------------
    def add(self, layer: layers_mod.Layer) -> None:
        """Appends ``layer`` (before the model is built)."""
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential: layers must be initcore.layers.Layer objects, got {type(layer).__name__}")
        if self.built:
            raise ValueError("Sequential.add: the model is already built; add every layer before building it")
        if layer.built or any(layer is other for other in self.layers):
            raise ValueError(f"Sequential: layer {layer!r} is already used (a layer belongs to one model, once)")
        if not layer._user_name:
            layer.name = f"{layer.kind}_{len(self.layers)}"
        if any(layer.name == other.name for other in self.layers):
            raise ValueError(f"Sequential: duplicate layer name {layer.name!r}")
        self.layers.append(layer)

    def build(self, input_dim: int) -> Sequential:
        """Creates every layer's parameters for inputs of width ``input_dim``."""
        if self.built:
            if input_dim != self.input_dim:
                raise ValueError(
                    f"Sequential.build: the model is built for input_dim={self.input_dim}, got {input_dim}"
                )
            return self
        if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) or input_dim < 1:
            raise ValueError(f"Sequential: input_dim must be a positive int, got {input_dim!r}")
        if not self.layers:
            raise ValueError("Sequential: the model has no layers")
        dim = self.input_dim = int(input_dim)
        for layer in self.layers:
            dim = layer.build(dim, rng=self.rng, dtype=self.dtype, backend=self.backend)
        self.output_dim = dim
        self.built = True
        if self.compiled is not None and self.optimizer is None:
            self._bind_compiled()
        return self

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"Sequential.{what}: the model is not built; pass input_dim= or call build(input_dim) first"
            )

    def parameters(self) -> list[Parameter]:
        """Every trainable ``Parameter``, layer by layer (a Dense layer's kernel, then bias)."""
        self._require_built("parameters")
        return [p for layer in self.layers for p in layer.parameters()]

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state: ``{"batch_norm_1/running_mean": array, ...}`` (live arrays)."""
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in layer.buffers().items()}

    def set_backend(self, backend: str) -> None:
        """Switches every layer and parameter to the kernels of ``backend``."""
        get_ops(backend)
        self.backend = backend
        for layer in self.layers:
            if layer.built:
                layer.set_backend(backend)

    def get_config(self) -> dict[str, Any]:
        return {
            "layers": [layers_mod.serialize(layer) for layer in self.layers],
            "input_dim": self.input_dim,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "backend": self.backend,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        return cls(
            [layers_mod.deserialize(c) for c in config["layers"]],
            input_dim=config.get("input_dim"),
            seed=config.get("seed", 0),
            dtype=config.get("dtype", "float32"),
            backend=config.get("backend", "rust"),
        )

    def summary(self) -> str:
        """A table of the layers (name and type, output shape, parameter count) and the totals;
        returns the string (``print(model.summary())``)."""
        rows = [("Layer (type)", "Output shape", "Params")]
        for layer in self.layers:
            shape = f"(None, {layer.output_dim})" if layer.built else "?"
            rows.append(
                (f"{layer.name} ({type(layer).__name__})", shape, f"{sum(p.size for p in layer.parameters()):,}")
            )
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (w[0] + w[1] + w[2] + 4)
        text = [line, f"{rows[0][0]:<{w[0]}}  {rows[0][1]:<{w[1]}}  {rows[0][2]:>{w[2]}}", line]
        text += [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}" for a, b, c in rows[1:]]
        trainable = sum(p.size for layer in self.layers for p in layer.parameters())
        fixed = sum(v.size for v in self.buffers().values())
        text += [
            line,
            f"Total params: {trainable + fixed:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {fixed:,}",
            line,
        ]
        return "\n".join(text)

    # --- input checks ------------------------------------------------------------------------
    def _input(self, x, arg="x"):
        """``x`` as a C-contiguous 2-D array of the model dtype (see the module docstring);
        builds the model on first use."""
        if isinstance(x, np.ndarray) and x.dtype == self.dtype and x.ndim == 2 and x.flags.c_contiguous:
            # A misaligned view (odd byte offset) is copied: the kernels read aligned memory.
            arr = x if x.flags.aligned else x.copy()
        else:
            arr = np.asarray(x)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"Sequential: {arg} must hold real numbers (bool, int or float), got dtype {arr.dtype}")
            if arr.ndim != 2:
                hint = " (one sample: x.reshape(1, -1); one feature: x.reshape(-1, 1))" if arr.ndim == 1 else ""
                raise ValueError(f"Sequential: {arg} must be 2-D (n, features), got shape {arr.shape}{hint}")
            arr = np.ascontiguousarray(arr, dtype=self.dtype)
            if not arr.flags.aligned:
                arr = arr.copy()
        if not self.built:
            self.build(arr.shape[1])
        if arr.shape[1] != self.input_dim:
            raise ValueError(
                f"Sequential: {arg} has shape {arr.shape} but the model expects input_dim={self.input_dim} columns"
            )
        return arr

    def _target(self, y, loss, n, arg="y"):
        """``y`` in the form ``loss`` takes (see the module docstring), checked against ``n`` rows."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"Sequential: {arg} must hold numbers, got dtype {y.dtype}")
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"Sequential: {arg} has shape {y.shape} but x has {n} rows; they must match")
        c = self.output_dim
        if loss not in losses.NAMES:  # a Python loss takes the targets as given
            return np.ascontiguousarray(y)
        if loss == "cross_entropy" and y.ndim == 2 and y.shape == (n, c) and c > 1 and y.dtype.kind == "f":
            if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
                # Soft targets (rows of class probabilities), as torch.nn.CrossEntropyLoss takes them.
                if not np.all(np.isfinite(y)) or y.min() < 0:
                    raise ValueError(f"Sequential: {arg} holds soft targets with negative or non-finite values")
                return np.ascontiguousarray(y, dtype=self.dtype)
        if loss != "cross_entropy":
            if y.ndim == 1 and c == 1:
                y = y.reshape(n, 1)
            if y.shape != (n, c):
                raise ValueError(
                    f"Sequential: {arg} has shape {y.shape}, expected {(n, c)} (the output shape) for loss {loss!r}"
                )
            return np.ascontiguousarray(y, dtype=self.dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(n)
        elif y.ndim == 2 and y.shape[1] == c:
            if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
                raise ValueError(
                    f"Sequential: {arg} of shape {y.shape} is not one-hot; give integer labels (n,) for cross_entropy"
                )
            y = y.argmax(axis=1)
        if y.ndim != 1:
            raise ValueError(f"Sequential: {arg} has shape {y.shape}; cross_entropy takes integer labels ({n},)")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError(
                    f"Sequential: {arg} holds non-integer values; cross_entropy takes integer class labels"
                )
        elif y.dtype.kind == "b":
            raise TypeError(f"Sequential: {arg} is boolean; cross_entropy takes integer class labels")
        labels = np.ascontiguousarray(y, dtype=np.int64)
        if n and (labels.min() < 0 or labels.max() >= c):
            bad = int(np.flatnonzero((labels < 0) | (labels >= c))[0])
            raise ValueError(
                f"Sequential: {arg}[{bad}] = {labels[bad]} is outside [0, {c}) (the model has {c} outputs)"
            )
        return labels

    @staticmethod
    def _loss_name(loss):
        """The canonical name of a loss given by name or ``Loss``; ``"custom"`` for a callable."""
        if isinstance(loss, str):
            return losses.canonical(loss)
        if isinstance(loss, losses.Loss):
            return loss.name
        if callable(loss):
            return "custom"
        raise TypeError(
            f"Sequential: loss must be a str, an initcore.losses.Loss or a callable, got {type(loss).__name__}"
        )

    def _check_optimizer(self, optimizer):
        if optimizer is getattr(self, "_checked_optimizer", None):
            return
        held = {id(p) for p in getattr(optimizer, "params", ())}
        missing = [p.name for p in self.parameters() if id(p) not in held]
        if not callable(getattr(optimizer, "step", None)) or missing:
            raise ValueError(
                f"Sequential: the optimizer does not hold this model's parameters {missing}; "
                "create it with optimizer(model.parameters(), ...)"
            )
        self._checked_optimizer = optimizer

    # --- forward / backward --------------------------------------------------------------------
    def _forward(self, x, training):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        """The network output for ``x (n, input_dim)``; ``training=True`` uses batch statistics
        in BatchNorm (updating its running statistics) and draws dropout masks."""
        return self._forward(self._input(x), bool(training))

    def backward(self, grad: ArrayLike, need_dx: bool = True) -> np.ndarray | None:
        """Back-propagates ``grad`` (d loss / d output of the last ``forward``), overwriting
        ``p.grad`` of every parameter; returns d loss / d x (``None`` when ``need_dx=False``,
        which skips the layers below the first one with parameters)."""
        self._require_built("backward")
        grad = np.asarray(grad)
        if grad.dtype != self.dtype or grad.ndim != 2 or grad.shape[1] != self.output_dim:
            raise ValueError(
                f"Sequential.backward: grad has shape {grad.shape} {grad.dtype}, "
                f"expected (n, {self.output_dim}) {self.dtype}"
            )
        stop = 0
        if not need_dx:
            stop = next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))
        grad = np.ascontiguousarray(grad)
        for i in range(len(self.layers) - 1, stop - 1, -1):
            grad = self.layers[i].backward(grad, need_dx=need_dx or i > stop)
        return grad if need_dx else None

    @_exclusive
    def train_step(
        self,
        x: ArrayLike,
        y: ArrayLike,
        optimizer: Optimizer,
        loss: Any = "cross_entropy",
        sample_weight: ArrayLike | None = None,
    ) -> float:
        """One step of minibatch training: forward (training mode), loss and its gradient,
        backward, ``optimizer.step()``; returns the loss as a float.

        A fused implementation replacing this body must leave the same state behind: every
        ``p.value`` updated and ``p.grad`` holding this batch's gradient, BatchNorm running
        statistics updated, the optimizer's ``state``/``step_count`` advanced, dropout masks drawn
        from ``self.rng`` in layer order, and ``self.last_output`` set to the network output.

        ``loss``: a name, an ``initcore.losses.Loss`` or a callable ``loss(output, y) -> (value,
        grad)`` (layer-by-layer path). ``sample_weight (n,)``: per-sample weights of the loss."""
        if isinstance(loss, str) and sample_weight is None:
            loss = self._loss_name(loss)
            x = self._input(x)
            if self.__dict__.get("_output_checked") != loss:  # once per loss: the layers are fixed
                training.check_output_layer(self, loss)
                self._output_checked = loss
            value = fused_mod.train_step(self, x, y, optimizer, loss)  # one Rust call (fused.py), or None
            if value is not None:
                return value
            spec, name, w = losses.get(loss), loss, None
        else:
            x = self._input(x)
            spec = losses.get(loss)
            name = self._loss_name(spec)
            training.check_output_layer(self, name)
            w = training.weights_array(sample_weight, None, None, name, x.shape[0], self.dtype)
            if isinstance(spec, losses.Loss):  # options and weights run fused too
                value = fused_mod.train_step(self, x, y, optimizer, spec, w)
                if value is not None:
                    return value
        y = self._target(y, name, x.shape[0])
        self._check_optimizer(optimizer)
        out = self._forward(x, True)
        value, grad = training.loss_and_grad(spec, out, y, w, self.backend, self.dtype)
        self.backward(grad, need_dx=False)
        optimizer.step()
        self.last_output = out
        return float(value)

    @_exclusive
    def predict(self, x: ArrayLike, batch_size: int = 256) -> np.ndarray:
        """The network output (logits for a model ending in a linear Dense) in evaluation mode."""
        x = self._input(x)
        if x.shape[0] == 0:
            return np.zeros((0, self.output_dim), self.dtype)
        out = fused_mod.predict(self, x, self._batch_size(batch_size))
        if out is not None:
            return out
        return np.concatenate([self._forward(x[s], False) for s in self._batched(x, batch_size)])

    def predict_proba(self, x: ArrayLike, batch_size: int = 256) -> np.ndarray:
        """Class probabilities: ``sigmoid`` of the output for ``binary_cross_entropy`` (or a
        single-output model not trained otherwise), else ``softmax`` over the outputs."""
        if self.loss == "mse":
            raise ValueError("Sequential.predict_proba: the model was trained with mse, not a classification loss")
        ops = get_ops(self.backend)
        out = self.predict(x, batch_size)
        last = self.layers[-1] if self.layers else None
        if getattr(last, "activation", None) in ("softmax", "sigmoid") and not hasattr(last, "kernel"):
            return out  # the network already ends in a probability layer
        if self.loss == "binary_cross_entropy" or (self.loss is None and self.output_dim == 1):
            return ops.activation_forward(out, "sigmoid")
        return ops.softmax(out)

    @_exclusive
    def evaluate(
        self,
        x: ArrayLike,
        y: ArrayLike,
        loss: Any = None,
        batch_size: int = 256,
        sample_weight: ArrayLike | None = None,
        metrics: list | None = None,
    ) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ..., <metric>: ...}`` over ``x``, ``y`` in evaluation mode.

        ``loss``: default the loss of the last ``fit`` (with its options), else ``compile``'s,
        else cross-entropy; accuracy for classification losses. ``sample_weight (n,)``: the
        loss is ``Σ w_i·l_i / n`` (Keras). ``metrics``: default ``compile``'s."""
        from . import metrics as metrics_mod

        compiled = self.compiled or {}
        if loss is None:
            loss = self.loss_fn if self.loss_fn is not None else (self.loss or compiled.get("loss", "cross_entropy"))
        spec = losses.get(loss)
        loss = self._loss_name(spec)
        metric_specs = metrics if metrics is not None else compiled.get("metrics", [])
        x = self._input(x)
        y = self._target(y, loss, x.shape[0])
        if x.shape[0] == 0:
            raise ValueError("Sequential.evaluate: x has no rows")
        w = training.weights_array(sample_weight, None, y, loss, x.shape[0], self.dtype)
        tracked = [m for m in (metrics_mod.get(s) for s in metric_specs) if m.name != "accuracy"]
        for m in tracked:
            m.reset()
        # Built-in losses (their options, weights and soft targets included) are one native call;
        # the metrics it computes (top-k, mae, mse, r2) come with its sums.
        soft = loss == "cross_entropy" and y.ndim != 1
        native = None
        if isinstance(spec, losses.Loss) and not (soft and tracked):
            native = metrics_mod.native_request(tracked, loss == "cross_entropy")
        fast = None
        if native is not None:
            fast = fused_mod.evaluate(self, x, y, spec, self._batch_size(batch_size), *native, sample_weight=w)
        if fast is not None and len(fast) == 4:
            metrics_mod.load_native(tracked, fast[3])
            fast = fast[:3]
        total, correct, count = fast or (0.0, 0, 0)
        # Otherwise the outputs of one native prediction (when the model is fused), then the
        # loss and metrics batch by batch on them.
        outputs = fused_mod.predict(self, x, self._batch_size(batch_size)) if fast is None else None
        for s in self._batched(x, batch_size) if fast is None else ():
            out = outputs[s] if outputs is not None else self._forward(x[s], False)
            value, _ = training.loss_and_grad(
                spec, out, y[s], None if w is None else w[s], self.backend, self.dtype, reduction="sum"
            )
            total += value
            counts = self._accuracy_counts(out, y[s], loss)
            if counts is not None:
                correct += counts[0]
                count += counts[1]
            for m in tracked:
                m.update(out, y[s])
        per_row = loss in ("cross_entropy", "custom")
        result = {"loss": total / (y.shape[0] if per_row else y.size)}
        if count:
            result["accuracy"] = correct / count
        for m in tracked:
            result[m.name] = m.result()
        return result

    @_exclusive
    def population_statistics(self, x: ArrayLike, batch_size: int = 256) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Sets every BatchNorm layer's running statistics to the exact mean and (biased)
        variance of its inputs over all of ``x`` (layers below it in evaluation mode, with their
        own population statistics already set), as if ``x`` were one training batch; accumulated
        in float64 in a fixed order. Returns ``{layer name: (mean, var)}``."""
        h = self._input(x)
        n = h.shape[0]
        if n == 0:
            raise ValueError("Sequential.population_statistics: x has no rows")
        result = {}
        bn = [i for i, layer in enumerate(self.layers) if isinstance(layer, layers_mod.BatchNorm)]
        for layer in self.layers[: bn[-1] + 1 if bn else 0]:
            if isinstance(layer, layers_mod.BatchNorm):
                parts = self._batched(h, batch_size)
                mean = sum(h[s].sum(axis=0, dtype=np.float64) for s in parts) / n
                var = sum(((h[s] - mean) ** 2).sum(axis=0) for s in parts) / n
                layer.running_mean[...] = mean
                layer.running_var[...] = var
                result[layer.name] = (mean, var)
            if layer is not self.layers[bn[-1]]:
                h = np.concatenate([layer.forward(h[s], False) for s in self._batched(h, batch_size)])
        return result

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], callbacks: Iterable[Callback] | None = None) -> None:
        """Writes architecture, weights, BatchNorm buffers, the optimizer (class, hyper-parameters
        and ``state_dict``), the RNG state, ``epochs_completed``, the loss and the state of every
        callback with ``get_state`` (``callbacks``, default those of the running/last ``fit``) to
        one ``.npz`` file, atomically (temp file in the same directory, then ``os.replace``)."""
        save_model(self, path, self._fit_callbacks if callbacks is None else list(callbacks))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], callbacks: Iterable[Callback] | None = None, backend: str | None = None
    ) -> Sequential:
        """The model saved at ``path``, with its optimizer (``model.optimizer``) and RNG state, so
        that ``fit`` continues exactly as the uninterrupted run would. ``callbacks``: objects to
        receive the saved callback states (matched in order, by class); ``backend`` overrides
        the saved one."""
        return load_model(cls, path, callbacks, backend)

    def __repr__(self):
        return (
            f"Sequential({len(self.layers)} layers, input_dim={self.input_dim}, dtype={self.dtype.name}, "
            f"backend={self.backend!r})"
        )


# --- the save file: one .npz holding a JSON header and the arrays it refers to -----------------------
# Every dict is stored as {"__dict__": [[key, value], ...]} (keys keep their type and order),
# tuples as {"__tuple__": [...]}, arrays as {"__array__": "a<i>"} and NumPy scalars as
# {"__scalar__": "a<i>"} (a 0-d array, so the dtype survives); Python floats go through JSON's
# shortest round-trip repr, so every value comes back bit for bit.
