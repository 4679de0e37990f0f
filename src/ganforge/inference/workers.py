"""Local worker processes for a sharded job (``gan-infer --workers N``).

Each worker is a fresh (spawned) process that opens the model once and makes and commits whole
shards; the parent hands them out, a few in flight a worker at most, and counts what comes back
(a shard's name: its bytes stay in the worker), so memory stays flat however many shards a job has. A worker computes on its share of the cores
(``max(1, cores // N)`` threads, or the ``--threads`` asked), so N workers do not oversubscribe
the machine. Ctrl-C is the parent's to handle: workers ignore it and end with the pool; a worker
whose parent was killed ends within half a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence

from ganforge import threads
from ganforge.errors import GanforgeError

MAX_WORKERS = 256  # local processes a job may start
IN_FLIGHT = 2  # shards a worker may have handed out at once: one being made, one waiting


def check_workers(value) -> int:
    """A worker count: a whole number from 1 to :data:`MAX_WORKERS`, else a one-line GanforgeError."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_WORKERS:
        raise GanforgeError(f"--workers must be a whole number from 1 to {MAX_WORKERS} (local processes, each "
                            f"making whole shards), got {value!r}")
    return int(text)


def threads_each(workers: int) -> int:
    """Threads a worker computes on: ``--threads`` when asked, else its share of the cores."""
    return threads.requested() or max(1, threads.available_cores() // workers)


ORPHAN_CHECK_S = 0.5  # how often a worker looks whether the parent still runs


def _end_with_parent(parent: int) -> None:
    """End this worker once its parent is gone (killed): its pool's queues would keep it waiting forever."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="ganforge-parent-watch", daemon=True).start()


def _init(start: Callable, job, n_threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which ends the pool
    _end_with_parent(os.getppid())
    threads.use(n_threads)
    start(job)


def results(job, shards: Sequence, workers: int, start: Callable, compute: Callable) -> Iterator:
    """``compute(job, shard)`` of each shard, made in ``workers`` spawned processes (each runs
    ``start(job)`` once first), yielded as they finish (any order), at most ``IN_FLIGHT`` a worker
    handed out at once. ``start`` and ``compute`` are module-level functions (they are pickled by name)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = list(reversed(shards))
    pending = set()
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                                   initargs=(start, job, threads_each(workers)))
    try:
        while queue or pending:
            while queue and len(pending) < IN_FLIGHT * workers:
                pending.add(executor.submit(compute, job, queue.pop()))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    except BrokenProcessPool:
        raise GanforgeError("a worker process died (killed, or out of memory); the shards made so far are kept: "
                            "rerun the same command to make the rest, with fewer --workers if memory ran out") from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
