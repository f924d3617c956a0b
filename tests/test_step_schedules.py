"""Per-step learning-rate schedules (WarmupCosine, OneCycle, ExponentialPerStep): lr_at against
the closed forms transcribed from PyTorch's documented definitions (and against torch's
schedulers themselves when torch is importable), and their use inside fit."""

import math

import numpy as np
import pytest

import initcore as ic
from conftest import require_torch
from initcore import schedules as S


def test_warmup_cosine_closed_form():
    s = S.WarmupCosine(warmup_steps=4, total_steps=14, start_factor=0.25, eta_min=0.01)
    base = 0.5
    got = [s.lr_at(i, base) for i in range(20)]
    for i in range(4):  # LinearLR(start_factor=0.25, end_factor=1, total_iters=4)
        assert got[i] == pytest.approx(base * (0.25 + 0.75 * i / 4), rel=1e-15)
    for i in range(4, 20):  # CosineAnnealingLR(T_max=10, eta_min=0.01), periodic past T_max
        assert got[i] == pytest.approx(0.01 + (base - 0.01) * (1 + math.cos(math.pi * (i - 4) / 10)) / 2, rel=1e-15)
    assert got[4] == base and got[14] == pytest.approx(0.01)
    np.testing.assert_array_equal(s.lrs(3, 5, base), got[3:8])
    with pytest.raises(ValueError, match="warmup_steps"):
        S.WarmupCosine(10, 10)
    with pytest.raises(RuntimeError, match="base learning rate"):
        s.lr_at(0)


def test_onecycle_closed_form():
    s = S.OneCycle(max_lr=1.0, total_steps=10, pct_start=0.3)  # div 25, final_div 1e4
    lo, hi, end = 0.04, 1.0, 0.04 / 1e4
    # Phase 1 ends at step 0.3·10 − 1 = 2, phase 2 at 9; cos annealing between the ends.
    assert s.lr_at(0) == pytest.approx(lo, rel=1e-15)
    assert s.lr_at(1) == pytest.approx(hi + (lo - hi) / 2 * (math.cos(math.pi * 0.5) + 1), rel=1e-15)
    assert s.lr_at(2) == pytest.approx(hi, rel=1e-15)
    for i in range(3, 11):
        pct = (i - 2) / 7
        assert s.lr_at(i) == pytest.approx(end + (hi - end) / 2 * (math.cos(math.pi * pct) + 1), rel=1e-14)
    assert s.lr_at(9) == pytest.approx(end, rel=1e-12)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        s.lr_at(11)
    lin = S.OneCycle(max_lr=2.0, total_steps=10, anneal_strategy="linear", three_phase=True)
    lo = 2.0 / 25
    # three phases end at 2, 4 (= 2·0.3·10 − 2) and 9: up, down to the start, down to the minimum
    assert lin.lr_at(1) == pytest.approx(lo + (2.0 - lo) * 0.5)
    assert lin.lr_at(3) == pytest.approx(2.0 + (lo - 2.0) * 0.5)
    assert lin.lr_at(4) == pytest.approx(lo)
    assert lin.lr_at(9) == pytest.approx(lo / 1e4)


def test_exponential_per_step():
    s = S.ExponentialPerStep(0.9)
    assert [s.lr_at(i, 2.0) for i in range(4)] == [2.0, 2.0 * 0.9, 2.0 * 0.9**2, 2.0 * 0.9**3]


def torch_lrs(torch, make_sched, base_lr, steps):
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_against_pytorch_when_installed():
    torch = require_torch()
    L = torch.optim.lr_scheduler
    ours = S.OneCycle(max_lr=0.3, total_steps=50, pct_start=0.25, div_factor=10, final_div_factor=100)
    want = torch_lrs(
        torch,
        lambda o: L.OneCycleLR(
            o, max_lr=0.3, total_steps=50, pct_start=0.25, div_factor=10, final_div_factor=100, cycle_momentum=False
        ),
        0.1,
        50,
    )
    np.testing.assert_allclose([ours.lr_at(i) for i in range(50)], want, rtol=1e-12)
    wc = S.WarmupCosine(5, 40, start_factor=0.1, eta_min=1e-4)
    want = torch_lrs(
        torch,
        lambda o: L.SequentialLR(
            o,
            [L.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5), L.CosineAnnealingLR(o, 35, eta_min=1e-4)],
            milestones=[5],
        ),
        0.2,
        40,
    )
    np.testing.assert_allclose([wc.lr_at(i, 0.2) for i in range(40)], want, rtol=1e-10)
    want = torch_lrs(torch, lambda o: L.ExponentialLR(o, 0.97), 0.2, 30)
    np.testing.assert_allclose([S.ExponentialPerStep(0.97).lr_at(i, 0.2) for i in range(30)], want, rtol=1e-12)


class Recorder(ic.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_batch_begin(self, batch, logs=None):
        self.lrs.append(self.model.optimizer.lr)


def data():
    r = np.random.default_rng(0)
    return r.standard_normal((50, 4)).astype(np.float32), r.integers(0, 3, 50)


@pytest.mark.parametrize("fused", [True, False])
def test_fit_sets_the_rate_of_every_step_and_resumes(fused):
    x, y = data()
    m = ic.Sequential([ic.layers.Dense(5, activation="relu"), ic.layers.Dense(3)], input_dim=4, seed=1)
    m.fused = fused
    opt = ic.optim.SGD(m.parameters(), lr=0.4)
    sched, rec = S.WarmupCosine(3, 20), Recorder()
    m.fit(x, y, optimizer=opt, epochs=2, batch_size=10, callbacks=[sched, rec], verbose=0)
    m.fit(x, y, optimizer=opt, epochs=1, batch_size=10, callbacks=[sched, rec], verbose=0)
    assert opt.step_count == 15
    assert rec.lrs == [sched.lr_at(i, 0.4) for i in range(15)]
    # The same steps by hand give the same weights, bit for bit.
    m2 = ic.Sequential([ic.layers.Dense(5, activation="relu"), ic.layers.Dense(3)], input_dim=4, seed=1)
    m2.fused = fused
    opt2 = ic.optim.SGD(m2.parameters(), lr=0.4)
    for _epoch in range(3):
        order = m2.rng.permutation(50)
        for b in range(5):
            idx = order[b * 10 : (b + 1) * 10]
            opt2.lr = sched.lr_at(opt2.step_count, 0.4)
            m2.train_step(x[idx], y[idx], opt2)
    for p, q in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
