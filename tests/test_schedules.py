"""Learning-rate schedules: per-epoch values against the closed forms (and PyTorch's recursive
cosine form), ReduceLROnPlateau's patience / cooldown / min_lr / threshold rules, state round
trips, and a schedule inside a real ``fit``."""

import math

import numpy as np
import pytest

from initcore import Parameter, optim
from initcore import schedules as S


class FakeModel:
    def __init__(self, lr=1.0):
        self.optimizer = optim.SGD([Parameter(np.zeros(2), "w")], lr=lr)
        self.stop_training = False


def drive(schedule, epochs, lr=1.0, metrics=None, model=None, start=0):
    """Runs the hooks as fit does; returns the learning rate in force during each epoch."""
    model = model or FakeModel(lr)
    schedule.set_model(model)
    schedule.on_train_begin({})
    used = []
    for e in range(start, start + epochs):
        schedule.on_epoch_begin(e, {})
        used.append(model.optimizer.lr)
        logs = {"loss": 1.0, "lr": model.optimizer.lr}
        if metrics is not None:
            logs["val_loss"] = metrics[e - start]
        schedule.on_epoch_end(e, logs)
    return used, model


def test_step_decay():
    used, _ = drive(S.StepDecay(3, gamma=0.5), 10, lr=0.8)
    assert used == pytest.approx([0.8 * 0.5 ** (e // 3) for e in range(10)], rel=1e-15)


def test_multistep_decay():
    used, _ = drive(S.MultiStepDecay([2, 5, 6], gamma=0.1), 8, lr=1.0)
    assert used == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.001, 0.001], rel=1e-12)


def test_exponential_decay():
    used, _ = drive(S.ExponentialDecay(0.9), 12, lr=0.3)
    assert used == pytest.approx([0.3 * 0.9**e for e in range(12)], rel=1e-13)


def test_cosine_matches_pytorch_recursive_form():
    """PyTorch's CosineAnnealingLR.get_lr (the recursive form), written out, over 2.5 periods."""
    t_max, eta_min, base = 4, 0.01, 0.5
    used, _ = drive(S.CosineDecay(t_max, eta_min), 21, lr=base)
    lr, want = base, []
    for e in range(21):
        if e == 0:
            lr = base
        elif (e - 1 - t_max) % (2 * t_max) == 0:
            lr = lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            lr = (1 + math.cos(math.pi * e / t_max)) / (1 + math.cos(math.pi * (e - 1) / t_max)) * (
                lr - eta_min
            ) + eta_min
        want.append(lr)
    assert used == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert used[t_max] == pytest.approx(eta_min) and used[2 * t_max] == pytest.approx(base)


def test_linear_warmup_and_lambda():
    used, _ = drive(S.LinearLR(start_factor=0.25, end_factor=1.0, total_iters=3), 6, lr=2.0)
    assert used == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    used, _ = drive(S.LambdaSchedule(lambda e: 1 / (1 + e)), 4, lr=1.0)
    assert used == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])


def test_base_lr_is_captured_once_and_epochs_continue():
    sched = S.StepDecay(2, 0.1)
    used, model = drive(sched, 3, lr=1.0)
    assert sched.base_lr == 1.0 and sched.last_epoch == 2
    # A second fit continues from epoch 3 with the same η₀ even though the optimizer's lr moved.
    used2, _ = drive(sched, 3, model=model, start=3)
    assert used + used2 == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert sched.lr_at(10) == pytest.approx(1e-5) and S.StepDecay(2).lr_at(2, base_lr=3.0) == pytest.approx(0.3)


def test_state_round_trip_resumes():
    a = S.CosineDecay(10)
    drive(a, 4, lr=0.2)
    b = S.CosineDecay(10)
    b.set_state(a.get_state())
    model = FakeModel(lr=123.0)  # the loaded optimizer's lr does not reset η₀
    used, _ = drive(b, 3, model=model, start=4)
    assert used == pytest.approx([a.lr_at(e) for e in (4, 5, 6)])


def test_reduce_on_plateau_patience_cooldown_min_lr():
    sched = S.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2, min_delta=0.1)
    metrics = [10, 9.5, 9.2, 9.1, 8.0] + [8.0] * 11
    used, model = drive(sched, len(metrics), lr=1.0, metrics=metrics)
    # Worked by hand with PyTorch's rules (see the docstring): reductions after epochs 3, 7, 11
    # (the last clipped to min_lr); at epoch 15 max(0.1, 0.2) = 0.2 changes nothing.
    assert used == pytest.approx([1.0] * 4 + [0.5] * 4 + [0.25] * 4 + [0.2] * 4)
    assert model.optimizer.lr == 0.2
    assert sched.best == 8.0


def test_reduce_on_plateau_thresholds():
    cases = [  # (mode, threshold_mode, a, best, better?)
        ("min", "rel", 0.899, 1.0, True),
        ("min", "rel", 0.9, 1.0, False),
        ("min", "abs", 0.89, 1.0, True),
        ("min", "abs", 0.9, 1.0, False),
        ("max", "rel", 1.101, 1.0, True),
        ("max", "rel", 1.1, 1.0, False),
        ("max", "abs", 1.11, 1.0, True),
        ("max", "abs", 1.1, 1.0, False),
    ]
    for mode, tm, a, best, better in cases:
        s = S.ReduceLROnPlateau(mode=mode, threshold_mode=tm, min_delta=0.1)
        assert s.is_better(a, best) == better, (mode, tm, a)
    s = S.ReduceLROnPlateau(monitor="val_accuracy", mode="max", patience=0, factor=0.1)
    model = FakeModel(1.0)
    s.set_model(model)
    for e, acc in enumerate([0.5, 0.6, 0.6]):
        s.on_epoch_end(e, {"val_accuracy": acc})
    assert model.optimizer.lr == pytest.approx(0.1)


def test_reduce_on_plateau_state_and_missing_metric():
    a = S.ReduceLROnPlateau(patience=1)
    drive(a, 3, metrics=[1.0, 2.0, 0.5])
    b = S.ReduceLROnPlateau(patience=1)
    b.set_state(a.get_state())
    assert b.get_state() == a.get_state() == {"best": 0.5, "num_bad_epochs": 0, "cooldown_counter": 0, "last_epoch": 2}
    s = S.ReduceLROnPlateau()
    s.set_model(FakeModel())
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the epoch logs.*available: loss"):
        s.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: S.StepDecay(0), "step_size"),
        (lambda: S.StepDecay(2.5), "step_size"),
        (lambda: S.ExponentialDecay(0.0), "gamma"),
        (lambda: S.CosineDecay(0), "t_max"),
        (lambda: S.CosineDecay(5, eta_min=-1), "eta_min"),
        (lambda: S.MultiStepDecay([5, 2]), "increasing"),
        (lambda: S.LinearLR(start_factor=0), "Starting multiplicative factor"),
        (lambda: S.ReduceLROnPlateau(factor=1.0), "Factor should be < 1.0"),
        (lambda: S.ReduceLROnPlateau(mode="up"), "mode up is unknown"),
        (lambda: S.ReduceLROnPlateau(threshold_mode="x"), "threshold mode x is unknown"),
        (lambda: S.ReduceLROnPlateau(patience=-1), "patience"),
        (lambda: S.get("linear_warmup"), "schedule must be one of"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_get_and_errors_without_optimizer():
    assert S.get("none") is None and S.get(None) is None
    assert isinstance(S.get("step", step_size=3), S.StepDecay)
    assert isinstance(S.get("Plateau", patience=2), S.ReduceLROnPlateau)
    s = S.StepDecay(2)
    s.set_model(type("M", (), {"optimizer": None})())
    with pytest.raises(RuntimeError, match="no optimizer"):
        s.on_train_begin({})
    with pytest.raises(RuntimeError, match="no base learning rate"):
        S.ExponentialDecay(0.5).lr_at(3)
    assert "StepDecay(step_size=2, gamma=0.1)" == repr(S.StepDecay(2))


def test_schedule_inside_fit_is_logged_and_resumes(tmp_path):
    import initcore as ic

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)

    def build():
        return ic.Sequential(
            [ic.layers.Dense(8, activation="relu"), ic.layers.Dense(2)], input_dim=5, seed=1, backend="numpy"
        )

    sched = S.StepDecay(2, gamma=0.5)
    m = build()
    h = m.fit(x, y, optimizer=optim.SGD(m.parameters(), lr=0.4), epochs=3, batch_size=16, callbacks=[sched], verbose=0)
    assert h.history["lr"] == pytest.approx([0.4, 0.4, 0.2])
    m.save(tmp_path / "m.npz")
    sched2 = S.StepDecay(2, gamma=0.5)
    m2 = ic.Sequential.load(tmp_path / "m.npz", callbacks=[sched2])
    h2 = m2.fit(x, y, epochs=3, batch_size=16, callbacks=[sched2], verbose=0)
    assert h2.epoch == [3, 4, 5]
    assert h2.history["lr"] == pytest.approx([0.2, 0.1, 0.1])
