"""Dense layer forward + backward (ReLU), Rust kernels against their NumPy twins, at an
MNIST first layer (128×784 → 256) and a small layer (32×64 → 64).
Run: ``pytest benches/bench_dense.py``."""

import numpy as np
import pytest

from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("n,inp,out", [(128, 784, 256), (32, 64, 64)], ids=["128x784-256", "32x64-64"])
def test_dense_forward_backward(benchmark, backend, n, inp, out):
    be = BACKENDS[backend]
    r = np.random.default_rng(0)
    x = r.standard_normal((n, inp)).astype(np.float32)
    w = (r.standard_normal((inp, out)) / inp**0.5).astype(np.float32)
    b = np.zeros(out, np.float32)
    dy = r.standard_normal((n, out)).astype(np.float32)
    benchmark.group = f"dense relu f32 {n}x{inp}->{out} fwd+bwd"

    def step():
        y, z = be.dense_forward(x, w, b, "relu")
        return be.dense_backward(dy, x, w, z, y, "relu")

    benchmark(step)
