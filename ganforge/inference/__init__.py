"""Lean batch generation from an exported ONNX generator.

numpy + onnxruntime + pillow only: this package never imports torch (a test
proves it), so it runs where the training stack is not installed. onnxruntime
itself is imported when a model is opened, so ``import ganforge.inference``
stays cheap.

    from ganforge.inference import Generator
    images = Generator("runs/latest/export/generator.onnx").generate(64, seed=0)

A conditional model (one trained with ``--set conditional=true``) also takes class
labels: :func:`generate` with ``labels=`` or ``per_class=``, and :func:`generate_walk`
for a walk between two seeds and two classes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ganforge.inference import tuning
from ganforge.inference.metadata import ModelInfo
from ganforge.inference.render import render_grid, save_batches, save_samples
from ganforge.inference.session import Generator
from ganforge.inference.walk import interpolate

EXPORTED = os.path.join("export", "generator.onnx")  # where gan-export puts a run's model
TUNE_FROM_N = tuning.TUNE_FROM_N  # generate() measures the plan first (once, cached) from this many samples

__all__ = ["GenerateResult", "Generator", "ModelInfo", "default_model", "generate", "generate_walk", "interpolate",
           "render_grid", "save_samples"]


class GenerateResult(Sequence):
    """The files :func:`generate` wrote (a sequence of ``Path``; a folder's names are made
    on demand), and how it made them."""

    def __init__(self, paths: Sequence[Path], *, n: int, model: Path, device: str, providers: list[str],
                 seconds: float, labels: tuple[str, ...] | None = None, conditional: bool = False,
                 runtime: str | None = None, runtime_details: Sequence[str] = ()):
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


def _open(model, device: str, note: Callable[[str], None] | None, **options) -> Generator:
    """The generator, and a foreign model's :attr:`Generator.foreign_note` to ``note``, once."""
    if model is None:
        model = default_model()
    gen = Generator(model, device=device, **options)
    if note is not None and gen.foreign_note:
        note(gen.foreign_note)
    return gen


def generate(model: str | os.PathLike[str] | None, n: int | None, out: str | os.PathLike[str], *, seed: int = 0,
             device: str = "auto", nrow: int | None = None, batch_size: int | None = None,
             latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
             layout: str | None = None, labels: Sequence[str | int] | None = None, per_class: int | None = None,
             progress=None, latent_shape: Sequence[int] | None = None, num_classes: int | None = None,
             note: Callable[[str], None] | None = None, provider: str | None = None,
             precision: str = "fp32") -> GenerateResult:
    """Sample ``n`` outputs of ``model`` (default: :func:`default_model`) from ``seed`` and write them to ``out``.

    ``out``: ``*.png`` grid (``nrow`` columns), ``*.npy`` raw float32 array, or
    ``DIR/`` one PNG per sample; .npy and DIR/ stream batch by batch, so memory
    does not grow with ``n``; ``progress(done, n)`` follows them. Same arguments, same bytes. Arguments and the
    form of ``out`` are checked before the model runs; ``latent_dim``,
    ``latent_shape``, ``value_range``, ``layout`` and ``num_classes`` are for
    generators without ganforge metadata (:class:`Generator`), and ``note(line)``
    gets such a model's :attr:`Generator.foreign_note` once, when it opens. ``provider`` and
    ``precision``: what runs it (:class:`Generator`); from ``TUNE_FROM_N`` samples the fastest
    runtime per run size is measured first (once, cached), and a smaller job runs on
    onnxruntime alone (opening OpenVINO would cost it more than it saves).

    A conditional model draws each sample's class at random (:meth:`Generator.sample_labels`)
    unless ``labels`` (names or indices) are given: then the ``n`` samples go to them in
    contiguous blocks, as even as possible, in the order given. ``per_class=K`` makes a
    grid of one row a class (``labels``, else every class) and K columns, column j with the
    same noise in every row; ``n`` is then K times the classes, so it must be None.
    """
    from ganforge.errors import GanforgeError
    from ganforge.inference.render import MAX_GRID, check_grid, check_out_dir, grid_memory, out_form
    from ganforge.inference.session import check_count, check_seed, label_list

    start = time.perf_counter()
    seed = check_seed(seed)
    labels = label_list(labels)
    if per_class is not None:
        per_class = check_count(per_class, "per_class")
        if per_class > MAX_GRID:
            raise GanforgeError(f"a per-class grid holds at most {MAX_GRID} samples of each class, got "
                                f"per_class={per_class}: for many samples of one class use --n N --label NAME "
                                "--out DIR/ (or .npy), which stream")
        if n is not None:
            raise GanforgeError(f"pass n or per_class, not both: per_class={per_class} makes {per_class} samples "
                                "of each class")
        if nrow is not None:
            raise GanforgeError(f"nrow does not go with per_class: a per-class grid has {per_class} columns")
    else:
        n = check_count(n)
        if labels is not None and n < len(labels):
            raise GanforgeError(f"{len(labels)} labels need at least {len(labels)} samples, got n={n}")
    if batch_size is not None:
        check_count(batch_size, "batch size")
    if nrow is not None:
        check_count(nrow, "nrow")
    form = out_form(out)
    if form == "dir":
        check_out_dir(out)
    if n is not None:
        check_grid(n, form)  # before the model opens: a typo costs nothing
    gen = _open(model, device, note, latent_dim=latent_dim, latent_shape=latent_shape, value_range=value_range,
                layout=layout, num_classes=num_classes, provider=provider, precision=precision)
    if per_class is not None and not gen.info.conditional:
        raise GanforgeError(gen._no_classes("per-class grids"))
    chosen = None if labels is None else gen.parse_labels(labels)
    if per_class is not None:
        classes = chosen if chosen is not None else list(range(gen.info.num_classes))
        n, nrow, chosen = per_class * len(classes), per_class, classes
        check_grid(n, form)
        batches = gen.per_class_batches(per_class, classes, seed, batch_size)
    else:
        blocks = None if chosen is None else np.asarray(chosen, np.int64)[np.arange(n) * len(chosen) // n]
        batches = gen.iter_batches(n, seed, batch_size, blocks)
    if form == "png":
        grid_memory(n, gen.info.sample_shape)
    if n >= TUNE_FROM_N and batch_size is None and not gen.measured:
        gen.tune_micro_batch()  # a second or two, once per model and machine (cached)
    gen.small_job = n < TUNE_FROM_N
    paths = save_batches(batches, n, gen.info.sample_shape, out, kind=gen.info.kind,
                         nrow=nrow, value_range=gen.info.value_range, progress=progress)
    names = None if chosen is None else tuple(gen.info.class_names[i] for i in chosen)
    return GenerateResult(paths, n=n, model=gen.path, device=gen.device, providers=gen.providers,
                          seconds=time.perf_counter() - start, labels=names, conditional=gen.info.conditional,
                          runtime=gen.runtime_text(), runtime_details=gen.runtime_report())


def generate_walk(model: str | os.PathLike[str] | None, seed_a: int, seed_b: int, out: str | os.PathLike[str], *,
                  steps: int = 16, labels: Sequence[str | int] | None = None, device: str = "auto",
                  latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
                  layout: str | None = None, latent_shape: Sequence[int] | None = None,
                  num_classes: int | None = None, note: Callable[[str], None] | None = None,
                  provider: str | None = None, precision: str = "fp32") -> GenerateResult:
    """Walk from seed A's first sample to seed B's in ``steps`` frames (:func:`interpolate`)
    and write them to ``out``: ``*.gif`` animation, ``*.png`` one-row strip, ``*.npy``
    array or ``DIR/`` (:func:`ganforge.inference.walk.save_walk`). ``labels``: one class
    throughout, or two to walk from the first class to the second. Arguments are checked
    before the model runs. The other arguments are :func:`generate`'s.
    """
    from ganforge.errors import GanforgeError
    from ganforge.inference.render import MAX_GRID, check_out_dir, out_form
    from ganforge.inference.session import check_count, check_seed
    from ganforge.inference.walk import save_walk, walk_ends, walk_labels, walk_memory

    start = time.perf_counter()
    seed_a, seed_b, steps = check_seed(seed_a), check_seed(seed_b), check_count(steps, "steps", minimum=2)
    if steps > MAX_GRID:
        raise GanforgeError(f"a walk has at most {MAX_GRID} frames (all in memory at once), got --steps {steps}")
    labels = walk_labels(labels)
    if out_form(out, walk=True) == "dir":
        check_out_dir(out)
    gen = _open(model, device, note, latent_dim=latent_dim, latent_shape=latent_shape, value_range=value_range,
                layout=layout, num_classes=num_classes, provider=provider, precision=precision)
    gen.small_job = True
    walk_memory(steps, gen.info.sample_shape, gen.info.kind)
    ends = walk_ends(gen, seed_a, seed_b, labels)
    frames = interpolate(gen, seed_a, seed_b, steps, labels)
    paths = save_walk(frames, out, kind=gen.info.kind, value_range=gen.info.value_range)
    names = None if ends is None else tuple(gen.info.class_names[i] for i in ends)
    return GenerateResult(paths, n=steps, model=gen.path, device=gen.device, providers=gen.providers,
                          seconds=time.perf_counter() - start, labels=names, conditional=gen.info.conditional,
                          runtime=gen.runtime_text(), runtime_details=gen.runtime_report())
