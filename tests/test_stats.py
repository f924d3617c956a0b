"""initcore.ops.column_stats against initcore.reference.ops and np.histogram; NaN/inf rules,
stability, input checks and thread-count determinism."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initcore as ic
from conftest import assert_close
from initcore import ops
from initcore.reference import ops as ref

BACKENDS = pytest.mark.parametrize("backend", [ops, ref], ids=["rust", "numpy"])
KEYS = {"mean", "var", "min", "max", "hist", "saturated_fraction", "dead_fraction"}


def same(got, want, n=1):
    assert set(got) == KEYS
    for k in ("mean", "var", "min", "max"):
        assert got[k].dtype == np.float64, k
    assert got["hist"].dtype == np.int64
    assert isinstance(got["saturated_fraction"], float) and isinstance(got["dead_fraction"], float)
    assert_close(got["mean"], want["mean"], kind="reduction", scale=4)
    assert_close(got["var"], want["var"], kind="reduction", scale=16)
    for k in ("min", "max", "hist"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert got["saturated_fraction"] == want["saturated_fraction"]
    assert got["dead_fraction"] == want["dead_fraction"]


@given(
    n=st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 64, 65, 200]),
    m=st.sampled_from([1, 3, 7, 8, 9, 16, 17]),
    f64=st.booleans(),
    uniform=st.booleans(),
    sat=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_matches_reference(n, m, f64, uniform, sat, seed):
    dt = np.float64 if f64 else np.float32
    r = np.random.default_rng(seed)
    # A grid of 1/8 so that many values sit exactly on bin edges and on the saturation bounds.
    x = (np.round(r.standard_normal((n, m)) * 16) / 8).astype(dt)
    x[:, r.random(m) < 0.3] = 0  # some dead columns
    if uniform:
        edges = np.linspace(-3, 3, 13)
    else:
        edges = np.unique(np.round(r.uniform(-4, 4, 9) * 8) / 8)
        if edges.size < 2:
            edges = np.array([-1.0, 1.0])
    edges = edges.astype(r.choice([np.float32, np.float64]))
    saturation = (-1.0, 1.25) if sat else None
    got = ops.column_stats(x, edges, saturation)
    want = ref.column_stats(x, edges, saturation)
    same(got, want)
    np.testing.assert_array_equal(got["hist"], np.histogram(x, edges.astype(np.float64))[0])


def test_without_edges_or_saturation(dtype):
    x = np.random.default_rng(1).standard_normal((33, 5)).astype(dtype)
    got = ops.column_stats(x)
    same(got, ref.column_stats(x))
    assert got["hist"].shape == (0,) and got["saturated_fraction"] == 0.0


@BACKENDS
def test_histogram_edges_follow_numpy(backend):
    edges = np.array([0.0, 1.0, 2.5, 3.0])
    x = np.array([[0.0, 1.0, 2.5, 3.0, -0.1, 3.1, 0.999, 2.9999]])
    got = backend.column_stats(x, edges)["hist"]
    np.testing.assert_array_equal(got, np.histogram(x, edges)[0])
    np.testing.assert_array_equal(got, [2, 1, 3])


@BACKENDS
def test_nan_and_inf(backend):
    x = np.ones((130, 4))
    x[100, 0] = np.nan
    x[1, 1] = np.inf
    x[0, 2] = 0.0
    x[:, 3] = 0.0
    s = backend.column_stats(x, np.array([0.0, 1.0, 2.0]), (0.0, 1.0))
    assert all(np.isnan(s[k][0]) for k in ("mean", "var", "min", "max"))
    assert s["mean"][1] == np.inf and np.isnan(s["var"][1]) and s["max"][1] == np.inf and s["min"][1] == 1.0
    assert np.isfinite(s["mean"][2]) and s["min"][2] == 0.0
    assert s["dead_fraction"] == 0.25
    np.testing.assert_array_equal(s["hist"], [131, 387])  # NaN in no bin, inf outside the edges
    assert s["saturated_fraction"] == 519 / 520  # everything but the NaN


@BACKENDS
def test_dead_columns_and_negative_zero(backend):
    x = np.zeros((10, 4), np.float32)
    x[:, 1] = -0.0
    x[3, 2] = 1e-30
    s = backend.column_stats(x)
    assert s["dead_fraction"] == 0.75
    np.testing.assert_array_equal(s["var"][[0, 1, 3]], 0.0)


@BACKENDS
def test_large_mean_small_spread_float32(backend):
    r = np.random.default_rng(0)
    x = (1e4 + 1e-2 * r.standard_normal((5000, 3))).astype(np.float32)
    exact = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(backend.column_stats(x)["var"], exact, rtol=1e-9)


def test_bit_identical_for_any_thread_count():
    r = np.random.default_rng(3)
    x = r.standard_normal((2000, 50)).astype(np.float32)
    edges = np.linspace(-2, 2, 41)
    n0 = ic.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            ic.set_num_threads(t)
            out.append(ops.column_stats(x, edges, (-1.5, 1.5)))
    finally:
        ic.set_num_threads(n0)
    for other in out[1:]:
        for k in KEYS:
            assert np.array_equal(np.asarray(out[0][k]).view(np.uint64), np.asarray(other[k]).view(np.uint64)), k
    same(out[0], ref.column_stats(x, edges, (-1.5, 1.5)))


def test_non_contiguous_input(dtype):
    x = np.random.default_rng(4).standard_normal((40, 12)).astype(dtype)
    a = ops.column_stats(x[:, ::2], np.linspace(-1, 1, 5))
    b = ops.column_stats(np.ascontiguousarray(x[:, ::2]), np.linspace(-1, 1, 5))
    for k in KEYS:
        assert np.array_equal(a[k], b[k]), k


@BACKENDS
class TestBadInput:
    x = np.ones((4, 3))

    @pytest.mark.parametrize(
        "edges",
        [
            np.array([1.0]),
            np.array([0.0, 0.0, 1.0]),
            np.array([1.0, 0.0]),
            np.array([[0.0, 1.0]]),
            np.array([0.0, np.inf]),
            np.array([np.nan, 1.0]),
        ],
    )
    def test_bad_edges(self, backend, edges):
        with pytest.raises(ValueError, match="'edges'"):
            backend.column_stats(self.x, edges)

    def test_edges_not_float_array(self, backend):
        with pytest.raises(TypeError, match="'edges'"):
            backend.column_stats(self.x, np.array([0, 1, 2]))
        with pytest.raises(TypeError, match="'edges'"):
            backend.column_stats(self.x, [0.0, 1.0])

    @pytest.mark.parametrize("sat", [(1.0, 0.0), (0.5, 0.5), (float("nan"), 1.0), (0.0,), "ab", 3.0])
    def test_bad_saturation(self, backend, sat):
        with pytest.raises(ValueError, match="'saturation'"):
            backend.column_stats(self.x, None, sat)

    def test_x_shape(self, backend):
        with pytest.raises(ValueError, match="'x'"):
            backend.column_stats(np.ones(3))
        with pytest.raises(ValueError, match="'x'"):
            backend.column_stats(np.ones((0, 3)))
        with pytest.raises(ValueError, match="'x'"):
            backend.column_stats(np.ones((3, 0)))

    def test_x_dtype(self, backend):
        with pytest.raises(TypeError, match="'x'"):
            backend.column_stats(np.ones((3, 3), np.int32))
