"""Pickling (pickle, copy.deepcopy, joblib) of models and optimizers, get/set_weights,
state_dict/load_state_dict and safetensors files (with the package and with initcore's own
writer and reader)."""

import copy
import io
import json
import os
import pickle
import threading

import joblib
import numpy as np
import pytest

import initcore as ic
from initcore import layers as L
from initcore import optim
from initcore import weights as W

OPTIMIZERS = sorted(optim.OPTIMIZERS)


def every_layer(seed=0, dtype="float32", backend="rust"):
    """A model with every layer type (and therefore every kind of state)."""
    return ic.Sequential(
        [
            L.Dense(12, activation="relu", kernel_initializer="he_normal"),
            L.BatchNorm(),
            L.Dropout(0.2),
            L.Dense(12, activation=None),
            L.PReLU(),
            L.Dense(12, activation="selu", kernel_initializer="lecun_normal"),
            L.AlphaDropout(0.1),
            L.Dense(8, activation="tanh"),
            L.Maxout(2),
            L.LeakyReLU(0.2),
            L.Dense(3),
        ],
        input_dim=5,
        seed=seed,
        dtype=dtype,
        backend=backend,
    )


def data(n=64, d=5, c=3, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)).astype(np.float32), r.integers(0, c, n)


def pickle_rt(obj):
    return pickle.loads(pickle.dumps(obj))


def joblib_rt(obj):
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


ROUND_TRIPS = {"pickle": pickle_rt, "deepcopy": copy.deepcopy, "joblib": joblib_rt}


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("fused", [True, False])
def test_fitted_model_round_trip_continues_bit_identically(how, opt_name, fused):
    x, y = data()
    a = every_layer()
    a.fused = fused
    a.fit(x, y, optimizer=opt_name, epochs=2, batch_size=16, verbose=0)
    pred = a.predict(x)
    b = ROUND_TRIPS[how](a)
    assert b is not a and b.optimizer is not a.optimizer
    np.testing.assert_array_equal(b.predict(x), pred)
    # The optimizer still holds the copy's own parameters (identity kept through the pickle).
    assert [id(p) for p in b.optimizer.params] == [id(p) for p in b.parameters()]
    assert b.layers[2].rng is b.rng  # the dropout layers draw from the model's Generator
    a.fit(x, y, epochs=2, batch_size=16, verbose=0)
    b.fit(x, y, epochs=2, batch_size=16, verbose=0)
    same_weights(a, b)
    assert a.optimizer.step_count == b.optimizer.step_count
    for name, st in a.optimizer.state.items():
        for k, v in st.items():
            np.testing.assert_array_equal(b.optimizer.state[name][k], v, err_msg=f"{name}/{k}")
    assert b.epochs_completed == a.epochs_completed == 4
    np.testing.assert_array_equal(b.predict(x), a.predict(x))


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
def test_unbuilt_and_unfitted_models_round_trip(how):
    x, y = data()
    unbuilt = ic.Sequential([L.Dense(8, activation="relu"), L.BatchNorm(), L.Dense(3)], seed=3)
    c = ROUND_TRIPS[how](unbuilt)
    assert not c.built and c.get_weights() == []
    unbuilt.fit(x, y, epochs=1, batch_size=8, verbose=0)
    c.fit(x, y, epochs=1, batch_size=8, verbose=0)
    same_weights(unbuilt, c)

    built = every_layer(seed=4, backend="numpy")
    d = ROUND_TRIPS[how](built)
    assert d.built and d.optimizer is None and d.layers[0].ops is built.layers[0].ops
    np.testing.assert_array_equal(d.predict(x), built.predict(x))
    built.fit(x, y, epochs=1, batch_size=8, verbose=0)
    d.fit(x, y, epochs=1, batch_size=8, verbose=0)
    same_weights(built, d)


def test_pickle_drops_transient_state_and_locks():
    x, y = data()
    m = every_layer()
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[ic.callbacks.Callback()])
    m.predict(x)
    assert "_fused_train" in m.__dict__ and "_fused_infer" in m.__dict__
    m._test_lock, m._test_rlock = threading.Lock(), threading.RLock()
    m._test_lock.acquire()
    state = m.__getstate__()
    assert not set(W._TRANSIENT) & set(state) and state["_fit_callbacks"] == []
    c = pickle_rt(m)
    assert isinstance(c._test_lock, type(threading.Lock())) and not c._test_lock.locked()
    assert isinstance(c._test_rlock, type(threading.RLock()))
    assert all(layer._cache is None for layer in c.layers)
    np.testing.assert_array_equal(c.predict(x), m.predict(x))


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_optimizer_round_trips_alone_and_with_its_model(how, opt_name):
    x, y = data()
    m = every_layer()
    opt = optim.get(opt_name, m.parameters(), lr=0.01)
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=16, verbose=0)
    # Alone: an equal optimizer over copies of the parameters.
    o2 = ROUND_TRIPS[how](opt)
    assert type(o2) is type(opt) and o2.hyper == opt.hyper and o2.step_count == opt.step_count
    for p, q in zip(opt.params, o2.params):
        assert p is not q and p.name == q.name
        np.testing.assert_array_equal(p.value, q.value)
    # Together, as one object graph (what joblib.dump((model, opt)) does).
    m2, opt2 = ROUND_TRIPS[how]((m, opt))
    assert opt2.params[0] is m2.parameters()[0]
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=16, verbose=0)
    m2.fit(x, y, optimizer=opt2, epochs=1, batch_size=16, verbose=0)
    same_weights(m, m2)


def test_round_trip_array_is_writable_and_contiguous():
    m = pickle_rt(every_layer())
    for p in m.parameters():
        assert p.value.flags.writeable and p.value.flags.c_contiguous and p.grad.flags.writeable


# --- get/set_weights, state_dict ---------------------------------------------------------------------
def test_get_set_weights_and_state_dict():
    a, b = every_layer(seed=0), every_layer(seed=1)
    names = list(a.state_dict())
    assert names[:6] == [
        "dense_0/kernel",
        "dense_0/bias",
        "batch_norm_1/gamma",
        "batch_norm_1/beta",
        "batch_norm_1/running_mean",
        "batch_norm_1/running_var",
    ]
    x, y = data()
    a.fit(x, y, epochs=1, batch_size=16, verbose=0)
    w = a.get_weights()
    assert len(w) == len(names) and all(isinstance(v, np.ndarray) for v in w)
    w[0][...] = 0  # copies: the model is untouched
    assert np.any(a.layers[0].kernel.value != 0)
    b.set_weights(a.get_weights())
    same_weights(a, b)
    np.testing.assert_array_equal(b.predict(x), a.predict(x))
    c = every_layer(seed=2)
    kernel = c.layers[0].kernel.value
    c.load_state_dict(a.state_dict())
    assert c.layers[0].kernel.value is kernel  # copied into the live arrays
    np.testing.assert_array_equal(c.predict(x), a.predict(x))


def test_load_state_dict_casts_and_validates_without_writing():
    a = every_layer()
    before = a.state_dict()
    sd = {k: v.astype(np.float64) for k, v in every_layer(seed=5).state_dict().items()}
    bad = dict(sd)
    bad["dense_10/bias"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"dense_10/bias has shape \(4,\), the model's is \(3,\)"):
        a.load_state_dict(bad)
    same = every_layer()
    same.load_state_dict(before)
    same_weights(a, same)  # nothing was written by the failed load
    with pytest.raises(ValueError, match="missing keys \\['dense_10/bias'\\]"):
        a.load_state_dict({k: v for k, v in sd.items() if k != "dense_10/bias"})
    with pytest.raises(ValueError, match="unexpected keys \\['extra'\\]"):
        a.load_state_dict({**sd, "extra": np.zeros(1)})
    with pytest.raises(TypeError, match="dense_0/kernel must be a float array, got dtype int64"):
        a.load_state_dict({**sd, "dense_0/kernel": np.zeros((5, 12), np.int64)})
    with pytest.raises(ValueError, match="got 1 arrays, the model has"):
        a.set_weights([np.zeros(1)])
    a.load_state_dict({"dense_0/bias": sd["dense_0/bias"]}, strict=False)
    np.testing.assert_array_equal(a.layers[0].bias.value, sd["dense_0/bias"].astype(np.float32))
    a.load_state_dict(sd)
    assert a.layers[0].kernel.value.dtype == np.float32
    np.testing.assert_array_equal(a.layers[0].kernel.value, sd["dense_0/kernel"].astype(np.float32))
    with pytest.raises(ValueError, match="not built"):
        ic.Sequential([L.Dense(2)]).load_state_dict({})


# --- safetensors --------------------------------------------------------------------------------------
@pytest.fixture(params=["package", "fallback"])
def st_impl(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr(W, "_have_library", lambda: False)
    return request.param


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_weights(tmp_path, st_impl, dtype):
    x, y = data()
    a = every_layer(dtype=dtype)
    a.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "w.safetensors"
    a.save_weights(path)
    assert os.listdir(tmp_path) == ["w.safetensors"]  # no temporary file left behind
    b = every_layer(seed=9, dtype=dtype)
    b.load_weights(path)
    same_weights(a, b)
    np.testing.assert_array_equal(b.predict(x), a.predict(x))
    tensors, meta = W.read_safetensors(path)
    assert meta["format"] == W.SAFETENSORS_FORMAT and json.loads(meta["initcore.config"]) == a.get_config()
    assert all(v.flags.writeable for v in tensors.values())


def test_fallback_writer_matches_the_package_byte_for_byte(tmp_path):
    from safetensors.numpy import load, save

    r = np.random.default_rng(0)
    tensors = {
        "b": r.standard_normal((3, 4)).astype(np.float32),
        "a": r.standard_normal(5).astype(np.float32),
        "z/scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    meta = {"config": '{"x": 1}'}
    ours = W._serialize(tensors, meta)
    assert ours == save(tensors, metadata=meta)
    assert W._serialize(tensors) == save(tensors)
    # (The package keeps several metadata entries in a hash map, in no fixed order; ours sorts.)
    two = {"k": "v", "config": "c"}
    assert W._deserialize(save(tensors, metadata=two))[1] == two == W._deserialize(W._serialize(tensors, two))[1]
    back = load(ours)
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)
    # Mixed dtypes: the order may differ from the package's, but both read each other's files.
    mixed = {"f64": np.arange(3.0), "i8": np.arange(4, dtype=np.int8), "f32": np.ones((2, 2), np.float32)}
    for k, v in load(W._serialize(mixed)).items():
        np.testing.assert_array_equal(v, mixed[k])
        assert v.dtype == mixed[k].dtype
    parsed, m = W._deserialize(save(mixed, metadata={"a": "b"}))
    assert m == {"a": "b"}
    for k, v in parsed.items():
        np.testing.assert_array_equal(v, mixed[k])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:5], "shorter than the 8-byte header length"),
        (lambda d: (10**9).to_bytes(8, "little") + d[8:], "header length"),
        (lambda d: d[:8] + b"x" + d[9:], "not JSON"),
        (lambda d: d[:-4], "data_offsets"),
        (lambda d: d + b"\0" * 4, "trailing bytes"),
    ],
)
def test_reader_rejects_broken_files(tmp_path, st_impl, mutate, message):
    a = every_layer()
    path = tmp_path / "w.safetensors"
    a.save_weights(path)
    path.write_bytes(mutate(path.read_bytes()))
    before = a.state_dict()
    with pytest.raises(ValueError, match=message):
        a.load_weights(path)
    same = every_layer()
    same.load_state_dict(before)
    same_weights(a, same)


def test_save_weights_is_atomic(tmp_path, monkeypatch):
    a = every_layer()
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(W.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        a.save_weights(path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["w.safetensors"]
