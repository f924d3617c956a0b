"""initcore.sweep on the local engine: the search space, a small real sweep (2 configs × 2 seeds ×
2 epochs on a slice of the embedded MNIST subset) whose records, summary and ranking are checked
against the trials rerun in this process, error isolation, the command line, its files, and
Ctrl-C leaving the finished trials on disk."""

import csv
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from initcore import cli, sweep
from initcore import data as D


def small_data():
    """600 training and 200 validation digits of the embedded subset (stratified)."""
    x, y = D.load_mnist_subset()
    x, _, y, _ = D.train_test_split(x, y, test_size=4200, seed=3, stratify=y)
    x, xv, y, yv = D.train_test_split(x, y, test_size=200, seed=4, stratify=y)
    return x, y, xv, yv


SMALL = {"layers": [32], "batch_size": 64, "dropout": 0.0}
SPACE = {"activation": ["relu", "tanh"], **SMALL}


@pytest.fixture(scope="module")
def small_sweep():
    data = small_data()
    return data, sweep.run(SPACE, data, seeds=[0, 1], epochs=2, n_jobs=2, progress=False)


# --- the space ------------------------------------------------------------------------------------


def test_space_grid_order_and_fixed_values():
    s = sweep.Space(grid={"init": ["he_normal", "glorot_uniform"], "activation": ["relu", "tanh"], "layers": [64]})
    cfgs = s.configs()
    assert len(s) == 4 and len(cfgs) == 4
    assert [(c["init"], c["activation"]) for c in cfgs] == [
        ("he_normal", "relu"),
        ("he_normal", "tanh"),
        ("glorot_uniform", "relu"),
        ("glorot_uniform", "tanh"),
    ]
    assert all(c["layers"] == [64] for c in cfgs)  # a flat int list under "layers" is one value
    assert sweep.Space(grid={"layers": [[64], [32, 32]]}).configs() == [{"layers": [64]}, {"layers": [32, 32]}]
    assert s.names == ["init", "activation", "layers"] and s.swept == ["init", "activation"]


def test_space_random_draws_are_seeded_and_shared_by_grid_points():
    s = sweep.Space(
        grid={"init": ["he_normal", "glorot_uniform"]}, random={"lr": sweep.loguniform(1e-4, 1e-1)}, n_random=3
    )
    cfgs = s.configs()
    assert len(cfgs) == 6 and cfgs == s.configs()  # the same space gives the same configs
    lrs = [c["lr"] for c in cfgs]
    assert lrs[0] == lrs[1] and lrs[2] == lrs[3] and lrs[4] == lrs[5]  # one draw per pair of grid points
    assert len(set(lrs)) == 3 and all(1e-4 <= v < 1e-1 for v in lrs)
    other = sweep.Space(grid={"init": ["he_normal"]}, random={"lr": sweep.loguniform(1e-4, 1e-1)}, n_random=3, seed=1)
    assert [c["lr"] for c in other.configs()] != lrs[::2]
    rng = np.random.default_rng(0)
    assert sweep.choice(["a", "b"]).sample(rng) in ("a", "b") and 2 <= sweep.randint(2, 5).sample(rng) < 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid": {"lr": [0.1]}, "random": {"lr": sweep.uniform(0, 1)}}, "both in grid and in random"),
        ({"grid": {"lr": []}}, "has no values"),
        ({"random": {"lr": 0.1}}, "must be a Distribution or a list"),
        ({"grid": {"lr": [0.1]}, "n_random": 3}, "needs at least one random option"),
        ({"grid": {"lr": [0.1]}, "n_random": 0}, "n_random must be a positive int"),
    ],
)
def test_space_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sweep.Space(**kwargs)
    with pytest.raises(ValueError, match="low < high"):
        sweep.loguniform(1e-1, 1e-4)


def test_parse_seeds():
    from initcore.sweep._space import parse_seeds

    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds(range(2, 4)) == [2, 3]
    for bad in ("4-1", "x", 0, [1, 1], []):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_run_rejects_bad_options_before_starting():
    data = small_data()
    with pytest.raises(ValueError, match="'lrate' is not an initcore train option"):
        sweep.run({"lrate": [0.1]}, data, seeds=1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="option activation='swish'"):
        sweep.run({"activation": ["relu", "swish"]}, data, seeds=1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="scheduler='asha' needs engine='ray'"):
        sweep.run({"activation": ["relu"]}, data, seeds=1, epochs=1, scheduler="asha", progress=False)
    with pytest.raises(TypeError, match="cannot be pickled"):
        sweep.run({"activation": ["relu"]}, data, seeds=1, epochs=1, trial=lambda c, s, d: {}, progress=False)
    with pytest.raises(ValueError, match="metric 'val_acc' is not one the trials report"):
        sweep.run({"activation": ["relu"]}, data, seeds=1, epochs=1, metric="val_acc", progress=False)
    with pytest.raises(ValueError, match="ray_address='local' needs engine='ray'"):
        sweep.run({"activation": ["relu"]}, data, seeds=1, epochs=1, ray_address="local", progress=False)
    with pytest.raises(ValueError, match="data y has shape"):
        sweep.run({"activation": ["relu"]}, (data[0], data[1][:10]), seeds=1, epochs=1, progress=False)


# --- a real sweep ---------------------------------------------------------------------------------


def test_records_are_the_trials_rerun_here(small_sweep):
    data, result = small_sweep
    assert [(t.index, t.config["activation"], t.seed) for t in result.trials] == [
        (0, "relu", 0),
        (1, "relu", 1),
        (2, "tanh", 0),
        (3, "tanh", 1),
    ]
    ds = sweep.resolve_data(data)
    for t in result.trials:
        assert t.ok, t.error
        assert t.config == {**SMALL, "activation": t.config["activation"]}
        assert set(t.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert t.epochs == 2 and all(len(v) == 2 for v in t.metrics.values())
        assert t.seconds > 0 and not t.stopped_early
        # The worker's result is bit-identical to the same trial run in this process: it depends
        # only on (config, seed), not on the process, the worker or the other trials.
        assert t.metrics == sweep.train_trial({**t.config, "epochs": 2}, t.seed, ds)
        assert t.final == {k: v[-1] for k, v in t.metrics.items()}
        assert t.best["val_accuracy"] == max(t.metrics["val_accuracy"])
        assert t.best["val_loss"] == min(t.metrics["val_loss"])
        assert 0.3 < t.final["val_accuracy"] <= 1.0  # 2 epochs of 784-32-10 on 600 digits (chance 0.1)
    # seeds matter: the two seeds of a config train differently
    assert result.trials[0].metrics["loss"] != result.trials[1].metrics["loss"]


def test_summary_means_stds_and_ranking(small_sweep):
    _, result = small_sweep
    table = result.summary()
    assert len(table) == 2
    by_act = {r["activation"]: r for r in table}
    for act, row in by_act.items():
        vals = [t.final["val_accuracy"] for t in result.trials if t.config["activation"] == act]
        assert row["n_seeds"] == 2 and row["n_errors"] == 0
        assert row["final_val_accuracy_mean"] == pytest.approx(np.mean(vals), abs=1e-15)
        assert row["final_val_accuracy_std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-15)
        best = [t.best["val_loss"] for t in result.trials if t.config["activation"] == act]
        assert row["best_val_loss_mean"] == pytest.approx(np.mean(best), abs=1e-15)
    means = [r["final_val_accuracy_mean"] for r in table]
    assert means == sorted(means, reverse=True) and [r["rank"] for r in table] == [1, 2]
    low = result.summary(metric="val_loss")  # mode follows the metric: losses rank ascending
    assert [r["final_val_loss_mean"] for r in low] == sorted(r["final_val_loss_mean"] for r in low)
    text = str(result.summary_table())
    assert "final val_accuracy" in text and "±" in text
    (cfg, mean, std, n), _ = result.curves()
    assert mean.shape == (2,) and list(n) == [2, 2]
    vals = np.array([t.metrics["val_accuracy"] for t in result.trials if t.config == cfg])
    np.testing.assert_allclose(mean, vals.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(std, vals.std(axis=0, ddof=1), rtol=0, atol=1e-15)


def test_write_files(small_sweep, tmp_path):
    _, result = small_sweep
    files = result.write(tmp_path)
    assert files["skipped"] == []
    for name in ("trials.csv", "epochs.csv", "summary.csv", "summary.md", "curves.png", "final.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["activation", "layers", "batch_size", "dropout", "seed"]
    assert "final_val_accuracy" in rows[0] and "best_loss" in rows[0] and "seconds" in rows[0]
    for row, t in zip(rows, result.trials):
        assert float(row["final_val_accuracy"]) == t.final["val_accuracy"]  # written with repr: exact
        assert int(row["seed"]) == t.seed and row["error"] == ""
    with open(tmp_path / "epochs.csv") as f:
        assert len(list(csv.DictReader(f))) == 4 * 2
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "trials.csv").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_write_without_matplotlib_says_which_figures_it_skipped(small_sweep, tmp_path, monkeypatch):
    _, result = small_sweep
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    files = result.write(tmp_path)
    assert files["skipped"] == [
        ("curves.png", "matplotlib is not installed"),
        ("final.png", "matplotlib is not installed"),
    ]
    assert sorted(os.listdir(tmp_path)) == ["epochs.csv", "summary.csv", "summary.md", "trials.csv"]
    assert "![" not in (tmp_path / "summary.md").read_text()


# --- other data sources ---------------------------------------------------------------------------


def test_boston_is_a_regression_sweep_ranked_by_val_loss():
    result = sweep.run(
        {"lr": [1e-2, 1e-3], "layers": [16], "dropout": 0.0}, "boston", seeds=1, epochs=3, progress=False
    )
    assert (result.metric, result.mode) == ("val_loss", "min")
    ds = sweep.resolve_data("boston")
    assert ds.task == "regression" and (ds.x.shape, ds.x_val.shape) == ((404, 13), (102, 13))
    for t in result.trials:
        assert t.ok, t.error
        assert set(t.metrics) == {"loss", "val_loss"} and all(np.isfinite(t.metrics["val_loss"]))
        assert t.metrics == sweep.train_trial({**t.config, "epochs": 3}, t.seed, ds)
    table = result.summary()
    assert table[0]["final_val_loss_mean"] <= table[1]["final_val_loss_mean"]


def test_idx_folder_and_array_data(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        D.save_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        D.save_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    ds = sweep.resolve_data(str(tmp_path))
    assert (ds.x.shape, ds.x_val.shape) == ((120, 784), (40, 784))  # the test files validate
    x, y, xv, yv = ds  # a 4-tuple
    pair = sweep.resolve_data((x, y))  # 20% held out, stratified, seed 0: the same split every time
    assert (pair.x.shape[0], pair.x_val.shape[0]) == (96, 24)
    np.testing.assert_array_equal(pair.x_val, sweep.resolve_data((x, y)).x_val)
    with pytest.raises(ValueError, match="'nowhere' is none"):
        sweep.resolve_data("nowhere")
    with pytest.raises(ValueError, match="validation x has 783 features, training x has 784"):
        sweep.resolve_data((x, y, xv[:, :-1], yv))


# --- error isolation ------------------------------------------------------------------------------


def flaky_trial(config, seed, data):
    """A custom trial (module level, so the workers can import it) that raises for one arm."""
    if config["arm"] == "bad" and seed == 1:
        raise RuntimeError(f"boom at seed {seed}")
    base = {"good": 0.8, "bad": 0.5, "ok": 0.6}[config["arm"]]
    return {"val_accuracy": [base - 0.1, base + 0.01 * seed], "loss": [1.0, 0.5], "n_rows": [len(data.x)] * 2}


def test_a_raising_trial_is_recorded_and_the_sweep_goes_on():
    data = small_data()
    result = sweep.run({"arm": ["bad", "good", "ok"]}, data, seeds=[0, 1], epochs=2, trial=flaky_trial, progress=False)
    assert len(result.trials) == 6
    (failed,) = result.errors
    assert (failed.config, failed.seed) == ({"arm": "bad"}, 1)
    assert "RuntimeError: boom at seed 1" in failed.error and "Traceback" in failed.error
    assert failed.metrics == {} and failed.row()["error"] == "RuntimeError: boom at seed 1"
    assert all(t.ok for t in result.trials if t is not failed)
    assert result.trials[2].metrics["n_rows"] == [len(data[0])] * 2  # the data reached the worker
    table = result.summary()
    assert [r["arm"] for r in table] == ["good", "ok", "bad"]
    bad = table[2]
    assert (bad["n_seeds"], bad["n_errors"]) == (1, 1) and math.isnan(bad["final_val_accuracy_std"])
    assert "errors" in str(result.summary_table())


def crashing_trial(config, seed, data):
    """Kills its worker process for one arm, as a crash in native code would."""
    if config["arm"] == "crash":
        os._exit(3)
    return {"val_accuracy": [0.5 + 0.1 * seed]}


def test_a_trial_that_kills_its_worker_is_found_and_the_sweep_goes_on():
    result = sweep.run(
        {"arm": ["a", "crash", "b"]},
        small_data(),
        seeds=[0, 1],
        epochs=1,
        trial=crashing_trial,
        n_jobs=2,
        progress=False,
    )
    assert len(result.trials) == 6
    assert [(t.config["arm"], t.seed) for t in result.errors] == [("crash", 0), ("crash", 1)]
    assert all("WorkerDied" in t.error for t in result.errors)
    assert [t.metrics for t in result.trials if t.ok] == [{"val_accuracy": [0.5 + 0.1 * s]} for s in (0, 1, 0, 1)]


# --- the command line -----------------------------------------------------------------------------

CLI_SMALL = ["--param", "layers=16", "--param", "batch-size=128", "--param", "dropout=0"]


def test_cli_sweep_prints_ranked_table_and_writes_files(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "--param", "init=he_normal,glorot_uniform", *CLI_SMALL, "--seeds", "0-1", "--epochs", "1"]
    rc = cli.main(argv + ["--out", str(out)])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    assert stdout.splitlines()[0] == ("sweep: 2 configs × 2 seeds = 4 trials of 1 epoch on mnist, engine local")
    assert "ranked by final val_accuracy (max), mean ± std over seeds 0,1" in stdout
    table = [line.split() for line in stdout.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert len(table) == 2 and {"he_normal", "glorot_uniform"} == {cells[1] for cells in table}
    assert "layers" not in stdout  # options fixed for every trial are in trials.csv, not the table
    assert "sweep" in err  # the progress bar (stderr)
    for name in ("trials.csv", "epochs.csv", "summary.csv", "summary.md", "curves.png", "final.png"):
        assert (out / name).exists(), name
    md = (out / "summary.md").read_text()
    assert (
        "`initcore sweep --param init=he_normal,glorot_uniform --param layers=16" in md
        and "![curves.png](curves.png)" in md
    )
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["rank"]) for r in rows] == [1, 2]
    assert float(rows[0]["final_val_accuracy_mean"]) >= float(rows[1]["final_val_accuracy_mean"])


def test_cli_random_options_and_layer_choices(tmp_path, capsys):
    argv = ["sweep", "--random", "lr=loguniform:1e-4:1e-2", "--n-random", "2", "--param", "layers=16/8,8"]
    argv += ["--param", "dropout=0", "--param", "batch_size=128", "--seeds", "1", "--epochs", "1", "--quiet"]
    rc = cli.main(argv + ["--out", str(tmp_path)])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    assert stdout.startswith("sweep: 4 configs × 1 seeds = 4 trials")
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["layers"] for r in rows] == ["16", "8,8", "16", "8,8"]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == lrs[1] != lrs[2] == lrs[3] and all(1e-4 <= v < 1e-2 for v in lrs)
    md = (tmp_path / "summary.md").read_text()
    assert "--param layers=16/8,8" in md and "--random lr=loguniform:1e-4:1e-2 --n-random 2" in md


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--param", "lrate=0.1"], "'lrate' is not an initcore train option"),
        (["--param", "lr=abc"], "lr='abc'"),
        (["--param", "activation"], "expected NAME=V1,V2"),
        (["--random", "lr=normal:0:1"], "unknown distribution 'normal'"),
        (["--seeds", "5-2"], "seeds"),
        (["--scheduler", "asha"], "--scheduler asha needs --ray"),
        (["--param", "lr=0.1", "--param", "lr=0.2"], "option lr is given more than once"),
    ],
)
def test_cli_sweep_bad_arguments(extra, message, capsys, tmp_path):
    rc = cli.main(["sweep", *extra, "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()  # nothing written on error


def interrupt_cli_sweep(out, *engine_args):
    """Runs a 20-trial ``initcore sweep`` in a subprocess, sends SIGINT once two trials are in
    ``trials.csv``, and checks that it stops with status 130 leaving the finished trials."""
    argv = [sys.executable, "-m", "initcore", "sweep", "--param", "activation=relu,tanh,sigmoid,elu", *CLI_SMALL]
    argv += ["--seeds", "0-4", "--epochs", "2", *engine_args, "--quiet", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        rows = []
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "trials.csv").exists():
                with open(out / "trials.csv") as f:
                    rows = list(csv.DictReader(f))
                if len(rows) >= 2:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, f"the sweep ended before it was interrupted: {proc.communicate()}"
        assert len(rows) >= 2, "no trial finished in time"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted; the finished trials are in" in err
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert 2 <= len(rows) < 20  # the finished trials, not the whole sweep
    for r in rows:
        assert r["error"] == "" and 0 < float(r["final_val_accuracy"]) <= 1 and int(r["epochs"]) == 2
        assert r["stopped_early"] == "False"  # interrupted trials are not passed off as finished ones
    assert (out / "summary.md").read_text().count("(interrupted)") == 1


def test_cli_ctrl_c_leaves_finished_trials_on_disk(tmp_path):
    interrupt_cli_sweep(tmp_path / "sw", "--jobs", "1")
