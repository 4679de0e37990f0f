"""Controllable generation: walks through the latent space between two seeds (and,
for a conditional model, between two classes), and the files they are written to.

A conditional ganforge graph computes ``G(z + E[labels])`` with the class embedding
``E`` in its metadata, so a point a fraction ``t`` of the way from class A to class B
is ``G(z + (1 - t) E[A] + t E[B])``: the walk feeds ``z + (1 - t) E[A] + t E[B] - E[L]``
with label ``L`` (A for the first half, B for the second), which makes both ends
exactly the seeds' own samples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.limits import check_memory
from ganforge.inference.render import (GRID_BYTES, cell_bytes, check_finite, check_grid, frame_images, grid_memory,
                                      out_form, save_gif, write_batches)
from ganforge.inference.labels import walk_labels
from ganforge.inference.session import Generator
from ganforge.values import check_count, check_seed

FRAME_MS = 100  # each frame of a GIF walk ...
HOLD_MS = 800  # ... but its two ends, held so that the loop from B back to A reads as a new start


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points ``[len(t), d]`` float32 on the great circle from ``a`` (t=0) to ``b`` (t=1),
    their norm blended too; a straight line when ``a`` and ``b`` are (anti)parallel or zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    omega = np.arccos(np.clip(a @ b / norms, -1.0, 1.0)) if norms else 0.0
    if np.sin(omega) < 1e-6:
        points = (1 - t) * a + t * b
    else:
        points = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return np.where(t == 0, a, np.where(t == 1, b, points)).astype(np.float32)  # the ends exactly


def walk_memory(steps: int, sample_shape: Sequence[int], kind: str, scale: int = 1) -> None:
    """A walk holds every frame at once (and a GIF each frame scaled to 128 px, a picture ``scale``
    times larger a side): refused over the memory budget, before anything is drawn."""
    values = math.prod(sample_shape)
    picture = cell_bytes(sample_shape, kind) * scale * scale if scale > 1 else 0  # a strip's or DIR/'s frame
    if kind != "series":  # a GIF's frame: 128 px a side at least, then scaled
        picture = max(picture, max(values, 3 * 128 * 128) * 4 * scale * scale)
    per_frame = values * GRID_BYTES + picture
    what = f"a walk of {steps} frames of shape {list(sample_shape)}" + (f" at scale {scale}" if scale > 1 else "")
    check_memory(what, steps * per_frame, "ask for fewer --steps" + (" or a smaller scale" if scale > 1 else ""))


def walk_ends(gen: Generator, seed_a: int, seed_b: int, labels: Sequence[str | int] | None = None
              ) -> tuple[int, int] | None:
    """The classes a walk starts and ends at: None for an unconditional model; else each
    seed's first default label (no ``labels``), one class throughout (one label), or
    from the first label to the second (two)."""
    return walk_classes(gen, seed_a, seed_b, walk_labels(labels))


def walk_classes(gen: Generator, seed_a: int, seed_b: int, labels: list[str | int] | None
                 ) -> tuple[int, int] | None:
    """:func:`walk_ends` of ``labels`` checked (:func:`~ganforge.inference.labels.walk_labels`)."""
    if labels is not None:
        chosen = gen.parse_labels(labels)
        a, b = chosen[0], chosen[-1]
    elif not gen.info.conditional:
        return None
    else:
        a, b = int(gen.sample_labels(1, seed_a)[0]), int(gen.sample_labels(1, seed_b)[0])
    if a != b and gen.info.class_embedding is None:
        names = gen.info.class_names
        raise GanforgeError(f"{gen.path} has no ganforge.class_embedding in its metadata, so it cannot walk from "
                            f"class {names[a]} to {names[b]}; give one --label to walk within a class, or re-export "
                            "it with gan-export")
    return a, b


def interpolate(gen: Generator, seed_a: int, seed_b: int, steps: int,
                labels: Sequence[str | int] | None = None) -> np.ndarray:
    """``steps`` frames ``[steps, *sample_shape]`` from seed A's first sample to seed B's.

    The noise moves along :func:`slerp` from ``gen.sample_noise(1, seed_a)[0]`` to
    seed B's, both ends included. A conditional model's class follows
    :func:`walk_ends`; between two classes the class code moves linearly through the
    class embedding (module docstring).
    """
    steps = check_count(steps, "steps", minimum=2)
    seed_a, seed_b = check_seed(seed_a), check_seed(seed_b)
    return walk_frames(gen, seed_a, seed_b, steps, walk_ends(gen, seed_a, seed_b, labels))


def walk_frames(gen: Generator, seed_a: int, seed_b: int, steps: int, ends: tuple[int, int] | None, *,
                small_job: bool = False) -> np.ndarray:
    """:func:`interpolate` on checked arguments and the classes :func:`walk_ends` gave;
    ``small_job``: as :meth:`Generator.__call__` takes it."""
    t = np.linspace(0.0, 1.0, steps)
    z = slerp(gen._noise(1, seed_a)[0], gen._noise(1, seed_b)[0], t)
    if ends is None:
        return gen(z, small_job=small_job)
    a, b = ends
    if a == b:
        return gen(z, np.full(steps, a, np.int64), small_job=small_job)
    E = np.asarray(gen.info.class_embedding, np.float64)
    label = np.where(t < 0.5, a, b)
    offset = (1 - t)[:, None] * E[a] + t[:, None] * E[b] - E[label]  # zero at both ends
    return gen((z + offset).astype(np.float32), label, small_job=small_job)


def save_walk(frames: np.ndarray, out: str | os.PathLike[str], *, kind: str,
              value_range=(-1.0, 1.0)) -> list[Path]:
    """Write a walk's frames: ``*.gif`` animated (images scaled up to 128 px at least, ends
    held :data:`HOLD_MS`, looping), ``*.png`` a one-row strip, ``*.npy`` the raw array,
    ``DIR/`` one PNG a frame."""
    frames, form = np.asarray(frames), out_form(out, walk=True)
    if form == "png":
        check_grid(len(frames), form)
        grid_memory(len(frames), frames.shape[1:])
    return write_walk(form, frames, out, kind=kind, value_range=value_range)


def write_walk(form: str, frames: np.ndarray, out: str | os.PathLike[str], *, kind: str,
               value_range=(-1.0, 1.0), scale: int = 1) -> list[Path]:
    """:func:`save_walk` to ``out`` of the form :func:`out_form` gave, the frames' count (and, at
    ``scale`` > 1, :func:`walk_memory` of it) checked; pictures ``scale`` times larger a side."""
    check_finite(frames, 0)
    if form != "gif":
        return list(write_batches(form, [frames], len(frames), frames.shape[1:], out, kind=kind, nrow=len(frames),
                                  value_range=value_range, scale=scale))
    durations = [FRAME_MS] * len(frames)
    durations[0] = durations[-1] = HOLD_MS
    return [save_gif(frame_images(frames, kind, value_range=value_range, scale=scale), out, durations)]
