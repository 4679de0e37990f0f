"""The plan of a CPU generator's runs, measured once per model and machine, and cached:
which runtime runs a run of each size, and the micro-batch (how many samples one run
takes when a call asks for more).

A generator's throughput does not grow with the batch for ever: past some size its
activations leave the CPU's caches and samples/s falls, by how much depends on the model
and the machine (benchmarks/results/ has figures). Nor is one runtime the fastest
everywhere: onnxruntime wins small runs on every generator measured, OpenVINO (when
installed) some large ones. :func:`tune` times every runtime at every candidate size in
turns on random noise; each size goes to its fastest runtime (onnxruntime unless another
is more than 3% faster), and the micro-batch is the fastest size (a larger one when within
3%: fewer calls). The plan is stored in ``$GANFORGE_CACHE_DIR`` (default
``~/.cache/ganforge``) under a key of the model file (path, size, modification time), the
machine (CPU, cores), the runtimes' versions and what was asked (provider, precision). A
change of any of them measures again. :func:`report` and :func:`runtime_text` say what a
generator's plan is and where its runs went.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge import threads
from ganforge.fsutil import atomic_write_text, cache_dir, inside
from ganforge.inference import runtimes, timing

# micro-batch sizes (size 1 is timed too, for routing single samples); the large ones matter for
# small generators, whose runs of 1024 still take a few milliseconds (OpenVINO's bf16 mnist-mlp:
# 538k samples/s at 1024, 471k at 256)
CANDIDATES = (8, 16, 32, 64, 128, 256, 512, 1024)
TIE = 0.97  # a larger micro-batch wins unless a smaller one is more than 3% faster
SETTLE_S = 0.02  # idle before each turn when runtimes take turns
MAX_RUN_S = 0.1  # candidates whose run would take longer than this are not timed (wgan-gp: up to 64)
CACHE_FILE = "micro-batch.json"
MAX_CACHE_BYTES = 1 << 20  # the plan cache read back: about 3,000 entries; a bigger file is not read (measured again)
MAX_ENTRIES = 512  # plans kept: the oldest go first (a run of this many models on one machine keeps every plan)
MAX_ROUTES = 16
TUNE_FROM_N = 10_000  # generate() measures the plan first (once, cached) from this many samples


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


def cache_key(model: Path, providers: list[str], ort_version: str, asked: str = "") -> str:
    """``asked``: what else decides the plan (the candidate runtimes and their versions, the precision)."""
    st = model.stat()
    return "|".join([str(model.resolve()), str(st.st_size), str(st.st_mtime_ns), cpu_name(), str(os.cpu_count()),
                     ort_version, ",".join(providers), asked, f"threads {getattr(threads.current(), 'intra', '?')}"])


@dataclass(frozen=True)
class Plan:
    """Which runtime runs a run of each size, and the micro-batch."""

    micro_batch: int | None  # None: whole batches (not measured, or nothing to split)
    routes: tuple[tuple[int, str], ...]  # (from size, runtime), ascending: runs of >= that many go to it
    speeds: dict[str, dict[int, float]] = field(default_factory=dict)  # samples/s measured, per runtime and size

    @classmethod
    def single(cls, runtime: str, micro_batch: int | None = None) -> Plan:
        return cls(micro_batch, ((1, runtime),))

    def runtime(self, size: int) -> str:
        chosen = self.routes[0][1]
        for start, name in self.routes:
            if size >= start:
                chosen = name
        return chosen

    @property
    def runtimes(self) -> list[str]:
        return list(dict.fromkeys(name for _, name in self.routes))

    def describe(self) -> str:
        """One line: ``openvino for runs of 64+, onnxruntime below; micro-batch 256``."""
        if len(self.routes) == 1:
            text = self.routes[0][1]
        else:
            spans = []
            for k, (start, name) in enumerate(self.routes):
                end = self.routes[k + 1][0] - 1 if k + 1 < len(self.routes) else None
                spans.append(f"{name} for runs of {start}" + ("+" if end is None else f"-{end}" if end > start else ""))
            text = ", ".join(spans)
        return text + (f"; micro-batch {self.micro_batch}" if self.micro_batch else "")

    def to_json(self) -> dict:
        return {"micro_batch": self.micro_batch, "routes": [list(r) for r in self.routes],
                "samples_per_s": {name: {str(k): round(v) for k, v in sizes.items()}
                                  for name, sizes in self.speeds.items()}}

    @classmethod
    def from_json(cls, entry, known: set[str]) -> Plan | None:
        """The plan of a cache entry; None for an entry this version cannot use (it measures again)."""
        try:
            micro = entry["micro_batch"]
            routes = tuple((int(start), str(name)) for start, name in entry["routes"])
        except (KeyError, TypeError, ValueError):
            return None
        if not routes or len(routes) > MAX_ROUTES or not (isinstance(micro, int) and not isinstance(micro, bool)
                                                          and 1 <= micro <= 1 << 20):
            return None
        if any(n not in known for _, n in routes):
            return None
        if any(start < 1 for start, _ in routes) or [s for s, _ in routes] != sorted({s for s, _ in routes}):
            return None
        return cls(micro, routes)


def _cache_file() -> Path:
    """The plan cache; refused in one line where it is a link that leaves the cache folder."""
    return inside(cache_dir(), cache_dir() / CACHE_FILE, what="the cache folder", fix="remove the link")


def _read() -> dict:
    """The plan cache as a dict; ``{}`` (measure again) for none, and for anything that is not a
    small regular file of JSON: the cache is untrusted input, and reading it never blocks (a FIFO),
    never reads without bound (a link to /dev/zero, a file of gigabytes) and never recurses deep."""
    import stat

    try:
        fd = os.open(_cache_file(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CACHE_BYTES:
                return {}
            raw = f.read(MAX_CACHE_BYTES + 1)
        if len(raw) > MAX_CACHE_BYTES:
            return {}
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged one: measure again
        return {}
    return data if isinstance(data, dict) else {}


def cached(key: str, known: set[str]) -> Plan | None:
    """The stored plan of ``key`` whose runtimes are all in ``known``; None when there is none."""
    entry = _read().get(key)
    return Plan.from_json(entry, known) if isinstance(entry, dict) else None


def store(key: str, plan: Plan) -> bool:
    """Remember ``plan`` for ``key``; False (and nothing written) where the cache folder is not writable."""
    data = _read()
    data.pop(key, None)
    data[key] = plan.to_json()  # the newest last: the oldest are evicted first
    for old in list(data)[: max(0, len(data) - MAX_ENTRIES)]:
        del data[old]
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_text(_cache_file(), json.dumps(data, indent=1) + "\n")
    except OSError:
        return False
    return True


def tune(runs: Mapping[str, Callable[[np.ndarray], object]], latent_dim: int,
         candidates: tuple[int, ...] = CANDIDATES, budget_s: float = 0.1) -> Plan:
    """Time each of ``runs`` (runtime name -> one run on a noise batch; the first is preferred on
    a tie) at size 1 and at each candidate size, all in turns; return the plan."""
    rng = np.random.default_rng(0)
    calls = {}
    sizes = (1, *sorted(candidates))
    for name, run in runs.items():
        per_sample = None
        for size in sizes:
            if per_sample is not None and size * per_sample > MAX_RUN_S:
                break  # runs this long already amortise the per-run overhead: no need to time bigger ones
            z = rng.standard_normal((size, latent_dim), dtype=np.float32)
            calls[name, size] = functools.partial(run, z)
            if per_sample is None and size > 1:  # a single sample's time is mostly the run's overhead
                run(z)  # a runtime's first run of a size can be many times slower (OpenVINO's, notably)
                t0 = timing.clock()
                run(z)
                per_sample = (timing.clock() - t0) / size
        # the others are timed at the sizes the first (onnxruntime, under the memory cap) ran, no bigger
        sizes = tuple(size for (_, size) in calls)
    # two runtimes taking turns: each turn starts after a pause and an untimed run, or onnxruntime's
    # still-spinning threads slow the other's next runs (docs/bench.md: 1.5x measured after torch)
    settle = SETTLE_S if len(runs) > 1 else 0.0
    stats = timing.measure(calls, 1, budget_s=budget_s, min_repeats=3, max_repeats=50, warmup=1, rounds=3,
                           settle_s=settle)
    speeds: dict[str, dict[int, float]] = {name: {} for name in runs}
    for (name, size), st in stats.items():
        speeds[name][size] = size / (st.p50_ms / 1e3)
    return plan_from(speeds, list(runs), candidates)


def plan_from(speeds: dict[str, dict[int, float]], order: list[str], candidates: tuple[int, ...] = CANDIDATES) -> Plan:
    """Routes and micro-batch from measured samples/s (see the module's docstring)."""
    best: dict[int, tuple[str, float]] = {}
    for size in sorted({s for sizes in speeds.values() for s in sizes}):
        timed = [(name, speeds[name][size]) for name in order if size in speeds[name]]
        top = max(v for _, v in timed)
        best[size] = next((name, v) for name, v in timed if v >= TIE * top)  # the first of near ties
    winners = [name for name, _ in best.values()]
    for i in range(1, len(winners) - 1):  # one size won by the other runtime between two of the same: noise
        if winners[i - 1] == winners[i + 1] != winners[i]:
            winners[i] = winners[i - 1]
    routes: list[tuple[int, str]] = []
    for size, name in zip(best, winners):
        if not routes or routes[-1][1] != name:
            routes.append((size, name))
    routes[0] = (1, routes[0][1])
    sizes = {s: v for s, (_, v) in best.items() if s in candidates}
    micro = None
    if sizes:
        top = max(sizes.values())
        micro = max(s for s, v in sizes.items() if v >= TIE * top)
        routes = [r for r in routes if r[0] <= micro]  # runs never exceed the micro-batch
    return Plan(micro, tuple(routes), speeds)


def report(gen, small_job: bool = False) -> list[str]:
    """How the runtime of ``gen`` (a :class:`~ganforge.inference.Generator`) was chosen, a line a
    fact (gan-infer -v, gan-bench's report); ``small_job``: whether the job just run was one below
    :data:`TUNE_FROM_N` samples, which keeps to onnxruntime."""
    lines = [f"model: {gen.path} ({gen.precision}, {gen.device})",
             "candidates: " + ", ".join(f"{name} {p}" for name, p in gen.candidates)]
    if gen.device == "cpu" and gen._spare and runtimes.OPENVINO not in dict(gen.candidates):
        lines[-1] += " (OpenVINO is not installed: pip install 'ganforge[openvino]')"  # auto offers it when it is
    if gen.device != "cpu":
        lines.append("plan: whole batches on the GPU (nothing to measure)")
    elif gen.fixed_batch:
        lines.append(f"plan: runs of {gen.fixed_batch}, the graph's fixed batch, on {gen.plan.describe()}")
    elif gen.plan_source is None:
        lines.append(f"plan: not measured yet: {gen.plan.describe()} (measured on a job of "
                     f"{TUNE_FROM_N:,} samples or more, or by gan-bench, then cached)")
    else:
        where = "measured now" if gen.plan_source == "measured" else f"read from {cache_dir() / CACHE_FILE}"
        lines.append(f"plan ({where}): {gen.plan.describe()}")
        for name, sizes in gen.plan.speeds.items():
            lines.append(f"  {name} samples/s by run size: " + ", ".join(f"{k}: {v:.0f}" for k, v in sizes.items()))
    if small_job and gen._spare and set(gen.plan.runtimes) - set(gen._runners):
        lines.append("this job is small: it kept to onnxruntime (opening another runtime costs more than it saves)")
    lines.append(f"ran on: {', '.join(sorted(gen.used)) or 'nothing yet'}")
    return lines


def runtime_text(gen) -> str:
    """What runs ``gen``, in words: ``onnxruntime (CPUExecutionProvider)``, or the measured plan."""
    precision = dict(gen.candidates)
    names = sorted(gen.used or set(gen.plan.runtimes))
    where = ", ".join(f"{n} {precision.get(n, 'fp32')}" if precision.get(n, "fp32") != "fp32" else n for n in names)
    if gen.measured and len(gen.plan.runtimes) > 1:
        return f"{where} ({gen.plan.describe()})"
    return f"{where} ({', '.join(gen.providers)})" if names == [runtimes.ONNXRUNTIME] else where
