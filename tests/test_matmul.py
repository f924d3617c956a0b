"""initcore.ops.matmul against initcore.reference.ops.matmul (NumPy)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close
from initcore import ops
from initcore.reference import ops as ref

dims = st.integers(0, 70)


@given(m=dims, k=dims, n=dims, ta=st.booleans(), tb=st.booleans(), f64=st.booleans(), seed=st.integers(0, 2**31))
def test_2d_matches_reference(m, k, n, ta, tb, f64, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    a = r.standard_normal((k, m) if ta else (m, k)).astype(dt)
    b = r.standard_normal((n, k) if tb else (k, n)).astype(dt)
    got = ops.matmul(a, b, trans_a=ta, trans_b=tb)
    assert got.dtype == dt
    assert_close(got, ref.matmul(a, b, trans_a=ta, trans_b=tb), scale=max(1, k) ** 0.5)


@given(
    batch_a=st.sampled_from([1, 3]),
    batch_b=st.sampled_from([1, 3]),
    a3=st.booleans(),
    b3=st.booleans(),
    m=st.integers(1, 20),
    k=st.integers(1, 20),
    n=st.integers(1, 20),
    f64=st.booleans(),
)
def test_batched_broadcast_matches_numpy(batch_a, batch_b, a3, b3, m, k, n, f64):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(0)
    a = r.standard_normal((batch_a, m, k) if a3 else (m, k)).astype(dt)
    b = r.standard_normal((batch_b, k, n) if b3 else (k, n)).astype(dt)
    assert_close(ops.matmul(a, b), np.matmul(a, b), scale=k**0.5)


def test_fortran_and_strided_inputs(dtype, rng):
    a = rng.standard_normal((37, 53)).astype(dtype)
    b = rng.standard_normal((53, 29)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    for aa, bb in [
        (np.asfortranarray(a), b),
        (a, np.asfortranarray(b)),
        (np.asfortranarray(a), np.asfortranarray(b)),
        (a[::-1][::-1], b),  # negative-stride view of a view
        (np.ascontiguousarray(a[::-1])[::-1], b),
        (np.repeat(a, 2, axis=1)[:, ::2], b),  # gapped columns
    ]:
        assert_close(ops.matmul(aa, bb), want.astype(dtype), scale=53**0.5)


def test_out_is_written_and_returned(dtype, rng):
    a = rng.standard_normal((8, 5)).astype(dtype)
    b = rng.standard_normal((5, 3)).astype(dtype)
    out = np.full((8, 3), np.nan, dtype=dtype)
    res = ops.matmul(a, b, out=out)
    assert res is out
    assert_close(out, a @ b)


def test_empty_shapes(dtype):
    assert ops.matmul(np.zeros((0, 3), dtype), np.zeros((3, 4), dtype)).shape == (0, 4)
    z = ops.matmul(np.ones((2, 0), dtype), np.ones((0, 4), dtype))
    assert z.shape == (2, 4) and not z.any()
    # The output is allocated unzeroed: a zero inner dimension must still write the zeros,
    # batched too. Garbage left in freed memory first makes an unwritten element show.
    for _ in range(3):
        np.full((5, 2, 4), np.nan, dtype)
        z = ops.matmul(np.ones((5, 2, 0), dtype), np.ones((0, 4), dtype))
        assert z.shape == (5, 2, 4) and not z.any()


def test_bit_identical_for_any_thread_count(rng):
    a = rng.standard_normal((256, 784)).astype(np.float32)
    b = rng.standard_normal((784, 300)).astype(np.float32)
    n0 = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        c1 = ops.matmul(a, b)
        ic.set_num_threads(2)
        c2 = ops.matmul(a, b)
        ic.set_num_threads(3)
        c3 = ops.matmul(a, b)
    finally:
        ic.set_num_threads(n0)
    assert np.array_equal(c1.view(np.uint32), c2.view(np.uint32))
    assert np.array_equal(c1.view(np.uint32), c3.view(np.uint32))


def _bits(x):
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def _form(rng, m, k, n, form, dt):
    """Operands of one dense-layer product form: NN (forward), NT (dX = dY·Wᵀ), TN (dW = Xᵀ·dY)."""
    a = rng.standard_normal((k, m) if form == "TN" else (m, k)).astype(dt)
    b = rng.standard_normal((n, k) if form == "NT" else (k, n)).astype(dt)
    return a, b, {"trans_a": form == "TN", "trans_b": form == "NT"}


# The step's product shapes (mlp, snn, wide, tiny layers) and shapes past every blocking edge
# of the packed GEMM (several depth blocks, row blocks, partial register tiles, n = 1).
STEP_SHAPES = [(128, 784, 256), (128, 100, 100), (512, 1024, 10), (32, 64, 64), (1210, 800, 45), (37, 5, 1)]


@pytest.mark.parametrize("form", ["NN", "NT", "TN"])
@pytest.mark.parametrize("m,k,n", STEP_SHAPES)
def test_step_shapes_match_reference_and_are_bit_identical_across_threads(m, k, n, form, dtype, rng):
    a, b, kw = _form(rng, m, k, n, form, dtype)
    n0 = ic.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            ic.set_num_threads(t)
            outs.append(ops.matmul(a, b, **kw))
    finally:
        ic.set_num_threads(n0)
    assert_close(outs[0], ref.matmul(a, b, **kw), scale=k**0.5)
    for o in outs[1:]:
        assert np.array_equal(_bits(o), _bits(outs[0]))


@pytest.mark.parametrize("form", ["NN", "NT", "TN"])
def test_row_and_column_bands_are_bit_identical_to_the_whole_product(form, dtype, rng):
    # The thread team computes a product as row bands (forward, dX) or column bands (dW) of
    # its output, each on one thread: every cut gives the bits of the whole product.
    m, k, n = 131, 300, 97
    a, b, kw = _form(rng, m, k, n, form, dtype)
    whole = ops.matmul(a, b, **kw)
    for r0, r1 in [(0, 1), (1, 13), (13, 64), (64, 131)]:
        band = a[:, r0:r1] if kw["trans_a"] else a[r0:r1]
        assert np.array_equal(_bits(ops.matmul(band, b, **kw)), _bits(whole[r0:r1]))
    for c0, c1 in [(0, 5), (5, 32), (32, 97)]:
        band = b[c0:c1] if kw["trans_b"] else b[:, c0:c1]
        assert np.array_equal(_bits(ops.matmul(a, band, **kw)), _bits(whole[:, c0:c1]))


def test_non_finite_values_stay_in_their_rows_and_columns(dtype, rng):
    a = rng.standard_normal((29, 40)).astype(dtype)
    b = rng.standard_normal((40, 45)).astype(dtype)
    a[3, 7] = np.inf
    b[11, 40] = np.nan
    c = ops.matmul(a, b)
    assert not np.isfinite(c[3]).any()
    assert np.isnan(c[:, 40]).all()
    rest = np.delete(np.delete(c, 3, axis=0), 40, axis=1)
    assert np.isfinite(rest).all()


@pytest.mark.parametrize("backend", [ops, ref], ids=["rust", "numpy"])
class TestBadInput:
    def test_int_dtype(self, backend):
        with pytest.raises(TypeError, match="'a'"):
            backend.matmul(np.ones((2, 2), np.int64), np.ones((2, 2)))

    def test_float16(self, backend):
        with pytest.raises(TypeError, match="'b'"):
            backend.matmul(np.ones((2, 2)), np.ones((2, 2), np.float16))

    def test_mixed_dtypes(self, backend):
        with pytest.raises(TypeError, match="'b'.*float64|float64.*'b'|'b'"):
            backend.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))

    def test_list(self, backend):
        with pytest.raises(TypeError, match="'a'"):
            backend.matmul([[1.0]], np.ones((1, 1)))

    def test_ndim(self, backend):
        with pytest.raises(ValueError, match="'a'"):
            backend.matmul(np.ones(3), np.ones((3, 2)))

    def test_inner_mismatch(self, backend):
        with pytest.raises(ValueError, match=r"inner dimensions.*\(2, 3\)|\(2, 3\).*inner|inner"):
            backend.matmul(np.ones((2, 3)), np.ones((4, 2)))

    def test_out_shape(self, backend):
        with pytest.raises(ValueError, match="'out'"):
            backend.matmul(np.ones((2, 3)), np.ones((3, 2)), out=np.zeros((3, 3)))


def test_out_aliasing_input_is_rejected_and_nothing_written():
    a = np.ones((3, 3))
    before = a.copy()
    with pytest.raises(ValueError, match="'out'"):
        ops.matmul(a, np.ones((3, 3)), out=a)
    assert np.array_equal(a, before)


def test_read_only_out_is_rejected():
    out = np.zeros((2, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="'out'.*read-only"):
        ops.matmul(np.ones((2, 2)), np.ones((2, 2)), out=out)
