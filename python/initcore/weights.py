"""Weights in and out of a :class:`initcore.Sequential`: pickling, Keras-style ``get_weights`` /
``set_weights``, a PyTorch-style ``state_dict`` / ``load_state_dict``, and safetensors files.

``Sequential`` inherits :class:`WeightsMixin`; everything here reads and writes the model only
through ``layers``, ``parameters()`` and ``buffers()``.

Names and order. ``state_dict()`` is ``{"dense_0/kernel": ..., "dense_0/bias": ...,
"batch_norm_1/gamma": ..., "batch_norm_1/beta": ..., "batch_norm_1/running_mean": ...,
"batch_norm_1/running_var": ..., ...}``: layer by layer, the trainable parameters then the buffers
(Keras' order for ``get_weights``: BatchNorm's gamma, beta, moving mean, moving variance). Arrays
keep initcore's layout (a Dense kernel is ``(input_dim, units)``, PyTorch's ``Linear.weight`` is its
transpose; ``model.to_torch()`` does that conversion). Loading checks every name, shape and dtype
kind first and only then copies *into* the live arrays, so nothing is written on error and
references held by optimizers and fused plans stay valid.

Pickling. A model pickles with everything that ``fit`` needs to continue bit for bit: the layers
(with their parameters and buffers), the Generator state, the optimizer of the last ``fit``
(``model.optimizer``, with its state: pickle keeps the identity of the ``Parameter`` objects it
shares with the model), ``epochs_completed``, ``history`` and the loss. Left out: the fused plans
(Rust workspaces, rebuilt on first use), the cached optimizer check, and the callbacks of the last
``fit`` (they belong to that call and may hold files or lambdas). Locks are replaced by fresh
unlocked ones of the same kind.

safetensors (https://github.com/huggingface/safetensors, format version of 2023): an 8-byte
little-endian header length ``N``, ``N`` bytes of JSON ``{"__metadata__": {str: str}, name:
{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}`` padded with spaces to a
multiple of 8, then the tensors' little-endian C-order bytes, back to back with no holes. The
``safetensors`` package is used when it is installed; otherwise a small writer and reader here
follow the same rules (tensors sorted by name for a single dtype, as the package does).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import write_bytes

if TYPE_CHECKING:
    import torch

    from .model import Sequential

# Attributes that are rebuilt on demand and never pickled.
_TRANSIENT = ("_fused_train", "_fused_infer", "_checked_optimizer")
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
SAFETENSORS_FORMAT = "initcore.Sequential/1"


class _FreshLock:
    """Stands in for a lock in a pickle; unpickled as a new, unlocked lock of the same kind."""

    def __init__(self, reentrant: bool):
        self.reentrant = reentrant

    def make(self):
        return threading.RLock() if self.reentrant else threading.Lock()


class WeightsMixin:
    """Pickling, weights and export methods of :class:`initcore.Sequential`."""

    # --- pickle / copy.deepcopy / joblib ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in _TRANSIENT}
        state["_fit_callbacks"] = []
        for k, v in state.items():
            if isinstance(v, _LOCK_TYPES):
                state[k] = _FreshLock(isinstance(v, _LOCK_TYPES[1]))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v.make() if isinstance(v, _FreshLock) else v for k, v in state.items()})

    # --- Keras-style lists ------------------------------------------------------------------------
    def _weight_items(self: Sequential) -> list[tuple[str, np.ndarray]]:
        """``(name, live array)`` of every parameter and buffer, in ``state_dict`` order."""
        items = []
        for layer in self.layers:
            items += [(p.name, p.value) for p in layer.parameters()]
            items += [(f"{layer.name}/{k}", v) for k, v in layer.buffers().items()]
        return items

    def get_weights(self: Sequential) -> list[np.ndarray]:
        """Copies of every parameter and buffer, layer by layer (Keras' ``get_weights``); ``[]``
        for a model that is not built."""
        return [v.copy() for _, v in self._weight_items()]

    def set_weights(self: Sequential, weights: Sequence[Any]) -> None:
        """Copies ``weights`` (a list in ``get_weights`` order and shapes) into the model."""
        self._require_built("set_weights")
        items = self._weight_items()
        weights = list(weights)
        if len(weights) != len(items):
            raise ValueError(
                f"Sequential.set_weights: got {len(weights)} arrays, the model has {len(items)} "
                f"({', '.join(name for name, _ in items)})"
            )
        _copy_checked("set_weights", [(name, live, w) for (name, live), w in zip(items, weights)])

    # --- PyTorch-style dicts ----------------------------------------------------------------------
    def state_dict(self: Sequential) -> dict[str, np.ndarray]:
        """``{name: copy}`` of every parameter and buffer (see the module docstring)."""
        return {name: v.copy() for name, v in self._weight_items()}

    def load_state_dict(self: Sequential, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copies the arrays of ``state_dict`` into the model (shapes must match; float arrays
        of the other precision are rounded to the model dtype). ``strict=False`` ignores missing
        and unexpected names, as ``torch.nn.Module.load_state_dict``."""
        self._require_built("load_state_dict")
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"Sequential.load_state_dict: state_dict must be a mapping, got {type(state_dict).__name__}"
            )
        items = dict(self._weight_items())
        if strict:
            missing = [k for k in items if k not in state_dict]
            unexpected = [k for k in state_dict if k not in items]
            if missing or unexpected:
                raise ValueError(f"Sequential.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        _copy_checked("load_state_dict", [(k, items[k], state_dict[k]) for k in items if k in state_dict])

    # --- safetensors --------------------------------------------------------------------------------
    def save_weights(self: Sequential, path: str | os.PathLike[str]) -> None:
        """Writes ``state_dict()`` to a safetensors file, atomically (a temporary file in the same
        directory, then ``os.replace``). The metadata holds the model config as JSON under
        ``"initcore.config"``."""
        self._require_built("save_weights")
        meta = {"format": SAFETENSORS_FORMAT, "initcore.config": json.dumps(self.get_config())}
        write_safetensors(path, self.state_dict(), meta)

    def load_weights(self: Sequential, path: str | os.PathLike[str], strict: bool = True) -> None:
        """Loads a safetensors file written by ``save_weights`` (or any with the same names)."""
        self._require_built("load_weights")
        tensors, _ = read_safetensors(path)
        self.load_state_dict(tensors, strict=strict)

    # --- export -----------------------------------------------------------------------------------
    def to_torch(self: Sequential) -> torch.nn.Sequential:
        """A ``torch.nn.Sequential`` with this model's weights, in evaluation mode (see
        :func:`initcore.export.to_torch`)."""
        from .export import to_torch

        return to_torch(self)


def _copy_checked(what: str, triples: list[tuple[str, np.ndarray, Any]]) -> None:
    """Validates every ``(name, live, new)`` first, then copies ``new`` into ``live``."""
    ready = []
    for name, live, new in triples:
        arr = np.asarray(new)
        if arr.dtype.kind != "f":
            raise TypeError(f"Sequential.{what}: {name} must be a float array, got dtype {arr.dtype}")
        if arr.shape != live.shape:
            raise ValueError(f"Sequential.{what}: {name} has shape {arr.shape}, the model's is {live.shape}")
        ready.append((live, arr))
    for live, arr in ready:
        np.copyto(live, arr, casting="same_kind")


# --- safetensors files --------------------------------------------------------------------------------
_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000  # the safetensors package's own limit


def _have_library() -> bool:
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def write_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> None:
    """Writes ``tensors`` to ``path`` in the safetensors format, atomically; through the
    ``safetensors`` package when installed, else :func:`_serialize`."""
    for name, arr in tensors.items():
        if not isinstance(name, str) or not isinstance(arr, np.ndarray):
            raise TypeError(f"write_safetensors: tensors must map str to ndarray, got {name!r}: {type(arr).__name__}")
    if _have_library():
        from safetensors.numpy import save

        data = save(
            {k: v.astype(v.dtype, order="C", copy=False) for k, v in tensors.items()}, metadata=dict(metadata or {})
        )
    else:
        data = _serialize(tensors, metadata)
    write_bytes(path, data, ".safetensors")


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; arrays are writable copies."""
    with open(os.fspath(path), "rb") as f:
        data = f.read()
    tensors, meta = _deserialize(data, os.fspath(path))  # validates and gives the metadata
    if _have_library():
        from safetensors.numpy import load

        tensors = load(data)
    return {k: np.array(v) for k, v in tensors.items()}, meta


def _serialize(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``tensors`` (the package's layout: tensors sorted by decreasing
    dtype alignment, then name; the header padded with spaces to a multiple of 8)."""
    entries = []
    for name, arr in tensors.items():
        code = _CODES.get(arr.dtype.newbyteorder("<"))
        if code is None:
            raise TypeError(f"write_safetensors: {name} has unsupported dtype {arr.dtype}")
        entries.append((name, code, arr.astype(_DTYPES[code], order="C", copy=False)))  # keeps 0-d shapes
    entries.sort(key=lambda e: (-e[2].dtype.itemsize, e[0]))
    header: dict[str, Any] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"write_safetensors: metadata must map str to str, got {k!r}: {v!r}")
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset, blobs = 0, []
    for name, code, arr in entries:
        blob = arr.tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def _deserialize(data: bytes, where: str = "safetensors data") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parses and validates safetensors bytes: ``(tensors, metadata)`` (read-only views)."""

    def bad(why: str) -> ValueError:
        return ValueError(f"read_safetensors: {where} is not a valid safetensors file: {why}")

    if len(data) < 8:
        raise bad(f"{len(data)} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(data):
        raise bad(f"header length {n} exceeds the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise bad("__metadata__ must map strings to strings")
    body = memoryview(data)[8 + n :]
    tensors, spans = {}, []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry {name!r} must have exactly dtype, shape and data_offsets")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _DTYPES:
            raise bad(f"{name}: unsupported dtype {code!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise bad(f"{name}: shape {shape!r} is not a list of non-negative ints")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise bad(f"{name}: data_offsets {offsets!r} is not a pair of ints")
        begin, end = offsets
        dtype = np.dtype(_DTYPES[code])
        if not 0 <= begin <= end <= len(body) or end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise bad(f"{name}: data_offsets {offsets} do not hold a {code}{tuple(shape)} within {len(body)} bytes")
        spans.append((begin, end))
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise bad(f"the data has a hole or an overlap at byte {pos}")
        pos = end
    if pos != len(body):
        raise bad(f"{len(body) - pos} trailing bytes after the tensors")
    return tensors, meta
