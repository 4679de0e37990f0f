"""Big jobs in shards: samples ``start:stop`` of a seed cut into fixed ranges, each written whole
under its final name, beside a ``manifest.json`` (:mod:`~ganforge.inference.manifest`); a rerun
makes only the shards not there yet.

A :class:`ShardJob` says what a folder holds (model, seed, range, form, shard size, labels,
options); :func:`compute_shard` makes one shard's bytes in memory from an open
:class:`~ganforge.inference.Generator`, :func:`commit_shard` puts them in place (never over a
complete shard), :func:`run_local` does both for the missing shards, in this process or in N local
worker processes. Any other runner (Ray) calls the same two functions, so the files are the same.

Shard ``k`` holds samples ``k * shard_size`` to ``(k + 1) * shard_size`` of the seed (cut to the
range): names are fixed by the seed's indices, not by the job's start. A shard's samples are those
of ``Generator.generate(count, seed, start=shard.start)`` (:mod:`~ganforge.inference.keyed`).

Torch-free, no CLI state: everything a worker needs is in the job (it pickles).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError, WriteError
from ganforge.fsutil import atomic_dir, atomic_path
from ganforge.inference import keyed, manifest, workers as pool
from ganforge.inference.control import Control
from ganforge.inference.disk import check_space, npy_header, npy_size
from ganforge.inference.render import SERIES_CELL, check_finite, png_bytes, sample_images, scaled
from ganforge.limits import check_memory
from ganforge.values import check_count, check_scale, check_seed, check_start

FORMS = ("npy", "png")  # what a shard is: one .npy file, or a folder of one PNG a sample
SHARD_SIZE = 10 * keyed.BLOCK  # samples a shard by default (10,240) ...
SHARD_BYTES = 64 << 20  # ... or fewer, so that a shard's float32 samples stay within 64 MiB
MAX_SHARDS = 100_000  # shards a job may have: the manifest lists them all
NAME_DIGITS = 6  # shard-000123
WRITE_CHUNK = 1 << 20  # bytes a write() of a shard's file


def default_shard_size(sample_shape) -> int:
    """:data:`SHARD_SIZE`, or for big samples fewer: a multiple of :data:`keyed.BLOCK` (or, for
    samples so big that a block would not fit, a power of two dividing it) within :data:`SHARD_BYTES`."""
    per_sample = 4 * math.prod(sample_shape)
    fits = max(1, SHARD_BYTES // per_sample)
    if fits >= keyed.BLOCK:
        return min(SHARD_SIZE, fits // keyed.BLOCK * keyed.BLOCK)
    return 1 << (fits.bit_length() - 1)


@dataclass(frozen=True)
class Shard:
    """Samples ``start:stop`` of the job's seed, shard number ``index``, of ``form`` ("npy" or "png")."""

    index: int
    start: int
    stop: int
    form: str = "npy"

    @property
    def name(self) -> str:
        """``shard-000123.npy``, or ``shard-000123`` (a folder of PNGs)."""
        stem = f"shard-{self.index:0{NAME_DIGITS}d}"
        return f"{stem}.npy" if self.form == "npy" else stem

    @property
    def count(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ShardData:
    """A shard's content in memory: ``npy`` the .npy file's bytes, or ``files`` its PNGs as
    (file name, PNG bytes), in order."""

    shard: Shard
    npy: bytes | bytearray | None = None
    files: tuple[tuple[str, bytes], ...] = ()

    @property
    def nbytes(self) -> int:
        return len(self.npy) if self.npy is not None else sum(len(b) for _, b in self.files)


@dataclass(frozen=True, kw_only=True)
class ShardJob:
    """Samples ``start:stop`` of ``seed`` from ``model`` (whose sha256 is ``model_sha256``) to the
    folder ``out`` as shards of ``shard_size`` samples of ``form``. ``sample_shape``, ``kind`` and
    ``value_range`` are the model's; ``labels``: the class indices given (the range split among
    them in contiguous blocks, in order), None: drawn (a conditional model) or none;
    ``class_names`` the model's; ``options``: :class:`~ganforge.inference.Generator`'s keyword
    arguments. Usually built by :meth:`from_request` or :meth:`from_folder`."""

    model: str
    model_sha256: str
    seed: int
    start: int
    stop: int
    form: str
    out: Path
    sample_shape: tuple[int, ...]
    kind: str = "image"
    value_range: tuple[float, float] = (-1.0, 1.0)
    shard_size: int | None = None  # None: default_shard_size(sample_shape)
    labels: tuple[int, ...] | None = None
    conditional: bool = False
    class_names: tuple[str, ...] | None = None
    options: Mapping = field(default_factory=dict)  # Generator's keywords that make the samples (not device)
    device: str = "auto"  # where workers run it: not part of what the folder holds
    batch_size: int | None = None  # samples a run (None: chunks sized for memory): the same samples either way
    scale: int = 1  # PNGs this many times larger a side, nearest neighbour (png only)
    control: Control | None = None  # truncation and edits of the noise (ganforge.inference.control)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "model", os.fspath(self.model))
        set_(self, "out", Path(self.out))
        set_(self, "seed", check_seed(self.seed))
        set_(self, "start", check_start(self.start, "the range's start"))
        set_(self, "stop", check_start(self.stop, "the range's stop"))
        if self.stop <= self.start:
            raise GanforgeError(f"the range's stop must be greater than its start, got {self.start}:{self.stop}")
        if self.form not in FORMS:
            raise GanforgeError(f"unknown shard format {self.form!r}; use one of: {', '.join(FORMS)}")
        sha = str(self.model_sha256)
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise GanforgeError(f"model_sha256 must be 64 lowercase hex digits, got {sha[:80]!r}")
        set_(self, "sample_shape", tuple(check_count(d, "a sample dimension") for d in self.sample_shape))
        set_(self, "value_range", tuple(float(v) for v in self.value_range))
        size = default_shard_size(self.sample_shape) if self.shard_size is None else check_count(
            self.shard_size, "the shard size")
        set_(self, "shard_size", size)
        set_(self, "labels", None if self.labels is None else tuple(int(i) for i in self.labels))
        set_(self, "class_names", None if self.class_names is None else tuple(self.class_names))
        set_(self, "options", dict(self.options))
        if "device" in self.options:
            raise GanforgeError("a job's device is its own field (device=...), not one of its options")
        if self.batch_size is not None:
            set_(self, "batch_size", check_count(self.batch_size, "batch size"))
        set_(self, "scale", check_scale(self.scale))
        if self.control is not None and not isinstance(self.control, Control):
            raise GanforgeError("a job's control is a ganforge.inference.control.Control")
        if self.control is not None and not self.control:
            set_(self, "control", None)
        if self.scale != 1 and self.form == "npy":
            raise GanforgeError(f"npy shards hold the samples' values, not pixels: scale {self.scale} is for png "
                                "shards; drop --scale or use --format png")
        self._check_size()

    def _check_size(self) -> None:
        shards = -(-self.stop // self.shard_size) - self.start // self.shard_size
        if shards > MAX_SHARDS:
            raise GanforgeError(f"{self.stop - self.start:,} samples in shards of {self.shard_size:,} make {shards:,} "
                                f"shards, more than {MAX_SHARDS:,}: pass a bigger --shard-size, or split the range")
        per_sample = 8 * math.prod(self.sample_shape)  # a batch's float32 samples and their .npy bytes
        if self.form == "png":  # its PNGs, at most their raw pixels (a series: a drawn cell)
            per_sample = SERIES_CELL[0] * SERIES_CELL[1] * 3 if self.kind == "series" else (
                math.prod(self.sample_shape) * self.scale**2)
        check_memory(f"a {self.form} shard of {self.shard_size:,} samples of shape {list(self.sample_shape)}"
                     + (f" at scale {self.scale}" if self.scale != 1 else ""), self.shard_size * per_sample,
                     "pass a smaller --shard-size")

    @property
    def n(self) -> int:
        return self.stop - self.start

    def shards(self) -> list[Shard]:
        """Every shard of the job, in order: shard ``k`` is samples ``k * shard_size`` on, cut to the range."""
        size = self.shard_size
        return [Shard(k, max(self.start, k * size), min(self.stop, (k + 1) * size), self.form)
                for k in range(self.start // size, -(-self.stop // size))]

    def missing(self) -> list[Shard]:
        """The shards not in ``out`` yet (each is written whole, so one there is complete)."""
        return [s for s in self.shards() if not (self.out / s.name).exists()]

    def name_width(self) -> int:
        """Digits of a PNG's sample number (``sample-00042.png``): the job's last index's, at least 5."""
        return max(5, len(str(self.stop - 1)))

    def png_name(self, index: int) -> str:
        """The file of sample ``index`` of the seed in its PNG shard."""
        return f"sample-{index:0{self.name_width()}d}.png"

    def labels_of(self, start: int, stop: int) -> np.ndarray | None:
        """The class indices of samples ``start:stop`` given to the model: the given labels' blocks
        over the range (as ``generate`` splits them), None when drawn (or for no classes)."""
        if self.labels is None:
            return None
        chosen = np.asarray(self.labels, np.int64)
        return chosen[(np.arange(start, stop, dtype=np.int64) - self.start) * len(chosen) // self.n]

    def manifest(self) -> dict:
        """The manifest this job writes (:mod:`~ganforge.inference.manifest`)."""
        from ganforge import __version__

        if self.labels is not None:
            labels = {"mode": "given", "indices": list(self.labels),
                      "names": [self.class_names[i] for i in self.labels] if self.class_names else None,
                      "split": "contiguous blocks over the range, as even as possible, in order"}
        else:
            labels = {"mode": "drawn" if self.conditional else "none"}
        sample = {"shape": list(self.sample_shape), "dtype": "float32", "value_range": list(self.value_range),
                  "kind": self.kind}
        if self.form == "png":
            sample["png"] = "uint8 = clip(rint((x - low) * 255 / (high - low)), 0, 255)" if self.kind == "image" else \
                "a curve drawn in a cell"
            sample["png_scale"] = self.scale
        return {"format": manifest.FORMAT, "version": manifest.VERSION, "ganforge_version": __version__,
                "scheme": keyed.SCHEME, "block": keyed.BLOCK, "model": Path(self.model).name,
                "model_path": os.path.abspath(self.model), "model_sha256": self.model_sha256, "seed": self.seed,
                "range": [self.start, self.stop], "count": self.n, "form": self.form,
                "shard_size": self.shard_size, "sample": sample, "labels": labels,
                "class_names": None if self.class_names is None else list(self.class_names),
                "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(self.options.items())},
                **({"control": self.control.manifest()} if self.control is not None else {}),
                "shards": [{"index": s.index, "name": s.name, "range": [s.start, s.stop], "count": s.count}
                           for s in self.shards()]}


# --- making a shard, and putting it in place --------------------------------------------------------


def compute_shard(job: ShardJob, shard: Shard, gen) -> ShardData:
    """The content of ``shard`` of ``job`` in memory, made by ``gen`` (an open
    :class:`~ganforge.inference.Generator` of the job's model): samples ``shard.start:shard.stop``
    of the seed, checked finite; a .npy file's bytes, or a PNG a sample."""
    labels = job.labels_of(shard.start, shard.stop)
    batches = gen.iter_batches(shard.count, job.seed, job.batch_size, labels, start=shard.start, control=job.control)
    if job.form == "npy":  # the file's bytes, the samples written straight into them: one copy in memory
        header = npy_header(shard.count, job.sample_shape)
        buffer = bytearray(npy_size(shard.count, job.sample_shape))
        buffer[: len(header)] = header
        samples = np.frombuffer(buffer, np.float32, offset=len(header)).reshape(shard.count, *job.sample_shape)
    files: list[tuple[str, bytes]] = []
    done = shard.start
    for batch in batches:
        check_finite(batch, done)
        if tuple(batch.shape[1:]) != job.sample_shape:
            raise GanforgeError(f"{job.model} gives samples of shape {list(batch.shape[1:])}, the job's are "
                                f"{list(job.sample_shape)}: open the job's own model")
        if job.form == "npy":
            samples[done - shard.start : done - shard.start + len(batch)] = batch
        else:
            for i, image in enumerate(sample_images(batch, job.kind, job.value_range)):
                files.append((job.png_name(done + i), png_bytes(scaled(image, job.scale))))
        done += len(batch)
    if done != shard.stop:
        raise GanforgeError(f"{shard.name}: made samples {shard.start}:{done}, expected {shard.start}:{shard.stop}")
    return ShardData(shard, npy=buffer) if job.form == "npy" else ShardData(shard, files=tuple(files))


def _same_content(path: Path, data: ShardData) -> bool:
    if data.npy is not None:
        return path.is_file() and path.stat().st_size == len(data.npy) and path.read_bytes() == data.npy
    if not path.is_dir() or sorted(p.name for p in path.iterdir()) != sorted(name for name, _ in data.files):
        return False
    return all((path / name).read_bytes() == content for name, content in data.files)


def commit_shard(job: ShardJob, shard: Shard, data: ShardData) -> None:
    """Put ``data`` (``shard``'s, from :func:`compute_shard`) in ``job.out`` under the shard's name,
    whole: a temporary beside, then linked or renamed into place, never over a complete shard. One
    that appeared meanwhile with the same bytes is fine; with other bytes it is a GanforgeError."""
    if data.shard != shard or (data.npy is None) != (job.form == "png"):
        raise GanforgeError(f"the data given for {shard.name} is {data.shard.name}'s")
    path = job.out / shard.name
    try:
        job.out.mkdir(parents=True, exist_ok=True)
        if data.npy is not None:
            with atomic_path(path, exclusive=True) as tmp, open(tmp, "wb") as f:
                view = memoryview(data.npy)
                for at in range(0, len(view), WRITE_CHUNK):  # in pieces: one 32 MB write measured 10x slower here
                    f.write(view[at : at + WRITE_CHUNK])
                f.flush()
                os.fsync(f.fileno())  # a shard under its name holds its bytes, even after a power cut
        else:
            with atomic_dir(path, exclusive=True) as tmp:
                for name, content in data.files:
                    (tmp / name).write_bytes(content)
    except FileExistsError:
        if not _same_content(path, data):
            raise GanforgeError(f"{path} is there already with other content than this job makes: the folder was "
                                "written by something else; delete that shard (or the folder) and rerun") from None
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}; free some space or choose a writable --out",
                         path, exc) from None



# --- running a job here -----------------------------------------------------------------------------


def check_job_folder(out: str | os.PathLike[str]) -> None:
    """Refuse, before a model opens, an output that cannot hold a sharded job
    (:func:`ganforge.inference.manifest.check_folder`)."""
    manifest.check_folder(Path(out))


def prepare(job: ShardJob) -> None:
    """Make ``job.out`` ready for the job (:func:`ganforge.inference.manifest.prepare`): a new or
    empty folder gets its manifest; one with a manifest must hold the same job, else a one-line
    refusal naming what differs; what killed runs left is removed. Then the disk must have room
    for the shards still to make (:func:`check_space`)."""
    manifest.prepare(job.out, job.manifest())
    check_space(job, job.missing())


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_local` did: ``made`` shards now, of ``total``; ``samples`` made now."""

    made: int
    total: int
    samples: int
    seconds: float
    workers: int

    @property
    def already(self) -> int:
        return self.total - self.made

    def line(self) -> str:
        """``made 3 of 10 shards, 7 already there``."""
        return f"made {self.made} of {self.total} shards, {self.already} already there"


def open_generator(job: ShardJob):
    """The job's model, open (:class:`~ganforge.inference.Generator`): what a worker runs it on."""
    from ganforge.inference.session import Generator

    return Generator(job.model, job.device, **job.options)


def run_local(job: ShardJob, workers: int = 1, progress: Callable[[int, int, int], None] | None = None, *,
              gen=None) -> JobResult:
    """Make and commit the job's missing shards (after :func:`prepare`): in this process
    (``workers=1``; ``gen``: the job's model already open) or in ``workers`` local processes,
    each opening the model once with its share of the cores and committing the shards it makes
    (:func:`commit_shard` is safe from any process: never over a complete shard), the parent
    handing out a few shards at a time and counting them, so memory does not grow with the job.
    Shipping each shard's bytes back to the parent to be written there halved the workers'
    throughput (benchmarks/results/scale.md); a runner whose workers cannot reach the folder
    (Ray) commits in its driver instead. ``progress(shards_done, shards_to_make, samples_done)``
    after each shard."""
    workers = pool.check_workers(workers)
    began = time.perf_counter()
    prepare(job)
    todo = job.missing()
    total = len(job.shards())
    workers = max(1, min(workers, len(todo)))
    if not todo:
        made = iter(())
    elif workers == 1:
        made = _made_here(job, todo, gen if gen is not None else open_generator(job))
    else:
        made = pool.results(job, todo, workers, _start_worker, _worker_shard)
    samples = 0
    for done, shard in enumerate(made, 1):
        samples += shard.count
        if progress is not None:
            progress(done, len(todo), samples)
    return JobResult(len(todo), total, samples, time.perf_counter() - began, workers)


def _made_here(job: ShardJob, todo: list[Shard], gen):
    """Each shard made and committed in this process, one in memory at a time."""
    for shard in todo:
        commit_shard(job, shard, compute_shard(job, shard, gen))
        yield shard


_worker_gen = None  # a worker process's open model


def _start_worker(job: ShardJob) -> None:
    global _worker_gen
    _worker_gen = open_generator(job)


def _worker_shard(job: ShardJob, shard: Shard) -> Shard:
    """In a worker: the shard made and committed; only its name goes back."""
    commit_shard(job, shard, compute_shard(job, shard, _worker_gen))
    return shard
