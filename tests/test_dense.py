"""initcore.ops.dense_forward/dense_backward against the NumPy reference, with
finite-difference gradients in both backends."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close, numeric_grad
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = [pytest.param(ops, id="rust"), pytest.param(ref, id="numpy")]
ACTS = ["identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"]
DIMS = st.sampled_from([0, 1, 2, 7, 8, 9, 15, 16, 17, 33, 70])


@given(
    n=DIMS,
    inp=DIMS,
    out=DIMS,
    act=st.sampled_from(ACTS),
    bias=st.booleans(),
    need_dx=st.booleans(),
    f64=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_matches_reference(n, inp, out, act, bias, need_dx, f64, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, inp)).astype(dt)
    w = (r.standard_normal((inp, out)) / max(1, inp) ** 0.5).astype(dt)
    b = r.standard_normal(out).astype(dt) if bias else None
    dy = r.standard_normal((n, out)).astype(dt)
    alpha = 0.2 if act == "leaky_relu" else None
    y, z = ops.dense_forward(x, w, b, act, alpha)
    yr, zr = ref.dense_forward(x, w, b, act, alpha)
    assert y.shape == z.shape == (n, out) and y.dtype == z.dtype == dt
    # z is a sum of `inp` products (GEMM's order differs from NumPy's); y inherits its error.
    assert_close(z, zr, "reduction", scale=max(1, inp) ** 0.5)
    assert_close(y, yr, "reduction", scale=max(1, inp) ** 0.5)
    # The backward from the same (z, y) in both backends.
    dx, dw, db = ops.dense_backward(dy, x, w, zr, yr, act, alpha, need_dx=need_dx)
    dxr, dwr, dbr = ref.dense_backward(dy, x, w, zr, yr, act, alpha, need_dx=need_dx)
    assert dw.shape == (inp, out) and db.shape == (out,) and dw.dtype == db.dtype == dt
    assert_close(dw, dwr, "reduction", scale=max(1, n) ** 0.5)
    assert_close(db, dbr, "reduction", scale=max(1, n) ** 0.5)
    if need_dx:
        assert dx.shape == (n, inp) and dx.dtype == dt
        assert_close(dx, dxr, "reduction", scale=max(1, out) ** 0.5)
    else:
        assert dx is None and dxr is None


def test_defaults_and_non_contiguous_inputs(dtype, rng):
    x = rng.standard_normal((20, 12)).astype(dtype)
    w = rng.standard_normal((12, 9)).astype(dtype)
    y, z = ops.dense_forward(x, w)
    assert_close(y, x @ w, "reduction", scale=12**0.5)
    assert_close(z, y, "exact")
    xf, wt = np.asfortranarray(x), np.ascontiguousarray(w.T).T
    b = np.repeat(rng.standard_normal(9).astype(dtype), 2)[::2]
    y2, _ = ops.dense_forward(xf, wt, b, "relu")
    assert_close(y2, ref.dense_forward(x, w, b, "relu")[0], "reduction", scale=12**0.5)
    dx, dw, db = ops.dense_backward(y2.T.copy().T, xf, wt, y2, y2, "relu")
    dxr, dwr, dbr = ref.dense_backward(y2, x, w, y2, y2, "relu")
    for a, e in ((dx, dxr), (dw, dwr), (db, dbr)):
        assert a.flags.c_contiguous
        assert_close(a, e, "reduction", scale=20**0.5)


# --- finite differences (float64, both backends) ---------------------------------------------


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"])
def test_backward_finite_differences(be, act, rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(5)
    g = rng.standard_normal((4, 5))
    alpha = 0.3 if act in ("leaky_relu", "elu") else None
    # Keep every z away from relu's kink, where finite differences are meaningless.
    z0 = x @ w + b
    b = b + np.where(np.abs(z0).min(axis=0) < 0.05, 0.2, 0.0)
    y, z = be.dense_forward(x, w, b, act, alpha)
    dx, dw, db = be.dense_backward(g, x, w, z, y, act, alpha)
    loss = lambda: float((g * be.dense_forward(x, w, b, act, alpha)[0]).sum())  # noqa: E731
    for got, var in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(got, numeric_grad(loss, var), rtol=1e-6, atol=1e-8)


# --- bad input --------------------------------------------------------------------------------


def raises(exc, arg, fn, *a, **kw):
    with pytest.raises(exc) as e:
        fn(*a, **kw)
    assert f"'{arg}'" in str(e.value), str(e.value)


@pytest.mark.parametrize("be", BACKENDS)
def test_bad_input(be):
    f = np.float32
    x, w, b = np.ones((4, 3), f), np.ones((3, 5), f), np.ones(5, f)
    z = y = dy = np.ones((4, 5), f)
    raises(TypeError, "x", be.dense_forward, x.astype(np.int32), w)
    raises(TypeError, "w", be.dense_forward, x, w.astype(np.float64))
    raises(TypeError, "b", be.dense_forward, x, w, b.astype(np.float64))
    raises(ValueError, "w", be.dense_forward, x, w[:2])
    raises(ValueError, "w", be.dense_forward, x, np.ones(3, f))
    raises(ValueError, "x", be.dense_forward, np.ones(3, f), w)
    raises(ValueError, "b", be.dense_forward, x, w, b[:4])
    raises(ValueError, "activation", be.dense_forward, x, w, b, "softmax")
    raises(TypeError, "activation", be.dense_forward, x, w, b, None)
    raises(ValueError, "alpha", be.dense_forward, x, w, b, "tanh", 0.5)
    raises(ValueError, "alpha", be.dense_forward, x, w, b, "elu", float("nan"))
    raises(ValueError, "dy", be.dense_backward, dy[:3], x, w, z, y)
    raises(ValueError, "z", be.dense_backward, dy, x, w, z[:, :4], y)
    raises(ValueError, "y", be.dense_backward, dy, x, w, z, y.T)
    raises(ValueError, "w", be.dense_backward, dy, x, w.T, z, y)
    raises(TypeError, "y", be.dense_backward, dy, x, w, z, y.astype(np.float64))
    raises(ValueError, "activation", be.dense_backward, dy, x, w, z, y, "gelu")
    assert (x == 1).all() and (w == 1).all() and (y == 1).all(), "nothing written"


# --- determinism ------------------------------------------------------------------------------


def test_bit_identical_for_any_thread_count(rng):
    x = rng.standard_normal((512, 300)).astype(np.float32)
    w = (rng.standard_normal((300, 256)) / 17).astype(np.float32)
    b = rng.standard_normal(256).astype(np.float32)
    dy = rng.standard_normal((512, 256)).astype(np.float32)

    def run():
        out = []
        for act in ("tanh", "identity"):
            y, z = ops.dense_forward(x, w, b, act)
            out += [y, z, *ops.dense_backward(dy, x, w, z, y, act)]
        return out

    n0 = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        one = run()
        for t in (2, 3):
            ic.set_num_threads(t)
            for a, e in zip(run(), one):
                assert a.tobytes() == e.tobytes(), f"threads={t}"
    finally:
        ic.set_num_threads(n0)
