"""The fused path of :class:`initcore.Sequential`: a whole training step, prediction or
evaluation in one call into Rust (``initcore._core.FusedPlan``; ``rust/kernels/fused/``,
``rust/py/fused.rs``).

One training step is the layer-by-layer ``train_step`` — forward in training mode, the loss and
its gradient, ``backward(need_dx=False)``, ``optimizer.step()`` — with the same kernels in the
same order, so the two paths give the same bits. The state it leaves behind is the same too:

- every ``p.value`` updated in place and ``p.grad`` holding this batch's gradient;
- BatchNorm running statistics updated in place;
- the optimizer's ``state`` arrays updated in place (NAdam's ``mu_product`` floats rewritten),
  ``step_count`` incremented, the learning rate read at every step (schedules are honoured);
- dropout uniforms drawn from the model's Generator in layer order, exactly as the layers draw
  them (``rng.random((n, width), dtype)``), so the masks are the same;
- ``model.last_output`` set to the network output. It is a view of a buffer that the next
  fused step overwrites (copy it to keep it).

The plan (a ``FusedPlan`` with its workspaces) is built on first use and cached on the model;
it is rebuilt when the layer description (architecture and every layer hyper-parameter), the
dtype, the optimizer (object, kind, or any hyper-parameter other than the learning rate and a
momentum / β₁ that keeps the state arrays, both passed per call) or the loss changes. Its
workspaces grow to the largest batch seen; smaller batches use a prefix.
Parameters are read from the ``Parameter`` objects at every call, so ``p.value = new_array`` is
seen (it must keep the shape and dtype, and be C-contiguous).

Fused too: cross-entropy against soft targets (float ``(n, C)`` rows of probabilities, the
weighted kernel's probability rows, as the layer path calls it), sample weights and the loss
options, clipping, parameter groups (each parameter's own hyper-parameters and state arrays),
per-step learning rates and momenta (``schedules.OneCycle``). An epoch converts its targets
once, so a batch whose soft rows happen to be all one-hot stays on the soft kernel (the
layer-by-layer step would take it as labels; the two differ in the last bits only).

What is not fused falls back to the layer-by-layer path: a model with ``backend="numpy"`` or
``model.fused = False``, layer or optimizer classes other than initcore's own (subclasses
included: they may override the math), an optimizer that does not hold exactly the model's
parameters in order, and inputs the model would convert anyway are converted first.
"""

from __future__ import annotations

from operator import attrgetter, getitem

import numpy as np

from . import layers as L
from . import optim as O

_OPTIMIZERS = (O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.NAdam)
_ACTIVATIONS = (L.Activation, L.LeakyReLU, L.ELU, L.SELU)
_VALUE, _GRAD = attrgetter("value"), attrgetter("grad")
_FUSED_LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")


def _canon(loss):
    """A loss name, or an ``initcore.losses.Loss`` with options: the name when it has none, so
    that the plain loss keeps one plan whichever way it is given."""
    if loss is None or isinstance(loss, str):
        return loss
    from .losses import Loss

    return loss.name if loss == Loss(loss.name) else loss


def _name(loss):
    return loss if isinstance(loss, str) else loss.name


def _param_lrs(plan, optimizer):
    """Every parameter's current learning rate (its group's), for a grouped plan."""
    if not plan.grouped:
        return None
    rates = [group["lr"] for group in optimizer.param_groups]
    return [rates[g] for g in plan.group_of]


# Per layer class: the kind and the attributes that make up its description (read at every
# step, so a changed attribute — a dropout rate, a BatchNorm momentum — rebuilds the plan).
_DESCRIBE = {
    L.Dense: ("dense", attrgetter("input_dim", "units", "use_bias", "activation", "alpha")),
    L.BatchNorm: ("batch_norm", attrgetter("input_dim", "momentum", "eps")),
    L.PReLU: ("prelu", lambda layer: (layer.input_dim,)),
    L.Maxout: ("maxout", attrgetter("input_dim", "k")),
    L.Dropout: ("dropout", attrgetter("input_dim", "rate")),
    L.AlphaDropout: ("alpha_dropout", attrgetter("input_dim", "rate", "a", "b", "alpha_p")),
    **{t: ("activation", attrgetter("input_dim", "activation", "alpha")) for t in _ACTIVATIONS},
}


def describe(model):
    """The layer description of ``model`` for ``FusedPlan`` (a tuple of tuples), or ``None`` if
    a layer cannot be fused (a class other than initcore's own, subclasses included)."""
    desc = []
    for layer in model.layers:
        d = _DESCRIBE.get(type(layer))
        if d is None:
            return None
        desc.append((d[0],) + d[1](layer))
    return tuple(desc)


def _usable(model):
    return model.backend == "rust" and model.built and model.__dict__.get("fused", True)


class Plan:
    """A ``FusedPlan`` and everything the Python side needs to call it cheaply."""

    def __init__(self, model, desc, optimizer=None, loss=None):
        from ._core import FusedPlan

        self.desc = desc
        self.dtype = model.dtype
        self.params = model.parameters()
        bn = [layer for layer in model.layers if type(layer) is L.BatchNorm]
        self.buffer_owners = [layer for layer in bn for _ in range(2)]
        self.buffer_names = ["running_mean", "running_var"] * len(bn)
        self.dropouts = [
            layer for layer in model.layers if type(layer) in (L.Dropout, L.AlphaDropout) and layer.rate > 0
        ]
        self.optimizer = optimizer
        self.loss = loss
        self.hyper = dict(optimizer.hyper) if optimizer is not None else None
        opt_desc = None
        if optimizer is not None:
            for group in optimizer.param_groups:  # each group's own state arrays
                spec = optimizer._state_spec(group.hyper())
                for p in group["params"]:
                    optimizer._ensure_state(p, spec)
            opt_desc = (optimizer.kind, dict(optimizer.hyper))
        self.param_names = [p.name for p in self.params]
        # A loss with options (initcore.losses.Loss) and the optimizer's clipping (trainapi).
        options = {}
        if loss is not None and not isinstance(loss, str):
            options = {"label_smoothing": loss.label_smoothing, "delta": loss.delta}
        self.clip = None if optimizer is None else optimizer.clip
        name = loss if loss is None or isinstance(loss, str) else loss.name
        # Parameter groups: each parameter's hyper-parameters and learning-rate ratio, in the
        # model's order (the optimizer may hold them in another); the groups' rates per call.
        self.opt_params = None if optimizer is None else list(optimizer.params)
        self.grouped = optimizer is not None and not optimizer.uniform_hyper()
        per_param = None
        if self.grouped:
            by_name = {}
            for gi, group in enumerate(optimizer.param_groups):
                ratio = optimizer._lr_factors[gi] if "lr" in optimizer._overrides[gi] else 1.0
                for p in group["params"]:
                    by_name[p.name] = (gi, dict(group.hyper()), ratio)
            self.group_of = [by_name[p.name][0] for p in self.params]
            per_param = [by_name[p.name][1:] for p in self.params]
            self.group_sig = optimizer.group_signature()
        self.plan = FusedPlan(
            desc,
            model.input_dim,
            self.dtype.name,
            1,
            opt_desc,
            name,
            self.param_names,
            clip=self.clip,
            param_optimizers=per_param,
            **options,
        )
        # Optimizer state is looked up at every step (``optimizer.state[name][key]``), so a
        # replaced dict or array is seen too. Groups may keep different arrays (SGD with and
        # without momentum): each parameter's own, in order.
        per = self.plan.param_state_names
        self.state_params = [name for name, keys in zip(self.param_names, per) for _ in keys]
        self.state_keys = [key for keys in per for key in keys]
        self.nadam = optimizer is not None and optimizer.kind == "nadam"
        # A cycled momentum / β₁ (schedules.OneCycle) changes at every step: passed per call
        # (FusedPlan.step's momentum, epoch's momentums) instead of rebuilding the plan.
        self.mom_key = None if optimizer is None else optimizer.momentum_key
        self.built_mom = None if self.mom_key is None else optimizer.hyper[self.mom_key]
        self.capacity = 0
        self.out = None
        self.uniforms = []

    def reserve(self, n, output_dim):
        """Grows the output and uniform buffers (and the plan's workspaces) to ``n`` rows."""
        if n <= self.capacity:
            return
        self.plan.reserve(n)
        self.out = np.empty((n, output_dim), self.dtype)
        self.uniforms = [np.empty((n, layer.output_dim), self.dtype) for layer in self.dropouts]
        self.capacity = n

    def matches(self, model, optimizer, loss):
        """Whether this plan still fits ``model`` trained with ``optimizer`` on ``loss``."""
        if describe(model) != self.desc or model.dtype != self.dtype:
            return False
        if optimizer is None:
            return True
        if optimizer is not self.optimizer or loss != self.loss or optimizer.params != self.opt_params:
            return False
        if optimizer.clip != self.clip:
            return False
        if self.grouped:
            if optimizer.group_signature() != self.group_sig:
                return False
        elif any(optimizer._overrides) and not optimizer.uniform_hyper():
            return False
        h = optimizer.hyper
        if h == self.hyper:
            return True
        free = ("lr", self.mom_key) if self._momentum_passable(optimizer) else ("lr",)
        if h.keys() != self.hyper.keys() or any(h[k] != v for k, v in self.hyper.items() if k not in free):
            return False
        self.hyper = dict(h)  # only the learning rate (or momentum) changed: passed at every step
        return True

    def _momentum_passable(self, optimizer):
        """Whether the optimizer's momentum / β₁, changed since the build, can be passed per
        call: the same state arrays (a momentum stays > 0 or stays 0), and no group of a
        grouped plan holding a value of its own (the value passed applies to every parameter)."""
        key = self.mom_key
        if key is None:
            return False
        if key == "momentum" and (optimizer.hyper[key] > 0) != (self.built_mom > 0):
            return False
        return not (self.grouped and any(key in over for over in optimizer._overrides))

    def momentum(self, optimizer):
        """The momentum / β₁ to pass to a call: ``None`` while it is the plan's own."""
        if self.mom_key is None:
            return None
        m = optimizer.hyper[self.mom_key]
        return None if m == self.built_mom else float(m)

    def params_and_buffers(self):
        return tuple(map(_VALUE, self.params)), tuple(map(getattr, self.buffer_owners, self.buffer_names))


def _plan(model, optimizer, loss):
    """The model's cached plan for training with ``optimizer`` and ``loss`` (or for inference
    when both are ``None``), rebuilt if anything it depends on changed; ``None`` if the model
    cannot be fused."""
    key = "_fused_train" if optimizer is not None else "_fused_infer"
    plan = model.__dict__.get(key)
    if plan is not None and plan.matches(model, optimizer, loss):
        return plan
    desc = describe(model)
    if desc is None:
        return None
    if optimizer is not None:
        if type(optimizer) not in _OPTIMIZERS:
            return None
        if sorted(map(id, optimizer.params)) != sorted(map(id, model.parameters())):
            return None
    plan = Plan(model, desc, optimizer, loss)
    model.__dict__["fused_builds"] = model.__dict__.get("fused_builds", 0) + 1
    model.__dict__[key] = plan
    return plan


def _ready_target(model, y, loss, n):
    """``y`` as ``Sequential._target`` would return it; a C-contiguous array already in that form
    is passed as is (the Rust side checks the label range before writing anything)."""
    if type(y) is np.ndarray and y.flags.c_contiguous and y.flags.aligned:
        if loss == "cross_entropy":
            if y.dtype == np.int64 and y.shape == (n,):
                return y
        elif y.dtype == model.dtype and y.shape == (n, model.output_dim):
            return y
    return model._target(y, loss, n)


def train_step(model, x, y, optimizer, loss, sample_weight=None):
    """One fused training step on a checked ``x`` (C-contiguous, the model dtype); ``y`` and the
    optimizer are checked here as ``Sequential.train_step`` checks them. ``loss``: a name or an
    ``initcore.losses.Loss``; ``sample_weight``: checked per-sample weights of the model dtype.
    Returns the loss, or ``None`` when the step cannot be fused (the caller then runs the
    layer-by-layer path)."""
    loss = _canon(loss)
    if not _usable(model) or _name(loss) not in _FUSED_LOSSES:
        return None
    n = x.shape[0]
    if n == 0:
        raise ValueError("Sequential.train_step: x has no rows (a training step needs at least one)")
    y = _ready_target(model, y, _name(loss), n)
    model._check_optimizer(optimizer)
    plan = _plan(model, optimizer, loss)
    if plan is None:
        return None
    plan.reserve(n, model.output_dim)
    out = plan.out[:n]
    uniforms = ()
    if plan.uniforms:
        rng_state = model.rng.bit_generator.state  # restored if the step fails: it writes nothing
        uniforms = tuple(buf[:n] for buf in plan.uniforms)
        for u in uniforms:
            model.rng.random(out=u, dtype=plan.dtype)
    params, buffers = plan.params_and_buffers()
    grads = tuple(map(_GRAD, plan.params))
    state = optimizer.state
    states = tuple(map(getitem, map(state.__getitem__, plan.state_params), plan.state_keys))
    mu = [state[name]["mu_product"] for name in plan.param_names] if plan.nadam else None
    step = optimizer.step_count + 1
    try:
        value = plan.plan.step(
            x,
            y,
            params,
            grads,
            states,
            buffers,
            uniforms,
            step,
            optimizer.lr,
            out,
            mu,
            sample_weight,
            _param_lrs(plan, optimizer),
            plan.momentum(optimizer),
        )
    except Exception:
        if uniforms:
            model.rng.bit_generator.state = rng_state
        raise
    optimizer.step_count = step
    if mu is not None:
        for name, m in zip(plan.param_names, mu):
            state[name]["mu_product"] = m
    model.last_output = out
    return value


def predict(model, x, batch_size):
    """The evaluation-mode output of ``x`` (checked, C-contiguous, model dtype), or ``None``."""
    if not _usable(model):
        return None
    plan = _plan(model, None, None)
    if plan is None:
        return None
    out = np.empty((x.shape[0], model.output_dim), model.dtype)
    params, buffers = plan.params_and_buffers()
    plan.plan.predict(x, out, batch_size, params, buffers)
    return out


def evaluate(model, x, y, loss, batch_size, top_k=(), errors=False, r2=False, sample_weight=None):
    """``(summed loss, correct, count)`` in evaluation mode (``y`` checked: labels, soft targets
    or values), or ``None``; with ``top_k`` (the ``k``s), ``errors`` (mae, mse) or ``r2``, also
    the dict of their sums (``FusedPlan.evaluate``). ``loss``: a name or an
    ``initcore.losses.Loss`` (its options); ``sample_weight``: checked per-sample weights of the
    model dtype (the summed loss is then ``Σ w_i·l_i``, batch by batch)."""
    loss = _canon(loss)
    if not _usable(model) or _name(loss) not in _FUSED_LOSSES:
        return None
    plan = _plan(model, None, None)
    if plan is None:
        return None
    params, buffers = plan.params_and_buffers()
    if isinstance(loss, str) and sample_weight is None:
        if not (top_k or errors or r2):
            return plan.plan.evaluate(x, y, loss, batch_size, params, buffers)
        return plan.plan.evaluate(x, y, loss, batch_size, params, buffers, list(top_k), errors, r2)
    options = {} if isinstance(loss, str) else {"label_smoothing": loss.label_smoothing, "delta": loss.delta}
    return plan.plan.evaluate(
        x, y, _name(loss), batch_size, params, buffers, list(top_k), errors, r2, sample_weight=sample_weight, **options
    )


# Dropout uniforms are drawn ahead for at most this many values per native call (16 MiB of
# float32), so an epoch with dropout is a few calls instead of one.
UNIFORM_CHUNK = 1 << 22


def train_batches(
    model,
    x,
    y,
    optimizer,
    loss,
    order,
    batch_size,
    first,
    count,
    lrs=None,
    max_seconds=0.0,
    total=0.0,
    sample_weight=None,
    momentums=None,
):
    """Batches ``first .. first + count`` of an epoch (batch ``b`` = rows
    ``order[b*batch_size:(b+1)*batch_size]`` of the checked ``x`` and ``y``) in one call into Rust
    (``FusedPlan.epoch``), each step the fused ``train_step``. Returns ``(steps, total, samples,
    correct, count)`` — steps done (fewer than ``count`` after ``max_seconds``, or when the
    dropout uniforms of all the steps would exceed ``UNIFORM_CHUNK``), ``total`` plus the sum of
    ``loss · rows`` over them (added in order, as ``fit`` adds them), and the accuracy counts —
    or ``None`` when the model cannot be fused. ``lrs``: one learning rate per step (else
    ``optimizer.lr``). A pending signal (Ctrl-C) raises after the step in progress, with the
    model, optimizer and Generator as of the last completed step. ``loss``: a name or an
    ``initcore.losses.Loss``; ``sample_weight``: per-sample weights of all rows of ``x``;
    ``momentums``: one momentum / β₁ per step (a cycled momentum, else the optimizer's)."""
    loss = _canon(loss)
    if not _usable(model) or count <= 0 or _name(loss) not in _FUSED_LOSSES:
        return None
    n_rows = len(order)
    y = _ready_target(model, y, _name(loss), x.shape[0])
    model._check_optimizer(optimizer)
    plan = _plan(model, optimizer, loss)
    if plan is None:
        return None
    if type(order) is not np.ndarray or order.dtype != np.int64 or not order.flags.c_contiguous:
        order = np.ascontiguousarray(order, dtype=np.int64)
    rows_of = lambda k: min((first + k) * batch_size, n_rows) - first * batch_size  # noqa: E731
    width = sum(layer.output_dim for layer in plan.dropouts)
    if width:
        per_batch = max(1, UNIFORM_CHUNK // (width * batch_size))
        count = min(count, per_batch)
    if lrs is not None:
        lrs = [float(v) for v in lrs[:count]]
    if momentums is not None:
        momentums = [float(v) for v in momentums[:count]]
    elif plan.momentum(optimizer) is not None:
        momentums = [plan.momentum(optimizer)] * count
    plan.reserve(min(batch_size, n_rows), model.output_dim)
    draws = None
    if width:
        rng_state = model.rng.bit_generator.state
        draws = model.rng.random(rows_of(count) * width, dtype=plan.dtype)
    else:
        draws = np.empty(0, plan.dtype)
    params, buffers = plan.params_and_buffers()
    grads = tuple(map(_GRAD, plan.params))
    state = optimizer.state
    states = tuple(map(getitem, map(state.__getitem__, plan.state_params), plan.state_keys))
    mu = [state[name]["mu_product"] for name in plan.param_names] if plan.nadam else None
    progress = [0.0] * 6
    try:
        plan.plan.epoch(
            x,
            y,
            order,
            batch_size,
            first,
            count,
            params,
            grads,
            states,
            buffers,
            draws,
            optimizer.step_count + 1,
            optimizer.lr,
            plan.out,
            progress,
            mu,
            lrs,
            max_seconds,
            total,
            sample_weight,
            None if lrs is not None else _param_lrs(plan, optimizer),
            momentums,
        )
    finally:
        # Whatever happened, the model is as of the last completed step: the optimizer's step
        # count and NAdam products follow it, and the Generator is left just past the uniforms
        # of the completed steps (as the step-by-step loop would have left it).
        done = int(progress[0])
        optimizer.step_count += done
        if mu is not None:
            for name, m in zip(plan.param_names, mu):
                state[name]["mu_product"] = m
        if width and done < count:
            model.rng.bit_generator.state = rng_state
            if done:
                model.rng.random(rows_of(done) * width, dtype=plan.dtype)
        if done:
            model.last_output = plan.out[: int(progress[5])]
    return done, progress[1], int(progress[2]), int(progress[3]), int(progress[4])
