"""Saving and loading a :class:`~initcore.model.Sequential`: one ``.npz`` archive holding the
config (JSON), every parameter and buffer, the optimizer's state and the callbacks' states,
written atomically; reading refuses archives whose arrays would exceed a size budget
(decompression bombs) before inflating them."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from . import losses
from ._files import atomic_write

FILE_FORMAT = "initcore.Sequential/1"
# A header beyond this is not one ``save`` wrote (it holds a config and a few scalars).
_MAX_HEADER_BYTES = 64 << 20


def _encode(obj, arrays, where):
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError(f"save: cannot store an object array at {where}")
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return {"__array__" if isinstance(obj, np.ndarray) else "__scalar__": key}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {
            "__dict__": [[_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]
        }
    raise TypeError(f"save: cannot store a {type(obj).__name__} at {where}")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    ((tag, v),) = obj.items()
    if tag == "__array__":
        return np.array(arrays[v])
    if tag == "__scalar__":
        return arrays[v][()]
    if tag == "__tuple__":
        return tuple(_decode(x, arrays) for x in v)
    if tag == "__dict__":
        return {_decode(k, arrays): _decode(x, arrays) for k, x in v}
    raise ValueError(f"unknown tag {tag!r}")


def save_model(model, path, callbacks):
    opt = model.optimizer
    doc = {
        "format": FILE_FORMAT,
        "config": model.get_config(),
        "weights": {p.name: p.value for p in model.parameters()} if model.built else {},
        "buffers": model.buffers(),
        "rng": model.rng.bit_generator.state,
        "epochs_completed": model.epochs_completed,
        "loss": model.loss,
        "loss_config": model.loss_fn.get_config() if isinstance(model.loss_fn, losses.Loss) else None,
        "optimizer": None if opt is None else {"class": type(opt).__name__, "state_dict": opt.state_dict()},
        "callbacks": [
            {"class": type(cb).__name__, "state": cb.get_state()}
            for cb in callbacks
            if callable(getattr(cb, "get_state", None))
        ],
    }
    arrays = {}
    header = json.dumps(_encode(doc, arrays, "model"))
    arrays["header"] = np.array(header)
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays), suffix=".npz")


def _array_budget(doc):
    """The most array bytes a file of this header's architecture can hold: weights and buffers,
    up to four optimizer states and a callback's copy of the weights, and 1 MiB for scalars."""
    from .model import Sequential

    probe = Sequential.from_config({**doc["config"], "backend": "numpy"})
    live = [p.value for p in probe.parameters()] if probe.built else []
    live += list(probe.buffers().values())
    return 8 * sum(a.nbytes for a in live) + (1 << 20)


def _check_sizes(path, z, budget):
    """Before anything is decompressed: the sizes the zip directory declares must fit the header
    (zipfile then stops every member at its declared size)."""
    sizes = {info.filename: info.file_size for info in z.zip.infolist()}
    if budget is None:
        if sizes.get("header.npy", 0) > _MAX_HEADER_BYTES:
            raise ValueError(
                f"Sequential.load: {path}: the header declares {sizes['header.npy']} bytes, "
                f"more than {_MAX_HEADER_BYTES} (not a file save wrote)"
            )
        return
    total = sum(v for k, v in sizes.items() if k != "header.npy")
    if total > budget:
        raise ValueError(
            f"Sequential.load: {path}: its arrays declare {total} bytes, but the architecture in its "
            f"header holds at most {budget} (a corrupt or hostile file)"
        )


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ValueError(f"Sequential.load: {path} is not an initcore model file (no header)")
            _check_sizes(path, z, None)
            header = json.loads(str(z["header"]))
            shell = _decode(header, _Missing())
            if isinstance(shell, dict) and shell.get("format") == FILE_FORMAT:
                _check_sizes(path, z, _array_budget(shell))
            arrays = {k: z[k] for k in z.files if k != "header"}
        doc = _decode(header, arrays)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, FileNotFoundError) or str(e).startswith("Sequential.load"):
            raise
        raise ValueError(
            f"Sequential.load: {path} is not a readable initcore model file ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise ValueError(f"Sequential.load: {path} is not an initcore model file (format {FILE_FORMAT!r})")
    return doc


class _Missing(dict):
    """Arrays not read yet: ``_decode`` of a header alone (every array ``None``)."""

    def __missing__(self, key):
        return np.zeros(())


def _restore_optimizer(model, spec):
    """The saved optimizer over the loaded parameters: constructed with its defaults, then
    ``load_state_dict`` restores hyper-parameters (``lr`` included), step count and state."""
    from . import optim

    sd = spec["state_dict"]
    cls = getattr(optim, spec["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        kind = sd["param_groups"][0]["kind"] if "param_groups" in sd else sd["kind"]
        cls = optim.OPTIMIZERS[kind]
    params = model.parameters()
    if "param_groups" in sd:  # the saved parameter groups, by name
        by_name = {p.name: p for p in params}
        params = [{"params": [by_name[n] for n in g["param_names"]]} for g in sd["param_groups"]]
    opt = cls(params)
    opt.load_state_dict(sd)
    return opt


def load_model(cls, path, callbacks, backend):
    path = os.fspath(path)
    doc = _read(path)
    config = dict(doc["config"])
    if backend is not None:
        config["backend"] = backend
    model = cls.from_config(config)
    params = model.parameters() if model.built else []
    for name, arrays, saved in (
        ("weights", {p.name: p.value for p in params}, doc["weights"]),
        ("buffers", model.buffers(), doc["buffers"]),
    ):
        if set(arrays) != set(saved):
            raise ValueError(
                f"Sequential.load: {path}: {name} {sorted(saved)} do not match the architecture's {sorted(arrays)}"
            )
        for key, live in arrays.items():
            if saved[key].shape != live.shape or saved[key].dtype != live.dtype:
                raise ValueError(
                    f"Sequential.load: {path}: {key} is {saved[key].shape} {saved[key].dtype}, "
                    f"expected {live.shape} {live.dtype}"
                )
            np.copyto(live, saved[key])
    model.rng.bit_generator.state = doc["rng"]
    model.epochs_completed = int(doc["epochs_completed"])
    model.loss = doc["loss"]
    if doc.get("loss_config") is not None:  # the loss's options (label smoothing, Huber's delta)
        model.loss_fn = losses.Loss(**doc["loss_config"])
    if doc["optimizer"] is not None:
        model.optimizer = _restore_optimizer(model, doc["optimizer"])
    model.callback_states = doc["callbacks"]
    if callbacks is not None:
        targets = [cb for cb in callbacks if callable(getattr(cb, "set_state", None))]
        got = [type(cb).__name__ for cb in targets]
        want = [s["class"] for s in doc["callbacks"]]
        if got != want:
            raise ValueError(f"Sequential.load: callbacks {got} do not match the saved callback states {want}")
        for cb, s in zip(targets, doc["callbacks"]):
            cb.set_state(s["state"])
        model._fit_callbacks = list(callbacks)
    return model
