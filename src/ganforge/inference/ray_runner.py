"""A sharded job on a Ray cluster (``gan-infer ... --out DIR/ --ray [ADDRESS]``): the same shards
as :func:`~ganforge.inference.shards.run_local`, made by Ray actors.

Each actor (:class:`ShardMaker`) opens the job's ONNX model once and makes whole shards with
:func:`~ganforge.inference.shards.compute_shard`. An actor that sees the job's folder (a shared
filesystem, or the driver's own machine: it finds there a probe file with a token only this job
knows) puts each shard in place itself with :func:`~ganforge.inference.shards.commit_shard` and
sends back only its name, as local workers do; one that does not sends the shard's bytes back to
the driver, which commits them. ``commit_shard`` never writes over a complete shard, from any
process, so either way the folder and its manifest are byte for byte those of a local run, and a
rerun (after a kill, or on a partly deleted folder) makes only the missing shards.

What moves to the workers: the ONNX file's bytes, once, through Ray's object store (no shared
filesystem needed for the model; a worker keeps them in its ganforge cache under their sha256 and checks it),
and the job (a small frozen dataclass). The workers need ganforge (lean), onnxruntime and ray;
never torch. A dead worker process is Ray's to restart (``max_restarts``, with its tasks retried,
``max_task_retries``); what Ray gives up on, the driver hands to another actor, a bounded number
of times.

Ray is imported only here and only when a job runs on it (the ``ray`` extra).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import secrets
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ganforge import threads
from ganforge.errors import GanforgeError, MissingExtraError
from ganforge.fsutil import atomic_path, cache_dir, remove_leftovers, staging
from ganforge.inference import runtimes, tuning
from ganforge.inference.shards import (JobResult, Shard, ShardData, ShardJob, commit_shard, compute_shard,
                                       open_generator, prepare)

RETRIES = 3  # Ray restarts a dead actor this many times (retrying its tasks); the driver resubmits a shard as often
IN_FLIGHT = 2  # shards an actor may have handed out at once: one being made, one waiting
READY_S = 300.0  # seconds the actors may take to start and open the model
MAX_ACTORS = 4096
MAX_MODEL_BYTES = 2 << 30  # an ONNX file holds at most 2 GiB (protobuf's limit): what ships to the workers
PROBE = "ray-probe"  # the file in the job folder's staging folder whose token tells an actor it sees the folder


def import_ray():
    """The ray module, or a one-line MissingExtraError naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("gan-infer --ray", "ray", exc) from None
    return ray


# --- on the workers -------------------------------------------------------------------------------


def local_model(name: str, sha256: str, content: bytes) -> Path:
    """The model file on this worker: ``content`` (whose sha256 is ``sha256``) kept in the ganforge
    cache as ``ray-models/<sha256><suffix of name>``, written whole once; reused when there."""
    suffix = ".int8.onnx" if name.endswith(".int8.onnx") else ".onnx"
    path = cache_dir() / "ray-models" / f"{sha256}{suffix}"
    if hashlib.sha256(content).hexdigest() != sha256:
        raise GanforgeError(f"the model's bytes reached this worker changed (sha256 is not {sha256[:12]}...)")
    if not (path.is_file() and path.stat().st_size == len(content)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(content)
    return path


def sees_folder(probe: tuple[str, str] | None) -> bool:
    """Whether this process sees the driver's job folder: ``probe`` is ``(path, token)`` of a small
    regular file the driver wrote there (None: the driver asks for the bytes back)."""
    if probe is None:
        return False
    path, token = probe
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return False
            return f.read(len(token) + 1) == token.encode()
    except OSError:
        return False


class ShardMaker:
    """A Ray actor (the class is made remote by :func:`run_ray`): the job's model opened once, from
    its bytes, on ``n_threads`` threads, at its first call (again after a restart); :meth:`make`
    computes one shard. ``model`` is ``[ref]`` (Ray passes a ref in a list as it is) to the
    ``(name, sha256, bytes)`` the driver put once; it is a call's argument, not the constructor's, so
    a restarted actor needs nothing the driver no longer holds. An error opening the model is kept
    and told by :meth:`ready`, so the driver says it in one line instead of retrying. ``probe``
    (:func:`sees_folder`): an actor that sees the job's folder commits its shards there and returns
    only the :class:`~ganforge.inference.shards.Shard`; else it returns the shard's
    :class:`~ganforge.inference.shards.ShardData` for the driver to commit. Checked once a process,
    so an actor Ray restarts on another node checks again."""

    def __init__(self, job: ShardJob, n_threads: int, probe: tuple[str, str] | None = None):
        self.job, self.n_threads, self.probe = job, n_threads, probe
        self.gen = self.error = self.commits = None

    def _open(self, model: list) -> None:
        if self.gen is not None or self.error is not None:
            return
        import ray

        try:
            threads.use(self.n_threads)
            name, sha, content = ray.get(model[0])
            self.job = dataclasses.replace(self.job, model=os.fspath(local_model(name, sha, content)))
            self.gen = open_generator(self.job)
            if self.job.n >= tuning.TUNE_FROM_N and self.job.batch_size is None and not self.gen.measured:
                self.gen.tune_micro_batch()  # as a local run does: once per model and node (cached there)
        except GanforgeError as exc:
            self.error = str(exc)
        except ImportError as exc:  # a worker without onnxruntime (or ganforge's lean needs)
            self.error = f"{exc}: install 'ganforge[cpu]' (or 'ganforge[gpu]') on every Ray node"

    def _commits(self) -> bool:
        if self.commits is None:
            self.commits = sees_folder(self.probe)
        return self.commits

    def ready(self, model: list) -> tuple[str | None, int, str, bool]:
        """``(error or None, pid, host, whether it commits its shards)``, the model open."""
        self._open(model)
        return self.error, os.getpid(), socket.gethostname(), self._commits()

    def make(self, shard: Shard, model: list) -> Shard | ShardData:
        self._open(model)
        if self.error is not None:
            raise GanforgeError(self.error)
        data = compute_shard(self.job, shard, self.gen)
        if not self._commits():
            return data
        commit_shard(self.job, shard, data)
        return shard


# --- on the driver --------------------------------------------------------------------------------


def model_payload(job: ShardJob) -> tuple[str, str, bytes]:
    """``(file name, sha256, bytes)`` of the file the job's Generator opens (the int8 file for
    ``precision="int8"``), checked: the model a job names must still be the one its manifest says."""
    precision = job.options.get("precision", "fp32")
    path = runtimes.model_at_precision(Path(job.model), precision)
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise GanforgeError(f"{path} is {size:,} bytes, more than an ONNX file holds (2 GiB): is it the right file?")
        content = path.read_bytes()
    except OSError as exc:
        raise GanforgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    sha = hashlib.sha256(content).hexdigest()
    if path == Path(job.model) and sha != job.model_sha256:
        raise GanforgeError(f"{path} changed since the job was made (sha256 {sha[:12]}..., the job's "
                            f"{job.model_sha256[:12]}...): rerun the command")
    return path.name, sha, content


def check_address(address: str | None) -> str | None:
    """``address`` as given to --ray: None or "" (a local Ray, or ``$RAY_ADDRESS``), "auto", or
    ``[ray://]HOST:PORT``; else a one-line GanforgeError."""
    address = (address or "").strip() or None
    if address is None or address == "auto":
        return address
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise GanforgeError(f"--ray {address!r} is not an address: pass HOST:PORT of the Ray head (as `ray start "
                            "--head` prints it), auto ($RAY_ADDRESS) or nothing (a local Ray)")
    return address


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: ``address``; "auto" and None read ``$RAY_ADDRESS`` (None when unset: a
    local Ray); one given is checked reachable in a second (Ray itself would retry for minutes)."""
    address = check_address(address)
    if address == "auto" or address is None:
        env = check_address(os.environ.get("RAY_ADDRESS"))
        if address == "auto" and env in (None, "auto"):
            raise GanforgeError("--ray auto reads RAY_ADDRESS, which is not set: export RAY_ADDRESS=HOST:PORT, or "
                                "pass --ray HOST:PORT")
        address = None if env == "auto" else env
    if address is not None:
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
        except OSError as exc:
            raise GanforgeError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
                                "`ray start --head`, or check --ray's address") from None
    return address


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address`` (from :func:`resolve_address`; None: start a local Ray).
    True when this call connected (the caller disconnects); False when this process already was."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": "WARNING"}
    try:
        if address is None:
            ray.init(address="local", include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "here (a local Ray)"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise GanforgeError(f"cannot start or join a Ray cluster {where}: {first}") from None
    return True


def actor_count(ray, shards: int, actors: int | None, cpus: float, gpus: float) -> int:
    """``actors``, or as many as the cluster's CPUs (GPUs) hold at ``cpus`` (``gpus``) each; never
    more than there are shards. A cluster that cannot hold one actor is refused in one line."""
    have = ray.cluster_resources()
    have_cpus, have_gpus = float(have.get("CPU", 0)), float(have.get("GPU", 0))
    if have_cpus < cpus or have_gpus < gpus:
        raise GanforgeError(f"the Ray cluster has {have_cpus:g} CPUs and {have_gpus:g} GPUs; an actor asks for "
                            f"{cpus:g} CPUs and {gpus:g} GPUs: lower --ray-cpus/--ray-gpus, or add nodes")
    if actors is None:
        fits = [math.floor(have_cpus / cpus + 1e-9)] if cpus else []
        fits += [math.floor(have_gpus / gpus + 1e-9)] if gpus else []
        actors = min(fits)
    return max(1, min(actors, shards))


@dataclasses.dataclass(frozen=True)
class RayTarget:
    """Where a job runs on Ray (``gan-infer --ray [ADDRESS] --ray-actors N --ray-cpus C --ray-gpus G``):
    the cluster's ``address`` (None: ``$RAY_ADDRESS`` when set, else a local Ray; "auto":
    ``$RAY_ADDRESS``), ``actors`` (None: as many as the cluster holds) of ``cpus`` CPUs and ``gpus`` GPUs."""

    address: str | None = None
    actors: int | None = None
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        actors, cpus, gpus = check_resources(self.actors, self.cpus, self.gpus)
        address = check_address(self.address)
        for name, value in (("address", address), ("actors", actors), ("cpus", cpus), ("gpus", gpus)):
            object.__setattr__(self, name, value)

    def run(self, job: ShardJob, progress: Callable[[int, int, int], None] | None = None) -> JobResult:
        return run_ray(job, self.address, self.actors, self.cpus, self.gpus, progress)


def check_resources(actors, cpus, gpus) -> tuple[int | None, float, float]:
    """Checked actor count and per-actor CPUs and GPUs, else a one-line GanforgeError."""
    try:
        cpus, gpus = float(cpus), float(gpus)
    except (TypeError, ValueError):
        raise GanforgeError(f"CPUs and GPUs per Ray actor are numbers, got {cpus!r} and {gpus!r}") from None
    if not (0 <= cpus <= 1024 and 0 <= gpus <= 64) or cpus + gpus == 0:
        raise GanforgeError(f"an actor asks for 0 to 1024 CPUs and 0 to 64 GPUs, not both 0; got {cpus:g} and {gpus:g}")
    if actors is not None:
        text = str(actors).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ACTORS:
            raise GanforgeError(f"--ray-actors must be a whole number from 1 to {MAX_ACTORS}, got {actors!r}")
        actors = int(text)
    return actors, cpus, gpus


def start_actors(ray, job: ShardJob, model, count: int, cpus: float, gpus: float,
                 probe: tuple[str, str] | None = None) -> tuple[list, list]:
    """``count`` actors spread over the nodes, each with the model open (or a one-line error), and
    ``[ref]`` to the model in the object store, which the driver holds for the job. ``probe``: see
    :class:`ShardMaker`."""
    remote = ray.remote(ShardMaker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=RETRIES,
                                            max_task_retries=RETRIES, scheduling_strategy="SPREAD")
    ref = ray.put(model)  # once into the object store, whatever the number of actors
    n_threads = threads.requested() or max(1, int(cpus))
    makers = [remote.remote(job, n_threads, probe) for _ in range(count)]
    try:
        told = ray.get([m.ready.remote([ref]) for m in makers], timeout=READY_S)
        for error, _, host, _ in told:
            if error:
                raise GanforgeError(f"a Ray worker on {host} cannot open the model: {error}")
    except (GanforgeError, ray.exceptions.GetTimeoutError) as exc:
        for maker in makers:
            ray.kill(maker, no_restart=True)
        if isinstance(exc, GanforgeError):
            raise
        raise GanforgeError(f"the Ray cluster did not start {count} actors of {cpus:g} CPUs and {gpus:g} GPUs in "
                            f"{READY_S:.0f} s: it is busy or too small; pass fewer --ray-actors") from None
    return makers, [ref]


def _cause(ray, exc) -> GanforgeError | None:
    """The GanforgeError a task raised (a bad model, a bad shard): not worth a retry."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, GanforgeError):
        return cause
    return None


def results(ray, makers: list, model: list, shards, resubmits: int = RETRIES):
    """Each shard as it is made (any order): its :class:`~ganforge.inference.shards.Shard` when
    the actor committed it, its :class:`~ganforge.inference.shards.ShardData` when not; at
    most :data:`IN_FLIGHT` an actor handed out. A shard whose task Ray gave up on goes to another
    actor, ``resubmits`` times at most; an error of the job itself ends the run."""
    queue, pending, load, tries = deque(shards), {}, [0] * len(makers), {}
    lost: set[int] = set()  # actors Ray gave up on: handed nothing more
    while queue or pending:
        free = [i for i in range(len(makers)) if i not in lost and load[i] < IN_FLIGHT]
        while queue and free:
            i = min(free, key=load.__getitem__)
            shard = queue.popleft()
            pending[makers[i].make.remote(shard, model)] = (shard, i)
            load[i] += 1
            free = [j for j in free if load[j] < IN_FLIGHT]
        if not pending:
            raise GanforgeError("every Ray actor of this job died; the shards made so far are kept: rerun the same "
                                "command to make the rest")
        ready, _ = ray.wait(list(pending), num_returns=1)
        shard, i = pending.pop(ready[0])
        load[i] -= 1
        try:
            data = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            cause = _cause(ray, exc)
            if cause is not None:
                raise GanforgeError(str(cause)) from None
            tries[shard.index] = tries.get(shard.index, 0) + 1
            if tries[shard.index] > resubmits:
                raise GanforgeError(f"{shard.name} failed {tries[shard.index]} times on Ray ({type(exc).__name__}); "
                                    "the shards made so far are kept: rerun the same command to make the rest") from None
            queue.appendleft(shard)
            if isinstance(exc, ray.exceptions.RayActorError):
                lost.add(i)
            continue
        yield data


def run_ray(job: ShardJob, address: str | None = None, actors: int | None = None, num_cpus_per_actor: float = 1,
            num_gpus_per_actor: float = 0, progress: Callable[[int, int, int], None] | None = None) -> JobResult:
    """Make and commit the job's missing shards on Ray (after :func:`~ganforge.inference.shards.prepare`):
    ``actors`` actors (None: as many as the cluster holds, at most one a shard) of
    ``num_cpus_per_actor`` CPUs and ``num_gpus_per_actor`` GPUs, on the cluster at ``address``
    (:func:`connect`). ``progress(shards_done, shards_to_make, samples_done)`` after each shard,
    as :func:`~ganforge.inference.shards.run_local`. The same folder, byte for byte. Actors that
    see the folder (a probe file in it, :class:`ShardMaker`) commit their shards; the driver
    commits the others'."""
    actors, cpus, gpus = check_resources(actors, num_cpus_per_actor, num_gpus_per_actor)
    if job.device == "cuda" and not gpus:
        raise GanforgeError("--device cuda on Ray needs GPUs for its actors: pass --ray-gpus 1 (or --device auto)")
    ray = import_ray()
    began = time.perf_counter()
    address = None if ray.is_initialized() else resolve_address(address)  # before the folder is touched
    job = dataclasses.replace(job, out=job.out.absolute())  # as actors in other working folders see it
    prepare(job)
    todo, total = job.missing(), len(job.shards())
    if not todo:
        return JobResult(0, total, 0, time.perf_counter() - began, 0)
    model = model_payload(job)
    joined = connect(ray, address)
    makers = []
    try:
        with staging(job.out, PROBE) as folder:
            token = secrets.token_hex(16)
            (folder / PROBE).write_text(token)
            count = actor_count(ray, len(todo), actors, cpus, gpus)
            makers, ref = start_actors(ray, job, model, count, cpus, gpus, (os.fspath(folder / PROBE), token))
            samples = 0
            for done, made in enumerate(results(ray, makers, ref, todo), 1):
                if isinstance(made, ShardData):
                    commit_shard(job, made.shard, made)
                    made = made.shard
                samples += made.count
                if progress is not None:
                    progress(done, len(todo), samples)
    finally:
        for maker in makers:
            ray.kill(maker, no_restart=True)
        if joined:
            ray.shutdown()
    remove_leftovers(job.out)  # what an actor killed mid-commit left (its process gone now)
    return JobResult(len(todo), total, samples, time.perf_counter() - began, count)
