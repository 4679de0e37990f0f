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

What a training config (a file, ``--set``, a checkpoint's) may ask for is bounded too, by the
``MAX_TRAIN_*`` constants below: tighter than what a model file may claim (training holds
optimizer state and draws a sample grid each epoch), and named apart from those.

torch-free on purpose: ``ganforge.inference`` imports it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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

# ---------------------------------------------------------------- what a training run may ask for
# Upper bounds of the sizes a training config (a file, --set, a checkpoint's) may ask for: generous for
# real use, far below what would allocate gigabytes before the first step.
MAX_TRAIN_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits, numpy's RNGs more
MAX_TRAIN_EPOCHS = 100_000  # the sources train 20-300 epochs; more cannot be meant (a checkpoint keeps a history row
# an epoch: MAX_HISTORY_ROWS)
MAX_TRAIN_BATCH_SIZE = 65_536  # BigGAN's 2048 thirty times over (a batch is also capped by the data)
MAX_TRAIN_SAMPLE_COUNT = 256  # the per-epoch grid: 16x16 samples (defaults 16-64), drawn and rendered each epoch
MAX_TRAIN_LATENT_DIM = 2048  # StyleGAN's 512 four times; x MAX_TRAIN_CLASSES stays within what gan-infer serves
# (MAX_EMBEDDING_VALUES), as does a class name (MAX_CLASS_NAME)
MAX_TRAIN_WIDTH = 8192  # a hidden layer or base width (sources: 8-256); MAX_TRAIN_PARAMETERS bounds the whole
MAX_TRAIN_LAYERS = 64  # hidden layers or conv blocks (sources: 2-5)
MAX_TRAIN_IMAGE_SIDE = 1024  # pixels a side (StyleGAN's FFHQ); a larger image_size is a typo or an attack
MAX_TRAIN_SERIES_LEN = 65_536  # points per curve (the sine source: 32)
MAX_TRAIN_SERIES_VALUES = 2**27  # rows x points of synthetic series, made at once: 512 MiB of float32
MAX_TRAIN_CLASSES = 1000  # ImageNet's; the sample grid draws a row a class every epoch
# G and D together: BigGAN-deep at 512x512 has about 150M. Training holds some 20 bytes a
# parameter (weights, gradients, Adam's two moments, the EMA copy): 4 GB before activations.
MAX_TRAIN_PARAMETERS = 200_000_000
# A checkpoint (or a user's weights file): MAX_TRAIN_PARAMETERS in float32 four times over (weights,
# the EMA copy, Adam's two moments), and a GiB for the rest (noise, history, RNG states).
MAX_CHECKPOINT_BYTES = MAX_TRAIN_PARAMETERS * 4 * 4 + 2**30
MAX_CONFIG_BYTES = 1 << 20  # a training config file (a resolved config.json is about 1 KB)

# ---------------------------------------------------------------- what a torch file may hold
# Checked by ganforge.zipcheck on the zip's directory and its pickle, before torch reads a byte of them.
UNPACKED_ENV = "GANFORGE_MAX_UNPACKED"
# What a torch file (a checkpoint, --weights, gan-eval's evaluator) may hold once unpacked, every record's
# declared size counted: by default the largest checkpoint a run writes (torch stores records unpacked, so a
# file of that size holds as much); a 4 MB file of one deflated 4 GiB record is refused, never inflated.
DEFAULT_UNPACKED = MAX_CHECKPOINT_BYTES
MAX_TORCH_RECORDS = 100_000  # a record per tensor storage, and a few: a 200M-parameter run's checkpoint has thousands
# The pickle of a torch file (all but its tensors' bytes) is what torch materialises as Python objects, some
# 60 bytes each: these bound it to about 250 MB, where a 200 MB pickle of 2M history rows took 1.86 GB.
MAX_PICKLE_OPS = 4_000_000  # operations (a history row is some 20, a tensor some 25; a 300-epoch run's total 15,000)
MAX_PICKLE_DEPTH = 32  # lists, dicts and tuples inside each other (a checkpoint nests 6 deep)
MAX_HISTORY_ROWS = 100_000  # a checkpoint's history: a row an epoch, so MAX_TRAIN_EPOCHS rows; items of any one
# list or dict of a checkpoint's pickle

MAX_SIZE_SETTING = 1 << 50  # a size in the environment: a pebibyte (onnxruntime's arena takes a C integer)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _env_size(name: str, default: int) -> int:
    """The size in ``$name`` (a byte count, or a number with K, M, G or T), else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    match = _SIZE.fullmatch(text[:40])
    if not match or len(text) > 40:
        raise GanforgeError(f"{name}={text[:40]!r} is not a size: use a byte count or a number with K, M, G or T "
                            "(e.g. 4G)")
    size = float(match[1]) * _UNITS[match[2].lower()]
    if size > MAX_SIZE_SETTING:
        raise GanforgeError(f"{name}={text!r} is more than a pebibyte, more than any machine holds: give a size "
                            "such as 4G")
    return int(size)


def memory_budget() -> int:
    """Bytes one process may hold at once: ``$GANFORGE_MAX_MEMORY``, else 1 GiB."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    size = _env_size(MEMORY_ENV, DEFAULT_MEMORY)
    if text and size < MIN_MEMORY:
        raise GanforgeError(f"{MEMORY_ENV}={text!r} is below the {fmt_bytes(MIN_MEMORY)} ganforge needs to run a "
                            "model; raise it")
    return size


def unpacked_bound() -> int:
    """Bytes a torch file may hold once unpacked: ``$GANFORGE_MAX_UNPACKED``, else DEFAULT_UNPACKED."""
    return _env_size(UNPACKED_ENV, DEFAULT_UNPACKED)


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


def check_file_size(path: Path, error: type[GanforgeError], than: str, what: str = "",
                    limit: int = MAX_CHECKPOINT_BYTES) -> None:
    """Refuse the file ``path`` before reading it when it holds more than ``limit`` bytes (by default
    the largest checkpoint a ganforge run writes) with ``error("<what> <path> is 5.1 GiB, <than>;
    is it the right file?")``; ``than`` says what the limit is, ``{limit}`` standing for it in GiB."""
    size = path.stat().st_size
    if size > limit:
        raise error(f"{what + ' ' if what else ''}{path} is {fmt_bytes(size)}, "
                    f"{than.format(limit=f'{limit / 2**30:.0f} GiB')}; is it the right file?")
