"""Callbacks: dispatch, History, EarlyStopping (patience, min_delta, mode, baseline, best
weights), ModelCheckpoint, TerminateOnNaN, CSVLogger (atomic rewrite, append, NA), ProgressBar
(one line per epoch off a terminal, a tqdm bar on one), and all of them inside a real ``fit``."""

import csv
import io
import math
import os

import numpy as np
import pytest

from initcore import Parameter
from initcore import callbacks as C


class FakeModel:
    def __init__(self):
        self.w = Parameter(np.zeros(3), "w")
        self.bn = {"bn/running_mean": np.zeros(2)}
        self.stop_training = False
        self.saved = []
        self.fit_params = {"epochs": 4, "initial_epoch": 0, "steps": 3, "samples": 30, "batch_size": 10}

    def parameters(self):
        return [self.w]

    def buffers(self):
        return self.bn

    def save(self, path):
        self.saved.append(path)
        with open(path, "w") as f:
            f.write(str(self.w.value.tolist()))


def run_epochs(cb, values, key="val_loss", model=None, weights=None):
    """Epoch loop as fit runs it; ``weights[e]`` is written into the model before epoch e ends."""
    model = model or FakeModel()
    cb.set_model(model)
    cb.on_train_begin({})
    ended = None
    for e, v in enumerate(values):
        cb.on_epoch_begin(e, {})
        if weights is not None:
            model.w.value[...] = weights[e]
            model.bn["bn/running_mean"][...] = weights[e][0]
        cb.on_epoch_end(e, {"loss": 1.0, key: v})
        if model.stop_training:
            ended = e
            break
    cb.on_train_end({})
    return model, ended


def test_callback_list_dispatches_in_order():
    seen = []

    class Rec(C.Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_epoch_end(self, epoch, logs=None):
            seen.append((self.tag, epoch, logs["loss"]))

        def on_batch_begin(self, batch, logs=None):
            seen.append((self.tag, "b", batch))

    model = FakeModel()
    cl = C.CallbackList([Rec("a"), Rec("b")], model=model)
    cl.append(Rec("c"))
    assert all(cb.model is model for cb in cl) and len(cl) == 3
    cl.set_params({"epochs": 9})
    assert cl.callbacks[0].params == {"epochs": 9}
    for hook in ("on_train_begin", "on_train_end"):
        getattr(cl, hook)({})
    cl.on_batch_begin(0, {})
    cl.on_batch_end(0, {})
    cl.on_epoch_begin(2, {})
    cl.on_epoch_end(2, {"loss": 0.5})
    assert seen == [("a", "b", 0), ("b", "b", 0), ("c", "b", 0), ("a", 2, 0.5), ("b", 2, 0.5), ("c", 2, 0.5)]
    with pytest.raises(TypeError, match="Callback objects"):
        C.CallbackList([object()])


def test_history_records_every_key():
    h = C.History()
    h.on_epoch_end(0, {"loss": 1.0, "lr": 0.1})
    h.on_epoch_end(1, {"loss": 0.5, "lr": 0.1, "val_loss": 0.7})
    assert h.epoch == [0, 1]
    assert h.history == {"loss": [1.0, 0.5], "lr": [0.1, 0.1], "val_loss": [0.7]}


def test_early_stopping_patience():
    es = C.EarlyStopping(patience=2)
    _, ended = run_epochs(es, [5, 4, 4.5, 4.2, 3.9])
    assert ended == 3 and es.stopped_epoch == 3 and es.best == 4 and es.best_epoch == 1
    es = C.EarlyStopping(patience=0)
    _, ended = run_epochs(es, [5, 4, 4.5, 1.0])
    assert ended == 2
    _, ended = run_epochs(C.EarlyStopping(patience=1, min_delta=0.5), [5, 4.6, 4.3, 3.0])
    assert ended == 1  # 4.6 is not 0.5 better than 5
    _, ended = run_epochs(C.EarlyStopping(patience=3), [5, 4, 3, 2, 1])
    assert ended is None


def test_early_stopping_mode_auto_baseline_start():
    es = C.EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.mode == "max"
    _, ended = run_epochs(es, [0.5, 0.7, 0.6, 0.65], key="val_accuracy")
    assert ended == 2
    # Baseline (Keras): improvements that do not beat 0.9 do not reset the wait, so the first
    # non-improving epoch stops training; without a baseline it would not.
    values = [0.5, 0.6, 0.7, 0.8, 0.75]
    _, ended = run_epochs(C.EarlyStopping(monitor="val_accuracy", patience=2, baseline=0.9), values, key="val_accuracy")
    assert ended == 4
    _, ended = run_epochs(C.EarlyStopping(monitor="val_accuracy", patience=2), values, key="val_accuracy")
    assert ended is None
    _, ended = run_epochs(C.EarlyStopping(patience=0, start_from_epoch=3), [1, 2, 3, 4, 5])
    assert ended == 4
    with pytest.raises(ValueError, match="mode"):
        C.EarlyStopping(mode="up")


def test_early_stopping_restores_best_weights_and_buffers():
    es = C.EarlyStopping(patience=2, restore_best_weights=True)
    model, ended = run_epochs(es, [3, 1, 2, 2.5, 0.5], weights=[[0.0] * 3, [1.0] * 3, [2.0] * 3, [3.0] * 3, [4.0] * 3])
    assert ended == 3
    np.testing.assert_array_equal(model.w.value, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(model.bn["bn/running_mean"], [1.0, 1.0])


def test_early_stopping_state_survives_a_resume_but_resets_otherwise():
    es = C.EarlyStopping(patience=2, restore_best_weights=True)
    run_epochs(es, [3, 1, 2], weights=[[0.0] * 3, [1.0] * 3, [2.0] * 3])
    state = es.get_state()
    assert state["wait"] == 1 and state["best"] == 1 and state["best_epoch"] == 1
    es2 = C.EarlyStopping(patience=2, restore_best_weights=True)
    es2.set_state(state)
    model = FakeModel()
    es2.set_model(model)
    es2.on_train_begin({})  # a resumed run keeps the loaded state
    es2.on_epoch_end(3, {"val_loss": 5})
    assert model.stop_training and es2.stopped_epoch == 3
    es2.on_train_begin({})  # a fresh fit afterwards starts over, as Keras
    assert es2.wait == 0 and es2.best == math.inf


def test_missing_monitor_warns_and_skips():
    es = C.EarlyStopping(monitor="val_loss", patience=0)
    es.set_model(FakeModel())
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the epoch logs"):
        es.on_epoch_end(0, {"loss": 1.0})
    assert es.wait == 0


def test_model_checkpoint(tmp_path):
    every = C.ModelCheckpoint(tmp_path / "ck-{epoch:02d}-{val_loss:.1f}.npz")
    model, _ = run_epochs(every, [3.0, 2.0])
    assert [os.path.basename(p) for p in model.saved] == ["ck-01-3.0.npz", "ck-02-2.0.npz"]
    best = C.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    model, _ = run_epochs(best, [3.0, 2.0, 2.5, 1.0, 1.5])
    assert len(model.saved) == 3 and best.best == 1.0
    acc = C.ModelCheckpoint(tmp_path / "acc.npz", monitor="val_accuracy", save_best_only=True)
    model, _ = run_epochs(acc, [0.5, 0.4, 0.6], key="val_accuracy")
    assert acc.mode == "max" and len(model.saved) == 2
    bad = C.ModelCheckpoint(tmp_path / "{val_auc}.npz")
    with pytest.raises(KeyError, match="val_auc"):
        run_epochs(bad, [1.0])
    acc2 = C.ModelCheckpoint(tmp_path / "acc.npz", monitor="val_accuracy", save_best_only=True)
    acc2.set_state(acc.get_state())
    assert acc2.best == 0.6


def test_terminate_on_nan(capsys):
    model = FakeModel()
    t = C.TerminateOnNaN()
    t.set_model(model)
    t.on_batch_end(0, {"loss": 0.3})
    assert not model.stop_training
    t.on_batch_end(1, {"loss": float("nan")})
    assert model.stop_training
    assert "Batch 1: invalid loss nan" in capsys.readouterr().err
    model.stop_training = False
    t.on_epoch_end(0, {"loss": float("inf")})
    assert model.stop_training


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_rewrites_atomically(tmp_path):
    path = tmp_path / "log.csv"
    log = C.CSVLogger(path)
    log.set_model(FakeModel())
    log.on_train_begin({})
    log.on_epoch_end(0, {"loss": 0.5, "lr": np.float32(0.25)})
    rows = read_csv(path)
    assert rows == [{"epoch": "0", "loss": "0.5", "lr": "0.25"}]
    log.on_epoch_end(1, {"loss": 0.25, "lr": 0.1, "val_loss": 1 / 3})
    rows = read_csv(path)
    assert list(rows[0]) == ["epoch", "loss", "lr", "val_loss"]
    assert rows[0]["val_loss"] == "NA" and float(rows[1]["val_loss"]) == 1 / 3  # full precision
    assert sorted(os.listdir(tmp_path)) == ["log.csv"]  # no temporary file left behind
    again = C.CSVLogger(path, append=True)
    again.on_train_begin({})
    again.on_epoch_end(2, {"loss": 0.125})
    assert [r["epoch"] for r in read_csv(path)] == ["0", "1", "2"]
    fresh = C.CSVLogger(path, separator=";")
    fresh.on_train_begin({})
    fresh.on_epoch_end(0, {"loss": 1.0})
    assert open(path).read() == "epoch;loss\n0;1.0\n"


def test_progress_bar_one_line_per_epoch_off_a_terminal():
    out = io.StringIO()
    pb = C.ProgressBar(stream=out)
    model = FakeModel()
    pb.set_model(model)
    pb.on_train_begin({})
    for e in range(2):
        pb.on_epoch_begin(e, {})
        for b in range(3):
            pb.on_batch_end(b, {"loss": 0.5, "size": 10, "accuracy": 0.75})
        pb.on_epoch_end(e, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "lr": 1e-3, "seconds": 0.5})
    pb.on_train_end({})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/4  loss 0.5000  accuracy 0.7500  val_loss 0.6000  lr 0.001  0.50 s")
    assert "(60 samples/s)" in lines[0]


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_a_bar_on_a_terminal():
    out = TTY()
    pb = C.ProgressBar(stream=out)
    pb.set_model(FakeModel())
    pb.on_train_begin({})
    pb.on_epoch_begin(0, {})
    for b in range(3):
        pb.on_batch_end(b, {"loss": 0.25, "size": 10})
    pb.on_epoch_end(0, {"loss": 0.25, "seconds": 0.1})
    text = out.getvalue()
    assert "epoch 1/4" in text and "3/3" in text and "loss 0.2500" in text
    assert pb.bar is None


def test_lambda_callback():
    seen = []
    cb = C.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    run_epochs(cb, [1, 2])
    assert seen == [0, 1]
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        C.LambdaCallback(on_epoch_end=3)


def test_callbacks_inside_fit(tmp_path, capsys):
    import initcore as ic
    from initcore import optim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    xv, yv = x[:32], y[:32]
    model = ic.Sequential(
        [ic.layers.Dense(16, activation="relu"), ic.layers.Dense(2)], input_dim=6, seed=0, backend="numpy"
    )
    seen_params = []
    es = C.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)
    log = C.CSVLogger(tmp_path / "fit.csv")
    ck = C.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    probe = C.LambdaCallback(on_train_begin=lambda logs: seen_params.append(dict(probe._fit_params())))
    # lr 5.0 makes SGD diverge quickly, so the validation loss stops improving.
    opt = optim.SGD(model.parameters(), lr=5.0)
    h = model.fit(
        x,
        y,
        optimizer=opt,
        epochs=30,
        batch_size=32,
        validation_data=(xv, yv),
        callbacks=[es, log, ck, probe],
        verbose=1,
    )
    n = len(h.epoch)
    assert n < 30 and es.stopped_epoch == n - 1
    assert set(h.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert len(read_csv(tmp_path / "fit.csv")) == n
    assert (tmp_path / "best.npz").exists()
    assert seen_params[0]["epochs"] == 30 and seen_params[0]["steps"] == 3
    # Best weights restored: evaluating now gives the best validation loss seen.
    assert model.evaluate(xv, yv)["loss"] == pytest.approx(min(h.history["val_loss"]), rel=1e-5)
    out = capsys.readouterr().out  # verbose=1 off a terminal: one line per epoch
    assert out.count("epoch ") == n and "epoch 1/30" in out
