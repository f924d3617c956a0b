"""The dropout kernels (``rust/kernels/dropout.rs`` through ``initcore.ops``) against their NumPy
twins (``initcore.reference.ops``): the same bits for both kinds and dtypes, the layers use
them, and bad arguments are errors."""

import numpy as np
import pytest

import initcore as ic
from initcore import ops
from initcore.reference import ops as ref

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_kernels_match_the_numpy_twins_bit_for_bit(dtype, rate):
    r = np.random.default_rng(3)
    x = r.standard_normal((37, 29)).astype(dtype)
    u = r.random((37, 29), dtype=dtype)
    u[0, :3] = dtype(rate)  # exactly the rate: kept by both
    dy = r.standard_normal((37, 29)).astype(dtype)
    for got, want in [
        (ops.dropout_forward(x, u, rate), ref.dropout_forward(x, u, rate)),
        (
            ops.alpha_dropout_forward(x, u, rate, 1.3, -0.2, -1.7580993408473766),
            ref.alpha_dropout_forward(x, u, rate, 1.3, -0.2, -1.7580993408473766),
        ),
    ]:
        for g, w in zip(got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(ops.dropout_backward(dy, got[1]), ref.dropout_backward(dy, want[1]))
    keep = ops.dropout_forward(x, u, rate)[1] != 0
    np.testing.assert_array_equal(keep, u >= dtype(rate))


@pytest.mark.parametrize("cls", [ic.layers.Dropout, ic.layers.AlphaDropout])
def test_layers_give_the_same_bits_on_both_backends(cls):
    x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    outs = []
    for backend in ("rust", "numpy"):
        m = ic.Sequential([cls(0.3)], input_dim=8, seed=5, backend=backend)  # the layer alone: GEMMs differ
        m.fused = False
        y = m.forward(x, training=True)
        dx = m.backward(np.ones_like(y))
        outs.append((y, dx, m.rng.bit_generator.state))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][2] == outs[1][2]


@pytest.mark.parametrize("impl", [ops, ref])
def test_bad_arguments_are_errors(impl):
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="'u'"):
        impl.dropout_forward(x, np.zeros((3, 5), np.float32), 0.5)
    with pytest.raises(TypeError, match="'u'"):
        impl.dropout_forward(x, np.zeros((3, 4), np.float64), 0.5)
    with pytest.raises(ValueError, match="rate"):
        impl.dropout_forward(x, x, 1.0)
    with pytest.raises(ValueError, match="finite"):
        impl.alpha_dropout_forward(x, x, 0.1, float("nan"), 0.0, 0.0)
    with pytest.raises(ValueError, match="'mask'"):
        impl.dropout_backward(x, np.zeros((4, 3), np.float32))
