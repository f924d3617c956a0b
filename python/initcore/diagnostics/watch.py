"""``Watch``: a ``fit`` callback recording per-layer activation and gradient statistics every N steps.

Where the record goes: ``watch.log`` (a :class:`WatchLog`, a list of per-step records), which is
also attached to the ``History`` of the ``fit`` call as ``history.watch`` (an attribute; the
``history.history`` dict stays per-epoch lists). One record::

    {"step": 41, "epoch": 1, "batch": 9, "loss": 0.31,
     "layers": [{"layer": 1, "name": "dense_0", "activation": "relu", "pre_mean": ..., "pre_std": ...,
                 "pre_min": ..., "pre_max": ..., "pre_hist": int64 (bins,), "pre_outside": ...,
                 "act_*": ..., "saturated": ..., "dead": ...}, ...],
     "params": [{"param": "dense_0/kernel", "grad_norm": ..., "weight_norm": ...,
                 "update_norm": ..., "update_ratio": ...}, ...]}

``step`` counts training steps from 1 (continuing across ``fit`` calls with the same Watch);
steps 1, 1 + every, 1 + 2·every, ... are recorded. Statistics come from the Rust ``column_stats``
kernel (one pass per array). Histogram edges are fixed per layer and stage at the first record
(``log.edges``), so histograms of different steps are comparable (``log.heatmap``): bounded
activations use their range, others the first record's range widened by ``margin`` of its span
on each side; the share of values outside the edges is ``*_outside``.

What is measured. Without ``x``, the activations of the training step itself: the arrays the
layers cached in the step's forward pass (training mode: the batch just trained on, BatchNorm
with batch statistics, dropout applied), read after the step, so recording costs no forward
pass. The caches are cleared before a recorded step, so a training step that fills none (a
fused path) raises rather than reports an older pass. This needs the layers' caches (``Dense``,
``Activation``, ``PReLU``); a model whose
activation layer keeps no usable cache (``Maxout``) needs ``x``. With ``x`` (a fixed probe
batch), a side-effect-free forward pass on ``x`` (BatchNorm on the probe's own statistics,
dropout off), so every record sees the same inputs. Gradients are those of the step
(``p.grad``); ``update_ratio`` uses a copy of the weights taken in ``on_batch_begin`` of a
recorded step (see :mod:`initcore.diagnostics.gradients`).

``warn=True`` issues an :class:`~initcore.diagnostics.InitWarning` (once per layer and kind)
when, compared with the first record, a ReLU-like layer's dead fraction has risen by 0.1 or more
to above one half, a sigmoid/tanh layer's saturated fraction has risen by 0.1 or more to above
0.2, or a kernel's gradient norm has fallen below 1e-3 of its first value (or is not finite).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..backend import get_ops
from ..callbacks import Callback
from .activations import RELU_LIKE, SATURATION, auto_edges, blocks, summarize, trace
from .checks import DEAD_UNITS_MAX, SATURATED_MAX, InitWarning
from .gradients import gradient_stats, snapshot
from .tables import StatsTable


class WatchLog(list):
    """The records of a :class:`Watch` (a list of dicts, see the module docstring), with helpers."""

    def __init__(self):
        super().__init__()
        self.edges: dict[tuple[int, str], np.ndarray] = {}

    @property
    def steps(self) -> np.ndarray:
        return np.array([r["step"] for r in self], dtype=np.int64)

    def layer_names(self) -> list[str]:
        return [rec["name"] for rec in self[0]["layers"]] if self else []

    def series(self, key: str, layer: int | None = None, param: str | None = None) -> np.ndarray:
        """Values of ``key`` over the records: of layer ``layer`` (depth from 1) for activation
        keys (``"act_std"``, ``"saturated"``, ...), of parameter ``param`` for gradient keys
        (``"grad_norm"``, ``"update_ratio"``, ...), or a record-level key (``"loss"``)."""
        out = []
        for r in self:
            if layer is not None:
                v = r["layers"][layer - 1].get(key)
            elif param is not None:
                v = next((p.get(key) for p in r["params"] if p["param"] == param), None)
            else:
                v = r.get(key)
            out.append(np.nan if v is None else v)
        return np.asarray(out, dtype=np.float64)

    def heatmap(self, layer: int, stage: str = "act") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, edges, counts)`` with ``counts[t, b]`` the histogram of layer ``layer``'s
        ``stage`` (``"pre"`` or ``"act"``) at record ``t``."""
        if stage not in ("pre", "act"):
            raise ValueError(f"heatmap: stage must be 'pre' or 'act', got {stage!r}")
        if not self:
            raise ValueError("heatmap: the log is empty")
        counts = np.stack([r["layers"][layer - 1][f"{stage}_hist"] for r in self])
        return self.steps, self.edges[(layer, stage)], counts

    def table(self, index: int = -1) -> StatsTable:
        """The per-layer activation statistics of record ``index`` as a table."""
        from .activations import PRINTED

        r = self[index]
        return StatsTable(r["layers"], columns=PRINTED, title=f"step {r['step']}")


class Watch(Callback):
    """Records activation and gradient statistics every ``every`` training steps (see the module
    docstring). ``x``: an optional probe batch; ``bins``: histogram bins; ``gradients``: also
    record gradient norms and update ratios; ``margin``: widening of the automatic edges;
    ``warn``: warn when dead or saturated fractions rise or a gradient collapses (module docstring);
    the warnings are also kept in ``watch.warnings``.

    Cost: one record of the ``mlp`` workload (784-256-128-10, batch 128) takes about 1-2 ms, most
    of it in ``column_stats``' histograms; with the default ``every=20`` that is a few percent of
    the training time (``benches/bench_diagnostics.py`` measures it)."""

    def __init__(
        self, every: int = 20, x=None, bins: int = 40, gradients: bool = True, margin: float = 0.5, warn: bool = False
    ):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"Watch: every must be a positive int, got {every!r}")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"Watch: bins must be a positive int, got {bins!r}")
        if not margin >= 0:
            raise ValueError(f"Watch: margin must be >= 0, got {margin!r}")
        self.every = int(every)
        self.x = None if x is None else np.asarray(x)
        self.bins = int(bins)
        self.gradients = bool(gradients)
        self.margin = float(margin)
        self.warn = bool(warn)
        self.warnings: list[str] = []
        self._warned: set = set()
        self.log = WatchLog()
        self.step = 0  # training steps seen so far
        self.epoch = 0
        self._due = False
        self._fused = None
        self._before = None
        self._blocks = None

    # -- hooks -------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._blocks = blocks(self.model)
        history = getattr(self.model, "history", None)
        if history is not None:
            history.watch = self.log

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = int(epoch)

    def on_batch_begin(self, batch, logs=None):
        self._due = self.step % self.every == 0
        if self._due and self.gradients:
            self._before = snapshot(self.model)
        if self._due and self.x is None:
            # The fused Rust step keeps its activations in Rust workspaces, not in the layers'
            # caches: run this one recorded step layer by layer (the same kernels, so the
            # trajectory is unchanged) and restore the fused path after it.
            self._fused = getattr(self.model, "fused", None)
            if self._fused:
                self.model.fused = False
            # drop the caches of an earlier pass (validation, say): only this step's forward may fill them
            for blk in self._blocks or blocks(self.model):
                for i in (blk.dense, blk.act):
                    if i is not None:
                        self.model.layers[i]._cache = None

    def next_batch_hook(self, batch):
        # The next recorded step; the ones before it run natively and only advance the count.
        return batch + (-self.step) % self.every

    def on_batches_end(self, first, last, logs=None):
        self.step += last - first

    def on_batch_end(self, batch, logs=None):
        self.step += 1
        if self._fused:
            self.model.fused = self._fused
            self._fused = None
        if not self._due:
            return
        self._due = False
        logs = logs or {}
        self.record(batch=int(batch), loss=logs.get("loss"), size=logs.get("size"))

    # -- recording ---------------------------------------------------------------------------------
    def _cached_stages(self, size):
        """(pre, act) of every block from the arrays the layers cached in the last forward."""
        model = self.model
        stages = []
        for blk in self._blocks:
            dense = model.layers[blk.dense] if blk.dense is not None else None
            if dense is not None and blk.act is None:
                cache = dense._cache
                if not (isinstance(cache, tuple) and len(cache) == 3):
                    raise RuntimeError(f"Watch: layer {dense.name} has no cached forward pass; pass x= to Watch")
                _, z, y = cache
                stages.append((z, y) if blk.activation != "identity" else (y, y))
                continue
            act = model.layers[blk.act] if blk.act is not None else None
            if act is not None and act.kind == "activation" and isinstance(act._cache, tuple):
                stages.append(act._cache)
            elif act is not None and act.kind == "prelu" and isinstance(act._cache, np.ndarray):
                stages.append((act._cache, act.ops.prelu_forward(act._cache, act.slope.value)))
            else:
                name = model.layers[blk.act if blk.act is not None else blk.start].name
                raise RuntimeError(
                    f"Watch: the activations of layer {name} cannot be read from the training "
                    "step's caches; pass a probe batch x= to Watch"
                )
            if size is not None and stages[-1][0].shape[0] != size:
                raise RuntimeError(
                    "Watch: the cached activations are not those of the last training step; "
                    "pass a probe batch x= to Watch"
                )
        return stages

    def record(self, batch: int = -1, loss=None, size=None) -> dict:
        """Takes one record now (``fit`` calls it on the due steps) and returns it."""
        model = self.model
        if self._blocks is None:
            self._blocks = blocks(model)
        if self.x is not None:
            _, stages = trace(model, self.x, batch_stats=True)
        else:
            stages = self._cached_stages(size)
        ops = get_ops(model.backend)
        layers = []
        for blk, (pre, act) in zip(self._blocks, stages):
            rec = {"layer": blk.index, "name": blk.name, "activation": blk.activation, "units": blk.units}
            done = {}
            for stage, arr, sat, bounded in (
                ("pre", pre, None, None),
                ("act", act, SATURATION.get(blk.activation), blk.activation),
            ):
                key = (blk.index, stage)
                if key not in self.log.edges:
                    self.log.edges[key] = auto_edges(arr, self.bins, bounded, self.margin)
                edges = self.log.edges[key]
                same = done.get(id(arr))
                if same is not None and np.array_equal(same["edges"], edges) and sat is None:
                    s = same
                else:
                    s = summarize(ops, arr, edges, sat)
                    done[id(arr)] = s
                for k in ("mean", "std", "min", "max", "hist", "outside"):
                    rec[f"{stage}_{k}"] = s[k]
            rec["saturated"] = s["saturated"]
            rec["dead"] = s["dead"] if blk.activation in RELU_LIKE else None
            layers.append(rec)
        params = []
        if self.gradients:
            params = gradient_stats(model, getattr(model, "optimizer", None), self._before).to_dicts()
            self._before = None
        entry = {
            "step": self.step,
            "epoch": self.epoch,
            "batch": batch,
            "loss": None if loss is None else float(loss),
            "layers": layers,
            "params": params,
        }
        self.log.append(entry)
        if self.warn:
            self._check(entry)
        return entry

    def _say(self, key, msg):
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(msg)
        warnings.warn(msg, InitWarning, stacklevel=3)

    def _check(self, entry):
        """The ``warn=True`` rules (module docstring), against the first record."""
        first = self.log[0]
        at = f"step {entry['step']} (epoch {entry['epoch'] + 1})"
        for r0, r in zip(first["layers"], entry["layers"]):
            where = f"layer {r['layer']} ({r['name']}, {r['activation']})"
            d0, d = r0.get("dead"), r.get("dead")
            if d is not None and d > DEAD_UNITS_MAX and d - (d0 or 0.0) >= 0.1:
                self._say(
                    ("dead", r["layer"]),
                    f"{where}: at {at} {100 * d:.0f}% of the units are dead (zero on every sample), up from "
                    f"{100 * (d0 or 0):.0f}% at the first record; lower the learning rate, use Leaky ReLU/PReLU, "
                    "or BatchNorm before the activation",
                )
            s0, s = r0.get("saturated"), r.get("saturated")
            if s is not None and s > SATURATED_MAX and s - (s0 or 0.0) >= 0.1:
                self._say(
                    ("saturated", r["layer"]),
                    f"{where}: at {at} {100 * s:.0f}% of the activations are saturated, up from "
                    f"{100 * (s0 or 0):.0f}% at the first record; lower the learning rate or add BatchNorm "
                    "before the activation",
                )
        for p0, p in zip(first["params"], entry["params"]):
            if not p["param"].endswith("/kernel"):
                continue
            g0, g = p0["grad_norm"], p["grad_norm"]
            if not math.isfinite(g) or (g0 > 0 and g < 1e-3 * g0):
                self._say(
                    ("grad", p["param"]),
                    f"{p['param']}: at {at} the gradient norm is {g:.3g}, {g / g0 if g0 > 0 else math.nan:.3g}× "
                    f"its first value ({g0:.3g}): the layer's gradient has collapsed; check the learning rate "
                    "and for dead or saturated units below it",
                )
