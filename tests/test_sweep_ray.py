"""initcore.sweep on a real Ray cluster: the small sweep bit-identical to the local engine, ASHA
stopping a hopeless arm (lr = 10) early, a raising trial recorded while the sweep goes on, and
``initcore sweep --ray``.

The cluster: ``.ci/run`` starts a head (``ray start --head --node-ip-address 127.0.0.1 --port
<free> --num-cpus 2``) and exports ``INITCORE_TEST_RAY_ADDRESS``; without it (a developer running
the README's command) the session fixture starts an in-process cluster (``--ray local``). Ray is
in the ``test`` extra, so these tests never skip. One connection serves every test: Ray's
start-up is the slow part.
"""

import os
import sys

import pytest
import ray
from ray import cloudpickle

from initcore import cli, sweep
from initcore.sweep._ray import _ray_init
from test_sweep import SMALL, SPACE, small_data

# The Ray workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="session")
def ray_address():
    address = os.environ.get("INITCORE_TEST_RAY_ADDRESS") or "local"
    if ray.is_initialized():
        ray.shutdown()
    _ray_init(ray, address, 2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_sweep_is_bit_identical_to_local(ray_address):
    data = small_data()
    local = sweep.run(SPACE, data, seeds=[0, 1], epochs=2, n_jobs=2, progress=False)
    remote = sweep.run(SPACE, data, seeds=[0, 1], epochs=2, engine="ray", ray_address=ray_address, progress=False)
    assert remote.engine.startswith("ray")
    assert len(remote.trials) == len(local.trials) == 4
    for a, b in zip(local.trials, remote.trials):
        assert (a.index, a.config, a.seed) == (b.index, b.config, b.seed)
        assert b.ok, b.error
        assert not b.stopped_early and b.epochs == 2
        assert a.metrics == b.metrics  # float ==: the same bits
        assert b.seconds > 0
    assert local.summary() == remote.summary()


def test_asha_stops_the_hopeless_arm_early(ray_address):
    # Trials run in the sweep's order, two at a time: the lr=1e-3 arm reaches each rung first, so
    # the lr=10 arm (Adam at lr 10 diverges: chance accuracy) falls below the rung's cutoff.
    space = {"lr": [1e-3, 10.0], **SMALL}
    result = sweep.run(
        space, small_data(), seeds=[0, 1], epochs=4, engine="ray", scheduler="asha", n_jobs=2, progress=False
    )
    assert len(result.trials) == 4 and not result.errors
    hopeless = [t for t in result.trials if t.config["lr"] == 10.0]
    good = [t for t in result.trials if t.config["lr"] == 1e-3]
    assert any(t.stopped_early and t.epochs < 4 for t in hopeless), [(t.epochs, t.metrics) for t in hopeless]
    assert all(t.final["val_accuracy"] < 0.3 for t in hopeless)
    assert max(t.epochs for t in good) == 4 and all(t.final["val_accuracy"] > 0.5 for t in good)
    # a stopped trial's epochs are those a full run begins with (the record is exact, not resampled)
    stopped = next(t for t in hopeless if t.stopped_early)
    full = sweep.train_trial({**stopped.config, "epochs": 4}, stopped.seed, sweep.resolve_data(small_data()))
    assert all(stopped.metrics[k] == full[k][: stopped.epochs] for k in full)
    assert result.summary()[0]["lr"] == 1e-3


def test_ray_raising_trial_is_recorded_and_the_sweep_goes_on(ray_address):
    # momentum applies to sgd and rmsprop: the adam arm raises inside its trial, on the worker.
    space = {"optimizer": ["sgd", "adam"], "momentum": 0.9, "lr": 0.01, **SMALL}
    result = sweep.run(space, small_data(), seeds=[0], epochs=1, engine="ray", progress=False)
    sgd, adam = result.trials
    assert sgd.ok and sgd.epochs == 1
    assert not adam.ok and "--momentum applies to sgd and rmsprop, not adam" in adam.error
    assert [r["n_errors"] for r in result.summary()] == [0, 1]


def test_cli_sweep_on_ray(ray_address, tmp_path, capsys):
    argv = ["sweep", "--param", "activation=relu,tanh", "--param", "layers=16", "--param", "dropout=0"]
    argv += ["--seeds", "1", "--epochs", "1", "--ray", ray_address, "--quiet", "--out", str(tmp_path)]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.splitlines()[0].endswith(f"engine ray {ray_address}")
    assert "ranked by final val_accuracy" in out
    assert (tmp_path / "trials.csv").read_text().count("\n") == 3  # header + 2 trials


def reporting_trial(config, seed, data):
    """A custom trial that reports each epoch, so that ASHA can stop it; no training."""
    curve = []
    for epoch in range(config["epochs"]):
        value = 0.9 - 0.1 / (epoch + 1) if config["arm"] == "good" else 0.1
        curve.append(value + 0.001 * seed)
        sweep.report_epoch({"val_accuracy": curve[-1]})
    return {"val_accuracy": curve}


def test_asha_stops_a_custom_trial_that_reports_each_epoch(ray_address):
    result = sweep.run(
        {"arm": ["good", "bad"]},
        small_data(),
        seeds=[0, 1],
        epochs=4,
        engine="ray",
        trial=reporting_trial,
        scheduler="asha",
        n_jobs=2,
        progress=False,
    )
    assert not result.errors
    good, bad = result.trials[:2], result.trials[2:]
    assert any(t.stopped_early and t.epochs < 4 for t in bad)
    for t in result.trials:  # what the trial reported, epoch by epoch, exactly
        assert (
            t.metrics["val_accuracy"]
            == reporting_trial({**t.config, "epochs": 4}, t.seed, None)["val_accuracy"][: t.epochs]
        )
    assert max(t.epochs for t in good) == 4  # the first trial at each rung always goes on
