"""Activation forward + backward at 128×256 (a hidden layer of an MNIST-sized MLP), Rust
kernels against their NumPy twins. Run: ``pytest benches/bench_activation.py``."""

import numpy as np
import pytest

from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_backward(benchmark, backend, act, dtype):
    be = BACKENDS[backend]
    r = np.random.default_rng(0)
    x = r.standard_normal((128, 256)).astype(dtype)
    dy = r.standard_normal((128, 256)).astype(dtype)
    benchmark.group = f"activation {act} {np.dtype(dtype).name} 128x256 fwd+bwd"

    def step():
        y = be.activation_forward(x, act)
        return be.activation_backward(dy, x, y, act)

    benchmark(step)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_softmax_forward_backward(benchmark, backend):
    be = BACKENDS[backend]
    r = np.random.default_rng(0)
    x = r.standard_normal((128, 10)).astype(np.float32)
    dy = r.standard_normal((128, 10)).astype(np.float32)
    benchmark.group = "log_softmax f32 128x10 fwd+bwd"
    benchmark(lambda: be.log_softmax_backward(dy, be.log_softmax(x)))
