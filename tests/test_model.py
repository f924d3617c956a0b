"""initcore.Sequential: structure, gradients, training in both backends, bit-identical resume
after save/load, population statistics, inference and input validation."""

import os
import zipfile

import numpy as np
import pytest

import initcore as ic
from conftest import assert_close, numeric_grad
from initcore import layers as L
from initcore import losses

BACKENDS = ["rust", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def mlp(backend="numpy", dtype="float32", seed=0, bn=True, dropout=0.0, input_dim=6, out=3):
    layers = [L.Dense(16, activation="relu", kernel_initializer="he_normal")]
    if bn:
        layers.append(L.BatchNorm())
    if dropout:
        layers.append(L.Dropout(dropout))
    layers += [L.Dense(8, activation="tanh"), L.Dense(out)]
    return ic.Sequential(layers, input_dim=input_dim, seed=seed, dtype=dtype, backend=backend)


def blobs(n=120, d=6, c=3, seed=0):
    """Gaussian clusters, one per class: separable, so a small MLP learns them in a few epochs."""
    r = np.random.default_rng(seed)
    y = np.arange(n) % c
    centers = np.random.default_rng(1000 + d).standard_normal((c, d)) * 3  # the same for every seed
    return (centers[y] + r.standard_normal((n, d))).astype(np.float32), y


def weights(model):
    return {p.name: p.value.copy() for p in model.parameters()}


def quiet(model, *args, **kw):
    return model.fit(*args, verbose=0, **kw)


# --- structure -------------------------------------------------------------------------------------
def test_layer_and_parameter_names():
    m = ic.Sequential([L.Dense(4, name="fc"), L.BatchNorm(), L.Activation("relu"), L.PReLU(), L.Dense(2)], input_dim=3)
    assert [layer.name for layer in m.layers] == ["fc", "batch_norm_1", "activation_2", "prelu_3", "dense_4"]
    assert [p.name for p in m.parameters()] == [
        "fc/kernel",
        "fc/bias",
        "batch_norm_1/gamma",
        "batch_norm_1/beta",
        "prelu_3/slope",
        "dense_4/kernel",
        "dense_4/bias",
    ]
    assert sorted(m.buffers()) == ["batch_norm_1/running_mean", "batch_norm_1/running_var"]
    assert m.output_dim == 2 and all(p.backend == "rust" and p.dtype == np.float32 for p in m.parameters())


def test_structure_errors():
    d = L.Dense(3)
    with pytest.raises(ValueError, match="already used"):
        ic.Sequential([d, d])
    with pytest.raises(ValueError, match="duplicate layer name 'a'"):
        ic.Sequential([L.Dense(3, name="a"), L.Dense(3, name="a")])
    with pytest.raises(TypeError, match="Layer"):
        ic.Sequential([L.Dense(3), "relu"])
    with pytest.raises(ValueError, match="backend"):
        ic.Sequential([L.Dense(3)], backend="gpu")
    with pytest.raises(ValueError, match="dtype"):
        ic.Sequential([L.Dense(3)], dtype="int32")
    with pytest.raises(ValueError, match="input_dim"):
        ic.Sequential([L.Dense(3)], input_dim=0)
    with pytest.raises(ValueError, match="no layers"):
        ic.Sequential([], input_dim=3)
    built = ic.Sequential([L.Dense(3)], input_dim=2)
    with pytest.raises(ValueError, match="already built"):
        built.add(L.Dense(2))
    with pytest.raises(ValueError, match="already used"):
        ic.Sequential(built.layers)


def test_lazy_build_and_seeding():
    m = ic.Sequential([L.Dense(5), L.Dense(2)], seed=3, backend="numpy")
    with pytest.raises(ValueError, match="not built"):
        m.parameters()
    assert "?" in m.summary()
    m.forward(np.zeros((2, 4)))
    assert m.input_dim == 4 and m.layers[0].kernel.shape == (4, 5)
    same = ic.Sequential([L.Dense(5), L.Dense(2)], input_dim=4, seed=3)
    other = ic.Sequential([L.Dense(5), L.Dense(2)], input_dim=4, seed=4)
    for a, b, _c in zip(m.parameters(), same.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    assert not np.array_equal(m.layers[0].kernel.value, other.layers[0].kernel.value)


def test_summary_table():
    m = mlp(bn=True)
    text = m.summary()
    for name in (
        "dense_0 (Dense)",
        "batch_norm_1 (BatchNorm)",
        "dense_2 (Dense)",
        "dense_3 (Dense)",
        "(None, 16)",
        "(None, 3)",
    ):
        assert name in text
    trainable = 6 * 16 + 16 + 32 + 16 * 8 + 8 + 8 * 3 + 3
    assert f"Trainable params: {trainable:,}" in text
    assert "Non-trainable params: 32" in text and f"Total params: {trainable + 32:,}" in text
    assert "112" in text.splitlines()[3]  # dense_0: 6·16 + 16


# --- gradients ---------------------------------------------------------------------------------------
def test_model_backward_matches_finite_differences(backend):
    m = ic.Sequential(
        [
            L.Dense(6, activation="elu", bias_initializer="random_normal"),
            L.BatchNorm(),
            L.PReLU(),
            L.Dense(8, activation="leaky_relu"),
            L.Maxout(2),
            L.Dense(3, activation=None),
        ],
        input_dim=5,
        seed=1,
        dtype="float64",
        backend=backend,
    )
    x = np.random.default_rng(2).standard_normal((7, 5))
    y = np.array([0, 1, 2, 0, 1, 2, 1])

    def f():
        return losses.compute("cross_entropy", m.forward(x, training=True), y, backend)[0]

    _, grad = losses.compute("cross_entropy", m.forward(x, training=True), y, backend)
    dx = m.backward(grad)
    grads = {p.name: p.grad.copy() for p in m.parameters()}
    assert_close(dx, numeric_grad(f, x), kind="gradcheck")
    for p in m.parameters():
        assert_close(grads[p.name], numeric_grad(f, p.value), kind="gradcheck", err_msg=p.name)
    assert m.backward(grad, need_dx=False) is None
    for p in m.parameters():
        np.testing.assert_array_equal(p.grad, grads[p.name])


def test_backward_rejects_a_wrong_gradient():
    m = mlp()
    m.forward(np.zeros((4, 6), np.float32), training=True)
    with pytest.raises(ValueError, match="grad"):
        m.backward(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="grad"):
        m.backward(np.zeros((4, 3), np.float64))


# --- training ----------------------------------------------------------------------------------------
def test_train_step_is_forward_loss_backward_step(backend):
    x, y = blobs(32)
    a, b = mlp(backend, dropout=0.2), mlp(backend, dropout=0.2)
    oa, ob = ic.optim.Adam(a.parameters(), lr=1e-2), ic.optim.Adam(b.parameters(), lr=1e-2)
    for _ in range(3):
        la = a.train_step(x, y, oa)
        out = b.forward(x, training=True)
        lb, grad = losses.cross_entropy(out, y, backend=backend)
        b.backward(grad)
        ob.step()
        assert la == lb
    for (k, v), w in zip(weights(a).items(), weights(b).values()):
        np.testing.assert_array_equal(v, w, err_msg=k)
    np.testing.assert_array_equal(a.last_output, out)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_epoch_rust_equals_numpy(dtype):
    x, y = blobs(200)
    models = {}
    for backend in BACKENDS:
        m = mlp(backend, dtype=dtype, dropout=0.1)
        quiet(m, x, y, optimizer=ic.optim.Adam(m.parameters(), lr=1e-2), epochs=1, batch_size=16)
        models[backend] = m
    for p, q in zip(models["rust"].parameters(), models["numpy"].parameters()):
        assert p.dtype == np.dtype(dtype)
        assert_close(p.value, q.value, kind="training", err_msg=p.name)
    for k, v in models["rust"].buffers().items():
        assert_close(v, models["numpy"].buffers()[k], kind="training", err_msg=k)


def test_fit_learns_and_logs_history(backend):
    x, y = blobs(300)
    xv, yv = blobs(90, seed=1)
    m = mlp(backend)
    opt = ic.optim.Adam(m.parameters(), lr=1e-2)
    h = quiet(m, x, y, optimizer=opt, epochs=5, batch_size=32, validation_data=(xv, yv))
    assert h is m.history and m.optimizer is opt and m.epochs_completed == 5
    assert h.epoch == [0, 1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(h.history[key]) == 5, key
    assert h.history["lr"] == [1e-2] * 5
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.9
    ev = m.evaluate(xv, yv)
    assert ev["loss"] == pytest.approx(h.history["val_loss"][-1]) and ev["accuracy"] == h.history["val_accuracy"][-1]


def test_fit_defaults_and_optimizer_checks():
    x, y = blobs(40)
    m = mlp()
    quiet(m, x, y, batch_size=8)
    assert isinstance(m.optimizer, ic.optim.Adam) and m.optimizer.lr == 1e-3 and m.optimizer.step_count == 5
    quiet(m, x, y, optimizer="sgd", batch_size=40)
    assert isinstance(m.optimizer, ic.optim.SGD) and m.epochs_completed == 2
    other = mlp()
    with pytest.raises(ValueError, match="optimizer"):
        quiet(m, x, y, optimizer=ic.optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="batch_size"):
        quiet(m, x, y, batch_size=0)
    with pytest.raises(ValueError, match="loss"):
        quiet(m, x, y, loss="hinge")
    with pytest.raises(ValueError, match="validation_data"):
        quiet(m, x, y, validation_data=x)


def test_last_batch_of_one_is_skipped_with_batch_norm():
    x, y = blobs(33)
    m = mlp(bn=True)
    quiet(m, x, y, batch_size=16, shuffle=False)
    assert m.optimizer.step_count == 2
    m2 = mlp(bn=False)
    quiet(m2, x, y, batch_size=16)
    assert m2.optimizer.step_count == 3


def test_callbacks_can_stop_training():
    class StopAfterTwoBatches(ic.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = blobs(64)
    m = mlp()
    h = quiet(m, x, y, epochs=3, batch_size=8, callbacks=[StopAfterTwoBatches()])
    assert m.optimizer.step_count == 2 and h.epoch == [0] and m.stop_training


def test_float64_model_end_to_end():
    x, y = blobs(64)
    m = mlp(dtype="float64", dropout=0.2)
    quiet(m, x, y, epochs=2, batch_size=16, optimizer=ic.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m.predict(x).dtype == np.float64 and m.predict_proba(x).dtype == np.float64
    assert all(v.dtype == np.float64 for v in m.buffers().values())


def test_training_is_bit_identical_for_any_thread_count():
    x, y = blobs(512, d=64)
    results = []
    n0 = ic.get_num_threads()
    try:
        for threads in (1, 3):
            ic.set_num_threads(threads)
            m = ic.Sequential([L.Dense(256, activation="relu"), L.BatchNorm(), L.Dense(3)], input_dim=64, seed=0)
            quiet(m, x, y, epochs=1, batch_size=256)
            results.append(weights(m))
    finally:
        ic.set_num_threads(n0)
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)


# --- save / load ------------------------------------------------------------------------------------
def state_of(model):
    opt = model.optimizer.state_dict()
    return weights(model), {k: v.copy() for k, v in model.buffers().items()}, opt, model.rng.bit_generator.state


def assert_same_state(a, b):
    wa, ba, oa, ra = a
    wb, bb, ob, rb = b
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    for k in ba:
        np.testing.assert_array_equal(ba[k], bb[k], err_msg=k)
    assert oa["param_groups"] == ob["param_groups"]
    for name, st in oa["state"].items():
        for k, v in st.items():
            np.testing.assert_array_equal(v, ob["state"][name][k], err_msg=f"{name} {k}")
    assert ra == rb


@pytest.mark.parametrize("opt_name", ["nadam", "sgd"])
def test_save_load_resume_is_bit_identical(backend, opt_name, tmp_path):
    x, y = blobs(96)
    xv, yv = blobs(30, seed=1)
    kw = {"lr": 0.05, "momentum": 0.9, "nesterov": True} if opt_name == "sgd" else {"lr": 1e-2}

    def run(model, epochs, cbs):
        return quiet(
            model,
            x,
            y,
            optimizer=model.optimizer or ic.optim.get(opt_name, model.parameters(), **kw),
            epochs=epochs,
            batch_size=16,
            validation_data=(xv, yv),
            callbacks=cbs,
        )

    def plateau():
        return ic.schedules.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=0, min_delta=10.0, threshold_mode="abs"
        )

    full = mlp(backend, dropout=0.2)
    h_full = run(full, 4, [plateau()])

    first = mlp(backend, dropout=0.2)
    run(first, 2, [plateau()])
    path = tmp_path / "model.npz"
    first.save(path)
    resumed_plateau = plateau()
    again = ic.Sequential.load(path, callbacks=[resumed_plateau])
    assert again.epochs_completed == 2 and again.optimizer.step_count == first.optimizer.step_count
    assert_same_state(state_of(first), state_of(again))
    h_rest = run(again, 2, [resumed_plateau])

    assert_same_state(state_of(full), state_of(again))
    assert h_rest.epoch == [2, 3]
    assert h_rest.history["loss"] == h_full.history["loss"][2:]
    assert h_rest.history["lr"] == h_full.history["lr"][2:]
    assert min(h_full.history["lr"]) < kw["lr"]  # the schedule acted, so its state mattered


def test_save_is_atomic_and_load_validates(tmp_path):
    x, y = blobs(32)
    m = mlp()
    quiet(m, x, y)
    path = tmp_path / "m.npz"
    m.save(path)
    m.save(str(path))  # overwrite
    assert os.listdir(tmp_path) == ["m.npz"]

    class Unsaveable(ic.callbacks.Callback):
        def get_state(self):
            return {"f": lambda: 0}

    before = path.read_bytes()
    with pytest.raises(TypeError, match="cannot store"):
        m.save(path, callbacks=[Unsaveable()])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]

    # A fault in the middle of writing the file (the first array member is half written): a
    # save that wrote straight into the target would leave it truncated.
    real_open = zipfile.ZipFile.open

    def failing_open(self, name, mode="r", **kw):
        f = real_open(self, name, mode, **kw)
        if mode == "w" and name != "header.npy":
            f.write(b"\0" * 100)
            f.close()  # numpy then closes the archive cleanly and the OSError propagates
            raise OSError(28, "No space left on device (injected)")
        return f

    zipfile.ZipFile.open = failing_open
    try:
        with pytest.raises(OSError, match="injected"):
            m.save(path)
    finally:
        zipfile.ZipFile.open = real_open
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]

    loaded = ic.Sequential.load(path, backend="numpy")
    assert loaded.backend == "numpy" and loaded.layers[0].kernel.backend == "numpy"
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert loaded.get_config()["layers"] == m.get_config()["layers"]

    bad = tmp_path / "bad.npz"
    bad.write_bytes(before[: len(before) // 2])
    with pytest.raises(ValueError, match="bad.npz"):
        ic.Sequential.load(bad)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an initcore model"):
        ic.Sequential.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        ic.Sequential.load(tmp_path / "missing.npz")


# --- BatchNorm population statistics, inference ------------------------------------------------------
def test_population_statistics_are_exact(backend):
    x, _ = blobs(300)
    m = ic.Sequential(
        [L.Dense(12, activation="relu"), L.BatchNorm(), L.Dense(10), L.BatchNorm(), L.Activation("tanh"), L.Dense(2)],
        input_dim=6,
        seed=0,
        dtype="float64",
        backend=backend,
    )
    stats = m.population_statistics(x, batch_size=64)
    h1 = m.layers[0].forward(x.astype(np.float64), False)
    assert_close(m.layers[1].running_mean, h1.mean(axis=0), kind="reduction")
    assert_close(m.layers[1].running_var, h1.var(axis=0), kind="reduction")
    h3 = m.layers[2].forward(m.layers[1].forward(h1, False), False)
    assert_close(m.layers[3].running_var, h3.var(axis=0), kind="reduction")
    assert sorted(stats) == ["batch_norm_1", "batch_norm_3"]
    # Evaluation mode now normalizes exactly as training mode does with all of x as one batch.
    assert_close(m.predict(x, batch_size=50), m.forward(x, training=True), kind="training")


def test_predict_evaluate_and_probabilities(backend):
    x, y = blobs(50)
    m = mlp(backend, dropout=0.5)
    out = m.predict(x, batch_size=7)
    assert out.shape == (50, 3) and np.array_equal(out, m.predict(x, batch_size=7))  # evaluation mode: no dropout
    assert_close(m.predict(x), out, kind="training")
    loss, _ = losses.cross_entropy(out, y, backend=backend)
    ev = m.evaluate(x, y, batch_size=13)
    assert ev["loss"] == pytest.approx(loss, rel=1e-5)
    assert ev["accuracy"] == np.mean(out.argmax(axis=1) == y)
    p = m.predict_proba(x)
    assert_close(p.sum(axis=1), np.ones(50, np.float32), kind="elementwise", scale=10)
    assert m.predict(np.zeros((0, 6))).shape == (0, 3)

    binary = ic.Sequential([L.Dense(4, activation="relu"), L.Dense(1)], input_dim=6, backend=backend)
    t = (y == 0).astype(np.float32)
    quiet(binary, x, t, loss="binary_cross_entropy", epochs=2)
    pb = binary.predict_proba(x)
    assert pb.shape == (50, 1) and ((pb > 0) & (pb < 1)).all()
    assert set(binary.evaluate(x, t)) == {"loss", "accuracy"}
    reg = ic.Sequential([L.Dense(1)], input_dim=6, backend=backend)
    quiet(reg, x, x[:, 0], loss="mse", epochs=1)
    assert set(reg.evaluate(x, x[:, 0])) == {"loss"}
    with pytest.raises(ValueError, match="mse"):
        reg.predict_proba(x)


# --- input conversion and validation ----------------------------------------------------------------------
def test_inputs_are_converted_to_the_model_dtype():
    m = mlp()
    x = np.random.default_rng(0).standard_normal((5, 6))
    want = m.predict(x.astype(np.float32))
    for variant in (x, np.asfortranarray(x), x.tolist(), x.astype(np.float32)[:, ::-1][:, ::-1]):
        assert_close(m.predict(variant), want, kind="exact")
    assert m.predict(np.ones((2, 6), np.int64)).dtype == np.float32
    y_onehot = np.eye(3)[[0, 2, 1, 0, 1]]
    assert m.evaluate(x, y_onehot) == m.evaluate(x, [0, 2, 1, 0, 1]) == m.evaluate(x, np.array([0.0, 2, 1, 0, 1]))


@pytest.mark.parametrize(
    "xs,ys,exc,match",
    [
        (np.zeros(6), [0], ValueError, r"x must be 2-D .*shape \(6,\)"),
        (np.zeros((4, 5)), [0] * 4, ValueError, r"x has shape \(4, 5\) but the model expects input_dim=6"),
        (np.array([["a"] * 6]), [0], TypeError, "x must hold real numbers"),
        (np.zeros((4, 6)), [0] * 3, ValueError, r"y has shape \(3,\) but x has 4 rows"),
        (np.zeros((2, 6)), [0, 3], ValueError, r"y\[1\] = 3 is outside \[0, 3\)"),
        (np.zeros((2, 6)), [0, -1], ValueError, r"y\[1\] = -1"),
        (np.zeros((2, 6)), [0.5, 1], ValueError, "non-integer"),
        (np.zeros((2, 6)), [[0, 1, 1], [1, 0, 0]], ValueError, "not one-hot"),
        (np.zeros((2, 6)), [[0, 1], [1, 0]], ValueError, r"y has shape \(2, 2\)"),
    ],
)
def test_bad_inputs_name_the_argument(xs, ys, exc, match):
    m = mlp()
    before = weights(m)
    opt = ic.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(exc, match=match):
        m.train_step(xs, ys, opt)
    with pytest.raises(exc, match=match):
        quiet(m, xs, ys, optimizer=opt)
    for k, v in weights(m).items():
        np.testing.assert_array_equal(v, before[k])
    assert opt.step_count == 0


def test_validation_data_errors_name_it():
    x, y = blobs(10)
    with pytest.raises(ValueError, match=r"validation_data\[0\]"):
        quiet(mlp(), x, y, validation_data=(x[:, :3], y))
    with pytest.raises(ValueError, match=r"validation_data\[1\]"):
        quiet(mlp(), x, y, validation_data=(x, y[:5]))


def test_binary_targets_shape():
    m = ic.Sequential([L.Dense(1)], input_dim=2, backend="numpy")
    x = np.zeros((3, 2))
    assert m.evaluate(x, [0, 1, 1], loss="bce")["loss"] == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match=r"y has shape \(3, 2\), expected \(3, 1\)"):
        m.evaluate(x, np.zeros((3, 2)), loss="bce")


def test_verbose_prints_one_line_per_epoch_when_not_a_terminal(capsys):
    x, y = blobs(40)
    mlp().fit(x, y, epochs=2, batch_size=20)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "loss" in lines[1]
    mlp().fit(x, y, epochs=2, batch_size=20, verbose=0)
    assert capsys.readouterr().out == ""


def test_set_backend_switches_layers_parameters_and_optimizer_kernels():
    x, y = blobs(64)
    m = mlp("rust", dtype="float64")
    want = m.predict(x)
    m.set_backend("numpy")
    assert m.backend == "numpy" and all(p.backend == "numpy" for p in m.parameters())
    assert all(layer.backend == "numpy" for layer in m.layers)
    assert_close(m.predict(x), want, kind="training")
    quiet(m, x, y, epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="backend"):
        m.set_backend("jax")


def test_predict_proba_does_not_apply_softmax_twice():
    m = ic.Sequential([ic.layers.Dense(3), ic.layers.Activation("softmax")], input_dim=4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    p = m.predict_proba(x)
    np.testing.assert_allclose(p, m.predict(x), rtol=0, atol=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
