"""The machinery every optimizer shares: hyper-parameter checks, parameter groups
(``ParamGroup``), eagerly created state, atomic steps, gradient clipping, and ``state_dict`` in
PyTorch's layout. The update rules themselves are in :mod:`initcore.optim.rules`."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, MutableMapping
from typing import Any, Callable

import numpy as np

from ..backend import get_ops
from ..parameter import Parameter


def _number(name: str, value, *, low: float = 0.0, high: float | None = None, what: str = "value") -> float:
    """Torch-style check: ``Invalid <what>: <value>`` unless ``low ≤ value (< high)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or v < low or (high is not None and v >= high):
        raise ValueError(f"Invalid {what}: {value}")
    return v


def _check_hyper(kind: str, hyper: dict[str, Any]) -> None:
    """Rejects hyper-parameters no step could use, when the optimizer is built (and again before
    every step, as ``hyper`` is a public dict): every number finite, and the ranges the update
    rule needs. Raises ``ValueError`` naming the key and the optimizer."""
    for key, v in hyper.items():
        if isinstance(v, bool):
            continue
        if not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{kind}: hyper-parameter {key!r} must be a number, got {type(v).__name__}")
        if not math.isfinite(float(v)):
            raise ValueError(f"{kind}: hyper-parameter {key!r} must be finite, got {v}")
        if key != "dampening" and v < 0:
            raise ValueError(f"{kind}: hyper-parameter {key!r} must be >= 0, got {v}")
    for key in ("beta1", "beta2"):
        if key in hyper and not 0.0 <= hyper[key] < 1.0:
            raise ValueError(f"{kind}: hyper-parameter {key!r} must be in [0, 1), got {hyper[key]}")
    if kind == "rmsprop":
        if not hyper["eps"] > 0:
            raise ValueError(f"rmsprop: hyper-parameter 'eps' must be > 0, got {hyper['eps']}")
        for key in ("alpha", "momentum"):
            if not 0.0 <= hyper[key] < 1.0:
                raise ValueError(f"rmsprop: hyper-parameter {key!r} must be in [0, 1), got {hyper[key]}")


def _betas(betas) -> tuple[float, float]:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return (
        _number("betas[0]", b1, high=1.0, what="beta parameter at index 0"),
        _number("betas[1]", b2, high=1.0, what="beta parameter at index 1"),
    )


class Optimizer:
    """Base class. Subclasses set ``kind`` (the kernel ``<kind>_step``), validate their
    hyper-parameters into ``self.hyper`` and list their state in :meth:`_state_spec`."""

    kind: str = ""

    def __init__(self, params: Iterable[Parameter], hyper: dict[str, Any], **clip):
        groups = _split_groups(params)
        params = [p for group, _ in groups for p in group]
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        names = set()
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"params must be initcore.Parameter objects, got {type(p).__name__}")
            if p.name in names:
                raise ValueError(f"params: the name {p.name!r} appears twice (state is keyed by name)")
            names.add(p.name)
        _check_hyper(self.kind, hyper)
        self.params: list[Parameter] = params
        self.hyper: dict[str, Any] = dict(hyper)
        self.step_count = 0
        self.state: dict[str, dict[str, Any]] = {}
        self._init_groups(groups)
        self._init_clip(clip)
        for group in self.param_groups:
            spec = self._state_spec(group.hyper())
            for p in group["params"]:
                self._ensure_state(p, spec)

    # -- learning rate (set by schedules) --------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        v = _number("lr", value, what="learning rate")
        if not math.isfinite(v):
            raise ValueError(f"Invalid learning rate: {value}")
        self.hyper["lr"] = v
        # Groups with a learning rate of their own keep their ratio to the default one, as
        # PyTorch's schedulers scale every group's initial_lr by the same factor.
        for over, factor in zip(self._overrides, self._lr_factors):
            if "lr" in over:
                over["lr"] = v * factor

    # -- momentum (cycled by schedules.OneCycle) ----------------------------------------------------
    @property
    def momentum_key(self) -> str | None:
        """The hyper-parameter a cycled momentum sets: ``"beta1"`` (Adam family), ``"momentum"``
        (SGD, RMSprop), or ``None`` (Adagrad), as ``OneCycleLR(cycle_momentum=True)`` picks
        ``betas[0]`` or ``momentum``."""
        if "beta1" in self.hyper:
            return "beta1"
        return "momentum" if "momentum" in self.hyper else None

    def set_momentum(self, value: float) -> None:
        """Sets the momentum / β₁ of every group to ``value`` (a group's own value is replaced,
        as PyTorch's OneCycleLR writes it into every group)."""
        key = self.momentum_key
        if key is None:
            raise ValueError(f"{type(self).__name__} has no momentum or beta1 to set")
        v = self._check_overrides(0, {key: value})[key]
        _check_hyper(self.kind, {**self.hyper, key: v})
        self.hyper[key] = v
        for over in self._overrides:
            over.pop(key, None)

    # -- state -------------------------------------------------------------------------------------
    def _state_spec(self, hyper: dict[str, Any] | None = None) -> dict[str, Any]:
        """State entries this optimizer needs with ``hyper`` (default ``self.hyper``): name →
        fill value of an array (a float), or ``("scalar", initial)`` for a Python float."""
        return {}

    def _ensure_state(self, p: Parameter, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        st = self.state.setdefault(p.name, {})
        for key, fill in (self._state_spec() if spec is None else spec).items():
            if key not in st:
                if isinstance(fill, tuple):
                    st[key] = fill[1]
                else:
                    st[key] = np.full(p.value.shape, fill, dtype=p.value.dtype)
        return st

    # -- the update ------------------------------------------------------------------------------
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter from its ``grad``. ``closure`` (optional, as in
        ``torch.optim``) recomputes the loss and gradients first; its value is returned."""
        loss = closure() if closure is not None else None
        groups = []
        for group in self.param_groups:
            hyper = group.hyper()
            _check_hyper(self.kind, hyper)  # `hyper` and the groups are public dicts: checked again here
            spec = self._state_spec(hyper)
            arrays = [k for k, fill in spec.items() if not isinstance(fill, tuple)]
            groups.append((group["params"], hyper, arrays, [self._ensure_state(p, spec) for p in group["params"]]))
        # All or nothing: every argument any kernel would refuse is refused here, before the
        # first gradient is clipped or parameter written (the fused step does the same in one call).
        for params, _, arrays, states in groups:
            self._check_step(params, states, arrays)
        if self.clip is not None:
            self.clip_gradients()
        step = self.step_count + 1
        for params, hyper, arrays, states in groups:
            for p, st in zip(params, states):
                self._update(p, st, arrays, step, hyper)
        self.step_count = step
        return loss

    def _check_step(self, params: list[Parameter], states: list[dict[str, Any]], arrays: list[str]) -> None:
        for p, st in zip(params, states):
            written = [("value", p.value)] + [(f"state[{p.name!r}][{k!r}]", st[k]) for k in arrays]
            for what, a in written + [("grad", p.grad)]:
                if not isinstance(a, np.ndarray) or a.dtype != p.value.dtype or a.shape != p.value.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: {p.name!r}: {what} must be a {p.value.dtype} array of shape "
                        f"{p.value.shape}, got {getattr(a, 'dtype', type(a).__name__)}{getattr(a, 'shape', '')}"
                    )
            for what, a in written:
                if not a.flags.writeable:
                    raise ValueError(f"{type(self).__name__}.step: {p.name!r}: {what} is read-only")
                if not a.flags.c_contiguous:
                    raise ValueError(f"{type(self).__name__}.step: {p.name!r}: {what} must be C-contiguous")
            for i, (what, a) in enumerate(written):
                for other, b in written[i + 1 :] + [("grad", p.grad)]:
                    if np.may_share_memory(a, b):
                        raise ValueError(f"{type(self).__name__}.step: {p.name!r}: {what} shares memory with {other}")

    def _update(self, p: Parameter, st: dict[str, Any], arrays: list[str], step: int, hyper: dict[str, Any]) -> None:
        """Calls the kernel with the state arrays it needs now (entries left over from other
        hyper-parameter values stay in ``state`` but are not passed)."""
        fn = getattr(get_ops(p.backend), f"{self.kind}_step")
        fn(p.value, p.grad, **{k: st[k] for k in arrays}, step=step, **hyper)

    def zero_grad(self) -> None:
        """Sets every parameter's ``grad`` to 0 (in place: the arrays stay the same objects)."""
        for p in self.params:
            p.grad[...] = 0

    # -- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy in ``torch.optim``'s layout: ``{"state": {index: {"step", <arrays>}},
        "param_groups": [{<hyper-parameters>, "params": [indices], "param_names": [...]}]}``.
        Indices count the parameters in order over the groups; the hyper-parameters carry
        PyTorch's names (``betas`` as a pair), and each group also names the optimizer
        (``kind``) and its clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``)."""
        state = {}
        for i, p in enumerate(self.params):
            st = self.state.get(p.name, {})
            state[i] = {"step": int(self.step_count)}
            state[i].update({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()})
        groups, start = [], 0
        clip = {k: None for k in _CLIP_ARGS}
        if self.clip is not None:
            clip[_CLIP_ARG_OF[self.clip[0]]] = self.clip[1]
        for group in self.param_groups:
            d = _torch_names(group.hyper())
            d.update(clip, kind=self.kind)
            count = len(group["params"])
            d["params"] = list(range(start, start + count))
            d["param_names"] = [p.name for p in group["params"]]
            start += count
            groups.append(d)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s output exactly (and the layout of initcore before
        parameter groups: ``{"kind", "hyper", "step_count", "param_names", "state"}``). Checks
        everything first (kind, groups, parameter names, array shapes and dtypes), then copies
        *into* the existing state arrays."""
        sd = state_dict
        if "param_groups" in sd:
            self._load_grouped(sd)
            return
        for key in ("kind", "hyper", "step_count", "state"):
            if key not in sd:
                raise ValueError(f"state_dict: missing key {key!r}")
        if sd["kind"] != self.kind:
            raise ValueError(f"state_dict: it is a {sd['kind']!r} optimizer's, this one is {self.kind!r}")
        unknown = set(sd["hyper"]) - set(self.hyper)
        if unknown:
            raise ValueError(f"state_dict: unknown hyper-parameters {sorted(unknown)} for {self.kind}")
        mine = {p.name: p for p in self.params}
        if set(sd["state"]) != set(mine):
            raise ValueError(
                f"state_dict: parameter names differ: missing {sorted(set(mine) - set(sd['state']))}, "
                f"unexpected {sorted(set(sd['state']) - set(mine))}"
            )
        for name, st in sd["state"].items():
            p = mine[name]
            for k, v in st.items():
                if isinstance(v, np.ndarray) and (v.shape != p.value.shape or v.dtype != p.value.dtype):
                    raise ValueError(
                        f"state_dict: state[{name!r}][{k!r}] is {v.dtype}{v.shape}, "
                        f"parameter is {p.value.dtype}{p.value.shape}"
                    )
        # Validated; now write.
        self.hyper.update(copy.deepcopy(sd["hyper"]))
        self.step_count = int(sd["step_count"])
        for name, st in sd["state"].items():
            cur = self.state.setdefault(name, {})
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    if isinstance(cur.get(k), np.ndarray):
                        cur[k][...] = v
                    else:
                        cur[k] = np.array(v, dtype=mine[name].value.dtype, order="C", copy=True)
                else:
                    cur[k] = copy.deepcopy(v)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("] + [f"    {k}: {v}" for k, v in self.hyper.items()]
        for i, over in enumerate(self._overrides):
            if over:
                lines.append(f"    group {i}: {over}")
        if self.clip is not None:
            lines.append(f"    {_CLIP_ARG_OF[self.clip[0]]}: {self.clip[1]}")
        lines.append(f"    params: {len(self.params)}, step_count: {self.step_count}")
        return "\n".join(lines + [")"])

    # -- parameter groups, clipping, the grouped state_dict (see the block at the end) --------------
    def _init_groups(self, groups) -> None:
        self._group_params: list[list[Parameter]] = [list(ps) for ps, _ in groups]
        self._overrides: list[dict[str, Any]] = [self._check_overrides(i, over) for i, (_, over) in enumerate(groups)]
        base = self.hyper.get("lr", 0.0)
        self._lr_factors = [over["lr"] / base if "lr" in over and base else 1.0 for over in self._overrides]
        self.param_groups: list[ParamGroup] = [ParamGroup(self, i) for i in range(len(groups))]

    def _check_overrides(self, i: int, over: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in over.items():
            if key == "betas" and "beta1" in self.hyper:
                out["beta1"], out["beta2"] = _betas(value)
            elif key not in self.hyper:
                raise ValueError(
                    f"param_groups[{i}]: unknown hyper-parameter {key!r} for {type(self).__name__} "
                    f"(known: {sorted(self.hyper) + (['betas'] if 'beta1' in self.hyper else [])})"
                )
            elif isinstance(self.hyper[key], bool):
                out[key] = bool(value)
            elif key == "dampening":
                out[key] = _number(f"param_groups[{i}]['{key}']", value, low=-math.inf, what=f"{key} value")
            else:
                out[key] = _number(f"param_groups[{i}]['{key}']", value, what=f"{key} value")
        return out

    def _init_clip(self, clip: dict[str, Any]) -> None:
        self.clip: tuple[str, float] | None = self._clip_rule(clip)

    def _clip_rule(self, clip: dict[str, Any]) -> tuple[str, float] | None:
        """``(mode, threshold)`` of ``initcore.ops.clip_gradients`` for Keras's arguments."""
        unknown = sorted(set(clip) - set(_CLIP_ARGS))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}")
        given = {k: v for k, v in clip.items() if v is not None}
        if len(given) > 1:
            raise ValueError(f"Only one of clipnorm, clipvalue and global_clipnorm can be set, got {sorted(given)}")
        for key, value in given.items():
            v = _number(key, value, what=f"{key} value")
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
            return (_CLIP_ARGS[key], v)
        return None

    @property
    def clipnorm(self) -> float | None:
        return self.clip[1] if self.clip is not None and self.clip[0] == "norm" else None

    @property
    def global_clipnorm(self) -> float | None:
        return self.clip[1] if self.clip is not None and self.clip[0] == "global_norm" else None

    @property
    def clipvalue(self) -> float | None:
        return self.clip[1] if self.clip is not None and self.clip[0] == "value" else None

    def clip_gradients(self) -> float:
        """Applies this optimizer's clipping to every ``p.grad`` in place (what :meth:`step`
        does first); returns the norm before clipping (see ``initcore.ops.clip_gradients``)."""
        if self.clip is None:
            return 0.0
        grads = tuple(p.grad for p in self.params)
        return float(get_ops(self.params[0].backend).clip_gradients(grads, self.clip[0], self.clip[1]))

    def group_signature(self) -> tuple:
        """What the groups override apart from their learning rates' values (their ratios to
        the default rate count): a fused plan is rebuilt when it changes."""
        return tuple(
            (tuple(sorted((k, v) for k, v in over.items() if k != "lr")), "lr" in over, factor)
            for over, factor in zip(self._overrides, self._lr_factors)
        )

    def uniform_hyper(self) -> bool:
        """Whether every parameter is updated with ``self.hyper`` (no group overrides a value),
        the case the fused step handles with one set of hyper-parameters."""
        return all(all(self.hyper[k] == v for k, v in over.items()) for over in self._overrides)

    def _load_grouped(self, sd: dict[str, Any]) -> None:
        groups = sd["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != len(self.param_groups):
            n = len(groups) if isinstance(groups, (list, tuple)) else type(groups).__name__
            raise ValueError(f"state_dict: {n} param_groups, this optimizer has {len(self.param_groups)}")
        overrides, clip, start = [], None, 0
        for i, (g, mine) in enumerate(zip(groups, self.param_groups)):
            kind = g.get("kind", self.kind)
            if kind != self.kind:
                raise ValueError(f"state_dict: it is a {kind!r} optimizer's, this one is {self.kind!r}")
            count = len(mine["params"])
            if list(g.get("params", ())) != list(range(start, start + count)):
                raise ValueError(
                    f"state_dict: param_groups[{i}] holds parameters {list(g.get('params', ()))}, "
                    f"this optimizer's group {i} has {count} (indices {start}..{start + count - 1})"
                )
            names = g.get("param_names")
            if names is not None and list(names) != [p.name for p in mine["params"]]:
                raise ValueError(
                    f"state_dict: param_groups[{i}] names {list(names)}, this optimizer's "
                    f"{[p.name for p in mine['params']]}"
                )
            start += count
            over = {k: v for k, v in g.items() if k not in ("params", "param_names", "kind", *_CLIP_ARGS)}
            overrides.append(self._check_overrides(i, over))
            if i == 0:
                clip = self._clip_rule({k: g.get(k) for k in _CLIP_ARGS})
        state = sd.get("state", {})
        keyed = {}
        for i, p in enumerate(self.params):
            st = state.get(i, state.get(str(i)))
            if st is None:
                raise ValueError(f"state_dict: no state for parameter {i} ({p.name!r})")
            for k, v in st.items():
                if isinstance(v, np.ndarray) and (v.shape != p.value.shape or v.dtype != p.value.dtype):
                    raise ValueError(
                        f"state_dict: state[{i}][{k!r}] ({p.name}) is {v.dtype}{v.shape}, "
                        f"parameter is {p.value.dtype}{p.value.shape}"
                    )
            keyed[p.name] = st
        steps = {int(st.get("step", 0)) for st in keyed.values()}
        if len(steps) > 1:
            raise ValueError(f"state_dict: the parameters have different step counts {sorted(steps)}")
        # Validated; now write. Group 0's values become the defaults, the others' differences
        # from them their overrides.
        self.hyper.update(overrides[0])
        self._overrides = [{k: v for k, v in over.items() if v != self.hyper[k]} for over in overrides]
        base = self.hyper.get("lr", 0.0)
        self._lr_factors = [over["lr"] / base if "lr" in over and base else 1.0 for over in self._overrides]
        self.clip = clip
        self.step_count = steps.pop() if steps else 0
        for name, st in keyed.items():
            cur = self.state.setdefault(name, {})
            p = next(q for q in self.params if q.name == name)
            for k, v in st.items():
                if k == "step":
                    continue
                if isinstance(v, np.ndarray):
                    if isinstance(cur.get(k), np.ndarray):
                        cur[k][...] = v
                    else:
                        cur[k] = np.array(v, dtype=p.value.dtype, order="C", copy=True)
                else:
                    cur[k] = copy.deepcopy(v)


_CLIP_ARGS = {"clipnorm": "norm", "global_clipnorm": "global_norm", "clipvalue": "value"}


_CLIP_ARG_OF = {v: k for k, v in _CLIP_ARGS.items()}


def _split_groups(params) -> list[tuple[list[Parameter], dict[str, Any]]]:
    """``[(params, overrides)]`` from a list of Parameters or of group dicts."""
    items = list(params)
    if not items or not isinstance(items[0], dict):
        if any(isinstance(it, dict) for it in items):
            raise TypeError("params: give either Parameters or parameter-group dicts, not a mix")
        return [(items, {})]
    groups = []
    for i, g in enumerate(items):
        if not isinstance(g, dict) or "params" not in g:
            raise TypeError(f"params[{i}] must be a dict with a 'params' entry (a parameter group)")
        ps = g["params"]
        ps = [ps] if isinstance(ps, Parameter) else list(ps)
        if not ps:
            raise ValueError(f"param_groups[{i}] has no parameters")
        groups.append((ps, {k: v for k, v in g.items() if k not in ("params", "param_names")}))
    return groups


def _torch_names(hyper: dict[str, Any]) -> dict[str, Any]:
    """``hyper`` with ``beta1``/``beta2`` as PyTorch's ``betas`` pair."""
    out = {}
    for k, v in hyper.items():
        if k == "beta1":
            out["betas"] = (v, hyper["beta2"])
        elif k != "beta2":
            out[k] = v
    return out


class ParamGroup(MutableMapping):
    """One of ``optimizer.param_groups``: a live view, as in PyTorch. ``group["params"]`` are
    its parameters; ``group[key]`` its hyper-parameter (its own value or the optimizer's
    default); ``group[key] = v`` overrides it for this group (``betas`` as a pair)."""

    def __init__(self, optimizer: Optimizer, index: int):
        self._opt = optimizer
        self._index = index

    def hyper(self) -> dict[str, Any]:
        """The kernel's keyword arguments for this group's parameters."""
        over = self._opt._overrides[self._index]
        return {**self._opt.hyper, **over} if over else self._opt.hyper

    def __getitem__(self, key):
        if key == "params":
            return self._opt._group_params[self._index]
        h = self.hyper()
        if key == "betas" and "beta1" in h:
            return (h["beta1"], h["beta2"])
        return h[key]

    def __setitem__(self, key, value):
        if key == "params":
            raise ValueError("param_groups: a group's parameters are fixed at construction")
        over = self._opt._check_overrides(self._index, {key: value})
        self._opt._overrides[self._index].update(over)
        if "lr" in over:
            base = self._opt.hyper.get("lr", 0.0)
            self._opt._lr_factors[self._index] = over["lr"] / base if base else 1.0

    def __delitem__(self, key):
        self._opt._overrides[self._index].pop(key, None)

    def __iter__(self):
        return iter(["params", *_torch_names(self.hyper())])

    def __len__(self):
        return 1 + len(_torch_names(self.hyper()))

    def __repr__(self):
        return f"ParamGroup({len(self['params'])} params, {_torch_names(self.hyper())})"
