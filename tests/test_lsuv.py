"""initcore.lsuv.lsuv (Mishkin & Matas 2015): unit output variance per Dense layer, orthonormal
start, nothing else touched, both backends."""

import warnings

import numpy as np
import pytest

import initcore as ic
from initcore import layers as L
from initcore.lsuv import lsuv


@pytest.fixture(params=["rust", "numpy"])
def backend(request):
    return request.param


def deep(backend="numpy", dtype="float32", act="relu"):
    return ic.Sequential(
        [
            L.Dense(64, activation=act),
            L.Dropout(0.5),
            L.Dense(48, activation=act),
            L.BatchNorm(),
            L.Dense(32, activation=act),
            L.Dense(10),
        ],
        input_dim=20,
        seed=0,
        dtype=dtype,
        backend=backend,
    )


def batch(n=256, seed=0):
    # Badly scaled inputs, so that the initial variances are far from 1.
    return np.random.default_rng(seed).standard_normal((n, 20)) * 5 + 2


def preactivation_variances(model, x):
    h = np.ascontiguousarray(x, model.dtype)
    out = {}
    for layer in model.layers:
        h = layer.forward(h, False)
        if isinstance(layer, L.Dense):
            out[layer.name] = float(np.var(layer._cache[1], dtype=np.float64))
    return out


@pytest.mark.parametrize("act", ["relu", "tanh", "selu"])
def test_every_dense_output_has_unit_variance(backend, dtype, act):
    m = deep(backend, dtype, act)
    x = batch()
    report = lsuv(m, x, tol=0.05)
    assert [r["layer"] for r in report] == ["dense_0", "dense_2", "dense_4", "dense_5"]
    assert all(r["converged"] and r["iterations"] <= 10 for r in report)
    for name, var in preactivation_variances(m, x).items():
        assert abs(var - 1) < 0.05, name
    assert any(r["iterations"] > 0 for r in report)


def test_kernels_are_scaled_orthonormal_matrices():
    m = deep()
    lsuv(m, batch())
    for layer in m.layers:
        if isinstance(layer, L.Dense):
            w = layer.kernel.value.astype(np.float64)
            fan_in, fan_out = w.shape
            g = w.T @ w if fan_in >= fan_out else w @ w.T
            s = g[0, 0]
            np.testing.assert_allclose(g, s * np.eye(len(g)), atol=1e-5 * s)


def test_only_kernels_and_rng_change():
    m = deep()
    biases = {p.name: p.value.copy() for p in m.parameters() if not p.name.endswith("kernel")}
    buffers = {k: v.copy() for k, v in m.buffers().items()}
    lsuv(m, batch())
    for p in m.parameters():
        if p.name in biases:
            np.testing.assert_array_equal(p.value, biases[p.name])
    for k, v in m.buffers().items():
        np.testing.assert_array_equal(v, buffers[k])


def test_without_orthonormal_start_keeps_the_directions():
    m = deep()
    w0 = m.layers[0].kernel.value.copy()
    lsuv(m, batch(), orthonormal=False)
    ratio = m.layers[0].kernel.value / w0
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)


def test_max_iter_bounds_the_rescalings():
    m = ic.Sequential([L.Dense(8, bias_initializer="ones"), L.Dense(4)], input_dim=20, backend="numpy")
    report = lsuv(m, batch(), tol=1e-9, max_iter=1)
    assert all(r["iterations"] <= 1 for r in report)


def test_same_seed_same_result_and_trains_afterwards():
    x = batch()
    a, b = deep(), deep()
    lsuv(a, x)
    lsuv(b, x)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    y = np.arange(256) % 10
    h = a.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert np.isfinite(h.history["loss"]).all()


def test_dead_layer_warns_and_is_unconverged():
    m = ic.Sequential([L.Dense(4, activation="relu"), L.Dense(3)], input_dim=2, backend="numpy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = lsuv(m, np.zeros((8, 2)))
    assert not report[0]["converged"] and report[0]["variance"] == 0
    assert any("cannot be rescaled" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"tol": 0}, ValueError, "tol"),
        ({"tol": 1.5}, ValueError, "tol"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"x_batch": np.zeros((1, 20))}, ValueError, "x_batch"),
        ({"x_batch": np.zeros((4, 3))}, ValueError, r"x_batch has shape \(4, 3\)"),
    ],
)
def test_bad_arguments(kw, exc, match):
    m = deep()
    before = m.layers[0].kernel.value.copy()
    args = {"x_batch": batch(), **kw}
    with pytest.raises(exc, match=match):
        lsuv(m, **args)
    np.testing.assert_array_equal(m.layers[0].kernel.value, before)
    with pytest.raises(ValueError, match="no Dense"):
        lsuv(ic.Sequential([L.Activation("relu")], input_dim=20), batch())
