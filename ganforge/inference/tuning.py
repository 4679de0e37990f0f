"""The micro-batch: how many samples one onnxruntime run should take, measured once per
model and machine, and cached.

A generator's throughput does not grow with the batch for ever: past some size its
activations leave the CPU's caches and samples/s falls, by how much depends on the model
and the machine (benchmarks/results/ has figures). :func:`tune` times the candidate sizes in turns
on random noise, keeps the fastest (a larger one when within 3%: fewer calls), and
stores it in ``$GANFORGE_CACHE_DIR`` (default ``~/.cache/ganforge``) under a key of the
model file (path, size, modification time) and the machine (CPU, cores, onnxruntime
version, providers). A change of any of them measures again.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganforge.fsutil import atomic_write_text, cache_dir
from ganforge.inference import timing

CANDIDATES = (8, 16, 32, 64, 128, 256)
TIE = 0.97  # a larger micro-batch wins unless a smaller one is more than 3% faster
MAX_RUN_S = 0.05  # candidates whose run would take longer than this are not timed
CACHE_FILE = "micro-batch.json"


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows: part of the cache
    key here, and of gan-bench's report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(model: Path, providers: list[str], ort_version: str) -> str:
    st = model.stat()
    return "|".join([str(model.resolve()), str(st.st_size), str(st.st_mtime_ns), cpu_name(), str(os.cpu_count()),
                     ort_version, ",".join(providers)])


def _read() -> dict:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # no cache yet, or a damaged one: measure again
        return {}


def cached(key: str) -> int | None:
    entry = _read().get(key)
    size = entry.get("micro_batch") if isinstance(entry, dict) else None
    return size if isinstance(size, int) and size >= 1 else None


def store(key: str, size: int, measured: dict[int, float]) -> bool:
    """Remember ``size`` for ``key``; False (and nothing written) where the cache folder is not writable."""
    data = _read()
    data[key] = {"micro_batch": size, "samples_per_s": {str(k): round(v) for k, v in measured.items()}}
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_dir() / CACHE_FILE, json.dumps(data, indent=1) + "\n")
    except OSError:
        return False
    return True


def tune(run: Callable[[np.ndarray], object], latent_dim: int, candidates: tuple[int, ...] = CANDIDATES,
         budget_s: float = 0.1) -> tuple[int, dict[int, float]]:
    """Time ``run`` on noise batches of each candidate size, in turns; return the chosen
    size and samples/s of each."""
    rng = np.random.default_rng(0)
    calls = {}
    per_sample = None
    for size in sorted(candidates):
        if per_sample is not None and size * per_sample > MAX_RUN_S:
            break  # runs this long already amortise the per-run overhead: no need to time bigger ones
        z = rng.standard_normal((size, latent_dim), dtype=np.float32)
        calls[size] = functools.partial(run, z)
        if per_sample is None:
            t0 = timing.clock()
            run(z)
            per_sample = (timing.clock() - t0) / size
    stats = timing.measure(calls, 1, budget_s=budget_s, min_repeats=3, max_repeats=50, warmup=1, rounds=3)
    speed = {size: size / (st.p50_ms / 1e3) for size, st in stats.items()}
    best = max(speed.values())
    return max(size for size, v in speed.items() if v >= TIE * best), speed
