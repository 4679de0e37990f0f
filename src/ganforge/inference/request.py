"""A generation as asked for: one frozen request, checked once, where it is built.

gan-infer builds one from its command line (click parses the types), :func:`ganforge.inference.generate`
and :func:`~ganforge.inference.generate_walk` from their keywords; the runners
(:mod:`ganforge.inference.generation`) read it and check nothing again. Everything that can be
checked without the model is checked here, before it opens, so a typo costs nothing: counts,
seeds, the labels list, the per-class rules, the form of ``out`` and the grid's size. What
needs the model (labels by name, a per-class grid of all its classes) is checked once it is
open. The options that open the model (``device``, the foreign-model options, ``provider``,
``precision``) are held for :class:`~ganforge.inference.Generator`, which checks them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ganforge.errors import GanforgeError
from ganforge.inference import shards, tuning, workers
from ganforge.inference.control import MAX_SWEEP_STEPS, Edit, check_truncation, parse_edit, parse_sweep
from ganforge.inference.labels import label_list, walk_labels
from ganforge.inference.render import MAX_GRID, check_grid, check_out_dir, out_form
from ganforge.values import check_count, check_scale, check_seed, check_start


@dataclass(frozen=True, kw_only=True)
class ModelRequest:
    """The model a request runs, and how to open it (:class:`~ganforge.inference.Generator`'s arguments)."""

    model: str | os.PathLike[str] | None = None  # None: the latest run's export (default_model)
    device: str = "auto"  # auto, cpu or cuda
    latent_dim: int | None = None  # the five foreign-model options (ganforge.inference.foreign)
    latent_shape: Sequence[int] | None = None
    value_range: tuple[float, float] | None = None
    layout: str | None = None
    num_classes: int | None = None
    provider: str | None = None  # None: $GANFORGE_PROVIDER, else auto
    precision: str = "fp32"

    def generator_options(self) -> dict:
        """The keyword arguments of :class:`~ganforge.inference.Generator` besides the model."""
        return dict(device=self.device, latent_dim=self.latent_dim, latent_shape=self.latent_shape,
                    value_range=self.value_range, layout=self.layout, num_classes=self.num_classes,
                    provider=self.provider, precision=self.precision)


@dataclass(frozen=True, kw_only=True)
class ControlRequest(ModelRequest):
    """What is done to the noise (:mod:`~ganforge.inference.control`): ``truncation`` (None: none)
    and ``edits`` along the model's named directions (``"sneaker"``, ``"pc1=-1"`` or
    :class:`~ganforge.inference.control.Edit`; a tuple of Edit once built), read from
    ``directions`` (None: the ``directions.json`` beside the model)."""

    truncation: float | None = None
    edits: Sequence[str | Edit] = ()
    directions: str | os.PathLike[str] | None = None

    def _check_control(self) -> None:
        object.__setattr__(self, "truncation", check_truncation(self.truncation))
        if isinstance(self.edits, (str, Edit)):
            raise GanforgeError("edits is a list of edits, such as ['sneaker=+2', 'pc1=-1']")
        edits = tuple(e if isinstance(e, Edit) else parse_edit(e) for e in self.edits or ())
        names = [e.name.lower() for e in edits]
        if len(set(names)) != len(names):
            raise GanforgeError(f"one --edit a direction: {', '.join(sorted({n for n in names if names.count(n) > 1}))} "
                                "given twice (amounts add up in one: --edit NAME=AMOUNT)")
        object.__setattr__(self, "edits", edits)

    @property
    def controlled(self) -> bool:
        return self.truncation is not None or bool(self.edits)


def _check_scale(scale, form: str) -> int:
    """A picture's ``scale`` (1 to 16); a .npy holds values, not pixels, and is never scaled."""
    scale = check_scale(scale)
    if scale != 1 and form == "npy":
        raise GanforgeError(f"a .npy array holds the samples' values, not pixels: scale {scale} is for pictures "
                            "(a .png, a .gif, DIR/); drop --scale or write a .png")
    return scale


@dataclass(frozen=True, kw_only=True)
class GenerationRequest(ControlRequest):
    """``n`` samples of ``seed`` from index ``start`` (samples ``start:start + n``, each the same
    whatever else is asked: :mod:`~ganforge.inference.keyed`) to ``out`` (``*.png`` grid of
    ``nrow`` columns, ``*.npy``, ``DIR/``); ``labels`` split them in blocks; ``per_class=K`` a grid
    of K columns, a row a class, instead of ``n``. See :func:`ganforge.inference.generate`."""

    n: int | None = None  # None with per_class: per_class times the classes
    out: str | os.PathLike[str]
    seed: int = 0
    start: int = 0  # the index of the first sample (of the noise, for a per-class grid)
    nrow: int | None = None
    batch_size: int | None = None  # samples a run; None: chunks sized for memory, in micro-batches
    labels: Sequence[str | int] | None = None  # class names or indices (a tuple once built)
    per_class: int | None = None
    scale: int = 1  # pictures this many times larger a side, nearest neighbour (not .npy)
    shard_format: str | None = None  # a folder's shards: "png" (the default) or "npy" (ganforge.inference.shards)
    shard_size: int | None = None  # samples a shard; None: shards.default_shard_size of the model's samples
    workers: int = 1  # local processes making a folder's shards
    ray: object | None = None  # a ray_runner.RayTarget: the folder's shards made on a Ray cluster instead
    form: str = field(init=False)  # what out asks for: "png", "npy" or "dir"

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "start", check_start(self.start))
        self._check_control()
        labels = label_list(self.labels)
        object.__setattr__(self, "labels", None if labels is None else tuple(labels))
        if self.per_class is not None:
            self._check_per_class()
        else:
            object.__setattr__(self, "n", check_count(self.n))
            if self.labels is not None and self.n < len(self.labels):
                raise GanforgeError(f"{len(self.labels)} labels need at least {len(self.labels)} samples, "
                                    f"got n={self.n}")
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_count(self.batch_size, "batch size"))
        if self.nrow is not None:
            object.__setattr__(self, "nrow", check_count(self.nrow, "nrow"))
        object.__setattr__(self, "form", out_form(self.out))
        object.__setattr__(self, "scale", _check_scale(self.scale, self.form))
        self._check_folder_job()
        if self.per_class is None or self.labels is not None:
            check_grid(self.total(), self.form)  # a per-class grid of all classes: once the model says how many

    def _check_folder_job(self) -> None:
        """A folder output is a sharded, resumable job (:mod:`~ganforge.inference.shards`); its
        options go with a folder alone."""
        if self.form != "dir":
            for name, value, default in (("--format", self.shard_format, None), ("--shard-size", self.shard_size, None),
                                         ("--workers", self.workers, 1), ("--ray", self.ray, None)):
                if value != default:
                    raise GanforgeError(f"{name} is for a folder output (--out DIR/, a sharded job); {self.out} is a "
                                        f"single .{self.form} file: drop {name}, or write to a folder")
            return
        if self.per_class is not None:
            raise GanforgeError("a per-class grid goes to a .png grid or a .npy file; a folder holds a sharded job of "
                                "--n samples (--label NAME picks its classes)")
        if self.shard_format is not None and self.shard_format not in shards.FORMS:
            raise GanforgeError(f"unknown --format {self.shard_format!r}; use one of: {', '.join(shards.FORMS)}")
        if self.shard_format == "npy" and self.scale != 1:
            raise GanforgeError(f"npy shards hold the samples' values, not pixels: scale {self.scale} is for png "
                                "shards; drop --scale or use --format png")
        if self.shard_size is not None:
            object.__setattr__(self, "shard_size", check_count(self.shard_size, "--shard-size"))
        object.__setattr__(self, "workers", workers.check_workers(self.workers))
        if self.ray is not None and self.workers != 1:
            raise GanforgeError("--workers is local processes and --ray runs the shards on Ray's actors (--ray-actors "
                                "N): pass one of them")
        shards.check_job_folder(self.out)

    def _check_per_class(self) -> None:
        per_class = check_count(self.per_class, "per_class")
        object.__setattr__(self, "per_class", per_class)
        if per_class > MAX_GRID:
            raise GanforgeError(f"a per-class grid holds at most {MAX_GRID} samples of each class, got "
                                f"per_class={per_class}: for many samples of one class use --n N --label NAME "
                                "--out DIR/ (or .npy), which stream")
        if self.n is not None:
            raise GanforgeError(f"pass n or per_class, not both: per_class={per_class} makes {per_class} samples "
                                "of each class")
        if self.nrow is not None:
            raise GanforgeError(f"nrow does not go with per_class: a per-class grid has {per_class} columns")

    def total(self, num_classes: int | None = None) -> int:
        """The samples it makes: ``n``; a per-class grid's ``per_class`` times its classes (the
        labels given, else the model's ``num_classes``)."""
        if self.per_class is None:
            return self.n
        return self.per_class * (len(self.labels) if self.labels is not None else num_classes)

    def small_job(self, num_classes: int | None = None) -> bool:
        """Whether it makes fewer than :data:`~ganforge.inference.tuning.TUNE_FROM_N` samples: then
        it runs on onnxruntime alone (opening OpenVINO would cost it more than it saves) and
        measures nothing."""
        return self.total(num_classes) < tuning.TUNE_FROM_N

    def tunes(self, num_classes: int | None = None) -> bool:
        """Whether the runtime plan is measured first (once per model and machine, then cached)
        where none is: a job of TUNE_FROM_N samples or more, its run size left to the plan."""
        return not self.small_job(num_classes) and self.batch_size is None


@dataclass(frozen=True, kw_only=True)
class SweepRequest(ControlRequest):
    """A sweep along direction ``sweep`` (``"pc0"``: -2 to +2 steps; ``"pc0=-1:3"``), a row a sample
    (samples ``start:start + n`` of ``seed``), a column one of ``steps`` amounts, to ``out`` (a
    ``*.png`` grid or a ``*.npy`` array ``[n * steps, ...]``, row after row). The other edits and
    the truncation apply to every cell; the swept direction may not be one of ``edits``."""

    sweep: str
    out: str | os.PathLike[str]
    n: int = 8
    seed: int = 0
    start: int = 0
    steps: int = 9
    labels: Sequence[str | int] | None = None  # conditional models: a row's class, in blocks as gan-infer splits them
    scale: int = 1
    form: str = field(init=False)
    span: tuple[str, float, float] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "start", check_start(self.start))
        object.__setattr__(self, "n", check_count(self.n, "--n (rows of the sweep)"))
        object.__setattr__(self, "steps", check_count(self.steps, "--steps", minimum=2))
        if self.steps > MAX_SWEEP_STEPS:
            raise GanforgeError(f"a sweep has at most {MAX_SWEEP_STEPS} columns, got --steps {self.steps}")
        self._check_control()
        object.__setattr__(self, "span", parse_sweep(self.sweep))
        if self.span[0].lower() in (e.name.lower() for e in self.edits):
            raise GanforgeError(f"--sweep {self.span[0]} moves that direction already: drop its --edit")
        labels = label_list(self.labels)
        object.__setattr__(self, "labels", None if labels is None else tuple(labels))
        if self.labels is not None and self.n < len(self.labels):
            raise GanforgeError(f"{len(self.labels)} labels need at least {len(self.labels)} rows, got --n {self.n}")
        object.__setattr__(self, "form", out_form(self.out))
        if self.form == "dir":
            raise GanforgeError(f"a sweep is one grid: --out {self.out} is a folder; write sweep.png (or .npy)")
        object.__setattr__(self, "scale", _check_scale(self.scale, self.form))
        check_grid(self.n * self.steps, self.form)

    def small_job(self, num_classes: int | None = None) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class WalkRequest(ModelRequest):
    """A walk of ``steps`` frames from seed A's first sample to seed B's, written to ``out``
    (``*.gif``, ``*.png`` strip, ``*.npy``, ``DIR/``); ``labels``: one class, or two to walk
    from the first to the second. See :func:`ganforge.inference.generate_walk`."""

    seed_a: int
    seed_b: int
    out: str | os.PathLike[str]
    steps: int = 16
    labels: Sequence[str | int] | None = None  # a tuple of one or two once built
    scale: int = 1  # pictures this many times larger a side (a GIF's frames: beyond their 128 px)
    form: str = field(init=False)  # "gif", "png", "npy" or "dir"

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed_a", check_seed(self.seed_a))
        object.__setattr__(self, "seed_b", check_seed(self.seed_b))
        object.__setattr__(self, "steps", check_count(self.steps, "steps", minimum=2))
        if self.steps > MAX_GRID:
            raise GanforgeError(f"a walk has at most {MAX_GRID} frames (all in memory at once), got --steps "
                                f"{self.steps}")
        labels = walk_labels(self.labels)
        object.__setattr__(self, "labels", None if labels is None else tuple(labels))
        object.__setattr__(self, "form", out_form(self.out, walk=True))
        object.__setattr__(self, "scale", _check_scale(self.scale, self.form))
        if self.form == "dir":
            check_out_dir(self.out)

    def small_job(self, num_classes: int | None = None) -> bool:
        """Always: a walk is at most MAX_GRID frames (see :meth:`GenerationRequest.small_job`)."""
        return True
