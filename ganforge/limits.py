"""The bounds on every size a user or a file can set, so that no input makes ganforge
allocate without limit.

One budget holds memory: ``GANFORGE_MAX_MEMORY`` (default 1 GiB; ``4G``, ``512M`` or a
byte count). onnxruntime's CPU allocations come from an arena capped at it (a graph
that expands to gigabytes fails in one line instead of swapping), and what ganforge
holds in memory at once (a PNG grid, a walk's frames, gan-eval's samples and distance
matrices, a gan-bench batch) is checked against it before anything is allocated.
Outputs that stream (``.npy``, a folder of PNGs) take any ``--n``.

Sizes read from a model file are bounded apart from the budget: no real generator comes
near them, and a file that claims more is refused before its claim sizes anything.

torch-free on purpose: ``ganforge.inference`` imports it.
"""

from __future__ import annotations

import os
import re

from ganforge.errors import GanforgeError

MEMORY_ENV = "GANFORGE_MAX_MEMORY"
DEFAULT_MEMORY = 1 << 30  # what one gan-infer, gan-eval or gan-bench may hold at once
MIN_MEMORY = 64 << 20  # below this onnxruntime cannot even load a conv generator

# What a model's metadata (or graph) may claim. A 64x64 DCGAN has latent 100 and 12,288 values a
# sample; these admit 2048x2048 RGB images, latents of 65,536 and 100,000 classes.
MAX_LATENT_DIM = 1 << 16
MAX_SAMPLE_VALUES = 3 * 2048 * 2048
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 200  # characters of one class name
MAX_EMBEDDING_VALUES = 1 << 21  # classes x latent of a class embedding (1000 classes of latent 2048)
# A graph whose batch dimension is fixed (exported with batch 1, or 16, ...) runs in chunks of exactly that
# many; exporters fix 1 to 64, and 4096 is the most samples gan-infer holds in a grid.
MAX_FIXED_BATCH = 4096

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def memory_budget() -> int:
    """Bytes one process may hold at once: ``$GANFORGE_MAX_MEMORY``, else 1 GiB."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY
    match = _SIZE.fullmatch(text)
    if not match:
        raise GanforgeError(f"{MEMORY_ENV}={text!r} is not a size: use a byte count or a number with K, M, G or T "
                            "(e.g. 4G)")
    size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < MIN_MEMORY:
        raise GanforgeError(f"{MEMORY_ENV}={text!r} is below the {fmt_bytes(MIN_MEMORY)} ganforge needs to run a "
                            "model; raise it")
    return size


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_memory(what: str, nbytes: int, fix: str) -> None:
    """Refuse ``what`` when it would hold ``nbytes`` at once, more than the budget: the message
    names the need, the limit, ``fix`` (a smaller request or a streaming output) and how to
    raise the limit."""
    budget = memory_budget()
    if nbytes > budget:
        raise GanforgeError(f"{what} needs about {fmt_bytes(nbytes)} in memory, more than the {fmt_bytes(budget)} "
                            f"limit: {fix}, or raise the limit ({MEMORY_ENV}=4G)")
