"""initcore.ops losses (cross_entropy, binary_cross_entropy, mse) against initcore.reference.ops,
finite differences, numerical stability and input checks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close, numeric_grad
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = pytest.mark.parametrize("backend", [ops, ref], ids=["rust", "numpy"])
LABEL_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
sizes = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 64, 65])
reductions = st.sampled_from(["mean", "sum"])


def loss_close(a, b, dt, n):
    """The loss is a float64 sum of per-row terms computed in ``dt``: compare as a reduction."""
    assert isinstance(a, float)
    assert_close(np.float64(a), np.float64(b), kind="reduction", dtype=dt, scale=n)


@given(
    n=sizes,
    c=st.sampled_from([1, 2, 7, 8, 9, 10, 17]),
    ldt=st.sampled_from(LABEL_DTYPES),
    red=reductions,
    f64=st.booleans(),
    spread=st.sampled_from([1.0, 30.0]),
    seed=st.integers(0, 2**31),
)
def test_cross_entropy_matches_reference(n, c, ldt, red, f64, spread, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    z = (spread * r.standard_normal((n, c))).astype(dt)
    y = r.integers(0, c, n).astype(ldt)
    lg, gg = ops.cross_entropy(z, y, reduction=red)
    lw, gw = ref.cross_entropy(z, y, reduction=red)
    assert gg.dtype == dt and gg.shape == (n, c) and gg.flags.c_contiguous
    loss_close(lg, lw, dt, 1 if red == "mean" else n)
    assert_close(gg, gw, kind="difference", scale=1 / n if red == "mean" else 1)
    # softmax − onehot sums to 0 in every row
    assert_close(gg.sum(axis=1), np.zeros(n, dt), kind="reduction", scale=c)


@given(
    shape=st.sampled_from([(1,), (7,), (8,), (9,), (3, 5), (16, 1), (17, 3), (2, 3, 4), (600, 17)]),
    red=reductions,
    f64=st.booleans(),
    spread=st.sampled_from([1.0, 20.0]),
    seed=st.integers(0, 2**31),
)
def test_bce_and_mse_match_reference(shape, red, f64, spread, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    z = (spread * r.standard_normal(shape)).astype(dt)
    t = r.random(shape).astype(dt)
    size = z.size
    for name in ("binary_cross_entropy", "mse"):
        lg, gg = getattr(ops, name)(z, t, reduction=red)
        lw, gw = getattr(ref, name)(z, t, reduction=red)
        assert gg.dtype == dt and gg.shape == shape, name
        loss_close(lg, lw, dt, 1 if red == "mean" else size)
        magnitude = (1 if name == "binary_cross_entropy" else 2 * spread) / (size if red == "mean" else 1)
        assert_close(gg, gw, kind="difference", scale=magnitude, err_msg=name)


@BACKENDS
@pytest.mark.parametrize("red", ["mean", "sum"])
def test_gradients_match_finite_differences(backend, red):
    r = np.random.default_rng(5)
    z = 2 * r.standard_normal((5, 4))
    y = r.integers(0, 4, 5)
    t = r.random((5, 4))
    cases = [
        ("cross_entropy", lambda: backend.cross_entropy(z, y, red)),
        ("binary_cross_entropy", lambda: backend.binary_cross_entropy(z, t, red)),
        ("mse", lambda: backend.mse(z, t, red)),
    ]
    for name, f in cases:
        _, g = f()
        assert_close(g, numeric_grad(lambda f=f: f()[0], z), kind="gradcheck", err_msg=name)
    # BCE and MSE are also differentiated against the target.
    _, g = backend.mse(z, t, red)
    assert_close(-g, numeric_grad(lambda: backend.mse(z, t, red)[0], t), kind="gradcheck")


@BACKENDS
def test_known_values(backend):
    z = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    loss, g = backend.cross_entropy(z, np.array([0, 1]))
    assert loss == pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-14)
    np.testing.assert_allclose(g, [[-0.25, 0.25], [0.375, -0.375]], rtol=1e-14)
    loss, g = backend.binary_cross_entropy(np.array([0.0, 0.0]), np.array([1.0, 0.0]), reduction="sum")
    assert loss == pytest.approx(2 * np.log(2), rel=1e-14)
    np.testing.assert_allclose(g, [-0.5, 0.5], rtol=1e-14)
    loss, g = backend.mse(np.array([1.0, 2.0]), np.array([0.0, 4.0]))
    assert loss == 2.5
    np.testing.assert_array_equal(g, [1.0, -2.0])


@BACKENDS
def test_extreme_logits_are_stable(backend, dtype):
    z = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 3e4]], dtype)
    loss, g = backend.cross_entropy(z, np.array([1, 0]), reduction="sum")
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert loss == pytest.approx(2e4 + 6e4 + np.log(2), rel=1e-6)
    zz = np.array([1e4, -1e4, 100.0, -100.0], dtype)
    tt = np.array([0.0, 1.0, 1.0, 0.0], dtype)
    loss, g = backend.binary_cross_entropy(zz, tt, reduction="sum")
    assert loss == pytest.approx(2e4 + 2 * np.log1p(np.exp(-100.0)), rel=1e-6)
    # σ(100) − 1 = −e^−100 is below half an ULP of 1, so it is 0; σ(−100) keeps its tail.
    assert_close(g, np.array([1.0, -1.0, 0.0, np.exp(-100.0)]).astype(dtype), kind="transcendental")


def test_bit_identical_for_any_thread_count():
    n = 9001  # above the parallel threshold, not a multiple of the block size
    r = np.random.default_rng(0)
    z = r.standard_normal((n, 10)).astype(np.float32)
    y = r.integers(0, 10, n)
    t = r.random((n, 10)).astype(np.float32)
    n0 = ic.get_num_threads()
    out = []
    try:
        for threads in (1, 2, 3):
            ic.set_num_threads(threads)
            res = [ops.cross_entropy(z, y), ops.binary_cross_entropy(z, t), ops.mse(z, t, "sum")]
            out.append([(l, g.view(np.uint32)) for l, g in res])
    finally:
        ic.set_num_threads(n0)
    for other in out[1:]:
        for (l1, g1), (l2, g2) in zip(out[0], other):
            assert l1 == l2 and np.array_equal(g1, g2)


def test_non_contiguous_inputs(dtype):
    r = np.random.default_rng(2)
    z = r.standard_normal((9, 5)).astype(dtype)
    y = r.integers(0, 5, 18)[::2]
    assert ops.cross_entropy(np.asfortranarray(z), y)[0] == ops.cross_entropy(z, y.copy())[0]
    t = r.random((9, 5)).astype(dtype)
    for name in ("binary_cross_entropy", "mse"):
        a = getattr(ops, name)(z.T, t.T)
        b = getattr(ops, name)(np.ascontiguousarray(z.T), np.ascontiguousarray(t.T))
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[1].flags.c_contiguous


@BACKENDS
class TestBadInput:
    z = np.zeros((3, 4))

    @pytest.mark.parametrize("bad", [4, 10, -1])
    def test_label_out_of_range(self, backend, bad):
        with pytest.raises(ValueError, match=rf"'labels'.*{bad}"):
            backend.cross_entropy(self.z, np.array([0, bad, 1]))

    def test_float_labels(self, backend):
        with pytest.raises(TypeError, match="'labels'"):
            backend.cross_entropy(self.z, np.array([0.0, 1.0, 2.0]))

    def test_bool_and_list_labels(self, backend):
        with pytest.raises(TypeError, match="'labels'"):
            backend.cross_entropy(self.z, np.array([True, False, True]))
        with pytest.raises(TypeError, match="'labels'"):
            backend.cross_entropy(self.z, [0, 1, 2])

    def test_labels_shape(self, backend):
        with pytest.raises(ValueError, match="'labels'"):
            backend.cross_entropy(self.z, np.array([0, 1]))
        with pytest.raises(ValueError, match="'labels'"):
            backend.cross_entropy(self.z, np.zeros((3, 1), np.int64))

    def test_logits_not_2d(self, backend):
        with pytest.raises(ValueError, match="'logits'"):
            backend.cross_entropy(np.zeros(4), np.array([0]))

    def test_int_logits(self, backend):
        with pytest.raises(TypeError, match="'logits'"):
            backend.cross_entropy(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))

    def test_empty_batch(self, backend):
        with pytest.raises(ValueError, match="'logits'"):
            backend.cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
        with pytest.raises(ValueError, match="'logits'"):
            backend.binary_cross_entropy(np.zeros((0, 2)), np.zeros((0, 2)))
        with pytest.raises(ValueError, match="'pred'"):
            backend.mse(np.zeros(0), np.zeros(0))

    def test_reduction(self, backend):
        with pytest.raises(ValueError, match="'reduction'"):
            backend.cross_entropy(self.z, np.array([0, 1, 2]), reduction="none")
        with pytest.raises(ValueError, match="'reduction'"):
            backend.mse(self.z, self.z, reduction="avg")

    def test_target_shape(self, backend):
        with pytest.raises(ValueError, match="'targets'"):
            backend.binary_cross_entropy(self.z, np.zeros((4, 3)))
        with pytest.raises(ValueError, match="'target'"):
            backend.mse(self.z, np.zeros(12))

    def test_mixed_dtypes(self, backend):
        with pytest.raises(TypeError, match="'targets'"):
            backend.binary_cross_entropy(self.z, self.z.astype(np.float32))
        with pytest.raises(TypeError, match="'target'"):
            backend.mse(self.z.astype(np.float32), self.z)
