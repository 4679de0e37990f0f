"""Running a generation request: open the model, make the samples, write them, say how.

:func:`run_generation` and :func:`run_walk` take a request checked when it was built
(:mod:`ganforge.inference.request`) and check nothing of it again; :func:`generate` and
:func:`generate_walk` are the Python API, keywords in, a request built, a runner called.
"""

from __future__ import annotations

import os
import time

import numpy as np
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from ganforge.errors import GanforgeError
from ganforge.inference import keyed, labels as labelling
from ganforge.inference.render import check_grid, grid_memory, write_batches
from ganforge.inference.control import Control, sweep_amounts
from ganforge.inference.request import ControlRequest, GenerationRequest, ModelRequest, SweepRequest, WalkRequest
from ganforge.inference.session import Generator
from ganforge.inference.walk import walk_classes, walk_frames, walk_memory, write_walk

EXPORTED = os.path.join("export", "generator.onnx")  # where gan-export puts a run's model


class GenerateResult(Sequence):
    """The files :func:`generate` wrote (a sequence of ``Path``; a folder's names are made
    on demand), and how it made them."""

    def __init__(self, paths: Sequence[Path], *, n: int, model: Path, device: str, providers: list[str],
                 seconds: float, labels: tuple[str, ...] | None = None, conditional: bool = False,
                 runtime: str | None = None, runtime_details: Sequence[str] = (), scheme: str = keyed.SCHEME):
        self._paths = paths
        self.n = n  # samples generated (frames, for a walk)
        # conditional models: the classes asked for, by name, in order (a walk's: where it starts and
        # ends); None when the labels were drawn at random, or the model has no classes
        self.labels = labels
        self.conditional = conditional  # whether the model takes labels
        self.model = model  # the ONNX file
        self.device = device  # "cpu" or "cuda": where onnxruntime really ran
        self.providers = providers  # what the session really got, e.g. ["CPUExecutionProvider"]
        self.seconds = seconds  # wall time: open the model, generate, write
        self.runtime = runtime  # what ran it, in words (Generator.runtime_text)
        self.runtime_details = list(runtime_details)  # how that was chosen (Generator.runtime_report): gan-infer -v
        self.scheme = scheme  # how noise is drawn from (seed, index): keyed.SCHEME, which a manifest records
        self.job = None  # a folder's sharded job: what was made (shards.JobResult)
        self.amounts = None  # a sweep's columns: the amounts along its direction, in steps

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, i):
        return self._paths[i]

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)


def default_model(runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The model commands use when none is named: the latest run's ``export/generator.onnx``, or,
    when that run has none (still training, or never exported), the newest run's that has one,
    with a warning saying which."""
    from ganforge.runs import latest_with

    return latest_with(runs_dir, EXPORTED, what="an export",
                       make="train and export one first (gan-train, then gan-export), or pass --model FILE.onnx")


def open_generator(request: ModelRequest, note: Callable[[str], None] | None = None) -> Generator:
    """The request's generator (its model, else :func:`default_model`), and a foreign model's
    :attr:`Generator.foreign_note` to ``note``, once."""
    model = default_model() if request.model is None else request.model
    gen = Generator(model, **request.generator_options())
    if note is not None and gen.foreign_note:
        note(gen.foreign_note)
    return gen


def control_of(request: ControlRequest, gen: Generator, model: str | os.PathLike[str] | None = None) -> Control | None:
    """The request's :class:`~ganforge.inference.control.Control` for the open ``gen`` (its edits
    read from the model's directions: :mod:`~ganforge.inference.directions`); None without one."""
    if not request.controlled:
        return None
    if not request.edits:
        return Control(request.truncation)
    from ganforge.inference import directions

    found = directions.for_generator(gen, model if model is not None else request.model) if request.directions is None \
        else directions.load(request.model or gen.path, model_sha256=_sha(gen.path),
                             source_checkpoint_sha256=gen.info.source_checkpoint_sha256,
                             latent_dim=gen.info.latent_dim, path=request.directions)
    return found.control(request.truncation, request.edits)


def _sha(path) -> str:
    from ganforge.fsutil import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise GanforgeError(f"cannot read {path}: {exc.strerror or exc}") from None


class _Job(NamedTuple):
    n: int  # samples
    nrow: int | None  # columns of a grid
    chosen: list[int] | None  # the classes asked for, in order
    small_job: bool
    batches: Iterator


def _job(request: GenerationRequest, gen: Generator) -> _Job:
    """What the request makes of this model: a per-class grid's classes are the labels given, else
    all of the model's, and only now is its size known (and checked)."""
    control = control_of(request, gen)
    if request.per_class is None:
        chosen = None if request.labels is None else gen.parse_labels(request.labels)
        labels = None if chosen is None else labelling.blocks(chosen, request.n)
        small = request.small_job()
        return _Job(request.n, request.nrow, chosen, small,
                    gen.stream(request.n, request.seed, request.batch_size, labels, small_job=small,
                               start=request.start, control=control))
    if not gen.info.conditional:
        raise GanforgeError(gen._no_classes("per-class grids"))
    if request.labels is not None:
        classes = gen.parse_labels(request.labels)
    else:
        classes = list(range(gen.info.num_classes))
        check_grid(request.total(len(classes)), request.form)
    small = request.small_job(len(classes))
    batches = gen.stream_per_class(request.per_class, classes, request.seed, request.batch_size, small_job=small,
                                   start=request.start, control=control)
    return _Job(request.total(len(classes)), request.per_class, classes, small, batches)


def _result(gen: Generator, paths, n: int, start: float, chosen, small_job: bool) -> GenerateResult:
    names = None if chosen is None else tuple(gen.info.class_names[i] for i in chosen)
    return GenerateResult(paths, n=n, model=gen.path, device=gen.device, providers=gen.providers,
                          seconds=time.perf_counter() - start, labels=names, conditional=gen.info.conditional,
                          runtime=gen.runtime_text(), runtime_details=gen.runtime_report(small_job))


def run_generation(request: GenerationRequest, *, progress: Callable[[int, int], None] | None = None,
                   note: Callable[[str], None] | None = None,
                   shard_progress: Callable[[int, int, int], None] | None = None) -> GenerateResult:
    """Make and write the request's samples (:func:`generate`); ``progress(done, n)`` follows a
    streamed .npy, ``shard_progress(shards_done, shards_to_make, samples)`` a folder's sharded job
    (:func:`run_sharded`), ``note(line)`` gets a foreign model's note."""
    if request.form == "dir":
        return run_sharded(request, shard_progress=shard_progress, note=note)
    start = time.perf_counter()
    gen = open_generator(request, note)
    job = _job(request, gen)
    if request.form == "png":
        grid_memory(job.n, gen.info.sample_shape, kind=gen.info.kind, scale=request.scale)
    if not job.small_job and request.batch_size is None and not gen.measured:
        gen.tune_micro_batch()  # a second or two, once per model and machine (cached)
    paths = write_batches(request.form, job.batches, job.n, gen.info.sample_shape, request.out, kind=gen.info.kind,
                          nrow=job.nrow, value_range=gen.info.value_range, progress=progress, scale=request.scale)
    return _result(gen, paths, job.n, start, job.chosen, job.small_job)


def run_sharded(request: GenerationRequest, *, shard_progress: Callable[[int, int, int], None] | None = None,
                note: Callable[[str], None] | None = None) -> GenerateResult:
    """A folder request as a sharded job (:mod:`~ganforge.inference.shards`): the shards not in the
    folder yet are made (``request.workers`` processes), the rest kept; its
    :attr:`GenerateResult.job` says how many of each."""
    from ganforge.inference.sharded import job_from_request, job_options
    from ganforge.inference.shards import run_local

    start = time.perf_counter()
    model = default_model() if request.model is None else request.model
    gen = Generator(model, request.device, **job_options(request.generator_options()))
    if note is not None and gen.foreign_note:
        note(gen.foreign_note)
    if request.scale > 1:  # one sample's picture at a time
        grid_memory(1, gen.info.sample_shape, kind=gen.info.kind, scale=request.scale)
    job = job_from_request(request, gen, model, control_of(request, gen, model))
    small = request.small_job()
    if request.ray is not None:  # Ray's workers tune (or not) where they run: the bytes are the same
        done = request.ray.run(job, shard_progress)
    else:
        if not small and request.batch_size is None and not gen.measured:
            gen.tune_micro_batch()  # once per model and machine (cached): the workers read it
        done = run_local(job, request.workers, shard_progress, gen=gen)
    names = None if job.labels is None else tuple(gen.info.class_names[i] for i in job.labels)
    result = GenerateResult([job.out / s.name for s in job.shards()], n=job.n, model=gen.path, device=gen.device,
                            providers=gen.providers, seconds=time.perf_counter() - start, labels=names,
                            conditional=gen.info.conditional, runtime=gen.runtime_text(),
                            runtime_details=gen.runtime_report(small))
    result.job = done
    return result


def sweep_noise(request: SweepRequest, gen: Generator) -> tuple[np.ndarray, list[float], np.ndarray | None]:
    """A sweep's noise ``[n * steps, latent_dim]`` (row after row: sample ``start + r`` of the seed,
    truncated and edited as asked, moved by each amount of the swept direction), the amounts (in
    steps) and the labels of its cells (None for an unconditional model, or drawn ones)."""
    from ganforge.inference import directions

    name, first, last = request.span
    found = directions.for_generator(gen, request.model) if request.directions is None else directions.load(
        request.model or gen.path, model_sha256=_sha(gen.path), source_checkpoint_sha256=gen.info.source_checkpoint_sha256,
        latent_dim=gen.info.latent_dim, path=request.directions)
    swept = found.get(name)
    control = found.control(request.truncation, request.edits)
    z = keyed.noise(request.seed, request.start, request.start + request.n, gen.info.latent_dim)
    z = control.apply(z, request.seed, request.start)
    amounts = sweep_amounts(first, last, request.steps)
    cells = np.repeat(z, request.steps, axis=0) + np.tile(
        np.stack([np.float32(a * swept.step) * swept.vector for a in amounts]), (request.n, 1))
    labels = None
    if gen.info.conditional:
        if request.labels is not None:
            chosen = gen.parse_labels(request.labels)
            rows = labelling.blocks(chosen, request.n)
        else:
            rows = labelling.draw_labels(gen.info, request.seed, request.start, request.start + request.n)
        labels = np.repeat(np.asarray(rows, np.int64), request.steps)
    return cells.astype(np.float32), amounts, labels


def run_sweep(request: SweepRequest, *, note: Callable[[str], None] | None = None) -> GenerateResult:
    """Make and write the request's sweep (:func:`generate_sweep`): a row a sample, a column an amount."""
    start = time.perf_counter()
    gen = open_generator(request, note)
    if request.form == "png":
        grid_memory(request.n * request.steps, gen.info.sample_shape, kind=gen.info.kind, scale=request.scale)
    z, amounts, labels = sweep_noise(request, gen)
    paths = write_batches(request.form, gen.run_batches(z, labels), len(z), gen.info.sample_shape, request.out,
                          kind=gen.info.kind, nrow=request.steps, value_range=gen.info.value_range,
                          scale=request.scale)
    result = _result(gen, paths, len(z), start, None, True)
    result.amounts = amounts
    return result


def run_walk(request: WalkRequest, *, note: Callable[[str], None] | None = None) -> GenerateResult:
    """Make and write the request's walk (:func:`generate_walk`)."""
    start = time.perf_counter()
    gen = open_generator(request, note)
    walk_memory(request.steps, gen.info.sample_shape, gen.info.kind, request.scale)
    ends = walk_classes(gen, request.seed_a, request.seed_b, request.labels)
    small = request.small_job()
    frames = walk_frames(gen, request.seed_a, request.seed_b, request.steps, ends, small_job=small)
    paths = write_walk(request.form, frames, request.out, kind=gen.info.kind, value_range=gen.info.value_range,
                       scale=request.scale)
    return _result(gen, paths, request.steps, start, ends, small)


def generate(model: str | os.PathLike[str] | None, n: int | None, out: str | os.PathLike[str], *, seed: int = 0,
             device: str = "auto", nrow: int | None = None, batch_size: int | None = None,
             latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
             layout: str | None = None, labels: Sequence[str | int] | None = None, per_class: int | None = None,
             progress=None, latent_shape: Sequence[int] | None = None, num_classes: int | None = None,
             note: Callable[[str], None] | None = None, provider: str | None = None,
             precision: str = "fp32", start: int = 0, scale: int = 1, truncation: float | None = None,
             edits: Sequence[str] = (), directions: str | os.PathLike[str] | None = None) -> GenerateResult:
    """Sample ``n`` outputs of ``model`` (default: :func:`default_model`) from ``seed`` and write them to ``out``:
    samples ``start:start + n`` of the seed, each the same whatever the batch size, runtime or
    range asked (:mod:`~ganforge.inference.keyed`), so a range equals the same slice of the whole.

    ``out``: ``*.png`` grid (``nrow`` columns), ``*.npy`` raw float32 array, or
    ``DIR/`` a sharded, resumable job (folders of one PNG per sample and a ``manifest.json``,
    :mod:`~ganforge.inference.shards`; a rerun makes only the shards not there yet); .npy and
    DIR/ stream, so memory does not grow with ``n``; ``progress(done, n)`` follows a .npy. Same arguments, same bytes. Arguments and the
    form of ``out`` are checked before the model runs (:class:`~ganforge.inference.request.GenerationRequest`);
    ``latent_dim``, ``latent_shape``, ``value_range``, ``layout`` and ``num_classes`` are for
    generators without ganforge metadata (:class:`Generator`), and ``note(line)``
    gets such a model's :attr:`Generator.foreign_note` once, when it opens. ``provider`` and
    ``precision``: what runs it (:class:`Generator`); from ``TUNE_FROM_N`` samples the fastest
    runtime per run size is measured first (once, cached), and a smaller job runs on
    onnxruntime alone (opening OpenVINO would cost it more than it saves).

    A conditional model draws each sample's class at random (:meth:`Generator.sample_labels`)
    unless ``labels`` (names or indices) are given: then the ``n`` samples go to them in
    contiguous blocks, as even as possible, in the order given. ``per_class=K`` makes a
    grid of one row a class (``labels``, else every class) and K columns, column j with the
    same noise in every row; ``n`` is then K times the classes, so it must be None. ``scale=N``
    (1 to 16) draws the pictures N times larger a side, nearest neighbour, pixel for pixel; a
    .npy is never scaled (refused).

    ``truncation=T`` redraws every noise component beyond T (less unusual samples, less
    diversity); ``edits`` (``["sneaker=+2", "pc1=-1"]``, amounts in each direction's recommended
    steps) move every sample along the model's named directions, read from ``directions`` (default:
    the ``directions.json`` beside the model, which gan-directions writes). Both keep sample i of
    the seed addressable (:mod:`~ganforge.inference.control`).
    """
    request = GenerationRequest(model=model, n=n, out=out, seed=seed, nrow=nrow, batch_size=batch_size,
                                labels=labels, per_class=per_class, device=device, latent_dim=latent_dim,
                                latent_shape=latent_shape, value_range=value_range, layout=layout,
                                num_classes=num_classes, provider=provider, precision=precision, start=start,
                                scale=scale, truncation=truncation, edits=tuple(edits), directions=directions)
    return run_generation(request, progress=progress, note=note)


def generate_sweep(model: str | os.PathLike[str] | None, sweep: str, out: str | os.PathLike[str], *, n: int = 8,
                   steps: int = 9, seed: int = 0, start: int = 0, truncation: float | None = None,
                   edits: Sequence[str] = (), directions: str | os.PathLike[str] | None = None,
                   labels: Sequence[str | int] | None = None, device: str = "auto", scale: int = 1,
                   provider: str | None = None, precision: str = "fp32",
                   note: Callable[[str], None] | None = None) -> GenerateResult:
    """A grid along the named direction ``sweep`` (``"pc0"`` from -2 to +2 steps, ``"pc0=-1:3"``):
    a row each of samples ``start:start + n`` of ``seed``, a column each of ``steps`` amounts; the
    ``truncation`` and the other ``edits`` apply to every cell. ``out``: ``*.png`` (``steps``
    columns) or ``*.npy`` (``[n * steps, ...]``, row after row). The result's ``amounts`` are the
    columns' amounts, in steps."""
    request = SweepRequest(model=model, sweep=sweep, out=out, n=n, steps=steps, seed=seed, start=start,
                           truncation=truncation, edits=tuple(edits), directions=directions, labels=labels,
                           device=device, scale=scale, provider=provider, precision=precision)
    return run_sweep(request, note=note)


def generate_walk(model: str | os.PathLike[str] | None, seed_a: int, seed_b: int, out: str | os.PathLike[str], *,
                  steps: int = 16, labels: Sequence[str | int] | None = None, device: str = "auto",
                  latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
                  layout: str | None = None, latent_shape: Sequence[int] | None = None,
                  num_classes: int | None = None, note: Callable[[str], None] | None = None,
                  provider: str | None = None, precision: str = "fp32", scale: int = 1) -> GenerateResult:
    """Walk from seed A's first sample to seed B's in ``steps`` frames (:func:`interpolate`)
    and write them to ``out``: ``*.gif`` animation, ``*.png`` one-row strip, ``*.npy``
    array or ``DIR/`` (:func:`ganforge.inference.walk.save_walk`). ``labels``: one class
    throughout, or two to walk from the first class to the second. Arguments are checked
    before the model runs (:class:`~ganforge.inference.request.WalkRequest`). The other
    arguments are :func:`generate`'s (``scale``: a GIF's frames that much beyond their 128 px).
    """
    request = WalkRequest(model=model, seed_a=seed_a, seed_b=seed_b, out=out, steps=steps, labels=labels,
                          device=device, latent_dim=latent_dim, latent_shape=latent_shape, value_range=value_range,
                          layout=layout, num_classes=num_classes, provider=provider, precision=precision,
                          scale=scale)
    return run_walk(request, note=note)
