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
    assert list(E.EXPERIMENTS) == [
        "init-compare",
        "depth",
        "vanishing",
        "snn",
        "batchnorm",
        "optimizers",
        "annealing",
        "standardization",
        "lsuv",
        "activations",
    ]
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
    check_outputs(res, text, 6, ["per-layer ratio of weight-gradient norms", "levels off"])
    sig, tanh, relu = res["ratios"]
    assert sig["measured / r"] == pytest.approx(1.0, abs=0.3)
    assert 0.5 < relu["ratio measured"] < 2.0
    assert sig["‖dW1‖/‖dW8‖"] < 1e-6 and 0.1 < relu["‖dW1‖/‖dW8‖"] < 10
    acts = res["activations"]["sigmoid + N(0, 0.01²)"]
    assert all(abs(r["act_mean"] - 0.5) < 0.01 for r in acts) and acts[-1]["act_var"] < 1e-3
    # sigmoid's variance levels off at n·σ²/64 (it does not collapse); tanh's collapses
    from initcore.experiments.vanishing import sigmoid_floor

    width = res["width"]
    rel_se = math.sqrt(2.0 / (width * 7))  # mean over layers 2..8, independent draws
    assert res["sigmoid_floor"] == pytest.approx(sigmoid_floor(width), rel=3 * rel_se)
    assert acts[-1]["act_var"] > 0.5 * sigmoid_floor(width)  # layer 8 has not collapsed
    tanh_acts = res["activations"]["tanh + N(0, 0.01²)"]
    assert tanh_acts[-1]["act_var"] < 1e-8 and tanh["measured / r"] == pytest.approx(1.0, abs=0.3)
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
    assert valley["SGD"]["steps to f < 1e-3"] == "never" and valley["Adam"]["steps to f < 1e-3"] > 0
    assert 0 < valley["Momentum"]["steps to f < 1e-3"] and valley["Momentum"]["f after 150"] < 1e-3
    for r in res["mnist"]:
        assert r["final val acc"] > 0.5, r
    # effective learning rates under g = 1 against their closed forms (Adagrad η/√t, RMSprop → η)
    for name, err in res["effective_error"].items():
        assert err < 1e-6, (name, err)
    eff = {r["optimizer"]: r for r in res["effective"]}
    assert eff["Adagrad"]["step 10000"] == pytest.approx(0.01 / 100, rel=1e-6)
    assert eff["RMSprop"]["step 10000"] == pytest.approx(0.01, rel=1e-6)


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


def test_cli_without_matplotlib_prints_numbers_and_names_skipped_figures(monkeypatch, capsys, tmp_path):
    import importlib.util

    from initcore import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    out_dir = tmp_path / "depth"
    assert cli.main(["experiment", "depth", "--quick", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "matplotlib is not installed" in out and "activation std per layer" in out  # the numbers are printed
    assert "skipped 2 figures (no matplotlib): std_vs_depth.png, histograms.png" in out
    assert not list(out_dir.glob("*.png"))
    assert "Figures skipped (matplotlib is not installed): std_vs_depth.png, histograms.png" in (
        out_dir / "summary.md"
    ).read_text(encoding="utf-8")


def test_annealing_compares_with_the_best_constant_rate(runs):
    res, text = runs("annealing")
    arms = [r["arm"] for r in res["arms"]]
    assert "constant 0.01" in arms[0] and any("(best constant)" in a for a in arms)
    best = next(r for r in res["arms"] if "(best constant)" in r["arm"])
    assert best["best val_accuracy"] == max(
        r["best val_accuracy"] for r in res["arms"] if r["arm"].startswith("constant")
    )
    assert "Against the best constant rate" in text


def test_snn_compares_each_network_at_its_best_learning_rate(runs):
    res, text = runs("snn")
    assert "MNIST learning-rate sweep" in text
    for row in res["lr_sweep"]:
        accs = {k: v for k, v in row.items() if k.startswith("lr ")}
        assert accs[f"lr {row['best lr']:g}"] == max(accs.values())
    for r in res["training"]:
        assert r["MNIST best lr"] == res["best_lr"][r["network"]]


def test_standardization_first_layer_follows_n_E_x2_not_n_var_x(runs):
    res, text = runs("standardization")
    check_outputs(res, text, 2, ["n·E[x²]·Var(w)", "best validation accuracy by input scaling"])
    rows = {r["input"]: r for r in res["first_layer"]}
    raw = rows["[0, 1]"]
    # the numbers on raw [0, 1] MNIST: n·Var(x) = 74, n·E[x²] = 88, measured 88
    assert raw["n·Var(x)·Var(w) (textbook)"] == pytest.approx(784 * raw["Var(x)"]) == pytest.approx(74, abs=2)
    assert raw["n·E[x²]·Var(w) (full)"] == pytest.approx(784 * raw["E[x²]"]) == pytest.approx(88, abs=2)
    assert raw["E[x²]"] == pytest.approx(raw["Var(x)"] + raw["mean pixel"] ** 2, rel=1e-9)
    for r in res["first_layer"]:  # the full formula within 3 standard errors for every scaling
        assert abs(r["full off by (SE)"]) < 3, r
    assert raw["textbook off by (SE)"] > 5 and abs(rows["centred"]["textbook off by (SE)"]) < 3
    assert rows["raw 0-255"]["measured Var(z)"] == pytest.approx(255**2 * raw["measured Var(z)"], rel=1e-6)
    assert "n·E[x²]·Var(w) = 784 ×" in text  # both formulas printed
    by_act = {r["activation"]: r for r in res["rows"]}
    assert by_act["relu"]["per-feature"] > 0.6 and by_act["tanh"]["per-feature"] > 0.6


def test_scaling_uses_training_statistics_only():
    from initcore.experiments.standardization import scale

    rng = np.random.default_rng(0)
    xtr, xte = rng.random((50, 6)), rng.random((20, 6)) + 5.0
    a, b = scale("per-feature", xtr, xte)
    assert np.allclose(a.mean(axis=0), 0, atol=1e-6) and np.allclose(a.std(axis=0), 1, atol=1e-5)
    assert np.allclose(b, (xte - xtr.mean(axis=0)) / xtr.std(axis=0), atol=1e-5)  # not the test split's own
    c, _ = scale("per-channel", xtr, xte)
    assert abs(float(c.mean())) < 1e-6 and float(c.std()) == pytest.approx(1.0, abs=1e-5)


def test_lsuv_unit_variance_and_orthogonal_norms(runs):
    res, text = runs("lsuv")
    check_outputs(res, text, 2, ["LSUV targets 1 within 0.1"])
    first = {(r["activation"], r["init"]): r for r in res["first_pass"]}
    for act in ("relu", "tanh"):
        assert first[(act, "LSUV")]["max |var − 1|"] < 0.1  # LSUV's own stopping rule
    assert first[("relu", "He")]["gain/layer"] == pytest.approx(1.0, abs=0.05)
    for init in ("Glorot", "orthogonal"):  # σ_w² = 1/n with ReLU: std × 1/√2 per layer
        assert first[("relu", init)]["gain/layer"] == pytest.approx(1 / math.sqrt(2), abs=0.05)
    assert res["linear_norm_error"] < 1e-4  # orthogonal square layers keep every sample's norm
    assert {r["arm"] for r in res["training"]} == {f"{a} + {i}" for a in ("relu", "tanh") for i in first_inits()}


def first_inits():
    from initcore.experiments.lsuv_exp import INITS

    return INITS


def test_activations_dead_fractions_and_parameters(runs):
    res, text = runs("activations")
    check_outputs(res, text, 3, ["dead: ReLU-like units"])
    rows = [r for r in res["rows"] if r["lr"] == min(res["lrs"])]
    by = {r["activation"]: r for r in rows}
    assert set(by) == {"sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "maxout"}
    for act in ("leaky_relu", "prelu", "elu", "maxout"):  # a slope or a max of two lines: never zero everywhere
        assert by[act]["dead at start"] == 0 and (by[act]["dead at end"] in (0, None))
    assert by["sigmoid"]["dead at start"] is None and by["relu"]["saturated at start"] is None
    assert by["sigmoid"]["saturated at start"] < 0.05  # Glorot keeps sigmoid out of saturation
    w = 128  # quick width
    assert res["params"]["maxout"] - res["params"]["relu"] == 784 * w + w + w * w + w  # twice the hidden Dense units
    assert all(r["s/epoch"] > 0 for r in rows) and by["relu"]["best val acc"] > 0.5


def fake_trial(config, seed, data):
    (x, y), (xv, yv) = data  # the seam hands the trial (train, test)
    assert x.shape == (8, 3) and xv.shape == (4, 3)
    return {"val_accuracy": [0.1 * seed, 0.2 * seed + config["k"]], "seconds": [1.0, 1.0]}


def failing_trial(config, seed, data):
    raise RuntimeError("nope")


TINY = ((np.zeros((8, 3), np.float32), np.arange(8) % 2), (np.zeros((4, 3), np.float32), np.arange(4) % 2))


def test_seeds_go_through_one_seam_with_mean_and_std(monkeypatch):
    from initcore import sweep
    from initcore.experiments import _common as C

    calls = []
    real = sweep.run
    monkeypatch.setattr(sweep, "run", lambda *a, **k: calls.append(k) or real(*a, **k))
    t = C.run_trials({"a": {"k": 0.0}, "b": {"k": 1.0}}, TINY, seeds=C.seed_list(3, 3), trial=fake_trial)
    assert len(calls) == 1 and calls[0]["seeds"] == [3, 4, 5]  # through initcore.sweep
    assert [(r["arm"], r["seed"]) for r in t] == [(a, s) for a in "ab" for s in (3, 4, 5)]
    rows = {r["arm"]: r for r in t.summary()}
    finals = np.array([0.6, 0.8, 1.0])
    assert rows["a"]["final val_accuracy"] == pytest.approx(finals.mean())
    assert rows["a"]["± std"] == pytest.approx(finals.std())
    assert rows["b"]["best val_accuracy"] == pytest.approx((finals + 1).mean()) and rows["b"]["best epoch"] == 2
    with pytest.raises(ValueError, match="--seeds must be a positive int"):
        C.seed_list(0, 0)

    t = C.run_trials({"x": {}}, TINY, seeds=[0], trial=failing_trial)
    assert t[0]["error"] == "RuntimeError: nope" and math.isnan(t[0]["final"])


def test_experiment_over_two_seeds(tmp_path):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        res = E.run("activations", str(tmp_path), quick=True, seeds=2, lrs=(0.01,), verbose=True)
    t = res["trials"]
    assert len(t) == 2 * 8 and {r["seed"] for r in t} == {0, 1}
    assert all(r["± std"] is not None for r in res["rows"]) and "mean over 2 seed(s)" in buf.getvalue()


def test_cli_options_data_seeds_lrs(tmp_path, capsys):
    from initcore import cli
    from initcore import data as D

    (xtr, ytr), (xte, yte) = D.load_mnist_subset(split=True, test_size=300, seed=1)
    d = tmp_path / "idx"
    d.mkdir()
    for prefix, x, y in (("train", xtr[:600], ytr[:600]), ("t10k", xte, yte)):
        D.save_idx(d / f"{prefix}-images-idx3-ubyte", (x.reshape(-1, 28, 28) * 255).round().astype(np.uint8))
        D.save_idx(d / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8))
    out = tmp_path / "lsuv"
    args = ["experiment", "lsuv", "--quick", "--data", str(d), "--out", str(out), "--inits", "He,LSUV", "--lrs", "0.02"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "relu + LSUV" in text and "relu + Glorot" not in text and "lr 0.02" in text
    assert cli.main(["experiment", "depth", "--quick", "--lrs", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "experiment depth does not take --lrs" in err
    assert cli.main(["experiment", "lsuv", "--data", str(tmp_path / "missing")]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli.main(["experiment", "lsuv", "--report", str(tmp_path / "r.html")]) == 2
    assert "--report needs NAME = all" in capsys.readouterr().err


def _browser():
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_report_renders_in_headless_chromium_with_every_figure(runs, tmp_path):
    """The page of every experiment (quick) in a real browser: every <img> decoded."""
    import re
    import subprocess

    from initcore.experiments import report

    results = {name: runs(name)[0] for name in E.EXPERIMENTS}
    path = tmp_path / "report.html"
    report.write(results, str(path))
    page = path.read_text(encoding="utf-8")
    n_fig = sum(len(r["figures"]) for r in results.values())
    assert page.count("<img ") == n_fig and "src='data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained
    v = report.verdicts(results)
    assert len(v) == 12 and all(x["verdict"] in ("reproduced", "contradicted", "not covered") for x in v)
    assert all(x["reason"] for x in v if x["verdict"] != "reproduced")
    assert all(x["verdict"] != "not covered" for x in v), [x for x in v if x["verdict"] == "not covered"]
    for x in v:
        assert html_escape(x["claim"]) in page and x["verdict"] in page
    browser = _browser()
    if browser is None:
        pytest.fail("no chromium: install Debian's chromium package (.ci/run does)")
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=10000",
        "--dump-dom",
        path.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-figures="loaded (\d+)/(\d+)"', dom)
    assert m, dom[-2000:]
    assert int(m.group(1)) == int(m.group(2)) == n_fig  # every figure decoded (naturalWidth > 0)


def html_escape(s):
    import html

    return html.escape(s)


def test_depth_and_batchnorm_take_seeds_and_their_swept_lists(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        res = E.run("depth", str(tmp_path / "d"), quick=True, seeds=2, inits=("Glorot", "He"))
        bn = E.run("batchnorm", str(tmp_path / "b"), quick=True, seeds=2, lrs=(3.0,))
    rows = {(r["activation"], r["init"]): r for r in res["rows"]}
    assert {i for _, i in rows} == {"Glorot", "He"} and all(r["± std"] is not None for r in rows.values())
    assert rows[("relu", "He")]["gain measured"] == pytest.approx(1.0, abs=0.03)  # mean over two weight draws
    assert rows[("identity", "Glorot")]["gain measured"] == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ValueError, match="depth: --inits takes"):
        E.run("depth", str(tmp_path / "x"), quick=True, inits=("bogus",), verbose=False)
    assert len(bn["trials"]) == 3 * 2 and {t["seed"] for t in bn["trials"]} == {0, 1}
    last = {r["batchnorm"]: r for r in bn["rows"]}
    assert last["none"]["diverged"] and not last["before"]["diverged"]  # BatchNorm trains at lr 3, none does not
