"""Dynamic batching: requests wait in one queue bounded in samples; each worker thread owns one
session, takes what is queued (up to ``max_batch`` samples, waiting at most
``max_queue_delay_ms`` for more) and runs it as one batch.

The event loop never runs the model: a route submits a job and awaits its future; a worker sets
it from its thread through ``loop.call_soon_threadsafe``. A *solo* job (a /v1 picture: its own
run, exactly as gan-infer makes it) runs alone; tensor jobs (v2 infer) are concatenated, each job's
noise first truncated and edited by its own control (keyed by its own seed and start), so requests
of different controls share a run and each gets what it would alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ganforge.errors import GanforgeError, first_line


class QueueFull(GanforgeError):
    """The queue holds its most samples: 503 with Retry-After."""


class TimedOut(GanforgeError):
    """A job not done within the request timeout: 504."""


class RunFailed(GanforgeError):
    """The model's run failed (not the request's fault): 500."""


class Job:
    """``n`` samples to make: noise ``z`` (and ``labels``) batched with others, or ``solo(gen)``
    run alone. ``control`` (:class:`~ganforge.inference.control.Control`, or None) acts on this
    job's ``z`` alone, as samples ``start:start + n`` of ``seed``, on the worker before the run.
    Its future belongs to the event loop that made it."""

    __slots__ = ("n", "z", "labels", "solo", "control", "seed", "start", "future", "loop", "queued_at",
                 "cancelled")

    def __init__(self, n: int, *, z=None, labels=None, solo: Callable | None = None, control=None, seed: int = 0,
                 start: int = 0):
        self.n, self.z, self.labels, self.solo = n, z, labels, solo
        self.control, self.seed, self.start = control, seed, start
        self.loop = asyncio.get_running_loop()
        self.future = self.loop.create_future()
        self.queued_at = time.perf_counter()
        self.cancelled = False

    def finish(self, value=None, error: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, value, error)


def _expire(job: Job, timeout: float) -> None:
    if not job.future.done():
        job.future.set_exception(TimedOut(f"no answer within the {timeout:g} s request timeout: the server is "
                                          "busy; retry, ask for fewer samples, or raise --timeout"))


def _settle_all(settled: list) -> None:
    for future, value, error in settled:
        _settle(future, value, error)


def _settle(future: asyncio.Future, value, error) -> None:
    if future.done():  # timed out meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Batcher:
    """The queue and its workers, one a session in ``generators``."""

    def __init__(self, generators, *, max_batch: int, max_queue: int, max_queue_delay_ms: float, metrics=None):
        self.generators = list(generators)
        self.max_batch, self.max_queue = max_batch, max_queue
        self.delay = max_queue_delay_ms / 1000
        self.metrics = metrics
        self._cv = threading.Condition()
        self._jobs: deque[Job] = deque()
        self.queued = 0  # samples waiting
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i, gen in enumerate(self.generators):
            thread = threading.Thread(target=self._work, args=(gen,), name=f"gan-serve-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float | None = None) -> None:
        """Finish what is queued, then end the workers."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    async def run(self, job: Job, timeout: float):
        """Queue ``job`` and wait for its result: QueueFull at once when the queue cannot hold it,
        TimedOut when it is not done within ``timeout`` seconds (then it is skipped if not begun)."""
        self.submit(job)
        timer = job.loop.call_later(timeout, _expire, job, timeout)  # cheaper than a task a request (wait_for)
        try:
            return await job.future
        finally:
            timer.cancel()
            job.cancelled = True  # answered, timed out or abandoned (the client left): not to be run now

    def submit(self, job: Job) -> None:
        with self._cv:
            if self._stopping:
                raise QueueFull("the server is shutting down; retry on another replica")
            if self.queued + job.n > self.max_queue:
                raise QueueFull(f"the queue is full ({self.queued} of {self.max_queue} samples waiting); retry "
                                "shortly")
            self._jobs.append(job)
            self.queued += job.n
            self._cv.notify()

    # --- the worker side ------------------------------------------------------------------------------

    def _take(self) -> list[Job] | None:
        """The next batch: a solo job alone, else tensor jobs up to max_batch samples; None once
        stopping with nothing queued."""
        with self._cv:
            while not self._jobs:
                if self._stopping:
                    return None
                self._cv.wait()
            batch = [self._jobs.popleft()]
            total = batch[0].n
            deadline = time.perf_counter() + self.delay
            while batch[0].solo is None and total < self.max_batch:
                while self._jobs and self._jobs[0].solo is None and total + self._jobs[0].n <= self.max_batch:
                    total += self._jobs[0].n
                    batch.append(self._jobs.popleft())
                left = deadline - time.perf_counter()
                if self._jobs or left <= 0 or total >= self.max_batch or self._stopping:
                    break  # the next one does not fit, or no more waiting
                self._cv.wait(left)
            self.queued -= total
        return batch

    def _work(self, gen) -> None:
        while (batch := self._take()) is not None:
            live = [job for job in batch if not job.cancelled]
            if self.metrics is not None:
                now = time.perf_counter()
                for job in batch:
                    self.metrics.queue_wait(now - job.queued_at)
            if not live:
                continue
            try:
                self._run(gen, live)
            except BaseException as exc:  # noqa: BLE001 - a failing run answers its requests, the worker lives
                typed = not isinstance(exc, GanforgeError)
                error = RunFailed(f"the model failed: {first_line(exc, 300, typed=typed)}")
                for job in live:
                    job.finish(error=error)

    def _run(self, gen, jobs: list[Job]) -> None:
        if jobs[0].solo is not None:
            result = jobs[0].solo(gen)
            self._count(jobs[0].n)
            jobs[0].finish(result)
            return
        noise = [job.z if not job.control else job.control.apply(job.z, job.seed, job.start) for job in jobs]
        z = noise[0] if len(jobs) == 1 else np.concatenate(noise)
        labels = None
        if jobs[0].labels is not None:
            labels = jobs[0].labels if len(jobs) == 1 else np.concatenate([job.labels for job in jobs])
        x = gen(z, labels, small_job=True)  # a batch is far below TUNE_FROM_N: gan-infer's runtime for it
        self._count(len(z))
        settled: dict = {}  # by event loop (one, under uvicorn): one wake-up a batch, not one a request
        start = 0
        for job in jobs:
            settled.setdefault(job.loop, []).append((job.future, x[start : start + job.n], None))
            start += job.n
        for loop, results in settled.items():
            loop.call_soon_threadsafe(_settle_all, results)

    def _count(self, samples: int) -> None:
        if self.metrics is not None:
            self.metrics.batch(samples)
