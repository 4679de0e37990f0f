"""What a sharded job takes on disk (:mod:`~ganforge.inference.shards`): a .npy shard's exact
bytes, a PNG shard's about, and the check that the disk has room for the shards still to make
before any is made. Jobs and shards are taken by their fields (``form``, ``sample_shape``,
``kind``, ``scale``, ``out``; ``count``)."""

from __future__ import annotations

import io
import math

import numpy as np

from ganforge.inference.render import SERIES_CELL

PNG_OVERHEAD = 128  # bytes a PNG file holds besides its pixels (signature, chunks, a filter byte a row)


def npy_header(count: int, sample_shape) -> bytes:
    """The .npy header of a shard of ``count`` float32 samples (format 1.0, what numpy writes)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                  "fortran_order": False, "shape": (count, *sample_shape)})
    return buffer.getvalue()


def npy_size(count: int, sample_shape) -> int:
    """The bytes of a complete npy shard of ``count`` samples."""
    return len(npy_header(count, sample_shape)) + 4 * count * math.prod(sample_shape)


def shard_bytes(job, shard) -> int:
    """What ``shard`` takes on disk: a .npy file exactly; a PNG folder about its raw pixels (8-bit
    samples compress to less, noise to about that) and a little a file."""
    if job.form == "npy":
        return npy_size(shard.count, job.sample_shape)
    pixels = SERIES_CELL[0] * SERIES_CELL[1] * 3 if job.kind == "series" else math.prod(job.sample_shape) * job.scale**2
    return shard.count * (pixels + PNG_OVERHEAD)


def check_space(job, todo: list) -> None:
    """Refuse in one line, before anything is made, a job whose missing shards do not fit on the
    disk of its folder (a 30-digit --n wrote until the disk was full)."""
    from ganforge.fsutil import check_free_space

    if todo:
        need = sum(shard_bytes(job, s) for s in todo)
        check_free_space(job.out, need, f"{len(todo):,} {job.form} shard{'s' if len(todo) != 1 else ''} of "
                                         f"{sum(s.count for s in todo):,} samples")
