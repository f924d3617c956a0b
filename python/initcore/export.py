"""A trained :class:`initcore.Sequential` as a PyTorch module or an ONNX graph (inference).

Both follow the evaluation-mode network: BatchNorm normalizes with its running statistics
(PyTorch's ``BatchNorm1d.eval()``, ONNX ``BatchNormalization`` in inference mode), dropout is the
identity. Layer by layer:

==============================  ============================================  =================================
initcore                        PyTorch (``torch.nn``)                        ONNX (opset 17)
==============================  ============================================  =================================
``Dense(units, activation)``    ``Linear`` (``weight = kernel.T``) + the act.  ``Gemm`` (or ``MatMul``) + the act.
``BatchNorm(momentum, eps)``    ``BatchNorm1d`` with the running statistics    ``BatchNormalization``
relu/leaky_relu/elu/selu        ``ReLU``/``LeakyReLU(α)``/``ELU(α)``/``SELU``  ``Relu``/``LeakyRelu``/``Elu``/``Selu``
sigmoid/tanh, identity          ``Sigmoid``/``Tanh``, nothing                  ``Sigmoid``/``Tanh``, ``Identity``
softmax/log_softmax             ``Softmax(1)``/``LogSoftmax(1)``               ``Softmax``/``LogSoftmax`` (axis 1)
``PReLU``                       ``PReLU(num_parameters=c)``                    ``PRelu``
``Maxout(k)``                   none: ``to_torch`` raises                      ``Reshape`` + ``ReduceMax``
``Dropout``/``AlphaDropout``    ``Dropout``/``AlphaDropout``                   nothing (identity at inference)
==============================  ============================================  =================================

PyTorch's ``momentum`` is initcore's (both weight the new batch statistic); SELU's constants are
the same (Klambauer et al. 2017). Every array is copied, so the exported model does not share
memory with the initcore one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import layers as L
from ._files import write_bytes

if TYPE_CHECKING:
    import torch

    from .model import Sequential

__all__ = ["to_torch", "to_onnx", "ONNX_OPSET"]

ONNX_OPSET = 17


def _require_built(model: Sequential, what: str) -> None:
    from .model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"{what}: model must be an initcore.Sequential, got {type(model).__name__}")
    model._require_built(what)


# --- PyTorch -------------------------------------------------------------------------------------
def _torch_activation(nn: Any, name: str, alpha: float | None, where: str) -> list[Any]:
    if name == "identity":
        return []
    table = {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(alpha),
        "elu": lambda: nn.ELU(alpha),
        "selu": lambda: nn.SELU(),
        "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(),
        "softmax": lambda: nn.Softmax(dim=1),
        "log_softmax": lambda: nn.LogSoftmax(dim=1),
    }
    if name not in table:
        raise ValueError(f"{where}: activation {name!r} has no PyTorch counterpart")
    return [table[name]()]


def to_torch(model: Sequential) -> torch.nn.Sequential:
    """A ``torch.nn.Sequential`` computing ``model.predict`` (same dtype, evaluation mode).

    Raises ``ImportError`` without PyTorch (``pip install 'initcore[torch]'``) and
    ``NotImplementedError`` naming the layer for a layer without a PyTorch counterpart (Maxout,
    or a user-defined layer class)."""
    _require_built(model, "to_torch")
    try:
        import torch
        from torch import nn
    except ImportError as e:
        raise ImportError("to_torch needs PyTorch: pip install 'initcore[torch]'") from e

    dtype = torch.float64 if model.dtype == np.float64 else torch.float32

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=model.dtype, copy=True))

    modules: list[Any] = []
    for layer in model.layers:
        where = f"to_torch: layer {layer.name!r} ({type(layer).__name__})"
        kind = type(layer)
        if kind is L.Dense:
            lin = nn.Linear(layer.input_dim, layer.units, bias=layer.use_bias, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(tensor(layer.kernel.value.T))
                if layer.use_bias:
                    lin.bias.copy_(tensor(layer.bias.value))
            modules += [lin, *_torch_activation(nn, layer.activation, layer.alpha, where)]
        elif kind is L.BatchNorm:
            bn = nn.BatchNorm1d(layer.input_dim, eps=layer.eps, momentum=layer.momentum, dtype=dtype)
            with torch.no_grad():
                bn.weight.copy_(tensor(layer.gamma.value))
                bn.bias.copy_(tensor(layer.beta.value))
                bn.running_mean.copy_(tensor(layer.running_mean))
                bn.running_var.copy_(tensor(layer.running_var))
            modules.append(bn)
        elif kind in (L.Activation, L.LeakyReLU, L.ELU, L.SELU):
            modules += _torch_activation(nn, layer.activation, layer.alpha, where)
        elif kind is L.PReLU:
            pr = nn.PReLU(num_parameters=layer.input_dim, dtype=dtype)
            with torch.no_grad():
                pr.weight.copy_(tensor(layer.slope.value))
            modules.append(pr)
        elif kind is L.AlphaDropout:
            modules.append(nn.AlphaDropout(layer.rate))
        elif kind is L.Dropout:
            modules.append(nn.Dropout(layer.rate))
        else:
            raise NotImplementedError(
                f"{where} has no torch.nn counterpart"
                + (" (torch.nn has no Maxout; initcore.export.to_onnx exports it)" if kind is L.Maxout else "")
            )
    return nn.Sequential(*modules).eval()


# --- ONNX ----------------------------------------------------------------------------------------------
def to_onnx(model: Sequential, path: str | os.PathLike[str] | None = None, opset: int = ONNX_OPSET) -> Any:
    """The evaluation-mode network as an ``onnx.ModelProto`` (input ``"input"`` of shape
    ``(batch, input_dim)``, output ``"output"``, the model's dtype), checked with
    ``onnx.checker``; written to ``path`` atomically when given. Needs the ``onnx`` package
    (``pip install 'initcore[onnx]'``). A float64 model gives a double graph: valid ONNX, but
    onnxruntime's CPU provider has double kernels only for some operators (Gemm, Relu,
    BatchNormalization yes; Elu, for one, no)."""
    _require_built(model, "to_onnx")
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        raise ImportError("to_onnx needs the onnx package: pip install 'initcore[onnx]'") from e
    if opset < 13 or opset > 17:
        raise ValueError(f"to_onnx: opset must be in [13, 17] (ReduceMax takes axes as an attribute), got {opset}")

    elem = TensorProto.DOUBLE if model.dtype == np.float64 else TensorProto.FLOAT
    nodes: list[Any] = []
    inits: list[Any] = []
    cur = "input"
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"{base}_{counter[0]}"

    def init(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def node(op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = fresh(base)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activation(x: str, name: str, alpha: float | None, base: str, where: str) -> str:
        if name == "identity":
            return x
        if name == "relu":
            return node("Relu", [x], base)
        if name == "leaky_relu":
            return node("LeakyRelu", [x], base, alpha=float(alpha))
        if name == "elu":
            return node("Elu", [x], base, alpha=float(alpha))
        if name == "selu":
            return node("Selu", [x], base, alpha=L.SELU_ALPHA, gamma=L.SELU_LAMBDA)
        if name == "sigmoid":
            return node("Sigmoid", [x], base)
        if name == "tanh":
            return node("Tanh", [x], base)
        if name == "softmax":
            return node("Softmax", [x], base, axis=1)
        if name == "log_softmax":
            return node("LogSoftmax", [x], base, axis=1)
        raise ValueError(f"{where}: activation {name!r} has no ONNX counterpart")

    for layer in model.layers:
        kind, nm = type(layer), layer.name
        where = f"to_onnx: layer {nm!r} ({kind.__name__})"
        if kind is L.Dense:
            w = init(f"{nm}/kernel", layer.kernel.value)
            if layer.use_bias:
                cur = node("Gemm", [cur, w, init(f"{nm}/bias", layer.bias.value)], f"{nm}/linear")
            else:
                cur = node("MatMul", [cur, w], f"{nm}/linear")
            cur = activation(cur, layer.activation, layer.alpha, f"{nm}/{layer.activation}", where)
        elif kind is L.BatchNorm:
            ins = [cur] + [
                init(f"{nm}/{k}", a)
                for k, a in (
                    ("gamma", layer.gamma.value),
                    ("beta", layer.beta.value),
                    ("running_mean", layer.running_mean),
                    ("running_var", layer.running_var),
                )
            ]
            cur = node("BatchNormalization", ins, nm, epsilon=float(layer.eps), momentum=1.0 - float(layer.momentum))
        elif kind in (L.Activation, L.LeakyReLU, L.ELU, L.SELU):
            cur = activation(cur, layer.activation, layer.alpha, nm, where)
        elif kind is L.PReLU:
            cur = node("PRelu", [cur, init(f"{nm}/slope", layer.slope.value)], nm)
        elif kind is L.Maxout:
            shape = init(f"{nm}/shape", np.array([-1, layer.output_dim, layer.k], np.int64))
            grouped = node("Reshape", [cur, shape], f"{nm}/groups")
            cur = node("ReduceMax", [grouped], nm, axes=[2], keepdims=0)
        elif kind in (L.Dropout, L.AlphaDropout):
            continue  # the identity in evaluation mode
        else:
            raise NotImplementedError(f"{where} has no ONNX export")
    nodes.append(helper.make_node("Identity", [cur], ["output"], name="output"))
    graph = helper.make_graph(
        nodes,
        "initcore.Sequential",
        [helper.make_tensor_value_info("input", elem, ["batch", model.input_dim])],
        [helper.make_tensor_value_info("output", elem, ["batch", model.output_dim])],
        initializer=inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="initcore")
    from . import __version__

    proto.producer_version = __version__
    proto.ir_version = min(proto.ir_version, 8)  # readable by every onnxruntime that runs opset 17
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        write_bytes(path, proto.SerializeToString(), ".onnx")
    return proto
