"""The Ray engine: the sweep as one Ray Tune experiment (``pip install 'initcore[ray]'``).

- One Tune trial per sweep trial: the parameter space is ``grid_search`` over the trials'
  indices, and the trainable looks its ``(config, seed)`` up in the list it was given, so Tune
  never rewrites a config value.
- The data go into the object store once: ``tune.with_parameters`` puts them there and every
  trial reads the same object.
- Each epoch is a ``tune.report`` (the default trial reports from a ``fit`` callback; a custom
  trial through ``sweep.report_epoch``), so ASHA can stop a trial at any epoch. Every report
  carries the trial's record so far as JSON (Python's ``json`` writes floats with ``repr``, so
  they round-trip bit for bit); the record is rebuilt from the last report, whether the trial
  ran to the end, raised, or was stopped by the scheduler.
- Each worker runs initcore with one thread (``INITCORE_NUM_THREADS=1`` in the job's runtime
  environment, and ``set_num_threads(1)`` in the trainable), as the local engine does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile

from ._execute import execute
from ._results import TrialRecord
from ._trial import set_reporter

RECORD_KEY = "initcore_record"


def _encode(rec: TrialRecord, done: bool) -> str:
    return json.dumps(
        {
            "metrics": rec.metrics,
            "seconds": rec.seconds,
            "error": rec.error,
            "done": done,
        }
    )


def _trainable(params, *, data, trial_fn, items, extra, metric):
    import time

    from ray import tune

    import initcore

    initcore.set_num_threads(1)
    index, config, seed = items[params["index"]]
    history: dict[str, list[float]] = {}
    t0 = time.perf_counter()

    def report(metrics):
        for k, v in metrics.items():
            history.setdefault(k, []).append(v)
        rec = TrialRecord(index, config, seed, history, time.perf_counter() - t0)
        # The scheduler's metric must be in every result (Tune checks it); NaN until reported.
        tune.report({metric: math.nan, **metrics, RECORD_KEY: _encode(rec, done=False)})

    set_reporter(report)
    try:
        rec = execute(trial_fn, index, config, extra, seed, data)
    finally:
        set_reporter(None)
    last = {k: v[-1] for k, v in rec.metrics.items() if v}
    tune.report({metric: math.nan, **last, RECORD_KEY: _encode(rec, done=True)})


def _record(items, index: int, result: dict | None, error: str | None) -> TrialRecord:
    _, config, seed = items[index]
    payload = (result or {}).get(RECORD_KEY)
    if payload is None:
        return TrialRecord(index, config, seed, error=error or "the trial ended without reporting a result")
    d = json.loads(payload)
    return TrialRecord(
        index,
        config,
        seed,
        {k: [float(x) for x in v] for k, v in d["metrics"].items()},
        float(d["seconds"]),
        d["error"] if d["error"] is not None else error,
        stopped_early=not d["done"] and d["error"] is None and error is None,
    )


def _ray_init(ray, address, n_jobs: int | None) -> bool:
    """Connects (or starts) Ray unless already connected; returns whether this call did."""
    if ray.is_initialized():
        return False
    kw = dict(runtime_env={"env_vars": {"INITCORE_NUM_THREADS": "1"}}, log_to_driver=False, logging_level="WARNING")
    if address == "local":
        ray.init(address="local", num_cpus=n_jobs, include_dashboard=False, **kw)
    else:
        ray.init(address=address, **kw)
    return True


def run_ray(trial_fn, items, extra, data, n_jobs, scheduler, metric, mode, max_epochs, address, on_record) -> None:
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise ImportError(f"sweep: engine='ray' needs Ray Tune: pip install 'initcore[ray]' ({e})") from None

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter honours verbose=0 (no banner)
    # Ctrl-C: Tune's own handler would end the experiment and return as if it had finished (the
    # running trials looking stopped by a scheduler); without it the KeyboardInterrupt reaches
    # sweep.run, which writes the finished trials and re-raises, as under the local engine.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    started = _ray_init(ray, address, n_jobs)
    seen: set[int] = set()

    class Collect(tune.Callback):
        """Hands each finished trial's record to the sweep as it finishes (trials.csv, progress)."""

        def _done(self, trial, error=None):
            index = trial.config["index"]
            if index not in seen:
                seen.add(index)
                on_record(_record(items, index, trial.last_result, error))

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._done(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._done(trial, error=f"Ray: the trial failed: {trial.error_file or 'see the Ray logs'}")

    storage = tempfile.mkdtemp(prefix="initcore-sweep-ray-")
    try:
        sched = None
        if scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            # One rung per epoch count 1, 2, 4, ...; the final report (epoch max_epochs + 1 in
            # Tune's count) must still be accepted, hence max_t one above the last epoch.
            sched = ASHAScheduler(
                time_attr="training_iteration",
                metric=metric,
                mode=mode,
                max_t=max_epochs + 1,
                grace_period=1,
                reduction_factor=2,
            )
        trainable = tune.with_parameters(
            _trainable, data=data, trial_fn=trial_fn, items=items, extra=extra, metric=metric
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"index": tune.grid_search([i for i in range(len(items))])},
            tune_config=tune.TuneConfig(scheduler=sched, num_samples=1, max_concurrent_trials=n_jobs),
            run_config=tune.RunConfig(
                name="initcore-sweep",
                storage_path=storage,
                verbose=0,
                callbacks=[Collect()],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        # Tune's INFO lines, and its warning that the per-trial files the disabled loggers would
        # have written are missing, say nothing about the sweep: the records come from the reports.
        quiet = [logging.getLogger(n) for n in ("ray.tune", "ray.tune.tune", "ray.tune.analysis.experiment_analysis")]
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.ERROR)
        try:
            grid = tuner.fit()
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
        for r in grid:  # any trial the callback did not see (it should have seen all)
            index = (r.config or {}).get("index")
            if index is not None and index not in seen:
                seen.add(index)
                on_record(_record(items, index, r.metrics, str(r.error) if r.error else None))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        if started:
            ray.shutdown()
