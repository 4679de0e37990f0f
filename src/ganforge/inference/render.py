"""Turning generated samples into pictures and files (numpy + pillow only).

Series are drawn one curve a cell; images are tiled with a thin border. Output
is deterministic: the same samples give the same PNG (and GIF) bytes.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError, WriteError
from ganforge.fsutil import atomic_dir, atomic_path, check_free_space
from ganforge.limits import check_memory

SERIES_CELL = (128, 80)  # width, height of one curve's cell in pixels
BORDER = 2  # pixels between tiles
BORDER_COLOR = 40
CURVE_COLOR = (31, 119, 180)
ZERO_COLOR = (210, 210, 210)


def _columns(n: int, nrow: int | None) -> int:
    if nrow is not None and nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    return min(n, nrow) if nrow else max(1, math.ceil(math.sqrt(n)))


def to_uint8(x: np.ndarray, value_range=(-1.0, 1.0)) -> np.ndarray:
    lo, hi = value_range
    scaled = (np.asarray(x, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _tile(cells: np.ndarray, columns: int) -> np.ndarray:
    """cells [n, h, w, c] uint8 -> one [H, W, c] canvas with BORDER between cells."""
    n, h, w, c = cells.shape
    rows = math.ceil(n / columns)
    canvas = np.full((rows * (h + BORDER) + BORDER, columns * (w + BORDER) + BORDER, c), BORDER_COLOR, np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        y, x = BORDER + r * (h + BORDER), BORDER + col * (w + BORDER)
        canvas[y : y + h, x : x + w] = cells[i]
    return canvas


def _series_grid(samples: np.ndarray, columns: int, value_range):
    """One curve a cell, drawn with PIL's polyline straight onto the whole grid."""
    from PIL import Image, ImageDraw

    w, h = SERIES_CELL
    lo, hi = value_range
    n, length = samples.shape
    rows = math.ceil(n / columns)
    pad = 4  # pixels above +hi and below lo
    scale = (h - 1 - 2 * pad) / (hi - lo)
    zero_y = pad + hi * scale
    xs = np.linspace(3, w - 4, length) if length > 1 else np.array([w / 2])
    # y of every point, in cell coordinates; the range is fixed so that cells compare
    ys = pad + (hi - np.clip(np.nan_to_num(samples.astype(np.float64), nan=0.0), lo, hi)) * scale
    img = Image.new("RGB", (columns * (w + BORDER) + BORDER, rows * (h + BORDER) + BORDER), (BORDER_COLOR,) * 3)
    draw = ImageDraw.Draw(img)
    for i in range(n):
        r, c = divmod(i, columns)
        x0, y0 = BORDER + c * (w + BORDER), BORDER + r * (h + BORDER)
        draw.rectangle((x0, y0, x0 + w - 1, y0 + h - 1), fill=(255, 255, 255))
        if lo < 0 < hi:
            draw.line([(x0, y0 + zero_y), (x0 + w - 1, y0 + zero_y)], fill=ZERO_COLOR)
        points = np.stack([xs + x0, ys[i] + y0], axis=1).ravel().tolist()
        if length > 1:
            draw.line(points, fill=CURVE_COLOR, width=2, joint="curve")
        else:
            draw.point(points, fill=CURVE_COLOR)
    return img


def render_grid(samples: np.ndarray, kind: str, *, nrow: int | None = None, value_range=(-1.0, 1.0)):
    """A PIL image of ``samples``: series ``[n, L]`` a curve a cell, images ``[n, C, H, W]`` tiled.

    ``nrow`` is the number of columns (default ``ceil(sqrt(n))``: 64 -> 8x8).
    """
    from PIL import Image

    samples = np.asarray(samples)
    if samples.ndim < 2 or samples.shape[0] < 1:
        raise ValueError(f"expected a batch of samples [n, ...] with n >= 1, got shape {list(samples.shape)}")
    if not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    columns = _columns(samples.shape[0], nrow)
    if kind == "series":
        if samples.ndim != 2:
            raise ValueError(f"series samples must be [n, length], got shape {list(samples.shape)}")
        return _series_grid(samples, columns, value_range)
    if kind == "image":
        if samples.ndim != 4 or samples.shape[1] not in (1, 3):
            raise ValueError(f"image samples must be [n, 1 or 3, H, W], got shape {list(samples.shape)}")
        cells = to_uint8(samples, value_range).transpose(0, 2, 3, 1)
        canvas = _tile(cells, columns)
        return Image.fromarray(canvas[..., 0], "L") if canvas.shape[-1] == 1 else Image.fromarray(canvas, "RGB")
    raise ValueError(f"unknown kind {kind!r}: expected 'image' or 'series'")


def scaled(image, scale: int):
    """``image`` ``scale`` times larger a side, each pixel a ``scale`` x ``scale`` square (nearest
    neighbour, a whole factor: pixel-exact); its size checked before (:func:`grid_memory`)."""
    if scale == 1:
        return image
    from PIL import Image

    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def frame_images(samples: np.ndarray, kind: str, *, value_range=(-1.0, 1.0), min_side: int = 128,
                 scale: int = 1) -> list:
    """One PIL image a sample, for an animation: images scaled up by a whole factor (nearest
    neighbour) until the short side is at least ``min_side``, then ``scale`` times more; series a
    curve cell each, ``scale`` times larger."""
    from PIL import Image

    samples = np.asarray(samples)
    if kind == "series":
        return [scaled(render_grid(sample[None], kind, value_range=value_range), scale) for sample in samples]
    if kind != "image" or samples.ndim != 4 or samples.shape[1] not in (1, 3):
        raise ValueError(f"expected images [n, 1 or 3, H, W] or kind 'series', got {kind} {list(samples.shape)}")
    factor = max(1, math.ceil(min_side / min(samples.shape[2:]))) * scale
    pixels = to_uint8(samples, value_range).transpose(0, 2, 3, 1).repeat(factor, axis=1).repeat(factor, axis=2)
    return [Image.fromarray(p[..., 0], "L") if p.shape[-1] == 1 else Image.fromarray(p, "RGB") for p in pixels]


def save_gif(images: Sequence, path: str | os.PathLike[str], durations_ms: int | Sequence[int]) -> Path:
    """Write PIL ``images`` as a looping animated GIF atomically, showing image ``i`` for
    ``durations_ms[i]`` (or each for ``durations_ms``). Missing parent folders are created.
    Pillow merges a frame identical to the one before into it (their times add up)."""
    path = Path(path)
    if not images:
        raise ValueError("a GIF needs at least one image")
    durations = [durations_ms] * len(images) if isinstance(durations_ms, int) else list(durations_ms)
    if len(durations) != len(images):
        raise ValueError(f"{len(images)} images but {len(durations)} durations")
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=list(images[1:]), duration=durations,
                           loop=0)
    return path


def save_png(image, path: str | os.PathLike[str], compress_level: int = 4) -> Path:
    """Write ``image`` as PNG atomically (a failure leaves no file and keeps an old one)."""
    path = Path(path)
    with _writable(path), atomic_path(path) as tmp:
        image.save(tmp, format="PNG", compress_level=compress_level)
    return path


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[None]:
    """Turn OS errors while writing ``path`` into one-line GanforgeErrors."""
    try:
        yield
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out", path, exc) from None


# zlib levels: a grid is written once per call and weighs on gan-infer's cold start, a folder
# writes many small files; both measured faster than pillow's default (6) for a few percent
# more bytes (benchmarks/results/speed-notes.md has the figures).
FOLDER_PNG_LEVEL = 1


SAMPLE_NAME = re.compile(r"sample-\d{5,}\.png")


class NumberedFiles(Sequence):
    """``folder/sample-00000.png`` ... for ``n`` samples, made on demand: holding the
    names of 100,000 files costs nothing."""

    def __init__(self, folder: Path, n: int):
        self.folder, self.n, self.width = folder, n, max(5, len(str(n - 1)))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.folder / f"sample-{i % self.n:0{self.width}d}.png"


def sample_images(batch: np.ndarray, kind: str, value_range) -> Iterator:
    """One PIL image a sample: images at their own size, series drawn in one cell."""
    from PIL import Image

    if kind == "series":
        for sample in batch:
            yield render_grid(sample[None], kind, value_range=value_range)
        return
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"image samples must be [n, 1 or 3, H, W], got shape {list(batch.shape)}")
    pixels = to_uint8(batch, value_range).transpose(0, 2, 3, 1)  # the whole batch in one pass
    for cell in pixels:
        yield Image.fromarray(cell[..., 0], "L") if cell.shape[-1] == 1 else Image.fromarray(cell, "RGB")


def png_bytes(image) -> bytes:
    """``image`` as the PNG bytes a folder of samples holds (:data:`FOLDER_PNG_LEVEL`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=FOLDER_PNG_LEVEL)
    return buffer.getvalue()


def _write_png_fast(image, path: Path) -> None:
    """:func:`save_png` for one file of many: the same temporary-then-replace, without
    the per-file wrappers (the caller turns OS errors into one message)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        image.save(tmp, format="PNG", compress_level=FOLDER_PNG_LEVEL)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# The most samples a PNG grid (or a per-class grid, or a walk's frames) may hold: they are all in
# memory at once, and 4096 (a 64x64 grid) is beyond what a picture shows. .npy and DIR/ stream.
MAX_GRID = 4096
OUT_FORMS = "a .png grid, a .npy array, or a folder (ending in /) of one PNG per sample"
WALK_FORMS = "a .gif animation, a .png strip, a .npy array, or a folder (ending in /) of one PNG per frame"


def out_form(out: str | os.PathLike[str], *, walk: bool = False) -> str:
    """What ``out`` asks for: ``"dir"`` (ends in ``/`` or is a folder), ``"npy"``, ``"png"``,
    or for a ``walk`` (frames of an interpolation) also ``"gif"``.

    Anything else is a GanforgeError naming the supported forms; callers check
    this before generating, so a typo costs no model run.
    """
    text = os.fspath(out)
    if not text.strip():
        raise GanforgeError(f"--out is empty: name {WALK_FORMS if walk else OUT_FORMS}")
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return "dir"
    suffix = Path(text).suffix.lower()
    if suffix in (".png", ".npy") or (walk and suffix == ".gif"):
        return suffix[1:]
    if suffix == ".gif":
        raise GanforgeError(f"cannot write {text!r}: a .gif is the animation of a walk, made with --interpolate A,B; "
                            f"for samples --out must be {OUT_FORMS}")
    raise GanforgeError(f"cannot write {text!r}: --out must be {WALK_FORMS if walk else OUT_FORMS}")


def check_out_dir(folder: str | os.PathLike[str]) -> None:
    """A folder output replaces an earlier one whole, but only one that holds ganforge's
    ``sample-*.png`` files alone: other files in it are never deleted, so it is refused."""
    folder = Path(folder)
    if folder.is_dir():
        foreign = [p.name for p in folder.iterdir() if not (p.is_file() and SAMPLE_NAME.fullmatch(p.name))]
        if foreign:
            raise GanforgeError(f"{folder} holds files gan-infer did not write ({foreign[0]}"
                                f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}): a folder output is "
                                "written whole and replaces the folder, so choose a new or empty folder")
    elif folder.exists():
        raise GanforgeError(f"{folder} is a file, not a folder: choose another --out")


def check_grid(n: int, form: str) -> None:
    """A PNG grid of ``n`` samples is refused over :data:`MAX_GRID`, naming the forms that stream."""
    if form == "png" and n > MAX_GRID:
        raise GanforgeError(f"a PNG grid holds at most {MAX_GRID} samples, got {n}: write --out samples.npy or "
                            "--out DIR/ (one PNG a sample), which stream and take any --n")


GRID_BYTES = 10  # bytes a sample value costs on the way to a grid: float32 samples, scaled copy, uint8 cells, canvas


def cell_bytes(sample_shape: Sequence[int], kind: str) -> int:
    """Bytes one sample's cell of a picture holds (uint8, with its border): what a scale multiplies."""
    if kind == "series":
        return (SERIES_CELL[0] + BORDER) * (SERIES_CELL[1] + BORDER) * 3
    channels, h, w = sample_shape  # images: [C, H, W]
    return channels * (h + BORDER) * (w + BORDER)


def grid_memory(n: int, sample_shape: Sequence[int], *, kind: str = "image", scale: int = 1) -> None:
    """A PNG grid holds every sample at once (and, at ``scale`` > 1, the picture scaled too):
    refused over the memory budget, before anything is drawn, naming the forms that stream."""
    nbytes = n * math.prod(sample_shape) * GRID_BYTES
    what, fix = f"a PNG grid of {n} samples of shape {list(sample_shape)}", "ask for fewer samples"
    if scale > 1:
        nbytes += n * cell_bytes(sample_shape, kind) * scale * scale
        what, fix = f"{what} at scale {scale}", "ask for a smaller scale or fewer samples"
    check_memory(what, nbytes, f"write --out samples.npy or --out DIR/ (one PNG a sample), which stream, or {fix}")


def check_finite(batch: np.ndarray, done: int) -> None:
    """Samples with NaN or infinite values are an error, never rendered as black or flat."""
    if not np.isfinite(batch).all():
        bad = np.flatnonzero(~np.isfinite(batch.reshape(len(batch), -1)).all(axis=1))
        raise GanforgeError(f"the model produced NaN or infinite values in {len(bad)} of samples {done}-"
                            f"{done + len(batch) - 1} (first: sample {done + int(bad[0])}); nothing was written "
                            "for them: check the model (gan-export verifies parity) or its inputs")


def save_samples(samples: np.ndarray, out: str | os.PathLike[str], *, kind: str, nrow: int | None = None,
                 value_range=(-1.0, 1.0)) -> Sequence[Path]:
    """Write samples to ``out``: ``*.png`` grid, ``*.npy`` raw float32 array, or ``DIR/`` one PNG each.

    Missing parent folders are created. Every file is written atomically: a
    failure leaves no partial file and an existing file as it was.
    """
    samples = np.asarray(samples)
    return save_batches([samples], len(samples), samples.shape[1:], out, kind=kind, nrow=nrow,
                        value_range=value_range)


def save_batches(batches: Iterable[np.ndarray], n: int, sample_shape: tuple[int, ...], out: str | os.PathLike[str],
                 *, kind: str, nrow: int | None = None, value_range=(-1.0, 1.0),
                 progress: Callable[[int, int], None] | None = None) -> Sequence[Path]:
    """Like :func:`save_samples` for ``n`` samples arriving in batches.

    ``*.npy`` and ``DIR/`` stream: each batch is written and dropped, so memory
    does not grow with ``n`` (the .npy header is written first, the rows after).
    ``DIR/`` gets one PNG a sample, images at the model's own size (no border).
    A ``*.png`` grid needs every sample at once: it is refused over :data:`MAX_GRID`
    samples or the memory budget. ``progress(done, n)`` is called after each batch.
    """
    form = out_form(out)
    if form == "png":
        check_grid(n, form)
        grid_memory(n, sample_shape)
    return write_batches(form, batches, n, sample_shape, out, kind=kind, nrow=nrow, value_range=value_range,
                         progress=progress)


def write_batches(form: str, batches: Iterable[np.ndarray], n: int, sample_shape: tuple[int, ...],
                  out: str | os.PathLike[str], *, kind: str, nrow: int | None = None, value_range=(-1.0, 1.0),
                  progress: Callable[[int, int], None] | None = None, scale: int = 1) -> Sequence[Path]:
    """:func:`save_batches` to ``out`` of the form :func:`out_form` gave, its size already checked
    (a generation request's); pictures ``scale`` times larger a side (:func:`scaled`; not .npy). A
    folder is checked again as it is replaced: it may have changed."""
    path = Path(out)
    with _writable(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    if form == "dir":
        return _write_folder(batches, n, path, kind, value_range, progress, scale)
    if form == "npy":
        return _write_npy(batches, n, sample_shape, path, progress)
    samples = np.concatenate(list(batches)) if not isinstance(batches, list) or len(batches) != 1 else batches[0]
    check_finite(samples, 0)
    if progress:
        progress(len(samples), n)
    return [save_png(scaled(render_grid(samples, kind, nrow=nrow, value_range=value_range), scale), path)]


def _write_folder(batches, n: int, path: Path, kind: str, value_range, progress, scale: int = 1) -> Sequence[Path]:
    """One PNG a sample, written in a folder beside, then moved into place whole."""
    check_out_dir(path)
    done = 0
    with _writable(path), atomic_dir(path) as tmp:
        files = NumberedFiles(tmp, n)
        for batch in batches:
            check_finite(batch, done)
            for image in sample_images(batch, kind, value_range):
                _write_png_fast(scaled(image, scale), files[done])
                done += 1
            if progress:
                progress(done, n)
    return NumberedFiles(path, n)


def _write_npy(batches, n: int, sample_shape: tuple[int, ...], path: Path, progress) -> Sequence[Path]:
    """The .npy header first, then each batch's rows as it comes."""
    check_free_space(path.parent, n * math.prod(sample_shape) * 4, f"{path} ({n} samples)")
    done = 0
    with _writable(path), atomic_path(path) as tmp, open(tmp, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (n, *sample_shape)}
        np.lib.format.write_array_header_1_0(f, header)
        for batch in batches:
            check_finite(batch, done)
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if batch.shape[1:] != tuple(sample_shape):
                raise ValueError(f"batch of shape {list(batch.shape)} does not hold samples {list(sample_shape)}")
            f.write(batch.tobytes())
            done += len(batch)
            if progress:
                progress(done, n)
        if done != n:
            raise ValueError(f"expected {n} samples, got {done}")
    return [path]
