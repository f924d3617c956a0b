"""The local engine: one trial per process, on every core, with
``concurrent.futures.ProcessPoolExecutor``.

Why processes with one initcore thread each: a sweep is many small independent trials, and a
784-256-128-10 step is too small to keep several threads busy, so ``n`` single-threaded trials
side by side beat one ``n``-threaded trial after another. Results do not depend on the thread
count (initcore's reductions have a fixed order), so this choice changes only the speed.

Why the "spawn" start method: a worker forked from a parent whose Rust thread pool has already
run would inherit a pool whose threads do not exist in the child and hang on its first kernel
(issue 9); a spawned worker starts a fresh interpreter with nothing inherited, on every platform.
Its start-up cost (importing NumPy and initcore) is paid once per worker, not per trial.

The data reach each worker once, as the pool initializer's argument, not with every trial.
Workers ignore SIGINT: on Ctrl-C the parent cancels the queued trials, ends the workers and
re-raises, having already recorded every trial that finished.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ._execute import execute
from ._results import TrialRecord

_worker_data = None

START_METHOD = "spawn"


def _init_worker(data, threads: int) -> None:
    os.environ["INITCORE_NUM_THREADS"] = str(threads)  # before initcore's pool is first used
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for the whole sweep
    import initcore

    initcore.set_num_threads(threads)
    global _worker_data
    _worker_data = data


def _run_in_worker(trial_fn, index, config, extra, seed) -> TrialRecord:
    return execute(trial_fn, index, config, extra, seed, _worker_data)


def _terminate(ex: ProcessPoolExecutor) -> None:
    terminate = getattr(ex, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        if p.is_alive():
            p.terminate()


def run_local(trial_fn, items, extra, data, n_jobs, on_record) -> None:
    """Runs ``items`` (``(index, config, seed)``) and calls ``on_record`` in the parent as each
    trial finishes (in completion order)."""
    n_jobs = max(1, min(n_jobs, len(items)))
    ctx = multiprocessing.get_context(START_METHOD)
    ex = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init_worker, initargs=(data, 1))
    pending = {}
    try:
        for index, config, seed in items:
            pending[ex.submit(_run_in_worker, trial_fn, index, config, extra, seed)] = (index, config, seed)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                index, config, seed = pending.pop(fut)
                try:
                    rec = fut.result()
                except BrokenProcessPool as e:  # a worker died (killed, or crashed in native code)
                    rec = TrialRecord(index, config, seed, error=f"BrokenProcessPool: a worker process died: {e}")
                except Exception:  # the trial's result could not be sent back (e.g. not picklable)
                    rec = TrialRecord(index, config, seed, error=traceback.format_exc())
                on_record(rec)
    except BaseException:
        for fut in pending:
            fut.cancel()
        _terminate(ex)
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
