"""The losses with options (sample weights, label smoothing, soft targets) and the new ones
(mae, huber): initcore.ops against initcore.reference.ops, finite differences in float64, the
definitions they follow (Keras's weighted mean, PyTorch's smoothing), PyTorch itself when it is
installed, and input checks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, numeric_grad, require_torch
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = pytest.mark.parametrize("backend", [ops, ref], ids=["rust", "numpy"])


def soft(r, n, c, dt):
    t = r.random((n, c)) + 0.05
    return (t / t.sum(axis=1, keepdims=True)).astype(dt)


def case(name, r, n, c, dt, labels=True):
    """(function, out, target, kwargs) for loss ``name``."""
    z = (3 * r.standard_normal((n, c))).astype(dt)
    if name == "cross_entropy":
        return ops.cross_entropy, z, (r.integers(0, c, n) if labels else soft(r, n, c, dt))
    t = (r.random((n, c)) if name == "binary_cross_entropy" else 2 * r.standard_normal((n, c))).astype(dt)
    return getattr(ops, name), z, t


NAMES = ["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]


@given(
    name=st.sampled_from(NAMES),
    n=st.sampled_from([1, 2, 7, 33, 600]),
    c=st.sampled_from([1, 3, 10]),
    red=st.sampled_from(["mean", "sum"]),
    f64=st.booleans(),
    weighted=st.booleans(),
    labels=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**31),
)
def test_kernels_match_reference(name, n, c, red, f64, weighted, labels, smoothing, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    _, z, t = case(name, r, n, c, dt, labels)
    kw = {"reduction": red}
    if weighted:
        kw["sample_weight"] = r.random(n).astype(dt) * 3
    if name == "cross_entropy" and smoothing:
        kw["label_smoothing"] = smoothing
    if name == "huber":
        kw["delta"] = 0.7
    lg, gg = getattr(ops, name)(z, t, **kw)
    lw, gw = getattr(ref, name)(z, t, **kw)
    assert gg.dtype == dt and gg.shape == z.shape and gg.flags.c_contiguous
    scale = 1.0 if red == "mean" else n * c
    assert_close(np.float64(lg), np.float64(lw), kind="reduction", dtype=dt, scale=3 * scale)
    assert_close(gg, gw, kind="difference", scale=3 * (1.0 if red == "sum" else 1.0 / n))


# Soft targets are a cross-entropy option; the other losses always take float targets.
@pytest.mark.parametrize(
    "name, labels", [("cross_entropy", True), ("cross_entropy", False)] + [(n, False) for n in NAMES[1:]]
)
@pytest.mark.parametrize("weighted", [False, True])
@BACKENDS
def test_gradient_matches_finite_differences(name, labels, weighted, backend):
    r = np.random.default_rng(5)
    n, c = 6, 4
    _, z, t = case(name, r, n, c, np.float64, labels)
    kw = {"sample_weight": r.random(n) * 2} if weighted else {}
    if name == "cross_entropy":
        kw["label_smoothing"] = 0.15
    if name == "huber":
        kw["delta"] = 1.3
    fn = getattr(backend, name)
    _, g = fn(z, t, **kw)
    assert_close(g, numeric_grad(lambda: fn(z, t, **kw)[0], z), kind="gradcheck")


@BACKENDS
def test_weights_are_keras_sum_over_batch_size(backend):
    """Σ w_i·l_i / n: a weight of 2 on a row counts it twice, and n stays the row count."""
    r = np.random.default_rng(1)
    z = r.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    w = np.array([1.0, 2.0, 0.0, 1.0])
    lw, gw = backend.cross_entropy(z, y, sample_weight=w)
    rows = np.array([backend.cross_entropy(z[i : i + 1], y[i : i + 1])[0] for i in range(4)])
    assert lw == pytest.approx((rows * w).sum() / 4, rel=1e-12)
    _, plain = backend.cross_entropy(z, y)
    np.testing.assert_allclose(gw, plain * w[:, None], rtol=1e-12, atol=1e-15)
    lm, _ = backend.mae(z, z + 1.0, sample_weight=w)
    assert lm == pytest.approx((3 * w).sum() / 12, rel=1e-12)


@BACKENDS
def test_label_smoothing_is_pytorchs_mixture(backend):
    """CE with smoothing ε = CE against the soft targets (1 − ε)·onehot + ε/C."""
    r = np.random.default_rng(2)
    z = r.standard_normal((5, 4))
    y = r.integers(0, 4, 5)
    q = np.full((5, 4), 0.1 / 4)
    q[np.arange(5), y] += 0.9
    a = backend.cross_entropy(z, y, label_smoothing=0.1)
    b = backend.cross_entropy(z, q)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)
    # The closed form of torch.nn.CrossEntropyLoss(label_smoothing=ε).
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    want = np.mean(-(0.9 * logp[np.arange(5), y] + 0.1 / 4 * logp.sum(1)))
    assert a[0] == pytest.approx(want, rel=1e-12)


@BACKENDS
def test_huber_and_mae_closed_forms(backend):
    p = np.array([[0.0, 0.5, -2.0, 3.0]])
    t = np.zeros((1, 4))
    lh, gh = backend.huber(p, t, delta=1.0)
    assert lh == pytest.approx((0 + 0.125 + 1.5 + 2.5) / 4)
    np.testing.assert_array_equal(gh, np.array([[0.0, 0.5, -1.0, 1.0]]) / 4)
    lm, gm = backend.mae(p, t, reduction="sum")
    assert lm == 5.5
    np.testing.assert_array_equal(gm, np.array([[0.0, 1.0, -1.0, 1.0]]))


def test_against_pytorch_when_installed():
    torch = require_torch()
    r = np.random.default_rng(3)
    z = r.standard_normal((7, 5))
    y = r.integers(0, 5, 7)
    q = soft(r, 7, 5, np.float64)
    zt = torch.tensor(z, requires_grad=True)
    cases = [
        (ops.cross_entropy(z, y, label_smoothing=0.2), torch.nn.CrossEntropyLoss(label_smoothing=0.2), torch.tensor(y)),
        (ops.cross_entropy(z, q, label_smoothing=0.1), torch.nn.CrossEntropyLoss(label_smoothing=0.1), torch.tensor(q)),
        (ops.huber(z, q, delta=0.3), torch.nn.HuberLoss(delta=0.3), torch.tensor(q)),
        (ops.mae(z, q), torch.nn.L1Loss(), torch.tensor(q)),
    ]
    for (value, grad), fn, target in cases:
        zt.grad = None
        out = fn(zt, target)
        out.backward()
        assert value == pytest.approx(out.item(), rel=1e-12)
        np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@BACKENDS
class TestBadInput:
    z = np.zeros((3, 4), np.float32)

    def test_weights(self, backend):
        y = np.array([0, 1, 2])
        with pytest.raises(ValueError, match="sample_weight"):
            backend.cross_entropy(self.z, y, sample_weight=np.ones(2, np.float32))
        with pytest.raises(ValueError, match=r"sample_weight\[1\]"):
            backend.cross_entropy(self.z, y, sample_weight=np.array([1, -1, 1], np.float32))
        with pytest.raises(ValueError, match=r"sample_weight\[2\]"):
            backend.mse(self.z, self.z, sample_weight=np.array([1, 1, np.nan], np.float32))
        with pytest.raises(TypeError):
            backend.mae(self.z, self.z, sample_weight=np.ones(3, np.float64))

    def test_options(self, backend):
        y = np.array([0, 1, 2])
        with pytest.raises(ValueError, match="label_smoothing"):
            backend.cross_entropy(self.z, y, label_smoothing=1.5)
        with pytest.raises(ValueError, match="delta"):
            backend.huber(self.z, self.z, delta=0.0)
        with pytest.raises(ValueError, match=r"labels\[1\] = 7"):
            backend.cross_entropy(self.z, np.array([0, 7, 1]), label_smoothing=0.1)
        with pytest.raises(ValueError, match="'labels'"):
            backend.cross_entropy(self.z, np.zeros((3, 5), np.float32))
        with pytest.raises(ValueError, match="'target'"):
            backend.huber(self.z, np.zeros((3, 5), np.float32))
