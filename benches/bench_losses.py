"""Softmax cross-entropy (loss and dlogits), Rust (initcore.ops) against the NumPy reference, at
the output layer of an MNIST-sized classifier: 10 classes, batches of 128 and 512."""

import numpy as np
import pytest

from initcore import ops
from initcore.reference import ops as ref

BACKENDS = {"rust": ops, "numpy": ref}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [128, 512])
def test_cross_entropy(benchmark, backend, n):
    benchmark.group = f"cross_entropy {n}x10 float32"
    r = np.random.default_rng(0)
    logits = (3 * r.standard_normal((n, 10))).astype(np.float32)
    labels = r.integers(0, 10, n)
    f = BACKENDS[backend].cross_entropy
    loss, grad = benchmark(lambda: f(logits, labels))
    assert np.isfinite(loss)
