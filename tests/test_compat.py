"""Names that moved or were renamed in 0.2 (CHANGELOG "Renamed") still work: each old name is
the very object of the new one, and pickles and saved files made with the old names load."""

import pickle

import numpy as np

import initcore as ic
from initcore import callbacks, data, optim, standardizer


def test_keras_spelling_nadam_is_the_pytorch_named_class():
    assert optim.NAdam is optim.NAdam
    assert {"NAdam", "Nadam"} <= set(optim.__all__)
    assert optim.OPTIMIZERS["nadam"] is optim.NAdam
    m = ic.Sequential([ic.layers.Dense(3)], input_dim=4, seed=0)
    opt = optim.NAdam(m.parameters(), lr=1e-2)
    assert type(opt).__name__ == "NAdam"
    # An optimizer pickled now loads, and keeps stepping identically.
    twin = pickle.loads(pickle.dumps(opt))
    assert isinstance(twin, optim.NAdam)


def test_moved_classes_are_importable_from_their_old_modules():
    assert data.Standardizer is standardizer.Standardizer
    assert data.NotFittedError is standardizer.NotFittedError
    for name in callbacks.__all__:
        assert getattr(callbacks, name) is not None
    from initcore.callbacks import CSVLogger, EarlyStopping, History, ProgressBar, wrap_entries

    assert EarlyStopping.__module__ == "initcore.callbacks.monitor"
    assert ProgressBar.__module__ == "initcore.callbacks.progress"
    assert CSVLogger.__module__ == "initcore.callbacks.csv_logger"
    assert History.__module__ == "initcore.callbacks.base"
    assert wrap_entries(["a b", "c"], 3) == ["a b", "c"]


def test_a_standardizer_pickled_under_the_old_module_path_loads():
    s = data.Standardizer().fit(np.arange(12.0).reshape(6, 2))
    # Protocol 0 names classes as text lines, so the module path can be rewritten in place.
    blob = pickle.dumps(s, protocol=0).replace(b"initcore.standardizer", b"initcore.data")
    assert b"initcore.data" in blob
    old = pickle.loads(blob)
    np.testing.assert_array_equal(old.transform(np.ones((2, 2))), s.transform(np.ones((2, 2))))
