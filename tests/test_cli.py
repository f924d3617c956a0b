"""The command line: a small ``initcore train`` run on both backends, ``--data`` with IDX files
written here, ``--save``, every kind of bad argument (exit 2, one line on stderr, no
traceback), lazy subcommand loading and ``python -m initcore``."""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from initcore import cli
from initcore import data as D

SMALL = ["train", "--epochs", "1", "--layers", "32", "--batch-size", "128", "--test-size", "500"]


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_train_one_epoch(capsys, backend):
    rc, out, err = run(SMALL + ["--backend", backend], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("data: embedded MNIST subset (4500 train / 500 test, stratified)")
    assert lines[1].startswith("model: 784-32-10 relu, init he_normal, batchnorm none, dropout 0.2, 25,450 parameters")
    assert any(line.startswith("epoch 1/1  loss ") for line in lines)  # one line per epoch off a terminal
    final = lines[-1]
    assert final.startswith("test accuracy: ")
    acc = float(final.split()[2])
    assert 0.6 < acc <= 1.0  # one epoch of a 784-32-10 network on 4,500 digits (chance: 0.1)


def test_train_quiet_options_and_save(capsys, tmp_path):
    path = str(tmp_path / "model.npz")
    argv = [
        "train",
        "--epochs",
        "2",
        "--layers",
        "16,16",
        "--activation",
        "selu",
        "--init",
        "lecun_normal",
        "--batchnorm",
        "before",
        "--dropout",
        "0.1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--schedule",
        "plateau",
        "--val-split",
        "0.1",
        "--standardize",
        "feature",
        "--dtype",
        "float64",
        "--backend",
        "numpy",
        "--seed",
        "3",
        "--test-size",
        "200",
        "--save",
        path,
        "--quiet",
    ]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert out.count("\n") == 1 and out.startswith("test accuracy: ")
    import initcore as ic

    m = ic.Sequential.load(path)
    assert m.dtype == np.float64 and m.epochs_completed == 2 and m.optimizer.kind == "sgd"
    assert [type(layer).__name__ for layer in m.layers][:4] == ["Dense", "BatchNorm", "Activation", "AlphaDropout"]
    with np.load(path + ".standardizer.npz") as z:
        assert str(z["mode"]) == "feature" and z["shift"].shape == (784,)
    # The saved model and standardization reproduce the printed accuracy.
    (_, _), (xt, yt) = D.load_mnist_subset(split=True, test_size=200, seed=3, dtype="float64")
    with np.load(path + ".standardizer.npz") as z:
        xt = (xt - z["shift"]) / z["scale"]
    acc = m.evaluate(xt, yt)["accuracy"]
    assert f"{acc:.4f}" == out.split()[2]


def test_train_on_idx_directory(capsys, tmp_path):
    rng = np.random.default_rng(0)
    # A learnable toy set in MNIST's files: the class is which image quadrant is bright.
    for prefix, n in (("train", 400), ("t10k", 100)):
        y = rng.integers(0, 4, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, r * 14 : (r + 1) * 14, q * 14 : (q + 1) * 14] += 150
        D.save_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", x)
        D.save_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", y)
    rc, out, err = run(
        ["train", "--data", str(tmp_path), "--epochs", "3", "--layers", "8", "--backend", "numpy"], capsys
    )
    assert rc == 0, err
    assert f"data: {tmp_path} (400 train / 100 test)" in out and "model: 784-8-4 " in out
    assert float(out.splitlines()[-1].split()[2]) > 0.9


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
        (["train", "--layers", "256,x"], "argument --layers"),
        (["train", "--activation", "swish"], "argument --activation: invalid choice"),
        (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice"),
        (["train", "--schedule", "warm"], "argument --schedule: invalid choice"),
        (["train", "--lr", "-1"], "argument --lr"),
        (["train", "--dropout", "1.5"], "argument --dropout"),
        (["train", "--init", "he_normall", "--epochs", "1"], "unknown initializer 'he_normall'"),
        (["train", "--momentum", "0.9", "--epochs", "1"], "--momentum applies to sgd and rmsprop"),
        (["train", "--test-size", "4995", "--epochs", "1"], "test part"),
        (["train", "--data", "/definitely/not/here"], "/definitely/not/here: no such directory"),
        (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["trian"], "invalid choice: 'trian'"),
        ([], "choose a subcommand"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, match):
    rc, out, err = run(argv, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and match in err, err
    assert "Traceback" not in err and out == ""


def test_missing_idx_file_and_corrupt_file(capsys, tmp_path):
    rc, _, err = run(["train", "--data", str(tmp_path)], capsys)
    assert rc == 2 and "no train-images-idx3-ubyte[.gz]" in err and err.count("\n") == 1
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        D.save_idx(tmp_path / name, np.zeros((3, 28, 28) if "images" in name else 3, np.uint8))
    with open(tmp_path / "t10k-images-idx3-ubyte", "r+b") as f:
        f.truncate(100)
    rc, _, err = run(["train", "--data", str(tmp_path)], capsys)
    assert rc == 2 and "t10k-images-idx3-ubyte: truncated" in err and err.count("\n") == 1


def test_help_and_version(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "train" in out and "bench" in out and "experiment" in out
    rc, out, _ = run(["train", "--help"], capsys)
    assert rc == 0 and "--batchnorm {none,before,after}" in out and "(default: 20)" in out
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0 and out.startswith("initcore ")


def test_subcommand_registry_is_lazy(capsys, monkeypatch):
    calls = []
    mod = types.ModuleType("initcore_fake_plugin")

    def add_subcommand(sub):
        p = sub.add_parser("fake", help="a plug-in")
        p.add_argument("--n", type=int, default=1)
        p.set_defaults(func=lambda args: calls.append(args.n) or 0)

    mod.add_subcommand = add_subcommand
    monkeypatch.setitem(sys.modules, "initcore_fake_plugin", mod)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", ("initcore_fake_plugin", "a plug-in"))
    monkeypatch.setitem(cli.SUBCOMMANDS, "absent", ("initcore_no_such_module", "never imported unless chosen"))
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "fake" in out and "absent" in out  # listed without importing
    assert run(["fake", "--n", "7"], capsys)[0] == 0 and calls == [7]
    rc, _, err = run(["absent"], capsys)
    assert rc == 2 and "initcore absent: not available: initcore_no_such_module cannot be imported" in err
    cli.register_subcommand("fake2", "initcore_fake_plugin", "again")
    try:
        assert "fake2" in cli.SUBCOMMANDS
    finally:
        del cli.SUBCOMMANDS["fake2"]


def test_python_dash_m():
    env = dict(os.environ, INITCORE_TRACEBACK="")
    r = subprocess.run(
        [sys.executable, "-m", "initcore", "train", "--batchnorm", "sideways"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "argument --batchnorm: invalid choice: 'sideways'" in r.stderr
