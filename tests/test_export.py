"""model.to_torch() against predict (1e-6, float32) and initcore.export.to_onnx run in
onnxruntime against predict (1e-5), for every layer type with a counterpart."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import initcore as ic
from conftest import optional_torch
from initcore import layers as L
from initcore.export import to_onnx, to_torch

torch = optional_torch()
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: pip install 'initcore[torch]'")

# Fresh layers per call (a layer belongs to one model): every layer type, after some training
# (BatchNorm running statistics moved, PReLU slopes learned), with every activation.
STACKS = {
    "relu-bn-dropout": lambda: [L.Dense(16, "relu"), L.BatchNorm(), L.Dropout(0.3), L.Dense(4)],
    "bn-before": lambda: [L.Dense(16), L.BatchNorm(momentum=0.3, eps=1e-3), L.Activation("tanh"), L.Dense(4)],
    "selu-alpha-dropout": lambda: [
        L.Dense(16, "selu", kernel_initializer="lecun_normal"),
        L.AlphaDropout(0.2),
        L.Dense(4),
    ],
    "leaky-elu-prelu": lambda: [
        L.Dense(12, "leaky_relu", alpha=0.2),
        L.Dense(12, "elu", alpha=0.7),
        L.PReLU(),
        L.Dense(4),
    ],
    "activations": lambda: [L.Dense(12, "sigmoid"), L.LeakyReLU(0.1), L.ELU(), L.SELU(), L.Dense(4, use_bias=False)],
    "softmax-out": lambda: [L.Dense(12, "relu"), L.Dense(4), L.Activation("softmax")],
    "log-softmax-out": lambda: [L.Dense(12, "tanh"), L.Dense(4), L.Activation("log_softmax")],
}


def trained(layers, dtype="float32", epochs=2):
    r = np.random.default_rng(0)
    x = r.standard_normal((96, 6)).astype(dtype)
    y = r.integers(0, 4, 96)
    m = ic.Sequential(layers, input_dim=6, seed=0, dtype=dtype)
    if getattr(m.layers[-1], "activation", None) in ("softmax", "log_softmax"):
        # cross-entropy refuses a probability output (it would apply softmax twice): fit the
        # probabilities to one-hot targets instead, which trains every weight just the same
        m.fit(x, np.eye(4, dtype=dtype)[y], loss="mse", epochs=epochs, batch_size=16, verbose=0)
    else:
        m.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return m, r.standard_normal((50, 6)).astype(dtype) * 2


@needs_torch
@pytest.mark.parametrize("name", sorted(STACKS))
def test_to_torch_matches_predict(name):
    m, x = trained(STACKS[name]())
    t = m.to_torch()
    assert isinstance(t, torch.nn.Sequential) and not t.training
    with torch.no_grad():
        out = t(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, m.predict(x), rtol=1e-6, atol=1e-6)
    # A copy: changing the torch weights leaves the initcore model alone.
    before = m.predict(x)
    with torch.no_grad():
        next(t.parameters()).zero_()
    np.testing.assert_array_equal(m.predict(x), before)


@needs_torch
def test_to_torch_float64_and_module_types():
    m, x = trained(STACKS["leaky-elu-prelu"](), dtype="float64")
    t = to_torch(m)
    assert [type(mod).__name__ for mod in t] == ["Linear", "LeakyReLU", "Linear", "ELU", "PReLU", "Linear"]
    assert t[1].negative_slope == 0.2 and t[3].alpha == 0.7
    with torch.no_grad():
        out = t(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, m.predict(x), rtol=1e-12, atol=1e-12)
    bn, _ = trained(STACKS["bn-before"]())
    tb = bn.to_torch()
    assert tb[1].momentum == 0.3 and tb[1].eps == 1e-3
    np.testing.assert_array_equal(tb[1].running_var.numpy(), bn.layers[1].running_var)


@needs_torch
def test_to_torch_errors():
    m = ic.Sequential([L.Dense(8), L.Maxout(2), L.Dense(2)], input_dim=3)
    with pytest.raises(NotImplementedError, match=r"layer 'maxout_1' \(Maxout\) has no torch.nn counterpart"):
        m.to_torch()

    class Custom(L.Activation):
        pass

    with pytest.raises(NotImplementedError, match="Custom"):
        ic.Sequential([L.Dense(2), Custom("relu")], input_dim=3).to_torch()
    with pytest.raises(ValueError, match="not built"):
        ic.Sequential([L.Dense(2)]).to_torch()


def run_onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["output"], {"input": x})[0]


@pytest.mark.parametrize("name", sorted(STACKS) + ["maxout"])
def test_to_onnx_runs_in_onnxruntime_like_predict(tmp_path, name):
    layers = STACKS[name]() if name in STACKS else [L.Dense(12, "relu"), L.Maxout(3), L.Dense(4)]
    m, x = trained(layers)
    path = tmp_path / "model.onnx"
    proto = to_onnx(m, path)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    onnx.checker.check_model(onnx.load(str(path)))
    assert proto.graph.input[0].name == "input"
    out = run_onnx(path, x)
    assert out.shape == (50, m.output_dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, m.predict(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_onnx(path, x[:1]), m.predict(x[:1]), rtol=1e-5, atol=1e-5)  # any batch size


def test_to_onnx_errors(tmp_path):
    m, _ = trained(STACKS["relu-bn-dropout"]())
    with pytest.raises(ValueError, match="opset must be in"):
        to_onnx(m, tmp_path / "x.onnx", opset=18)
    assert not list(tmp_path.iterdir())

    class Custom(L.Layer):
        kind = "custom"

        def forward(self, x, training=False):
            return x

    with pytest.raises(NotImplementedError, match="Custom"):
        to_onnx(ic.Sequential([L.Dense(2), Custom()], input_dim=3), tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_to_onnx_float64(tmp_path):
    # A double graph; onnxruntime's CPU provider runs double Gemm/Relu/BatchNormalization (it has
    # no double kernels for some activations, e.g. Elu, although the graph is valid ONNX).
    m, x = trained(STACKS["relu-bn-dropout"](), dtype="float64")
    to_onnx(m, tmp_path / "m.onnx")
    out = run_onnx(tmp_path / "m.onnx", x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, m.predict(x), rtol=1e-12, atol=1e-12)
