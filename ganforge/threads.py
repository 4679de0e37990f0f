"""How many threads a command computes on: chosen from the work's size and the cores this process
really has, never inherited from the host's core count.

Ground floor and torch-free (``ganforge.inference`` uses it): torch is handed in by the caller
(:func:`apply_torch`), onnxruntime's options too (:func:`apply_ort`).

Why it matters (issue 26, measured in benchmarks/results/threads.md): torch and onnxruntime start
one thread per core the host has, and their threads spin while they wait for each other. On a
machine whose cores are busy with other work, one descheduled thread stalls all the others at
every operation: on 2 busy cores 30 sine epochs took 56 s with torch's default threads and 3.8 s
with one. A tiny model (the sine MLP) is fastest on one thread even on a quiet machine: its
operations are too small to split.

The choice, first that applies:

1. ``--threads N`` (:func:`use`; every command has it) or ``GANFORGE_THREADS=N``;
2. the user's own setting: ``OMP_NUM_THREADS``, or ``torch.set_num_threads`` called before;
3. the work's size: below :data:`TINY_WORK` multiply-adds per step, one thread;
4. else the cores available (affinity and cgroup quota, :func:`available_cores`) less those busy
   with other work (:func:`idle_cores`, from ``/proc/stat`` over a tenth of a second), at least one.

Inter-op threads are 1 (nothing ganforge runs has independent operators to run side by side), and
on a busy machine onnxruntime's threads do not spin.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError

ENV = "GANFORGE_THREADS"
# Multiply-adds per training step (parameters x batch, exact for an MLP, a floor for a conv net) below
# which one thread is used whatever the load: its operations are too small to split. It lies between
# sine (8,577 parameters x 32 = 0.27 M; one thread was faster than torch's two in every measurement,
# benchmarks/results/threads.md) and the next smallest default, dcgan (0.54 M x 64 = 34 M; mnist-mlp
# 0.55 M x 100 = 55 M). Where between is not measured yet: no quiet machine was to be had (see the report).
TINY_WORK = 4_000_000
BUSY_WINDOW_S = 0.1  # how long /proc/stat is watched for the other work on the cores
MAX_LOADER_WORKERS = 8

_requested: int | None = None  # --threads, for this process
_torch_set: int | None = None  # what apply_torch last set (to tell it from the user's own setting)
_current: Choice | None = None  # the last choice applied in this process


@dataclass(frozen=True)
class Choice:
    """Threads for one command: ``intra`` (within an operator), ``inter`` (operators side by side)."""

    intra: int
    inter: int
    reason: str  # why, in a few words, for -v and train.log
    cores: int = 1  # available to this process (affinity, cgroup quota)
    idle: float | None = None  # of those, idle when measured (None: not measured)
    source: str = "auto"  # auto, option (--threads), env (GANFORGE_THREADS), omp, torch (the user's), run (a resume)

    @property
    def busy(self) -> bool:
        """Other work holds some of the cores: threads should yield, not spin."""
        return self.idle is not None and self.idle < self.cores - 0.5

    def __str__(self) -> str:
        return f"threads: {self.intra} intra-op, {self.inter} inter-op ({self.reason})"

    def loader_workers(self) -> int:
        """DataLoader worker processes within the same budget: the free cores the compute threads leave."""
        free = self.cores if self.idle is None else min(self.cores, int(self.idle + 0.5))
        return max(0, min(MAX_LOADER_WORKERS, free - self.intra))


def check_threads(value, what: str = "--threads") -> int:
    """A thread count: a positive whole number (text or int), else a one-line GanforgeError."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise GanforgeError(f"{what} must be a whole number >= 1 (threads to compute on), got {value!r}")
    return int(text)


def use(n: int | None) -> None:
    """``--threads N`` for the rest of this process (None: choose)."""
    global _requested
    _requested = None if n is None else check_threads(n)


def requested() -> int | None:
    return _requested


def current() -> Choice | None:
    """The last choice applied in this process (None: none yet)."""
    return _current


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup (v2 path, v1 cpu controller path) from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        for line in proc_cgroup.read_text().splitlines():
            hid, controllers, path = (line.split(":", 2) + ["", ""])[:3]
            if hid == "0" and controllers == "":
                v2 = path
            elif "cpu" in controllers.split(","):
                v1 = path
    except OSError:
        pass
    return v2, v1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_quota(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (quota / period; the smallest on the way up to
    the root), None when there is none. cgroup v2 ``cpu.max`` ("max 100000" or "200000 100000"), else
    v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none)."""
    v2, v1 = _cgroup_paths(proc_cgroup)
    limits = []

    def ancestors(base: Path, path: str | None):
        parts = [p for p in (path or "").split("/") if p]
        for i in range(len(parts), -1, -1):
            yield base.joinpath(*parts[:i])

    for folder in ancestors(root, v2):
        text = _read(folder / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
                limits.append(int(quota) / int(period))
    for base in (root / "cpu", root / "cpu,cpuacct"):
        for folder in ancestors(base, v1):
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if quota and period and quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0 < int(period):
                limits.append(int(quota) / int(period))
    return min(limits) if limits else None


def affinity() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def available_cores(cpus: set[int] | None = None, quota: float | None = -1.0) -> int:
    """Cores this process can compute on: its affinity, capped by the cgroup quota (rounded up), at
    least 1. ``quota`` -1: read it (:func:`cgroup_quota`)."""
    cpus = affinity() if cpus is None else cpus
    quota = cgroup_quota() if quota == -1.0 else quota
    n = len(cpus) or 1
    if quota is not None:
        n = min(n, math.ceil(quota - 1e-9))
    return max(1, n)


def _cpu_times(stat: Path, cpus: set[int]) -> tuple[float, float] | None:
    """(idle, total) jiffies of ``cpus`` from /proc/stat."""
    text = _read(stat)
    if text is None:
        return None
    idle = total = 0
    found = False
    for line in text.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        numbers = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        idle += numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
        total += sum(numbers)
        found = True
    return (idle, total) if found else None


def _own_running(task: Path = Path("/proc/self/task")) -> int:
    """This process's threads running or runnable now (state R), at least 1 (the caller)."""
    count = 0
    try:
        for folder in task.iterdir():
            text = _read(folder / "stat") or ""
            if text[text.rfind(")") + 2 : text.rfind(")") + 3] == "R":  # "pid (name) S ...": the state
                count += 1
    except OSError:
        pass
    return max(1, count)


def runnable(stat: Path = Path("/proc/stat"), samples: int = 5, gap: float = 0.0005, sleep=time.sleep,
             own=None) -> int | None:
    """Threads of other processes runnable on the host now: the least of ``samples`` reads, ``gap``
    seconds apart, of ``procs_running`` (``/proc/stat``) less this process's own running threads
    (a library's pool still busy from its start); a few milliseconds in all, so a process that only
    passes by is not counted. None when it cannot be read."""
    own = own or _own_running
    least = None
    for i in range(samples):
        if i:
            sleep(gap)
        for line in (_read(stat) or "").splitlines():
            if line.startswith("procs_running "):
                value = line.split()[1]
                if value.isdigit():
                    others = max(0, int(value) - own())
                    least = others if least is None else min(least, others)
                break
        else:
            return None
    return least


def idle_cores(cpus: set[int] | None = None, window: float = BUSY_WINDOW_S, stat: Path = Path("/proc/stat"),
               sleep=time.sleep) -> float | None:
    """How many of ``cpus`` sat idle over ``window`` seconds (this process sleeps meanwhile, so what
    ran was other work). ``window`` 0: from the threads runnable now (:func:`runnable`, a few
    milliseconds), else the load average; a host-wide count is taken as spread evenly over the
    host's CPUs. None when nothing can be read."""
    cpus = affinity() if cpus is None else cpus
    before = _cpu_times(stat, cpus) if window > 0 else None
    if before is not None:
        sleep(window)
        after = _cpu_times(stat, cpus)
        if after is not None and after[1] > before[1]:
            return len(cpus) * (after[0] - before[0]) / (after[1] - before[1])
    share = len(cpus) / max(len(cpus), os.cpu_count() or 1)  # our CPUs' part of a host-wide count
    others = runnable(stat, sleep=sleep) if window <= 0 else None
    if others is None:
        try:
            others = os.getloadavg()[0]  # the last minute's: counts what just ended, a poorer guide
        except (AttributeError, OSError):
            return None
    return max(0.0, len(cpus) - others * share)


@functools.lru_cache(maxsize=1)
def _cores() -> int:
    return available_cores()


_idle: list[float | None] = []  # measured once a process: a command decides once


def _measured_idle(cores: int, window: float) -> float | None:
    if not _idle:
        idle = idle_cores(window=window)
        _idle.append(None if idle is None else min(float(cores), idle))
    return _idle[0]


def _env_count(env: Mapping[str, str], name: str, strict: bool) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if strict:
        return check_threads(value, name)
    try:
        return check_threads(value.split(",")[0], name)  # OMP_NUM_THREADS may list nesting levels: 4,2
    except GanforgeError:
        return None  # not ours to refuse: the OpenMP runtime reads it as it sees fit


def choose(work: float | None = None, *, what: str = "", requested: int | None = None,
           env: Mapping[str, str] | None = None, torch_threads: int | None = None,
           cores: int | None = None, idle: float | None = None, measure: bool = True,
           window: float = BUSY_WINDOW_S, keep: int | None = None, steady: bool = False) -> Choice:
    """The threads for ``work`` multiply-adds per step (None: unknown), ``what`` naming it for the
    reason ("8,577 parameters x 32"). ``torch_threads``: what torch has now, to honour the user's own
    ``torch.set_num_threads``. ``cores``/``idle``: given instead of read (tests); ``measure``: watch
    the cores for ``window`` seconds (once a process) when the choice depends on how idle they are.

    On a CPU the thread count changes the last bits of some results (a dcgan step's convolutions):
    ``keep`` (a resumed run's own count, :func:`recorded`) is used unless the user set one, so that a
    resume computes as its run did; ``steady`` (``--deterministic``) leaves the load out of the choice,
    so that runs repeat bit for bit on a machine however busy it is."""
    env = os.environ if env is None else env
    requested = _requested if requested is None else check_threads(requested)
    cores = _cores() if cores is None else cores
    share = _env_count(env, "LOCAL_WORLD_SIZE", strict=False) or 1  # torchrun: the cores split between processes
    if share > 1:
        cores = max(1, cores // share)

    def made(n: int, reason: str, source: str) -> Choice:
        return Choice(n, 1, reason, cores=cores, idle=idle, source=source)

    if requested is not None:
        return made(requested, f"--threads {requested}" + _over(requested, cores), "option")
    if (n := _env_count(env, ENV, strict=True)) is not None:
        return made(n, f"{ENV}={n}" + _over(n, cores), "env")
    if (n := _env_count(env, "OMP_NUM_THREADS", strict=False)) is not None:
        return made(n, f"OMP_NUM_THREADS={n}, yours", "omp")
    if torch_threads is not None and torch_threads not in (len(affinity()), _torch_set):
        return made(torch_threads, f"torch.set_num_threads({torch_threads}), yours", "torch")
    if keep is not None:
        return made(keep, f"the run's own {keep}: a resume computes as the run did", "run")
    if work is not None and work < TINY_WORK:
        return made(1, f"a tiny model: {what or f'{work:,.0f} multiply-adds a step'}", "auto")
    if steady:
        return made(cores, f"{cores} core{'s' if cores != 1 else ''} available; --deterministic: whatever the load",
                    "auto")
    if idle is None and measure:
        idle = _measured_idle(cores * share, window)
    if idle is not None:
        idle = min(float(cores), idle / share)
    host = os.cpu_count() or cores
    of = (f"{cores} core{'s' if cores != 1 else ''} available" + (f" (of the host's {host})" if host > cores else "")
          + (f" to {share} processes" if share > 1 else ""))
    if idle is None:
        return made(cores, of, "auto")
    free = max(1, min(cores, int(idle + 0.5)))
    if free < cores:
        return made(free, f"{cores - idle:.1f} of the {of} busy with other work", "auto")
    return made(cores, f"{of}, idle", "auto")


def recorded(config_json) -> int | None:
    """The intra-op threads a run recorded in its config.json ("threads"), None when it has none."""
    import json

    try:
        value = json.loads(Path(config_json).read_text()).get("threads")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _over(n: int, cores: int) -> str:
    return f"; more than the {cores} cores available" if n > cores else ""


def _applied(choice: Choice) -> Choice:
    global _current
    _current = choice
    return choice


def apply_torch(torch, work: float | None = None, what: str = "", log=None, **how) -> Choice:
    """Choose for ``work`` (``how``: :func:`choose`'s ``keep`` and ``steady``) and set torch's threads
    (``torch`` is the module, handed in). Inter-op threads cannot change once torch has run parallel
    work: then they stay, and the reason says so."""
    global _torch_set
    choice = choose(work, what=what, torch_threads=torch.get_num_threads(), **how)
    if torch.get_num_threads() != choice.intra:
        torch.set_num_threads(choice.intra)
    _torch_set = choice.intra
    try:
        if torch.get_num_interop_threads() != choice.inter:
            torch.set_num_interop_threads(choice.inter)
    except RuntimeError:  # "cannot set number of interop threads after parallel work has started"
        inter = torch.get_num_interop_threads()
        choice = Choice(choice.intra, inter, f"{choice.reason}; inter-op kept at {inter}: already started",
                        cores=choice.cores, idle=choice.idle, source=choice.source)
    if log is not None:
        log(str(choice))
    return _applied(choice)


def for_model_file(path) -> Choice:
    """The choice for an ONNX generator: its weights (bytes / 4) times a run of :data:`INFER_RUN` samples."""
    try:
        params = os.stat(path).st_size / 4
    except (OSError, TypeError):
        return choose()
    return choose(params * INFER_RUN, what=f"about {params:,.0f} parameters", window=INFER_WINDOW_S)


INFER_RUN = 256  # samples a run, about, for the work of an inference session
INFER_WINDOW_S = 0.0  # gan-infer starts in 0.25 s: a 50 ms watch cost it 18%, so it counts the runnable threads


def apply_ort(options, choice: Choice | None) -> Choice | None:
    """Set onnxruntime ``SessionOptions``' threads from ``choice``; on a busy machine its threads
    yield instead of spinning."""
    if choice is None:
        return None
    options.intra_op_num_threads = choice.intra
    options.inter_op_num_threads = choice.inter
    if choice.busy or choice.intra == 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return _applied(choice)


def openvino_config(choice: Choice | None) -> dict[str, object]:
    """OpenVINO compile_model properties for ``choice``."""
    if choice is None:
        return {}
    _applied(choice)
    return {"INFERENCE_NUM_THREADS": choice.intra}


def loader_workers() -> int:
    """DataLoader workers for this process: within the last choice's core budget (one made now if none)."""
    return (_current or choose()).loader_workers()


def threads_option(command):
    """``--threads N`` on a click command: sets :func:`use` for the process (the command does not
    receive it). Its help is the same everywhere."""
    import click

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            use(check_threads(value))
        except GanforgeError as exc:
            raise click.BadParameter(str(exc)) from None
        return None

    return click.option("--threads", metavar="N", callback=callback, expose_value=False, is_eager=True,
                        help=f"Threads to compute on (default: chosen from the model's size and the idle cores; "
                             f"${ENV} sets it too; OMP_NUM_THREADS is honoured). -v says the choice.")(command)
