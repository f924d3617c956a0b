"""initcore.layers: every backward against finite differences in both backends, the two backends
against each other, BatchNorm modes, dropout statistics, configs and bad arguments."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, numeric_grad
from initcore import layers as L

BACKENDS = ["rust", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def built(layer, d, backend, dtype=np.float64, seed=0):
    layer.build(d, rng=np.random.default_rng(seed), dtype=dtype, backend=backend)
    return layer


def check_grads(layer, x, training=True, reset=None, seed=5):
    """Backward of f = Σ forward(x)·r against central differences, for x and every parameter."""
    r = np.random.default_rng(seed).standard_normal((x.shape[0], layer.output_dim))
    reset = reset or (lambda: None)

    def f():
        reset()
        return float((layer.forward(x, training) * r).sum())

    reset()
    layer.forward(x, training)
    dx = layer.backward(r.copy())
    grads = {p.name: p.grad.copy() for p in layer.parameters()}
    assert_close(dx, numeric_grad(f, x), kind="gradcheck", err_msg=f"{layer!r} dx")
    for p in layer.parameters():
        assert_close(grads[p.name], numeric_grad(f, p.value), kind="gradcheck", err_msg=f"{layer!r} {p.name}")


def normal(shape, seed=1, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# --- finite-difference gradients, float64, both backends ---------------------------------------------
@pytest.mark.parametrize(
    "activation,alpha",
    [
        (None, None),
        ("relu", None),
        ("leaky_relu", 0.2),
        ("elu", 0.7),
        ("selu", None),
        ("sigmoid", None),
        ("tanh", None),
    ],
)
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients(backend, activation, alpha, use_bias):
    layer = built(
        L.Dense(5, activation=activation, alpha=alpha, use_bias=use_bias, bias_initializer="random_normal"), 4, backend
    )
    check_grads(layer, normal((7, 4)))


def test_batch_norm_gradients_training_and_eval(backend):
    layer = built(L.BatchNorm(), 5, backend)
    layer.gamma.value[:] = normal(5, 2) + 1
    layer.beta.value[:] = normal(5, 3)
    check_grads(layer, normal((9, 5), scale=3.0) + 2, training=True)
    layer.running_mean[:] = normal(5, 4)
    layer.running_var[:] = np.abs(normal(5, 5)) + 0.5
    check_grads(layer, normal((9, 5)), training=False)


@pytest.mark.parametrize(
    "activation,alpha",
    [
        ("relu", None),
        ("leaky_relu", 0.3),
        ("elu", None),
        ("selu", None),
        ("sigmoid", None),
        ("tanh", None),
        ("linear", None),
        ("softmax", None),
        ("log_softmax", None),
    ],
)
def test_activation_gradients(backend, activation, alpha):
    check_grads(built(L.Activation(activation, alpha), 6, backend), normal((5, 6)))


@pytest.mark.parametrize("layer", [L.LeakyReLU(0.1), L.ELU(0.5), L.SELU()], ids=repr)
def test_named_activation_gradients(backend, layer):
    check_grads(built(layer, 6, backend), normal((5, 6)))


def test_prelu_gradients(backend):
    layer = built(L.PReLU(0.1), 6, backend)
    layer.slope.value[:] = normal(6, 7) * 0.3
    check_grads(layer, normal((8, 6)))


def test_maxout_gradients(backend):
    check_grads(built(L.Maxout(3), 12, backend), normal((5, 12)))


@pytest.mark.parametrize("cls", [L.Dropout, L.AlphaDropout])
def test_dropout_gradients_use_the_forward_mask(backend, cls):
    layer = built(cls(0.4), 6, backend)

    def reset():
        layer.rng = np.random.default_rng(11)  # the same mask for every evaluation of f

    check_grads(layer, normal((8, 6)), training=True, reset=reset)
    check_grads(layer, normal((8, 6)), training=False)


def test_backward_overwrites_gradients(backend):
    layer = built(L.Dense(3, activation="tanh"), 4, backend)
    x, dy = normal((5, 4)), normal((5, 3), 2)
    layer.forward(x, True)
    layer.backward(dy)
    first = layer.kernel.grad.copy()
    grad_array = layer.kernel.grad
    layer.backward(dy)
    assert layer.kernel.grad is grad_array  # written in place
    np.testing.assert_array_equal(layer.kernel.grad, first)  # not accumulated


def test_dense_need_dx_false_returns_none(backend):
    layer = built(L.Dense(3), 4, backend)
    layer.forward(normal((5, 4)), True)
    assert layer.backward(normal((5, 3)), need_dx=False) is None
    assert layer.kernel.grad.any()


# --- the two backends agree ------------------------------------------------------------------------
LAYER_FACTORIES = {
    "dense_relu": lambda: L.Dense(9, activation="relu", bias_initializer="random_normal"),
    "dense_elu": lambda: L.Dense(8, activation="elu"),
    "batch_norm": lambda: L.BatchNorm(momentum=0.2),
    "prelu": lambda: L.PReLU(),
    "maxout": lambda: L.Maxout(2),
    "tanh": lambda: L.Activation("tanh"),
    "softmax": lambda: L.Activation("softmax"),
    "dropout": lambda: L.Dropout(0.3),
    "alpha_dropout": lambda: L.AlphaDropout(0.2),
}


@given(
    which=st.sampled_from(sorted(LAYER_FACTORIES)),
    n=st.sampled_from([2, 7, 8, 9, 17]),
    d=st.sampled_from([2, 8, 16]),
    f64=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_rust_and_numpy_layers_agree(which, n, d, f64, training, seed):
    dt = np.float64 if f64 else np.float32
    a = built(LAYER_FACTORIES[which](), d, "rust", dt, seed)
    b = built(LAYER_FACTORIES[which](), d, "numpy", dt, seed)
    x = normal((n, d), seed).astype(dt)
    ya, yb = a.forward(x, training), b.forward(x, training)
    assert ya.dtype == dt
    assert_close(ya, yb, kind="transcendental" if which != "batch_norm" else "reduction")
    dy = normal(ya.shape, seed + 1).astype(dt)
    assert_close(a.backward(dy), b.backward(dy), kind="reduction", scale=n)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.grad.dtype == dt
        assert_close(pa.grad, pb.grad, kind="reduction", scale=n)
    for k, v in a.buffers().items():
        assert_close(v, b.buffers()[k], kind="reduction")


# --- BatchNorm ---------------------------------------------------------------------------------------
def test_batch_norm_training_normalizes_and_updates_running_stats(backend, dtype):
    layer = built(L.BatchNorm(momentum=0.3, eps=1e-5), 4, backend, dtype)
    x = (normal((50, 4), 3) * [1, 2, 3, 4] + [5, -1, 0, 2]).astype(dtype)
    y = layer.forward(x, training=True)
    assert_close(y.mean(axis=0), np.zeros(4, dtype), kind="training")
    x64 = x.astype(np.float64)
    assert_close(y.var(axis=0), (x64.var(axis=0) / (x64.var(axis=0) + 1e-5)).astype(dtype), kind="training")
    assert_close(layer.running_mean, (0.3 * x64.mean(axis=0)).astype(dtype), kind="training")
    assert_close(layer.running_var, (0.7 + 0.3 * x64.var(axis=0, ddof=1)).astype(dtype), kind="training")


def test_batch_norm_eval_uses_running_stats_and_leaves_them(backend):
    layer = built(L.BatchNorm(), 3, backend)
    layer.running_mean[:] = [1.0, -2.0, 0.5]
    layer.running_var[:] = [4.0, 0.25, 1.0]
    layer.gamma.value[:] = [2.0, 1.0, -1.0]
    layer.beta.value[:] = [0.0, 1.0, 3.0]
    x = normal((6, 3))
    y = layer.forward(x, training=False)
    want = (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-5) * layer.gamma.value + layer.beta.value
    assert_close(y, want, kind="elementwise")
    np.testing.assert_array_equal(layer.running_mean, [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(layer.running_var, [4.0, 0.25, 1.0])
    assert sorted(layer.buffers()) == ["running_mean", "running_var"]
    assert layer.buffers()["running_mean"] is layer.running_mean


def test_batch_norm_training_needs_two_rows(backend):
    layer = built(L.BatchNorm(), 3, backend)
    with pytest.raises(ValueError, match="x"):
        layer.forward(np.ones((1, 3)), training=True)
    np.testing.assert_array_equal(layer.running_mean, 0)


# --- Dropout statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_keeps_expected_fraction_and_mean(rate, dtype):
    layer = built(L.Dropout(rate), 1000, "numpy", dtype, seed=3)
    x = np.ones((200, 1000), dtype)
    y = layer.forward(x, training=True)
    n = x.size
    kept = np.count_nonzero(y) / n
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(np.unique(y), [0, 1 / (1 - rate)] if rate else [1], rtol=1e-6)
    assert abs(y.mean(dtype=np.float64) - 1) < 5 * np.sqrt(rate / (1 - rate) / n)
    assert layer.forward(x, training=False) is x


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_zero_mean_unit_variance(rate):
    layer = built(L.AlphaDropout(rate), 500, "numpy", np.float64, seed=4)
    x = normal((400, 500), 9)
    y = layer.forward(x, training=True)
    n = y.size
    assert abs(y.mean()) < 6 / np.sqrt(n)
    assert abs(y.var() - 1) < 6 * np.sqrt(2 / n) * 2
    dropped = y[np.isclose(y, layer.a * layer.alpha_p + layer.b)]
    assert abs(dropped.size / n - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    assert layer.forward(x, training=False) is x


def test_alpha_dropout_constants_match_keras():
    layer = L.AlphaDropout(0.3)
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - 0.3) * (1 + 0.3 * alpha_p**2)) ** -0.5  # tf.keras.layers.AlphaDropout
    assert layer.a == pytest.approx(a, rel=1e-15)
    assert layer.b == pytest.approx(-a * alpha_p * 0.3, rel=1e-15)


def test_dropout_rate_zero_draws_nothing():
    layer = built(L.Dropout(0.0), 4, "numpy")
    state = layer.rng.bit_generator.state
    x = normal((3, 4))
    assert layer.forward(x, training=True) is x
    assert layer.rng.bit_generator.state == state


# --- construction, names, configs -----------------------------------------------------------------
def test_dense_build_uses_initializers_and_names(dtype):
    layer = built(L.Dense(30, kernel_initializer="he_normal", bias_initializer="ones"), 400, "numpy", dtype)
    assert layer.kernel.shape == (400, 30) and layer.kernel.dtype == dtype and layer.kernel.value.flags.c_contiguous
    assert layer.bias.dtype == dtype and (layer.bias.value == 1).all()
    assert abs(layer.kernel.value.std() - np.sqrt(2 / 400)) < 0.1 * np.sqrt(2 / 400)
    assert [p.name for p in layer.parameters()] == ["dense/kernel", "dense/bias"]
    assert L.Dense(3, use_bias=False).parameters() == []
    assert [p.name for p in built(L.Dense(3, use_bias=False), 2, "numpy").parameters()] == ["dense/kernel"]
    assert layer.output_dim == 30 and layer.input_dim == 400 and layer.backend == "numpy"


def test_activation_objects_are_fused_into_dense():
    d = L.Dense(4, activation=L.LeakyReLU(0.2))
    assert (d.activation, d.alpha) == ("leaky_relu", 0.2)
    assert (L.Dense(4, activation="linear").activation, L.Dense(4).alpha) == ("identity", None)
    assert (L.Dense(4, activation="elu").alpha, L.Dense(4, activation="leaky_relu").alpha) == (1.0, 0.01)
    assert L.Dense(4, activation=L.SELU()).activation == "selu"
    assert L.Activation(L.ELU(0.5)).alpha == 0.5


ALL_LAYERS = [
    L.Dense(7, activation="leaky_relu", alpha=0.2, use_bias=False, kernel_initializer="lecun_normal", name="fc"),
    L.Dense(
        3,
        kernel_initializer={
            "class_name": "VarianceScaling",
            "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"},
        },
    ),
    L.BatchNorm(momentum=0.01, eps=1e-3),
    L.Activation("log_softmax"),
    L.LeakyReLU(0.3),
    L.ELU(2.0),
    L.SELU(),
    L.PReLU(0.1),
    L.Maxout(4),
    L.Dropout(0.25),
    L.AlphaDropout(0.1),
]


@pytest.mark.parametrize("layer", ALL_LAYERS, ids=lambda l: type(l).__name__)
def test_config_round_trip(layer):
    again = L.deserialize(L.serialize(layer))
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()
    assert again.name == layer.name


def test_unbuilt_backward_is_an_error():
    layer = built(L.Dense(3), 2, "numpy")
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 3)))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: L.Dense(0), "units"),
        (lambda: L.Dense(2.5), "units"),
        (lambda: L.Dense(3, activation="softmax"), "softmax"),
        (lambda: L.Dense(3, activation="swish"), "activation"),
        (lambda: L.Dense(3, activation="relu", alpha=0.1), "alpha"),
        (lambda: L.Dense(3, activation="leaky_relu", alpha=float("nan")), "alpha"),
        (lambda: L.Dense(3, activation=L.PReLU()), "PReLU"),
        (lambda: L.Dense(3, kernel_initializer="bogus"), "bogus"),
        (lambda: L.Dense(3, activation=L.LeakyReLU(0.2), alpha=0.3), "alpha"),
        (lambda: L.BatchNorm(momentum=1.5), "momentum"),
        (lambda: L.BatchNorm(eps=0), "eps"),
        (lambda: L.Dropout(1.0), "rate"),
        (lambda: L.AlphaDropout(-0.1), "rate"),
        (lambda: L.Maxout(0), "k"),
        (lambda: L.PReLU(float("inf")), "init"),
        (lambda: L.Activation("elu", alpha=-1.0), "alpha"),
        (lambda: L.Dense(3, name="a/b"), "name"),
        (lambda: L.deserialize({"class_name": "Conv2D", "config": {}}), "Conv2D"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_build_arguments():
    with pytest.raises(ValueError, match="k=3 does not divide input_dim=10"):
        built(L.Maxout(3), 10, "numpy")
    with pytest.raises(ValueError, match="backend"):
        built(L.Dense(3), 4, "cuda")
    with pytest.raises(ValueError, match="dtype"):
        built(L.Dense(3), 4, "numpy", np.float16)
    with pytest.raises(ValueError, match="input_dim"):
        built(L.Dense(3), 0, "numpy")
    with pytest.raises(TypeError, match="activation"):
        L.Activation(3)


def test_wrong_input_to_a_built_layer_names_the_argument(backend):
    layer = built(L.Dense(3), 4, backend)
    w = layer.kernel.value.copy()
    with pytest.raises(ValueError, match="'w'|'x'"):
        layer.forward(np.ones((2, 5)), True)
    with pytest.raises(TypeError, match="'w'|'x'"):
        layer.forward(np.ones((2, 4), np.float32), True)
    np.testing.assert_array_equal(layer.kernel.value, w)
