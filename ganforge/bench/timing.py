"""Timing primitives (numpy only): percentiles of repeated single calls, and the
machine's fp32 matrix-product peak measured in the same process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


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

    def to_json(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def measure(call: Callable[[], object], batch: int, *, budget_s: float = 1.0, min_repeats: int = 5,
            max_repeats: int = 200, warmup: int = 2, flops_per_sample: int | None = None,
            peak_gflops: float | None = None) -> Stats:
    """Warm up, then time single calls (like ``timeit.repeat(number=1)``) until the
    budget or ``max_repeats`` is spent (at least ``min_repeats``)."""
    for _ in range(warmup):
        call()
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    sps = batch / (p50 / 1e3)
    gflops = sps * flops_per_sample / 1e9 if flops_per_sample else None
    frac = gflops / peak_gflops if gflops is not None and peak_gflops else None
    return Stats(batch, len(times), p50, p90, p99, sps, gflops, frac)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n matrix product through numpy's BLAS (all cores)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: threads, caches
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
