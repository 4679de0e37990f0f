"""Timing primitives (numpy only): percentiles of repeated single calls, interleaved
across backends, and the machine's fp32 matrix-product peak measured in the same turns.

Used by gan-bench, and by the micro-batch tuning of :mod:`ganforge.inference.tuning`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

clock = time.perf_counter  # what every timing here reads (a test can put a virtual clock in its place)

@dataclass
class Stats:
    batch: int
    repeats: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    samples_per_s: float  # batch / median latency
    gflops: float | None = None  # achieved, from the model's FLOPs per sample
    peak_fraction: float | None = None  # gflops / measured matrix-product peak
    peak_gflops: float | None = None  # that peak, measured in the same turns

    def to_json(self) -> dict:
        return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in asdict(self).items()}  # 6 digits


def measure(calls: Mapping[str, Callable[[], object]], batch: int, *, budget_s: float = 1.0, min_repeats: int = 5,
            max_repeats: int = 200, warmup: int = 2, rounds: int = 5, settle_s: float = 0.0) -> dict[str, Stats]:
    """Time several backends on the same batch, interleaved.

    Each call is warmed up, then the backends take turns in ``rounds`` slices of
    ``budget_s / rounds`` seconds of single calls (like ``timeit.repeat(number=1)``),
    until each has spent ``budget_s`` (at least ``min_repeats`` calls, at most
    ``max_repeats``). Taking turns spreads a shared machine's slow spells over
    every backend alike, so the ratios between them hold even when the absolute
    figures drift. With ``settle_s`` each turn starts with that much idle time and
    one untimed call: after its last call, a runtime's thread pool spins and its
    data sits in the caches for tens of milliseconds, and the next runtime's
    first call pays for it (benchmarks/results/speed-notes.md).
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    slice_s = budget_s / rounds
    per_slice = -(-max_repeats // rounds)

    def wants_more(name: str) -> bool:
        done = times[name]
        return len(done) < max_repeats and (len(done) < min_repeats or sum(done) < budget_s)

    while active := [name for name in calls if wants_more(name)]:
        for name in active:
            call, done, spent = calls[name], times[name], 0.0
            if settle_s:
                time.sleep(settle_s)
                call()
            for k in range(per_slice):
                if len(done) >= max_repeats or (k and spent >= slice_s):
                    break
                t0 = clock()
                call()
                done.append(clock() - t0)
                spent += done[-1]
    return {name: _stats(done, batch) for name, done in times.items()}


def _stats(times: list[float], batch: int) -> Stats:
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    return Stats(batch, len(times), p50, p90, p99, batch / (p50 / 1e3))


def with_roofline(stats: Stats, flops_per_sample: int | None, peak_gflops: float | None) -> Stats:
    """``stats`` with achieved GFLOP/s and the fraction of ``peak_gflops`` filled in."""
    gflops = stats.samples_per_s * flops_per_sample / 1e9 if flops_per_sample else None
    frac = gflops / peak_gflops if gflops is not None and peak_gflops else None
    return replace(stats, gflops=gflops, peak_fraction=frac, peak_gflops=peak_gflops)


PEAK_CODE = """
import sys, time
import numpy as np
n = int(sys.argv[1])
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
for line in sys.stdin:
    t0 = time.perf_counter(); a @ b; print(time.perf_counter() - t0, flush=True)
"""


class MatmulPeak:
    """The machine's fp32 peak, as an n x n matrix product through numpy's BLAS on all cores,
    timed in a helper process, so that it can take turns with the backends (see
    :func:`measure`) and a busy spell lowers it as much as them.

        with MatmulPeak() as peak:
            stats = measure({"model": run, "peak": peak}, ...)
            gflops = peak.gflops()  # from the products timed since the last call

    A process of its own, with OpenBLAS told not to spin: BLAS threads otherwise keep
    spinning after a product and slow the next backend's calls (speed-notes.md).
    """

    def __init__(self, n: int = 1536):
        self.n = n
        self.times: list[float] = []

    def __enter__(self) -> MatmulPeak:
        import os
        import subprocess
        import sys

        env = {**os.environ, "OPENBLAS_THREAD_TIMEOUT": "4"}  # threads sleep right after a product
        self.proc = subprocess.Popen([sys.executable, "-c", PEAK_CODE, str(self.n)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        return self

    def __call__(self) -> None:
        self.proc.stdin.write("x\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the matrix-product helper process stopped")
        self.times.append(float(line))

    def gflops(self) -> float:
        """GFLOP/s of the median product timed since the last call."""
        times, self.times = self.times, []
        return 2 * self.n**3 / float(np.median(times)) / 1e9

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
