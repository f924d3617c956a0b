"""initcore.ops.batch_norm_forward/backward against initcore.reference.ops (NumPy), PyTorch's
conventions, finite differences, and the numerically hard case of a large mean."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close, numeric_grad
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = pytest.mark.parametrize("backend", [ops, ref], ids=["rust", "numpy"])
rows = st.sampled_from([2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130])
cols = st.sampled_from([0, 1, 7, 8, 9, 15, 16, 17, 33])


def make(rng, n, m, dt, loc=0.0, scale=1.0):
    x = (loc + scale * rng.standard_normal((n, m))).astype(dt)
    gamma = (1 + 0.5 * rng.standard_normal(m)).astype(dt)
    beta = rng.standard_normal(m).astype(dt)
    return x, gamma, beta


@given(n=rows, m=cols, f64=st.booleans(), loc=st.sampled_from([0.0, 3.0, -50.0]), seed=st.integers(0, 2**31))
def test_training_matches_reference(n, m, f64, loc, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    x, gamma, beta = make(r, n, m, dt, loc=loc, scale=2.0)
    rm, rv = r.standard_normal(m).astype(dt), (1 + r.random(m)).astype(dt)
    rm2, rv2 = rm.copy(), rv.copy()
    got = ops.batch_norm_forward(x, gamma, beta, rm, rv, momentum=0.3)
    want = ref.batch_norm_forward(x, gamma, beta, rm2, rv2, momentum=0.3)
    for a, b, name in zip(got, want, ("y", "save_mean", "save_invstd")):
        assert a.dtype == dt and a.flags.c_contiguous, name
        assert_close(a, b, err_msg=name, scale=1 + abs(loc))
    assert_close(rm, rm2, err_msg="running_mean", scale=1 + abs(loc))
    assert_close(rv, rv2, err_msg="running_var")
    dy = r.standard_normal((n, m)).astype(dt)
    for training in (True, False):
        g = ops.batch_norm_backward(dy, x, gamma, got[1], got[2], training=training)
        w = ref.batch_norm_backward(dy, x, gamma, got[1], got[2], training=training)
        for a, b, name in zip(g, w, ("dx", "dgamma", "dbeta")):
            assert a.dtype == dt, name
            assert_close(a, b, err_msg=f"{name} training={training}", scale=n)


@given(n=st.sampled_from([0, 1, 2, 7, 8, 9, 17]), m=cols, f64=st.booleans())
def test_evaluation_matches_reference_and_leaves_running_stats(n, m, f64):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(n * 100 + m)
    x, gamma, beta = make(r, n, m, dt)
    rm, rv = r.standard_normal(m).astype(dt), (0.5 + r.random(m)).astype(dt)
    rm0, rv0 = rm.copy(), rv.copy()
    got = ops.batch_norm_forward(x, gamma, beta, rm, rv, training=False)
    want = ref.batch_norm_forward(x, gamma, beta, rm, rv, training=False)
    for a, b in zip(got, want):
        assert_close(a, b, kind="elementwise")
    assert np.array_equal(got[1], rm0) and got[1] is not rm
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0)
    dy = r.standard_normal((n, m)).astype(dt)
    g = ops.batch_norm_backward(dy, x, gamma, got[1], got[2], training=False)
    assert_close(g[0], dy * (gamma * got[2]), kind="elementwise")


@BACKENDS
def test_running_statistics_follow_pytorch(backend):
    # torch.nn.BatchNorm1d(2, momentum=0.1): running_var uses the unbiased batch variance.
    x = np.array([[1.0, 10.0], [2.0, 10.0], [6.0, 13.0]])
    rm, rv = np.zeros(2), np.ones(2)
    y, mean, invstd = backend.batch_norm_forward(x, np.ones(2), np.zeros(2), rm, rv)
    np.testing.assert_allclose(mean, [3.0, 11.0])
    np.testing.assert_allclose(invstd, 1 / np.sqrt(np.array([14 / 3, 2.0]) + 1e-5))  # biased
    np.testing.assert_allclose(rm, [0.3, 1.1])
    np.testing.assert_allclose(rv, [0.9 + 0.1 * 7.0, 0.9 + 0.1 * 3.0])  # unbiased: 14/2, 6/2
    np.testing.assert_allclose(y.sum(axis=0), 0.0, atol=1e-12)


@BACKENDS
def test_large_mean_small_spread_float32(backend):
    """mean 1e4, std 1e-2 in float32: E[x²] − E[x]² would be noise; two passes are not."""
    r = np.random.default_rng(0)
    x = (1e4 + 1e-2 * r.standard_normal((4096, 3))).astype(np.float32)
    exact = x.astype(np.float64).var(axis=0)  # the variance of the float32 data itself
    naive = (x * x).mean(axis=0, dtype=np.float32) - x.mean(axis=0, dtype=np.float32) ** 2
    assert np.all(np.abs(naive - exact) > 10 * exact), "the naive formula should fail here"
    one = np.ones(3, np.float32)
    _, mean, invstd = backend.batch_norm_forward(x, one, 0 * one, eps=1e-12)
    var = 1.0 / invstd.astype(np.float64) ** 2 - 1e-12
    np.testing.assert_allclose(var, exact, rtol=1e-3)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-7)


@BACKENDS
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_backward_matches_finite_differences(backend, training):
    r = np.random.default_rng(7)
    n, m = 6, 3
    x, gamma, beta = make(r, n, m, np.float64)
    rm, rv = r.standard_normal(m), 0.5 + r.random(m)
    w = r.standard_normal((n, m))

    def loss():
        y = backend.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), training=training)[0]
        return float((y * w).sum())

    _, mean, invstd = backend.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), training=training)
    dx, dgamma, dbeta = backend.batch_norm_backward(w, x, gamma, mean, invstd, training=training)
    assert_close(dx, numeric_grad(loss, x), kind="gradcheck")
    assert_close(dgamma, numeric_grad(loss, gamma), kind="gradcheck")
    assert_close(dbeta, numeric_grad(loss, beta), kind="gradcheck")


def test_non_contiguous_inputs_match(dtype):
    r = np.random.default_rng(3)
    x, gamma, beta = make(r, 20, 9, dtype)
    want = ops.batch_norm_forward(x, gamma, beta)
    xf = np.asfortranarray(x)
    wide = np.repeat(gamma, 2)[::2]
    got = ops.batch_norm_forward(xf, wide, beta)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)
    dy = r.standard_normal(x.shape).astype(dtype)
    b1 = ops.batch_norm_backward(dy, x, gamma, want[1], want[2])
    b2 = ops.batch_norm_backward(np.asfortranarray(dy), xf, wide, want[1], want[2])
    for a, b in zip(b1, b2):
        assert np.array_equal(a, b)


def test_bit_identical_for_any_thread_count():
    r = np.random.default_rng(11)
    x, gamma, beta = make(r, 1024, 160, np.float32)
    dy = r.standard_normal(x.shape).astype(np.float32)
    n0 = ic.get_num_threads()
    results = []
    try:
        for t in (1, 2, 3):
            ic.set_num_threads(t)
            rm, rv = np.zeros(160, np.float32), np.ones(160, np.float32)
            fwd = ops.batch_norm_forward(x, gamma, beta, rm, rv)
            bwd = ops.batch_norm_backward(dy, x, gamma, fwd[1], fwd[2])
            results.append([a.view(np.uint32) for a in (*fwd, *bwd, rm, rv)])
    finally:
        ic.set_num_threads(n0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


@BACKENDS
class TestBadInput:
    def setup_method(self):
        self.x = np.ones((4, 3))
        self.g = np.ones(3)
        self.rm = np.full(3, 7.0)
        self.rv = np.full(3, 7.0)

    def untouched(self):
        assert np.all(self.rm == 7.0) and np.all(self.rv == 7.0)

    def test_one_row_when_training(self, backend):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
            backend.batch_norm_forward(self.x[:1], self.g, self.g, self.rm, self.rv)
        self.untouched()

    def test_no_rows_when_training(self, backend):
        with pytest.raises(ValueError, match="'x'"):
            backend.batch_norm_forward(self.x[:0], self.g, self.g, self.rm, self.rv)
        self.untouched()

    def test_int_dtype(self, backend):
        with pytest.raises(TypeError, match="'x'"):
            backend.batch_norm_forward(np.ones((4, 3), np.int64), self.g, self.g)

    def test_mixed_dtypes(self, backend):
        with pytest.raises(TypeError, match="'running_var'"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, self.rv.astype(np.float32))
        self.untouched()

    def test_x_not_2d(self, backend):
        with pytest.raises(ValueError, match="'x'"):
            backend.batch_norm_forward(np.ones(4), self.g, self.g)

    def test_gamma_shape(self, backend):
        with pytest.raises(ValueError, match="'gamma'"):
            backend.batch_norm_forward(self.x, np.ones(4), self.g, self.rm, self.rv)
        self.untouched()

    def test_running_var_shape(self, backend):
        with pytest.raises(ValueError, match="'running_var'"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, np.ones(2))
        self.untouched()

    def test_only_one_running_stat(self, backend):
        with pytest.raises(ValueError, match="'running_var'"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, None)
        self.untouched()

    def test_eval_needs_running_stats(self, backend):
        with pytest.raises(ValueError, match="'running_mean'"):
            backend.batch_norm_forward(self.x, self.g, self.g, training=False)

    @pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), float("inf")])
    def test_momentum(self, backend, momentum):
        with pytest.raises(ValueError, match="'momentum'"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, self.rv, momentum=momentum)
        self.untouched()

    @pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), float("inf")])
    def test_eps(self, backend, eps):
        with pytest.raises(ValueError, match="'eps'"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, self.rv, eps=eps)
        self.untouched()

    def test_read_only_running_mean(self, backend):
        self.rm.flags.writeable = False
        with pytest.raises(ValueError, match="'running_mean'.*read-only"):
            backend.batch_norm_forward(self.x, self.g, self.g, self.rm, self.rv)
        self.untouched()

    def test_backward_dy_shape(self, backend):
        with pytest.raises(ValueError, match="'dy'"):
            backend.batch_norm_backward(np.ones((3, 3)), self.x, self.g, self.g, self.g)

    def test_backward_save_invstd_shape(self, backend):
        with pytest.raises(ValueError, match="'save_invstd'"):
            backend.batch_norm_backward(self.x, self.x, self.g, self.g, np.ones(2))

    def test_backward_dtype(self, backend):
        with pytest.raises(TypeError, match="'save_mean'"):
            backend.batch_norm_backward(self.x, self.x, self.g, self.g.astype(np.float32), self.g)


def test_running_stats_sharing_memory_are_rejected():
    x, g = np.ones((4, 3)), np.ones(3)
    rm = np.full(3, 7.0)
    with pytest.raises(ValueError, match="'running_var'"):
        ops.batch_norm_forward(x, g, g, rm, rm)
    assert np.all(rm == 7.0)
    with pytest.raises(ValueError, match="'running_mean'"):
        ops.batch_norm_forward(x, g, g, g, rm)
    assert np.all(g == 1.0)


def test_pre_0_2_names_are_aliases_of_batch_norm():
    """DESIGN.md's API contract spells the kernels ``batchnorm_forward``/``batchnorm_backward``;
    both backends keep those names as the very same functions (CHANGELOG: renamed)."""
    from initcore import ops
    from initcore.reference import ops as ref

    for m in (ops, ref):
        assert m.batchnorm_forward is m.batch_norm_forward
        assert m.batchnorm_backward is m.batch_norm_backward
        assert {"batchnorm_forward", "batch_norm_forward"} <= set(m.__all__)
