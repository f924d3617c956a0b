"""Optimizer steps, Rust (initcore.ops) against the NumPy reference, on 1M float32 parameters.

Each step is a memory-bound elementwise pass: the Rust kernel reads and writes every array once,
fused; the NumPy twin makes one pass (and one temporary) per operation.
"""

import numpy as np
import pytest

from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}
N = 1_000_000


def _arrays(k, n=N, dtype=np.float32):
    r = np.random.default_rng(0)
    return [r.standard_normal(n).astype(dtype) for _ in range(2)] + [np.zeros(n, dtype) for _ in range(k)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_1m(benchmark, backend):
    benchmark.group = "adam_step 1M float32"
    param, grad, m, v = _arrays(2)
    f = BACKENDS[backend].adam_step
    benchmark(lambda: f(param, grad, m, v, step=10, lr=1e-3))
    assert np.isfinite(param).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_adamw_amsgrad_1m(benchmark, backend):
    benchmark.group = "adamw_step amsgrad 1M float32"
    param, grad, m, v, vm = _arrays(3)
    f = BACKENDS[backend].adamw_step
    benchmark(lambda: f(param, grad, m, v, vm, step=10, amsgrad=True))
    assert np.isfinite(param).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_momentum_1m(benchmark, backend):
    benchmark.group = "sgd_step momentum 1M float32"
    param, grad, buf = _arrays(1)
    f = BACKENDS[backend].sgd_step
    benchmark(lambda: f(param, grad, buf, step=2, lr=1e-3, momentum=0.9))
    assert np.isfinite(param).all()
