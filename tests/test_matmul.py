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
