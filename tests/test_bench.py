"""``initcore bench``'s bookkeeping (no timing asserted): interleaved repeats, the load report,
the targets of issue 8 judged from a result, the Markdown and JSON forms."""

import json

import numpy as np
import pytest

from initcore import bench


def result(ic_us, peer_us, pct, tiny_fit_us, epoch_ratio, matmul_ratio):
    steps = []
    for name in ("tiny", "mlp", "wide"):
        sy = {
            "initcore": {"min": ic_us * 1e-6, "median": ic_us * 1e-6, "pct_of_peak": pct, "repeats": 3},
            "numpy": {"min": peer_us * 1e-6, "median": peer_us * 1e-6, "repeats": 3},
            "initcore_1thread": {"min": ic_us * 2e-6, "median": ic_us * 2e-6, "repeats": 3},
            "initcore_float64": {"min": ic_us * 3e-6, "median": ic_us * 3e-6, "repeats": 3},
            "blas_products": {"min": ic_us * 0.9e-6, "median": ic_us * 1e-6, "pct_of_peak": 95.0, "repeats": 3},
        }
        steps.append({"workload": name, "description": name, "flops": 1, "peak_gflops": 190.0, "systems": sy})
    mm = {
        "initcore": {"min": 1.0, "median": 1.0, "gflops": 1.0},
        "numpy": {"min": matmul_ratio, "median": 1.0, "gflops": 1.0},
    }
    return {
        "date": "today",
        "machine": {
            "cpu": "cpu",
            "cpus": 2,
            "threads": 2,
            "python": "3",
            "numpy": "2",
            "blas_env": {"OPENBLAS_CORETYPE": "Haswell"},
            "peak": {"gflops": 200.0, "numpy_gflops": 200.0, "initcore_gflops": 180.0},
            "load_before": {"cpus": 2, "loadavg": [3.0, 2.0, 1.0], "other_busy": 0.5, "quiet": False},
        },
        "steps": steps,
        "fit": [
            {
                "row": "tiny_fit",
                "description": "t",
                "systems": {"initcore": {"min": tiny_fit_us * 1e-6, "median": 1.0}},
            },
            {
                "row": "epoch",
                "description": "e",
                "systems": {"initcore": {"min": 1.0, "median": 1.0}, "torch": {"min": epoch_ratio, "median": 1.0}},
            },
        ],
        "matmul": [{"shape": [128, 784, 256], "systems": mm}],
    }


def by_name(tg):
    return {t["target"]: t["met"] for t in tg}


def test_targets_are_judged_from_the_minima():
    good = by_name(bench.targets(result(10, 20, 90, 7.5, 2.5, 1.0)))
    assert good["mlp: % of peak"] and good["wide: % of peak"]
    assert good["tiny: faster than NumPy ref."] and good["tiny: 2 threads vs 1"]
    assert good["tiny inside fit: µs per step"] and good["epoch: faster than PyTorch's eager loop"]
    assert good["ic.ops.matmul 128x784@784x256 vs NumPy"]
    assert good["mlp: float64 no slower than before"] is None  # no baseline given
    bad = by_name(bench.targets(result(10, 9, 70, 9.0, 1.5, 0.9)))
    assert not any(v for k, v in bad.items() if "float64" not in k and "2 threads" not in k)
    base = result(10, 20, 90, 7.5, 2.5, 1.0)
    slower = result(12, 20, 90, 7.5, 2.5, 1.0)
    assert by_name(bench.targets(slower, base))["mlp: float64 no slower than before"] is False
    assert by_name(bench.targets(base, base))["mlp: float64 no slower than before"] is True


def test_table_shows_the_peak_the_load_warning_and_every_target():
    r = result(10, 20, 90, 7.5, 2.5, 1.0)
    text = bench.format_table(r)
    assert "200.0 GFLOP/s" in text and "WARNING: the machine is not quiet" in text
    assert "| 190.0 | 90% |" in text  # the row's own peak beside its share of it
    assert "OPENBLAS_CORETYPE=Haswell" in text
    assert "| 90% (BLAS products alone: 95%) | >= 88% | met |" in text
    assert text.count("| met |") + text.count("**missed**") + text.count("not measured") == len(bench.targets(r))
    json.dumps(r)


def test_each_step_row_takes_its_share_of_the_peak_timed_among_its_systems(monkeypatch):
    """The start-of-run peak only picks the GEMM; a row's % of peak divides by the peak timed
    interleaved with that row, so a slow spell during one row does not count against initcore."""
    timed_peaks = iter([2 * bench.PEAK_N**3 / 100e9, 2 * bench.PEAK_N**3 / 50e9])  # 100, then 50 GFLOP/s
    seen = []

    def fake_interleaved(fns, budget_s, repeats):
        seen.append(set(fns))
        if set(fns) == {"numpy", "initcore"}:  # the start-of-run peak
            return {"numpy": [2 * bench.PEAK_N**3 / 300e9], "initcore": [2 * bench.PEAK_N**3 / 400e9]}
        t_peak = next(timed_peaks)
        return {s: [t_peak] if s == bench.ROW_PEAK else [bench.WORKLOADS["tiny"].flops / 40e9] for s in fns}

    monkeypatch.setattr(bench, "interleaved", fake_interleaved)
    r = bench.run(["tiny", "mlp"], ["initcore", "numpy"], budget_s=0.01, repeats=1, progress=False)
    assert r["machine"]["peak"]["system"] == "initcore" and r["machine"]["peak"]["gflops"] == pytest.approx(400)
    assert all(bench.ROW_PEAK in s for s in seen[1:])
    assert all(bench.ROW_PEAK not in row["systems"] for row in r["steps"])
    tiny, mlp = r["steps"]
    assert tiny["peak_gflops"] == pytest.approx(100) and mlp["peak_gflops"] == pytest.approx(50)
    assert tiny["systems"]["initcore"]["pct_of_peak"] == pytest.approx(40)  # 40 GFLOP/s of 100
    wm = bench.WORKLOADS["mlp"].flops / bench.WORKLOADS["tiny"].flops
    assert mlp["systems"]["initcore"]["pct_of_peak"] == pytest.approx(100 * 40 * wm / 50)


@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_blas_products_do_exactly_the_products_the_flops_count(monkeypatch, name):
    """The ``blas_products`` ceiling runs the step's products, no more and no fewer: its
    multiply-adds sum to ``Workload.flops``, and each product lands in its own output."""
    w = bench.WORKLOADS[name]
    run = bench._blas_products(w)
    seen, real = [], np.matmul

    def counting(a, b, out):
        seen.append((a.shape, b.shape, out.shape))
        return real(a, b, out=out)

    monkeypatch.setattr(np, "matmul", counting)
    run()
    assert sum(2 * a[0] * a[1] * b[1] for a, b, _ in seen) == w.flops
    assert all(a[1] == b[0] and o == (a[0], b[1]) for a, b, o in seen)
    layers = len(w.sizes) - 1
    assert len(seen) == 3 * layers - 1  # forward and dW per layer, dX above the input layer


def test_interleaved_takes_turns_settles_and_times_every_repeat(monkeypatch):
    from initcore import _timing

    calls = []
    # Each settling pause marks the start of a timed block.
    monkeypatch.setattr(_timing.time, "sleep", lambda s: calls.append(("settle", s)))
    monkeypatch.setattr(_timing, "WARM_S", 0.0)  # one untimed call after each pause
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"), "c": lambda: calls.append("c")}
    times = bench.interleaved(fns, 0.03, 3)
    assert [len(v) for v in times.values()] == [3, 3, 3] and all(t > 0 for v in times.values() for t in v)
    first = calls.index(("settle", _timing.SETTLE_S))
    assert [c for i, c in enumerate(calls[:first]) if i == 0 or calls[i - 1] != c] == ["a", "b", "c"]  # warm-up
    blocks, cur = [], None
    for c in calls[first:]:
        if isinstance(c, tuple):
            assert c == ("settle", _timing.SETTLE_S)
            cur = []
            blocks.append(cur)
        else:
            cur.append(c)
    assert all(len(set(b)) == 1 and b for b in blocks)  # one function per block, after each pause
    order = [b[0] for b in blocks]
    # Every repeat times each function once, starting with the next one each time.
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_machine_load_reports_its_fields():
    ld = bench.machine_load(0.05)
    assert set(ld) == {"cpus", "loadavg", "other_busy", "quiet"}
    assert ld["other_busy"] is None or 0.0 <= ld["other_busy"] <= 1.0


def test_bad_arguments_are_rejected():
    import argparse

    ns = argparse.Namespace(
        workloads="nope", peers="initcore", budget=1.0, repeats=1, json=False, threads=None, baseline=None
    )
    with pytest.raises(ValueError, match="nope"):
        bench.main(ns)


def test_ab_builds_times_two_builds_in_one_process():
    """benches/ab_builds.py: a second copy of a built package loads beside this one and both
    builds' steps are timed in alternating rounds."""
    import importlib.util
    import os

    import initcore

    path = os.path.join(os.path.dirname(__file__), os.pardir, "benches", "ab_builds.py")
    spec = importlib.util.spec_from_file_location("ab_builds", path)
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    other = ab.import_other(os.path.dirname(initcore.__file__))
    assert other.__name__ == "initcore_other" and other._core is not initcore._core
    w = bench.WORKLOADS["tiny"]
    fns = {"other": ab.step(other, w), "this": ab.step(initcore, w)}
    times = ab.compare(fns, rounds=3, round_s=0.002)
    assert [len(v) for v in times.values()] == [3, 3] and all(t > 0 for v in times.values() for t in v)
