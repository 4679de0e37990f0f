"""Local worker processes for a sharded job (``gan-infer --workers N``), and the folder's leftovers.

Each worker is a fresh (spawned) process that opens the model once and makes whole shards; the
parent hands them out, a few in flight a worker at most, and commits what comes back, so memory
stays flat however many shards a job has. A worker computes on its share of the cores
(``max(1, cores // N)`` threads, or the ``--threads`` asked), so N workers do not oversubscribe
the machine. Ctrl-C is the parent's to handle: workers ignore it and end with the pool.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ganforge import threads
from ganforge.errors import GanforgeError

MAX_WORKERS = 256  # local processes a job may start
IN_FLIGHT = 2  # shards a worker may have handed out at once: one being made, one waiting
# what atomic_path/atomic_dir name their temporaries beside a shard or the manifest: .<name>.<pid>-<random>.tmp[...]
STALE = re.compile(r"\.(?:shard-\d+|manifest)\.(\d+)-[^.]*\.(?:tmp|old)(?:\.npy|\.json)?")


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def clean_stale(folder: Path) -> int:
    """Remove the temporaries that killed runs left in ``folder`` (their process is gone); those
    of a process still running are left to it. Returns how many were removed."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        match = STALE.fullmatch(entry.name)
        if match and not _alive(int(match[1])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed += 1
    return removed


def _init(start: Callable, job, n_threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which ends the pool
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
