"""initcore.ops activations (elementwise, softmax family, PReLU, maxout) against the NumPy
reference, with finite-difference checks of every backward in both backends."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close, numeric_grad
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = [pytest.param(ops, id="rust"), pytest.param(ref, id="numpy")]
ELEMENTWISE = ["identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"]
TRANSCENDENTAL = {"sigmoid", "tanh", "elu", "selu"}
WITH_ALPHA = {"leaky_relu", "elu"}
SIZES = [0, 1, 2, 7, 8, 9, 15, 16, 17, 33]


def array(seed, shape, dtype, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


shapes = st.lists(st.sampled_from(SIZES), min_size=1, max_size=3).map(tuple)
two_d = st.tuples(st.sampled_from(SIZES), st.sampled_from(SIZES))


@given(
    shape=shapes,
    act=st.sampled_from(ELEMENTWISE),
    f64=st.booleans(),
    seed=st.integers(0, 2**31),
    alpha=st.sampled_from([None, 0.2, 1.7]),
    scale=st.sampled_from([0.01, 3.0, 40.0]),
)
def test_elementwise_matches_reference(shape, act, f64, seed, alpha, scale):
    dt = np.float64 if f64 else np.float32
    alpha = alpha if act in WITH_ALPHA else None
    x = array(seed, shape, dt, scale)
    dy = array(seed + 1, shape, dt)
    y = ops.activation_forward(x, act, alpha)
    yr = ref.activation_forward(x, act, alpha)
    assert y.dtype == dt and y.shape == shape
    assert_close(y, yr, "transcendental" if act in TRANSCENDENTAL else "exact")
    # Same y into both backwards: the backward itself is plain arithmetic.
    dx = ops.activation_backward(dy, x, yr, act, alpha)
    assert_close(dx, ref.activation_backward(dy, x, yr, act, alpha), "elementwise")


@given(shape=two_d, f64=st.booleans(), seed=st.integers(0, 2**31), scale=st.sampled_from([0.1, 5.0, 100.0]))
def test_softmax_family_matches_reference(shape, f64, seed, scale):
    dt = np.float64 if f64 else np.float32
    x = array(seed, shape, dt, scale)
    dy = array(seed + 1, shape, dt)
    y, yr = ops.softmax(x), ref.softmax(x)
    assert_close(y, yr, "transcendental")
    # Row sums of k terms: a reduction; the atol scale covers cancellation in Σ dy·y.
    assert_close(ops.softmax_backward(dy, yr), ref.softmax_backward(dy, yr), "reduction")
    ly, lyr = ops.log_softmax(x), ref.log_softmax(x)
    assert_close(ly, lyr, "reduction", scale=max(1.0, scale))
    assert_close(
        ops.log_softmax_backward(dy, lyr), ref.log_softmax_backward(dy, lyr), "reduction", scale=max(1, shape[1])
    )


@given(shape=two_d, f64=st.booleans(), seed=st.integers(0, 2**31))
def test_prelu_matches_reference(shape, f64, seed):
    dt = np.float64 if f64 else np.float32
    x = array(seed, shape, dt)
    dy = array(seed + 1, shape, dt)
    slope = np.random.default_rng(seed).uniform(-0.5, 0.5, shape[1]).astype(dt)
    assert_close(ops.prelu_forward(x, slope), ref.prelu_forward(x, slope), "exact")
    dx, ds = ops.prelu_backward(dy, x, slope)
    dxr, dsr = ref.prelu_backward(dy, x, slope)
    assert_close(dx, dxr, "exact")
    assert ds.shape == (shape[1],) and ds.dtype == dt
    assert_close(ds, dsr, "reduction", scale=max(1, shape[0]) ** 0.5)


@given(
    n=st.sampled_from(SIZES),
    m=st.sampled_from(SIZES),
    k=st.sampled_from([1, 2, 3, 4, 5]),
    f64=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_maxout_matches_reference(n, m, k, f64, seed):
    dt = np.float64 if f64 else np.float32
    # Rounded values, so that ties happen and "first maximum wins" is exercised.
    x = np.round(array(seed, (n, m * k), dt))
    y, arg = ops.maxout_forward(x, k)
    yr, argr = ref.maxout_forward(x, k)
    assert arg.dtype == np.int64 and arg.shape == (n, m)
    assert_close(y, yr, "exact")
    np.testing.assert_array_equal(arg, argr)
    dy = array(seed + 1, (n, m), dt)
    assert_close(ops.maxout_backward(dy, arg, k), ref.maxout_backward(dy, argr, k), "exact")


def test_maxout_nan_counts_as_maximum():
    x = np.array([[1.0, np.nan, 5.0, np.nan]], np.float32)
    for be in (ops, ref):
        y, arg = be.maxout_forward(x, 4)
        assert np.isnan(y[0, 0]) and arg[0, 0] == 1


def test_out_is_written_and_returned(dtype, rng):
    x = rng.standard_normal((9, 17)).astype(dtype)
    out = np.full_like(x, np.nan)
    assert ops.activation_forward(x, "tanh", out=out) is out
    assert_close(out, ref.activation_forward(x, "tanh"), "transcendental")
    y = out.copy()
    out2 = np.full_like(x, np.nan)
    assert ops.activation_backward(x, x, y, "tanh", out=out2) is out2
    assert_close(out2, ref.activation_backward(x, x, y, "tanh"), "elementwise")
    out3 = np.full_like(x, np.nan)
    assert ops.softmax(x, out=out3) is out3 and ops.log_softmax(x, out=out3) is out3
    assert_close(out3, ref.log_softmax(x), "reduction")


def test_non_contiguous_inputs_are_accepted(dtype, rng):
    x = rng.standard_normal((12, 18)).astype(dtype)
    for view in (x.T, x[::2], x[:, ::3], np.asfortranarray(x)):
        assert_close(ops.activation_forward(view, "sigmoid"), ref.activation_forward(view, "sigmoid"), "transcendental")
        assert_close(ops.softmax(view), ref.softmax(view), "transcendental")
        assert ops.activation_forward(view, "relu").flags.c_contiguous


@pytest.mark.parametrize("be", BACKENDS)
def test_saturation_at_1e4_and_inf(be, dtype):
    x = np.array([1e4, -1e4, np.inf, -np.inf, 0.0], dtype)
    want = {
        "sigmoid": [1, 0, 1, 0, 0.5],
        "tanh": [1, -1, 1, -1, 0],
        "relu": [1e4, 0, np.inf, 0, 0],
        "elu": [1e4, -1, np.inf, -1, 0],
        "selu": [
            1.0507009873554805 * 1e4,
            -1.0507009873554805 * 1.6732632423543772,
            np.inf,
            -1.0507009873554805 * 1.6732632423543772,
            0,
        ],
        "leaky_relu": [1e4, -100, np.inf, -np.inf, 0],
    }
    # Overflow or an invalid operation would show a non-saturating formula (underflow is fine).
    with np.errstate(over="raise", invalid="raise"):
        for act, w in want.items():
            y = be.activation_forward(x, act)
            assert not np.isnan(y).any(), act
            assert_close(y, np.array(w, dtype), "transcendental", err_msg=act)
    nan = np.array([np.nan], dtype)
    for act in ELEMENTWISE:
        assert np.isnan(be.activation_forward(nan, act)).all(), act
    big = np.array([[1e4, 0.0, -1e4]], dtype)
    assert_close(be.softmax(big), np.array([[1, 0, 0]], dtype), "exact")
    assert_close(be.log_softmax(big), np.array([[0, -1e4, -2e4]], dtype), "exact")


def ulp_error(got, want64, dtype):
    """|got − want| in units in the last place of ``want`` rounded to ``dtype``."""
    spacing = np.spacing(np.abs(want64.astype(dtype))).astype(np.float64)
    return np.abs(got.astype(np.float64) - want64) / spacing


def test_ulp_bound_against_numpy():
    """The bounds stated in kernels/vmath.rs (f32 ≤ 3 ULP against exact-in-f64 values; f64
    ≤ 4 ULP against NumPy's own float64 functions, which add their own rounding)."""
    sweep = np.concatenate([np.linspace(-30, 30, 120_001), np.geomspace(1e-30, 30, 20_000)])
    sweep = np.concatenate([sweep, -sweep])
    x32 = sweep.astype(np.float32)
    x64 = x32.astype(np.float64)
    sig64 = ref.activation_forward(x64, "sigmoid")
    for act, want, bound in [
        ("tanh", np.tanh(x64), 3),
        ("sigmoid", sig64, 3),
        ("elu", np.expm1(np.minimum(x64, 0)), 2),
    ]:
        got = ops.activation_forward(x32, act)
        if act == "elu":
            got, want = got[x64 <= 0], want[x64 <= 0]
        assert ulp_error(got, want, np.float32).max() <= bound, act
    for act, want, bound in [
        ("tanh", np.tanh(sweep), 4),
        ("elu", np.where(sweep > 0, sweep, np.expm1(np.minimum(sweep, 0))), 3),
    ]:
        got = ops.activation_forward(sweep, act)
        assert ulp_error(got, want, np.float64).max() <= bound, act


# --- finite-difference gradients (float64, both backends) -----------------------------------


def away_from_kinks(rng, shape):
    x = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return x.astype(np.float64)


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"])
def test_elementwise_backward_finite_differences(be, act, rng):
    x = away_from_kinks(rng, (3, 5))
    w = rng.standard_normal((3, 5))
    alpha = 0.3 if act in WITH_ALPHA else None
    y = be.activation_forward(x, act, alpha)
    g = be.activation_backward(w, x, y, act, alpha)
    num = numeric_grad(lambda: float((w * be.activation_forward(x, act, alpha)).sum()), x)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("be", BACKENDS)
def test_softmax_family_finite_differences(be, rng):
    x = rng.standard_normal((3, 6))
    w = rng.standard_normal((3, 6))
    for fwd, bwd in [(be.softmax, be.softmax_backward), (be.log_softmax, be.log_softmax_backward)]:
        g = bwd(w, fwd(x))
        num = numeric_grad(lambda fwd=fwd: float((w * fwd(x)).sum()), x)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("be", BACKENDS)
def test_prelu_finite_differences(be, rng):
    x = away_from_kinks(rng, (4, 5))
    slope = rng.uniform(-0.5, 0.5, 5)
    w = rng.standard_normal((4, 5))
    dx, ds = be.prelu_backward(w, x, slope)
    loss = lambda: float((w * be.prelu_forward(x, slope)).sum())  # noqa: E731
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ds, numeric_grad(loss, slope), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("be", BACKENDS)
def test_maxout_finite_differences(be, rng):
    x = rng.permutation(24).reshape(3, 8).astype(np.float64)  # distinct: no ties
    w = rng.standard_normal((3, 4))
    _, arg = be.maxout_forward(x, 2)
    g = be.maxout_backward(w, arg, 2)
    num = numeric_grad(lambda: float((w * be.maxout_forward(x, 2)[0]).sum()), x)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


# --- bad input ------------------------------------------------------------------------------


def raises(exc, arg, fn, *a, **kw):
    with pytest.raises(exc) as e:
        fn(*a, **kw)
    assert f"'{arg}'" in str(e.value), str(e.value)


@pytest.mark.parametrize("be", BACKENDS)
def test_bad_activation_and_alpha(be):
    x = np.ones((2, 3), np.float32)
    out = np.full_like(x, 7.0)
    raises(ValueError, "activation", be.activation_forward, x, "swish", out=out)
    raises(ValueError, "activation", be.activation_forward, x, "ReLU", out=out)
    raises(TypeError, "activation", be.activation_forward, x, 3, out=out)
    raises(ValueError, "alpha", be.activation_forward, x, "relu", 0.1, out=out)
    raises(ValueError, "alpha", be.activation_forward, x, "selu", 1.0, out=out)
    raises(ValueError, "alpha", be.activation_forward, x, "elu", float("nan"), out=out)
    raises(ValueError, "alpha", be.activation_forward, x, "leaky_relu", float("inf"), out=out)
    raises(TypeError, "alpha", be.activation_forward, x, "elu", "big", out=out)
    raises(ValueError, "alpha", be.activation_backward, x, x, x, "tanh", 0.5, out=out)
    assert (out == 7.0).all(), "nothing written"


@pytest.mark.parametrize("be", BACKENDS)
def test_bad_arrays(be):
    x = np.ones((2, 3), np.float32)
    out = np.full_like(x, 7.0)
    raises(TypeError, "x", be.activation_forward, x.astype(np.int64), "relu")
    raises(TypeError, "x", be.activation_forward, [1.0, 2.0], "relu")
    raises(TypeError, "out", be.activation_forward, x, "relu", out=out.astype(np.float64))
    raises(ValueError, "out", be.activation_forward, x, "relu", out=np.zeros((3, 2), np.float32))
    raises(TypeError, "y", be.activation_backward, x, x, x.astype(np.float64), "tanh", out=out)
    raises(ValueError, "y", be.activation_backward, x, x, x[:1], "tanh", out=out)
    raises(ValueError, "x", be.softmax, np.ones(3, np.float32), out=out)
    raises(ValueError, "out", be.log_softmax, x, out=np.zeros((2, 4), np.float32))
    raises(ValueError, "y", be.softmax_backward, x, x[:, :2])
    raises(ValueError, "slope", be.prelu_forward, x, np.ones(2, np.float32))
    raises(ValueError, "dy", be.prelu_backward, x[:1], x, np.ones(3, np.float32))
    raises(TypeError, "slope", be.prelu_backward, x, x, np.ones(3, np.float64))
    raises(ValueError, "k", be.maxout_forward, x, 2)
    raises(ValueError, "k", be.maxout_forward, x, 0)
    raises(TypeError, "k", be.maxout_forward, x, 1.5)
    arg = np.zeros((2, 3), np.int64)
    raises(TypeError, "argmax", be.maxout_backward, x, arg.astype(np.int32), 2)
    raises(ValueError, "argmax", be.maxout_backward, x, arg + 2, 2)
    raises(ValueError, "argmax", be.maxout_backward, x, arg - 1, 2)
    raises(ValueError, "argmax", be.maxout_backward, x, arg[:1], 2)
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    raises(ValueError, "out", be.activation_forward, x, "relu", out=ro)
    assert (out == 7.0).all() and not ro.any(), "nothing written"


def test_out_aliasing_an_input_is_rejected():
    x = np.ones((2, 3), np.float32)
    raises(ValueError, "out", ops.activation_forward, x, "relu", out=x)
    raises(ValueError, "out", ops.activation_backward, x, x * 2, x * 3, "tanh", out=x)
    assert (x == 1).all()


def test_non_contiguous_out_is_rejected():
    out = np.zeros((3, 4), np.float32).T
    raises(ValueError, "out", ops.activation_forward, np.ones((4, 3), np.float32), "relu", out=out)
    assert not out.any()


# --- determinism ----------------------------------------------------------------------------


def test_bit_identical_for_any_thread_count(rng):
    x = rng.standard_normal((2000, 129)).astype(np.float32)
    dy = rng.standard_normal((2000, 129)).astype(np.float32)
    slope = rng.uniform(0, 0.3, 129).astype(np.float32)

    def run():
        y = ops.activation_forward(x, "tanh")
        return [
            y,
            ops.activation_backward(dy, x, y, "tanh"),
            ops.softmax(x),
            ops.log_softmax(x),
            *ops.prelu_backward(dy, x, slope),
        ]

    n0 = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        one = run()
        for t in (2, 3):
            ic.set_num_threads(t)
            for a, b in zip(run(), one):
                assert a.tobytes() == b.tobytes(), f"threads={t}"
    finally:
        ic.set_num_threads(n0)
