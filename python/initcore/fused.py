"""The fused path of :class:`initcore.Sequential`: a whole training step, prediction or
evaluation in one call into Rust (``initcore._core.TrainPlan``; ``rust/kernels/network.rs``,
``rust/kernels/train.rs``).

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

The plan (a ``TrainPlan`` with its workspaces) is built on first use and cached on the model;
it is rebuilt when the layer description (architecture and every layer hyper-parameter), the
dtype, the optimizer (object, kind, or any hyper-parameter other than the learning rate) or the
loss changes. Its workspaces grow to the largest batch seen; smaller batches use a prefix.
Parameters are read from the ``Parameter`` objects at every call, so ``p.value = new_array`` is
seen (it must keep the shape and dtype, and be C-contiguous).

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

_OPTIMIZERS = (O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.Nadam)
_ACTIVATIONS = (L.Activation, L.LeakyReLU, L.ELU, L.SELU)
_VALUE, _GRAD = attrgetter("value"), attrgetter("grad")
_FUSED_LOSSES = ("cross_entropy", "binary_cross_entropy", "mse")

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
    """The layer description of ``model`` for ``TrainPlan`` (a tuple of tuples), or ``None`` if
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
    """A ``TrainPlan`` and everything the Python side needs to call it cheaply."""

    def __init__(self, model, desc, optimizer=None, loss=None):
        from ._core import TrainPlan

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
            for p in self.params:
                optimizer._ensure_state(p)
            opt_desc = (optimizer.kind, dict(optimizer.hyper))
        self.param_names = [p.name for p in self.params]
        self.plan = TrainPlan(desc, model.input_dim, self.dtype.name, 1, opt_desc, loss, self.param_names)
        # Optimizer state is looked up at every step (``optimizer.state[name][key]``), so a
        # replaced dict or array is seen too.
        names = list(self.plan.state_names)
        self.state_params = [name for name in self.param_names for _ in names]
        self.state_keys = names * len(self.params)
        self.nadam = optimizer is not None and optimizer.kind == "nadam"
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
        if optimizer is not self.optimizer or loss != self.loss or optimizer.params != self.params:
            return False
        h = optimizer.hyper
        if h == self.hyper:
            return True
        if h.keys() != self.hyper.keys() or any(h[k] != v for k, v in self.hyper.items() if k != "lr"):
            return False
        self.hyper = dict(h)  # only the learning rate changed: it is passed at every step
        return True

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
    if optimizer is not None and (type(optimizer) not in _OPTIMIZERS or optimizer.params != model.parameters()):
        return None
    if optimizer is not None and (optimizer.clip is not None or not optimizer.uniform_hyper()):
        return None  # clipping and per-group hyper-parameters: the layer-by-layer step (trainapi)
    plan = Plan(model, desc, optimizer, loss)
    model.__dict__["fused_builds"] = model.__dict__.get("fused_builds", 0) + 1
    model.__dict__[key] = plan
    return plan


def _ready_target(model, y, loss, n):
    """``y`` as ``Sequential._target`` would return it; a C-contiguous array already in that form
    is passed as is (the Rust side checks the label range before writing anything)."""
    if type(y) is np.ndarray and y.flags.c_contiguous:
        if loss == "cross_entropy":
            if y.dtype == np.int64 and y.shape == (n,):
                return y
        elif y.dtype == model.dtype and y.shape == (n, model.output_dim):
            return y
    return model._target(y, loss, n)


def train_step(model, x, y, optimizer, loss):
    """One fused training step on a checked ``x`` (C-contiguous, the model dtype); ``y`` and the
    optimizer are checked here as ``Sequential.train_step`` checks them. Returns the loss, or
    ``None`` when the step cannot be fused (the caller then runs the layer-by-layer path)."""
    if not _usable(model) or loss not in _FUSED_LOSSES:
        return None
    n = x.shape[0]
    y = _ready_target(model, y, loss, n)
    if loss == "cross_entropy" and y.ndim != 1:
        return None  # soft targets: the layer-by-layer step (trainapi)
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
        value = plan.plan.step(x, y, params, grads, states, buffers, uniforms, step, optimizer.lr, out, mu)
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


def evaluate(model, x, y, loss, batch_size):
    """``(summed loss, correct, count)`` in evaluation mode (``y`` checked), or ``None``."""
    if not _usable(model) or loss not in _FUSED_LOSSES:
        return None
    plan = _plan(model, None, None)
    if plan is None:
        return None
    params, buffers = plan.params_and_buffers()
    return plan.plan.evaluate(x, y, loss, batch_size, params, buffers)
