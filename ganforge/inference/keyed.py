"""Addressable samples: sample ``i`` of seed ``s`` is one thing everywhere.

The noise (and the drawn labels) of a seed is cut into blocks of :data:`BLOCK` samples; block
``b`` is drawn from its own generator, ``np.random.default_rng([s, stream, b])`` (``stream`` 0
for the noise, 1 for the labels), its rows in order. So any range ``[a, b)`` is computed without
the samples before it, and sample ``i`` does not depend on the batch size, the micro-batch, the
runtime, the worker count or the shards a job is cut into: only on ``(seed, i)`` and the model.

The scheme is named (:data:`SCHEME`): manifests and ``-v`` carry it, and a manifest of another
scheme is refused. Changing anything here (the block size, the keys, the draw) is a new scheme
with a new name; ``tests/inference/test_keyed.py`` pins values so that it never changes silently.

Torch-free (the lean package's): numpy only.
"""

from __future__ import annotations

import numpy as np

SCHEME = "keyed-blocks-v1"
BLOCK = 1024  # samples a block: each block's noise comes from its own generator
NOISE, LABELS = 0, 1  # the streams of a seed


def _blocks(start: int, stop: int):
    """``(block, lo, hi)`` for each block that ``[start, stop)`` touches, ``lo:hi`` within it."""
    first, last = start // BLOCK, (stop - 1) // BLOCK
    for b in range(first, last + 1):
        base = b * BLOCK
        yield b, max(start, base) - base, min(stop, base + BLOCK) - base


def noise(seed: int, start: int, stop: int, dim: int) -> np.ndarray:
    """Noise ``[stop - start, dim]`` float32 of samples ``start:stop`` of ``seed`` (checked
    values: ``0 <= start <= stop``, ``dim >= 1``). A block's rows are drawn in order, so only
    the rows up to the last one wanted are drawn."""
    out = np.empty((stop - start, dim), np.float32)
    done = 0
    for b, lo, hi in _blocks(start, stop) if stop > start else ():
        rng = np.random.default_rng([seed, NOISE, b])
        if lo:  # the block's first rows are not wanted: drawn and dropped, to reach row lo
            rng.standard_normal((lo, dim), dtype=np.float32)
        rng.standard_normal(dtype=np.float32, out=out[done : done + hi - lo])  # in place: no copy
        done += hi - lo
    return out


def labels(seed: int, start: int, stop: int, num_classes: int) -> np.ndarray:
    """Class indices ``[stop - start]`` int64, uniform over ``num_classes``, of samples
    ``start:stop`` of ``seed``: a stream of their own, so a seed's noise is the same whether the
    model is conditional or not."""
    out = np.empty(stop - start, np.int64)
    done = 0
    for b, lo, hi in _blocks(start, stop) if stop > start else ():
        drawn = np.random.default_rng([seed, LABELS, b]).integers(0, num_classes, size=hi, dtype=np.int64)
        out[done : done + hi - lo] = drawn[lo:hi]
        done += hi - lo
    return out
