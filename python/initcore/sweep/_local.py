"""The local engine: one trial per process, on every core, with
``concurrent.futures.ProcessPoolExecutor``.

Why processes with one initcore thread each: a sweep is many small independent trials, and a
784-256-128-10 step is too small to keep several threads busy, so ``n`` single-threaded trials
side by side beat one ``n``-threaded trial after another. Results do not depend on the thread
count (initcore's reductions have a fixed order), so this choice changes only the speed.

Why the "spawn" start method: a worker forked from a parent whose Rust thread pool has already
run inherits a pool whose threads do not exist in the child (issue 9: it hung until the pool was
made fork-safe), and with it whatever else the parent holds (OpenBLAS threads, locks taken by
other threads); a spawned worker starts a fresh interpreter with nothing inherited, the same on
every platform. Its start-up cost (importing NumPy and initcore) is paid once per worker, not
per trial.

The data reach each worker once, as the pool initializer's argument, not with every trial. A
trial that kills its worker is found and recorded (see ``run_local``). Workers ignore SIGINT: on
Ctrl-C the parent cancels the queued trials, ends the workers and re-raises, having already
recorded every trial that finished.
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


def _run_pool(trial_fn, items, extra, data, n_jobs, on_record) -> list:
    """Runs ``items`` in one pool; returns those left unfinished because a worker died (which
    breaks the whole pool), in submission order."""
    ctx = multiprocessing.get_context(START_METHOD)
    ex = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init_worker, initargs=(data, 1))
    pending = {}
    broken = []
    try:
        for k, item in enumerate(items):
            try:
                pending[ex.submit(_run_in_worker, trial_fn, *item[:2], extra, item[2])] = item
            except BrokenProcessPool:  # a worker died while the queue was being filled
                broken += items[k:]
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                try:
                    rec = fut.result()
                except BrokenProcessPool:
                    broken.append(item)
                    continue
                except Exception:  # the trial's result could not be sent back (e.g. not picklable)
                    rec = TrialRecord(*item, error=traceback.format_exc())
                on_record(rec)
    except BaseException:
        for fut in pending:
            fut.cancel()
        _terminate(ex)
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    if broken:
        # CPython 3.11 can miss a worker it spawned while the pool was breaking (its SIGTERM loop
        # runs before the worker is registered) and then wait for it forever: end them all here.
        _terminate(ex)
    ex.shutdown(wait=True)
    order = {item[0]: i for i, item in enumerate(items)}
    return sorted(broken, key=lambda item: order[item[0]])


def run_local(trial_fn, items, extra, data, n_jobs, on_record) -> None:
    """Runs ``items`` (``(index, config, seed)``) and calls ``on_record`` in the parent as each
    trial finishes (in completion order).

    A worker that dies (killed, or a crash in native code) breaks the whole pool, and every
    unfinished trial with it; which one killed it is unknown. So the unfinished trials run again,
    one at a time, until the next death, which names the culprit (a single worker runs its
    queue in order): it is recorded with the error and the rest go back to ``n_jobs`` workers."""
    pending = list(items)
    isolate = False
    while pending:
        unfinished = _run_pool(
            trial_fn, pending, extra, data, 1 if isolate else max(1, min(n_jobs, len(pending))), on_record
        )
        if not unfinished:
            return
        if isolate:
            on_record(TrialRecord(*unfinished[0], error=WORKER_DIED))
            pending, isolate = unfinished[1:], False
        else:
            pending, isolate = unfinished, True


WORKER_DIED = "WorkerDied: the worker process running this trial died (killed, or crashed in native code)"
