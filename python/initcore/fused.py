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

import numpy as np

from . import layers as L
from . import optim as O

_OPTIMIZERS = (O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.Nadam)
_ACTIVATIONS = (L.Activation, L.LeakyReLU, L.ELU, L.SELU)


def _layer_desc(layer):
    """The ``TrainPlan`` tuple of one layer, or ``None`` if it cannot be fused."""
    t = type(layer)
    if t is L.Dense:
        return ("dense", layer.input_dim, layer.units, layer.bias is not None, layer.activation, layer.alpha)
    if t is L.BatchNorm:
        return ("batch_norm", layer.input_dim, layer.momentum, layer.eps)
    if t in _ACTIVATIONS:
        return ("activation", layer.input_dim, layer.activation, layer.alpha)
    if t is L.PReLU:
        return ("prelu", layer.input_dim)
    if t is L.Maxout:
        return ("maxout", layer.input_dim, layer.k)
    if t is L.Dropout:
        return ("dropout", layer.input_dim, layer.rate)
    if t is L.AlphaDropout:
        return ("alpha_dropout", layer.input_dim, layer.rate, layer.a, layer.b, layer.alpha_p)
    return None


def describe(model):
    """The layer description of ``model`` for ``TrainPlan``, or ``None`` if a layer cannot be
    fused."""
    desc = tuple(_layer_desc(layer) for layer in model.layers)
    return None if any(d is None for d in desc) else desc


def _usable(model):
    return model.backend == "rust" and model.built and getattr(model, "fused", True)


class Plan:
    """A ``TrainPlan`` and everything the Python side needs to call it cheaply."""

    def __init__(self, model, desc, optimizer=None, loss=None):
        from ._core import TrainPlan

        self.desc = desc
        self.dtype = model.dtype
        self.params = model.parameters()
        self.bn = [layer for layer in model.layers if type(layer) is L.BatchNorm]
        self.dropouts = [layer for layer in model.layers if type(layer) in (L.Dropout, L.AlphaDropout) and layer.rate > 0]
        self.optimizer = optimizer
        self.loss = loss
        self.hyper = dict(optimizer.hyper) if optimizer is not None else None
        opt_desc = None
        if optimizer is not None:
            for p in self.params:
                optimizer._ensure_state(p)
            opt_desc = (optimizer.kind, {k: v for k, v in optimizer.hyper.items()})
        self.plan = TrainPlan(desc, model.input_dim, self.dtype.name, 1, opt_desc, loss, [p.name for p in self.params])
        self.state_names = tuple(self.plan.state_names)
        self.states = [optimizer.state[p.name] for p in self.params] if optimizer is not None else []
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

    def matches_optimizer(self, optimizer, loss):
        if optimizer is not self.optimizer or loss != self.loss or optimizer.params != self.params:
            return False
        h = optimizer.hyper
        if h == self.hyper:
            return True
        if h.keys() != self.hyper.keys() or any(h[k] != v for k, v in self.hyper.items() if k != "lr"):
            return False
        self.hyper = dict(h)  # only the learning rate changed: it is passed at every step
        return True

    def arrays(self):
        params = tuple(p.value for p in self.params)
        buffers = tuple(a for layer in self.bn for a in (layer.running_mean, layer.running_var))
        return params, buffers


def _plan(model, optimizer, loss):
    """The model's cached plan for training with ``optimizer`` and ``loss`` (or for inference
    when both are ``None``), rebuilt if anything it depends on changed; ``None`` if the model
    cannot be fused."""
    desc = describe(model)
    if desc is None:
        return None
    cache = model.__dict__.setdefault("_fused_plans", {})
    key = "train" if optimizer is not None else "infer"
    plan = cache.get(key)
    if plan is not None and plan.desc == desc and plan.dtype == model.dtype and (
            optimizer is None or plan.matches_optimizer(optimizer, loss)):
        return plan
    if optimizer is not None:
        if type(optimizer) not in _OPTIMIZERS or optimizer.params != model.parameters():
            return None
    plan = Plan(model, desc, optimizer, loss)
    model.__dict__["fused_builds"] = model.__dict__.get("fused_builds", 0) + 1
    cache[key] = plan
    return plan


def train_step(model, x, y, optimizer, loss):
    """One fused training step on checked inputs (``x`` C-contiguous of the model dtype, ``y``
    as ``Sequential._target`` returns it); returns the loss, or ``None`` when the step cannot
    be fused (the caller then runs the layer-by-layer path)."""
    if not _usable(model):
        return None
    plan = _plan(model, optimizer, loss)
    if plan is None:
        return None
    n = x.shape[0]
    plan.reserve(n, model.output_dim)
    out = plan.out[:n]
    uniforms = []
    for buf in plan.uniforms:
        u = buf[:n]
        model.rng.random(out=u, dtype=plan.dtype)
        uniforms.append(u)
    params, buffers = plan.arrays()
    grads = tuple(p.grad for p in plan.params)
    names = plan.state_names
    states = tuple(st[k] for st in plan.states for k in names)
    mu = [st["mu_product"] for st in plan.states] if plan.nadam else None
    step = optimizer.step_count + 1
    value = plan.plan.step(x, y, params, grads, states, buffers, tuple(uniforms), step, optimizer.lr, out, mu)
    optimizer.step_count = step
    if mu is not None:
        for st, m in zip(plan.states, mu):
            st["mu_product"] = m
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
    params, buffers = plan.arrays()
    plan.plan.predict(x, out, batch_size, params, buffers)
    return out


def evaluate(model, x, y, loss, batch_size):
    """``(summed loss, correct, count)`` in evaluation mode, or ``None``."""
    if not _usable(model):
        return None
    plan = _plan(model, None, None)
    if plan is None:
        return None
    params, buffers = plan.arrays()
    return plan.plan.evaluate(x, y, loss, batch_size, params, buffers)
