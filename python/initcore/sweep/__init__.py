"""Hyper-parameter sweeps: many small trials, on local processes or a Ray cluster.

::

    from initcore import sweep

    space = sweep.Space(grid={"init": ["he_normal", "glorot_uniform"], "activation": ["relu", "tanh"]},
                        random={"lr": sweep.loguniform(1e-4, 1e-1)}, n_random=4)  # or a plain dict (= grid)
    result = sweep.run(space, data="mnist", seeds=range(3), epochs=10)
    result.trials        # list of TrialRecord: index, config, seed, metrics (name -> per-epoch list),
                         # final / best (name -> value), epochs, seconds, error, stopped_early
    result.summary()     # a StatsTable (list of dict rows): per config, n_seeds, n_errors and
                         # {final,best}_{metric}_{mean,std} over seeds, ranked by `metric` (rank 1 = best)
    result.curves()      # per config: (config, per-epoch mean, per-epoch std, n) of `metric`
    result.to_frame()    # trials.csv as a pandas DataFrame (pandas optional)
    result.write("runs/sweep")   # trials.csv, epochs.csv, summary.csv, summary.md, curves.png, final.png

``sweep.run(space, data="mnist", *, seeds=3, epochs=10, engine="local", trial=None, metric=None,
mode=None, n_jobs=None, ray_address=None, scheduler=None, out=None, progress=True)``:

- ``space``: a :class:`Space` (a grid crossed with ``n_random`` seeded random draws; see
  ``initcore.sweep._space``) or a plain dict (a grid). Every config runs once per seed.
- ``data``: ``"mnist"`` (the embedded subset, stratified 4,000 / 1,000 split, seed 0), ``"boston"``,
  an IDX folder (its test files validate), ``(x, y)`` (20% held out, seed 0) or ``(x, y, x_val,
  y_val)``. It is loaded and split once, before any trial, and sent to each worker once.
- ``seeds``: a count ``K`` (seeds ``0..K-1``), an iterable of ints, or ``"0-4"`` / ``"0,3,7"``.
- ``epochs``: added to each config as ``"epochs"`` unless the space sets it.
- ``trial``: ``None`` runs ``initcore train`` with the config's options (any of
  :data:`TRAIN_OPTIONS`: layers, activation, init, batchnorm, dropout, optimizer, lr, momentum,
  weight_decay, schedule, epochs, batch_size, standardize, dtype, backend; ``--seed`` = the trial's
  seed) and reports ``loss, accuracy, val_loss, val_accuracy`` per epoch (``loss, val_loss`` for a
  regression target). Or a picklable module-level callable ``trial(config, seed, data) -> dict``
  of per-epoch metric lists, ``data`` being a :class:`Data` (``x, y, x_val, y_val``); it may call
  :func:`report_epoch` once per epoch so that ASHA can stop it early under Ray.
- ``engine``: ``"local"`` (a process pool of ``n_jobs`` workers, default every CPU, one initcore
  thread each) or ``"ray"`` (Ray Tune, ``pip install 'initcore[ray]'``; ``ray_address``:
  ``None`` = Ray's default — ``RAY_ADDRESS`` or a cluster already running on this machine, else a
  new local one —, ``"local"`` = a new in-process cluster, or ``"host:port"``; ``n_jobs`` caps the
  concurrent trials, default: as many as the cluster's CPUs allow). An already initialized Ray
  connection is used as it is. A cluster started by ``ray start`` uses token authentication:
  set ``RAY_AUTH_MODE=token`` in the environment of the process that connects.
- ``scheduler``: ``None`` or ``"asha"`` (Ray only): asynchronous successive halving on ``metric``,
  one rung per epoch from epoch 1, reduction factor 2; stopped trials have ``stopped_early=True``.
- ``metric``/``mode``: what ranks configs and what ASHA watches; default ``"val_accuracy"``/
  ``"max"`` for class labels, ``"val_loss"``/``"min"`` otherwise.
- ``out``: a folder; ``trials.csv`` and ``epochs.csv`` are rewritten (atomically) after every
  finished trial, and all files at the end. On Ctrl-C the finished trials stay there and the
  ``KeyboardInterrupt`` propagates.

Reproducibility: a trial's result depends only on its config and seed — not on the engine, the
worker, the number of workers or the order of the trials — so the local and Ray engines give
bit-identical records (with ASHA off). A trial that raises is recorded with its error (the
traceback in ``record.error``, its last line in ``trials.csv``) and the sweep goes on.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable

from ._results import SweepResult, TrialRecord, metric_mode, write_trials
from ._space import Distribution, Space, choice, loguniform, parse_seeds, randint, uniform
from ._trial import TRAIN_OPTIONS, Data, check_train_config, report_epoch, resolve_data, train_trial

__all__ = [
    "Space",
    "Distribution",
    "uniform",
    "loguniform",
    "choice",
    "randint",
    "run",
    "SweepResult",
    "TrialRecord",
    "Data",
    "resolve_data",
    "train_trial",
    "report_epoch",
    "TRAIN_OPTIONS",
    "add_subcommand",
]

ENGINES = ("local", "ray")
SCHEDULERS = (None, "asha")


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run(
    space,
    data="mnist",
    *,
    seeds=3,
    epochs: int = 10,
    engine: str = "local",
    trial: Callable[[dict, int, Data], dict] | None = None,
    metric: str | None = None,
    mode: str | None = None,
    n_jobs: int | None = None,
    ray_address: str | None = None,
    scheduler: str | None = None,
    out=None,
    progress: bool = True,
    on_record: Callable[[TrialRecord], None] | None = None,
) -> SweepResult:
    """Runs every config of ``space`` once per seed; see the module docstring."""
    space = Space.coerce(space)
    seeds = parse_seeds(seeds)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"sweep.run: epochs must be a positive int, got {epochs!r}")
    if engine not in ENGINES:
        raise ValueError(f"sweep.run: engine must be one of {ENGINES}, got {engine!r}")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"sweep.run: scheduler must be None or 'asha', got {scheduler!r}")
    if scheduler is not None and engine != "ray":
        raise ValueError(f"sweep.run: scheduler={scheduler!r} needs engine='ray' (the local engine runs every epoch)")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
        raise ValueError(f"sweep.run: n_jobs must be a positive int or None, got {n_jobs!r}")
    configs = space.configs()
    if trial is None:
        trial = train_trial
        for c in configs:  # a bad option or value fails here, before any worker starts
            check_train_config(c)
    elif not callable(trial):
        raise TypeError(f"sweep.run: trial must be None or a callable trial(config, seed, data), got {trial!r}")
    try:
        pickle.dumps(trial)
    except Exception as e:
        raise TypeError(
            f"sweep.run: trial {getattr(trial, '__qualname__', trial)!r} cannot be pickled, so it cannot be sent "
            f"to worker processes; define it at module level ({e})"
        ) from None
    dataset = resolve_data(data)
    if metric is None:
        metric = "val_accuracy" if dataset.task == "classification" else "val_loss"
    if mode is None:
        mode = metric_mode(metric)
    if mode not in ("max", "min"):
        raise ValueError(f"sweep.run: mode must be 'max' or 'min', got {mode!r}")
    extra = {} if "epochs" in space.names else {"epochs": epochs}
    max_epochs = max(int(c.get("epochs", epochs)) for c in configs)
    items = [(i * len(seeds) + j, c, s) for i, c in enumerate(configs) for j, s in enumerate(seeds)]

    done: list[TrialRecord] = []
    label = engine if engine == "local" else f"ray {ray_address or 'default'}"
    if out is not None:
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)

    def partial(interrupted=False) -> SweepResult:
        return SweepResult(done, space.names, metric, mode, seeds, max_epochs, label, interrupted)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="sweep", unit="trial", leave=True, dynamic_ncols=True)

    def record(rec: TrialRecord) -> None:
        done.append(rec)
        if out is not None:
            write_trials(partial(), out)
        if bar is not None:
            bar.update(1)
            if not rec.ok:
                bar.write(f"trial {rec.index} (seed {rec.seed}) failed: {rec.row()['error']}")
        if on_record is not None:
            on_record(rec)

    try:
        if engine == "local":
            from ._local import run_local

            run_local(trial, items, extra, dataset, n_jobs or default_jobs(), record)
        else:
            from ._ray import run_ray

            run_ray(trial, items, extra, dataset, n_jobs, scheduler, metric, mode, max_epochs, ray_address, record)
    except KeyboardInterrupt:
        if out is not None:
            partial(interrupted=True).write(out, figures=False)
        raise
    finally:
        if bar is not None:
            bar.close()
    result = partial(interrupted=len(done) < len(items))
    if out is not None:
        result.files = result.write(out)
    return result


def add_subcommand(subparsers) -> None:
    """``initcore sweep`` (see ``initcore.sweep._cli``)."""
    from ._cli import add_subcommand as add

    add(subparsers)
