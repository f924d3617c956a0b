"""BatchNorm forward + backward (training, running statistics updated), Rust (initcore.ops)
against the NumPy reference, on a 128×256 float32 batch: one MLP hidden layer's activations.

The Rust kernel makes three passes over x forward (mean, squared deviations, normalize) and two
backward (dβ/dγ sums, dx), each a contiguous row sweep; the NumPy twin allocates a temporary per
operation.
"""

import numpy as np
import pytest

from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_batchnorm_fwd_bwd_128x256(benchmark, backend, dtype):
    benchmark.group = f"batchnorm forward+backward 128x256 {np.dtype(dtype).name}"
    r = np.random.default_rng(0)
    x = r.standard_normal((128, 256)).astype(dtype)
    dy = r.standard_normal((128, 256)).astype(dtype)
    gamma, beta = np.ones(256, dtype), np.zeros(256, dtype)
    rm, rv = np.zeros(256, dtype), np.ones(256, dtype)
    k = BACKENDS[backend]

    def step():
        y, mean, invstd = k.batch_norm_forward(x, gamma, beta, rm, rv)
        return k.batch_norm_backward(dy, x, gamma, mean, invstd)

    dx, dgamma, dbeta = benchmark(step)
    assert np.isfinite(dx).all()
