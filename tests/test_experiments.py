"""The seven experiments in quick mode (as ``initcore experiment NAME --quick``): each writes its
figures and summary.md, prints its tables, and its numbers agree with the theory it illustrates."""

import contextlib
import io
import math
import os

import numpy as np
import pytest

from initcore import experiments as E


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs each experiment once (quick), on first use; name → (result dict, printed text)."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                res = E.run(name, str(out), quick=True)
            cache[name] = (res, buf.getvalue())
        return cache[name]

    return get


def check_outputs(res, text, n_figures, title_bits):
    assert os.path.isfile(res["summary"]) and len(res["figures"]) == n_figures
    for f in res["figures"]:
        with open(f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n", f
    summary = open(res["summary"], encoding="utf-8").read()
    for f in res["figures"]:
        assert f"]({os.path.basename(f)})" in summary
    for bit in title_bits:
        assert bit in text and bit in summary, bit


def test_registry_and_errors(tmp_path):
    assert list(E.EXPERIMENTS) == ["init-compare", "depth", "vanishing", "snn", "batchnorm", "optimizers", "annealing"]
    for name in E.EXPERIMENTS:
        assert callable(E.get(name).run)
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        E.get("nope")


def test_cli_runs_an_experiment_and_rejects_bad_names(tmp_path, capsys):
    from initcore import cli

    assert cli.main(["experiment", "batchnorm", "--quick", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "final validation accuracy" in out and os.path.isfile(tmp_path / "d" / "summary.md")
    assert os.path.isfile(tmp_path / "d" / "accuracy_vs_lr.png")
    assert cli.main(["experiment", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice: 'nope'" in err
    assert cli.main(["experiment", "depth", "--seed", "-1"]) == 2


def test_init_compare_first_layer_variance_and_saturation(runs):
    res, text = runs("init-compare")
    check_outputs(res, text, 2, ["n_in·Var(x)·Var(w)", "measured Var(z)"])
    for r in res["first_layer"]:  # Var(z) = n_in·Var(x)·Var(w) within 3 standard errors
        assert abs(r["measured Var(z)"] - r["n_in·Var(x)·Var(w)"]) <= 3 * r["std error"], r
    first = {r["init"]: r for r in res["first_layer"]}
    assert first["N(0,1)"]["n_in·Var(x)·Var(w)"] == pytest.approx(784 * res["var_x"])
    rows = {(r["activation"], r["init"]): r for r in res["rows"]}
    assert rows[("sigmoid", "N(0,1)")]["L1 saturated"] > 0.6
    assert rows[("sigmoid", "Glorot")]["L1 saturated"] < 0.02 and rows[("sigmoid", "He")]["L1 saturated"] < 0.02
    assert rows[("relu", "He")]["L1 dead"] < 0.05 and rows[("relu", "N(0,1)")]["logit std"] > 50
    assert res["warnings"]["sigmoid + N(0,1)"] and res["warnings"]["relu + N(0,1)"]
    assert not res["warnings"]["relu + He"] and not res["warnings"]["sigmoid + Glorot"]
    assert rows[("relu", "He")]["final val acc"] > 0.6 > rows[("relu", "N(0,1)")]["final val acc"]


def test_depth_explodes_collapses_or_keeps_the_scale(runs):
    res, text = runs("depth")
    check_outputs(res, text, 2, ["activation std per layer"])
    std = res["std"]
    rows = {(r["activation"], r["init"]): r for r in res["rows"]}
    assert not np.isfinite(std["identity/N(0,1)"][-1]) and not np.isfinite(std["relu/N(0,1)"][-1])  # overflow
    for act in ("identity", "tanh", "relu"):
        assert std[f"{act}/N(0,1)·0.01"][-1] == 0.0  # collapses to exactly zero
    he = std["relu/He"]
    assert np.all((he > 0.25 * he[0]) & (he < 4 * he[0]))  # He keeps ReLU's scale over 100 layers
    glorot = std["identity/Glorot"]
    assert np.all((glorot > 0.25) & (glorot < 4))
    assert std["relu/Glorot"][-1] < 1e-10 * std["relu/Glorot"][0]  # variance halves per layer
    assert rows[("tanh", "N(0,1)")]["saturated L100"] > 0.5
    for act in ("identity", "relu"):
        for init in ("N(0,1)", "N(0,1)·0.01", "Glorot", "He"):
            r = rows[(act, init)]
            assert r["gain measured"] == pytest.approx(r["gain theory"], rel=0.03), (act, init)


def test_vanishing_gradients_shrink_by_the_predicted_factor(runs):
    res, text = runs("vanishing")
    check_outputs(res, text, 5, ["per-layer ratio of weight-gradient norms"])
    sig, relu = res["ratios"]
    assert sig["measured / r"] == pytest.approx(1.0, abs=0.3)
    assert 0.5 < relu["ratio measured"] < 2.0
    assert sig["‖dW1‖/‖dW8‖"] < 1e-6 and 0.1 < relu["‖dW1‖/‖dW8‖"] < 10
    acts = res["activations"]["sigmoid + N(0, 0.01²)"]
    assert all(abs(r["act_mean"] - 0.5) < 0.01 for r in acts) and acts[-1]["act_var"] < 1e-3
    assert sig["final val acc"] < 0.3 < relu["final val acc"]
    assert len(res["watch"]["ReLU + He"]) >= 2


def test_snn_selu_keeps_mean_0_and_variance_1(runs):
    res, text = runs("snn")
    check_outputs(res, text, 3, ["SELU + lecun_normal on MNIST, layer by layer"])
    st = {r["network"]: r for r in res["stats"]}
    selu = st["SELU + lecun_normal"]
    # the stated band: over all 20 hidden layers |mean| < 0.1 and 0.8 < std < 1.2
    for data in ("MNIST", "Boston"):
        assert selu[f"{data} max|mean|"] < 0.1
        assert 0.8 < selu[f"{data} std min"] <= selu[f"{data} std max"] < 1.2
        assert st["ReLU + He"][f"{data} max|mean|"] > 0.3  # ReLU outputs are not centred
    assert res["warnings"]["SELU + lecun_normal"] == []
    # gradients: SELU keeps their norm per layer; BatchNorm (no skips) makes ReLU's grow by √(π/(π−1))
    assert 0.9 < selu["grad growth/layer"] < 1.1
    bn = st["ReLU + He + BN"]
    assert bn["grad growth/layer"] == pytest.approx(math.sqrt(math.pi / (math.pi - 1)), abs=0.08)
    for r in res["training"]:
        assert r["MNIST best val acc"] > 0.1 and math.isfinite(r["Boston best val RMSE ($1000s)"])
        assert 1 <= r["MNIST best epoch"] and 1 <= r["Boston best epoch"]


def test_batchnorm_allows_larger_learning_rates(runs):
    res, text = runs("batchnorm")
    check_outputs(res, text, 2, ["final validation accuracy"])
    last = {r["batchnorm"]: r for r in res["rows"] if r["lr"] == res["lrs"][-1]}
    assert last["none"]["diverged"]
    assert not last["before"]["diverged"] and not last["after"]["diverged"]
    assert last["before"]["final val acc"] > 0.6 and last["after"]["final val acc"] > 0.6


def test_optimizers_landscapes_match_theory(runs):
    res, text = runs("optimizers")
    check_outputs(res, text, 3, ["narrow valley", "saddle"])
    assert res["sgd_closed_form_error"] < 1e-12
    assert res["momentum_rate"] == pytest.approx(res["momentum_rate_theory"], abs=0.01)
    sgd = next(r for r in res["saddle"] if r["optimizer"] == "SGD")
    steps = sgd["steps to |w2| > 0.1"]
    assert abs(steps - sgd["theory (SGD)"]) <= 2
    for name in ("Adagrad", "RMSprop", "Adam", "Nadam"):
        assert 0 < res["escape"][name] <= 5 and res["escape"][name] * 10 < steps
    for r in res["saddle"]:
        assert r[f"f after {120}"] == pytest.approx(-0.25, abs=1e-3)  # all end in a minimum
    valley = {r["optimizer"]: r for r in res["valley"]}
    assert valley["SGD"]["steps to f < 1e-3"] == -1 and valley["Adam"]["steps to f < 1e-3"] > 0
    assert 0 < valley["Momentum"]["steps to f < 1e-3"] and valley["Momentum"]["f after 150"] < 1e-3
    for r in res["mnist"]:
        assert r["final val acc"] > 0.5, r


def _plateau_lrs(val_loss, lr0, factor, patience, threshold=1e-4):
    """PyTorch's ReduceLROnPlateau (mode min, rel threshold, no cooldown), written out here."""
    lrs, lr, best, bad = [], lr0, math.inf, 0
    for v in val_loss:
        lrs.append(lr)
        if v < best * (1 - threshold):
            best, bad = v, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
    return lrs


def test_annealing_learning_rates_follow_their_rules(runs):
    res, text = runs("annealing")
    check_outputs(res, text, 1, ["learning rate per epoch"])
    h = res["histories"]
    lr0, s, g = res["lr0"], res["step_size"], res["gamma"]
    const, step, plateau = h.values()
    assert const["lr"] == [lr0] * len(const["lr"])
    assert step["lr"] == pytest.approx([lr0 * g ** (e // s) for e in range(len(step["lr"]))], rel=1e-12)
    assert plateau["lr"] == pytest.approx(_plateau_lrs(plateau["val_loss"], lr0, g, res["patience"]), rel=1e-12)
    rows = {r["schedule"].split()[0]: r for r in res["rows"]}
    assert rows["step"]["lr changes"] == (len(step["lr"]) - 1) // s
    for name in ("step", "plateau"):  # lowering the rate lets the iterates settle lower
        assert rows[name]["final train loss"] < rows["constant"]["final train loss"]
        assert rows[name]["final val acc"] > 0.8


def test_cli_without_matplotlib_is_one_line_exit_2(monkeypatch, capsys):
    import importlib.util

    from initcore import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert cli.main(["experiment", "depth", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "initcore[plot]" in err
