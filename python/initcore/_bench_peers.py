"""The training step of ``initcore bench`` in the peers a user would pick instead: PyTorch eager
with its fused CPU Adam, and JAX jit with Adam written out as PyTorch defines it (lr 1e-3,
betas 0.9/0.999, eps 1e-8, bias-corrected). Each maker returns ``None`` when its framework is
not importable, so that the benchmark runs with whatever is installed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _torch_adam(torch, net):
    """Adam with its fused CPU kernel (PyTorch >= 2.4), else the default (foreach) one."""
    try:
        return torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(net.parameters(), lr=1e-3)


def torch_epoch(x, y, batch: int) -> Callable[[], None] | None:
    try:
        import torch
    except Exception:
        return None
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    opt = _torch_adam(torch, net)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()

    def epoch():
        order = torch.randperm(xt.shape[0])
        for i in range(0, xt.shape[0], batch):
            idx = order[i : i + batch]
            opt.zero_grad(set_to_none=True)
            lossf(net(xt[idx]), yt[idx]).backward()
            opt.step()

    return epoch


def torch_step(sizes, activation: str, batchnorm: bool, x, y) -> Callable[[], None] | None:
    try:
        import torch
    except Exception:
        return None
    torch.manual_seed(0)
    mods = []
    act = {"relu": torch.nn.ReLU, "selu": torch.nn.SELU, "tanh": torch.nn.Tanh}[activation]
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        mods.append(torch.nn.Linear(a, b))
        if batchnorm:
            mods.append(torch.nn.BatchNorm1d(b))
        mods.append(act())
    mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*mods)
    opt = _torch_adam(torch, net)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


def jax_step(sizes, activation: str, x, y) -> Callable[[], None] | None:
    try:
        import jax
        import jax.numpy as jnp
    except Exception:
        return None
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (a, b), jnp.float32) * np.sqrt(2.0 / a), jnp.zeros((b,), jnp.float32)))
    act = {"relu": jax.nn.relu, "selu": jax.nn.selu, "tanh": jnp.tanh}[activation]

    def loss_fn(ps, x, y):
        h = x
        for i, (W, b) in enumerate(ps):
            h = h @ W + b
            if i < len(ps) - 1:
                h = act(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8

    @jax.jit
    def step(ps, m, v, t, x, y):
        g = jax.grad(loss_fn)(ps, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        ps = jax.tree_util.tree_map(lambda p, m, v: p - lr / bc1 * m / (jnp.sqrt(v / bc2) + eps), ps, m, v)
        return ps, m, v, t

    x, y = jnp.asarray(x), jnp.asarray(y)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]

    def run():
        state[:] = step(*state, x, y)
        jax.block_until_ready(state[0])

    return run
