"""Addressable samples: sample ``i`` of seed ``s`` is one thing everywhere.

The noise (and the drawn labels) of a seed is cut into blocks of :data:`BLOCK` samples; block
``b`` is drawn from its own generator, :func:`generator`: numpy's PCG64 seeded by
``SeedSequence(s, spawn_key=(stream, b))`` (``stream`` 0 for the noise, 1 for the labels), its
rows in order. The spawn key keeps the seed's words apart from the stream's and the block's, so
no (seed, stream, block) shares a generator with another (a plain list ``[s, stream, b]`` would
not: numpy reads ``[s, 1, 0]`` as ``[s + 2**32, 0, 0]``). So any range ``[a, b)`` is computed without
the samples before it, and sample ``i`` does not depend on the batch size, the micro-batch, the
runtime, the worker count or the shards a job is cut into: only on ``(seed, i)`` and the model.

Truncation (:mod:`~ganforge.inference.control`) redraws the components it cuts from a third
stream, :data:`REDRAW`, keyed the same way; the noise and labels streams do not change with it.

The scheme is named (:data:`SCHEME`): manifests and ``-v`` carry it, and a manifest of another
scheme is refused. Changing anything here (the block size, the keys, the draw) is a new scheme
with a new name; ``tests/inference/test_keyed.py`` pins values so that it never changes silently.

Torch-free (the lean package's): numpy only.
"""

from __future__ import annotations

import numpy as np

SCHEME = "keyed-blocks-v1"
BLOCK = 1024  # samples a block: each block's noise comes from its own generator
NOISE, LABELS, REDRAW = 0, 1, 2  # the streams of a seed (REDRAW: truncation's redrawn components)


def generator(seed: int, stream: int, block: int) -> np.random.Generator:
    """The generator of ``block`` of ``seed``'s ``stream`` (:data:`NOISE` or :data:`LABELS`)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, block)))


def _blocks(start: int, stop: int):
    """``(block, lo, hi)`` for each block that ``[start, stop)`` touches, ``lo:hi`` within it."""
    first, last = start // BLOCK, (stop - 1) // BLOCK
    for b in range(first, last + 1):
        base = b * BLOCK
        yield b, max(start, base) - base, min(stop, base + BLOCK) - base


def noise(seed: int, start: int, stop: int, dim: int) -> np.ndarray:
    """Noise ``[stop - start, dim]`` float32 of samples ``start:stop`` of ``seed`` (checked
    values: ``0 <= start <= stop``, ``dim >= 1``). A block's rows are drawn in order, so only
    the rows up to the last one wanted are drawn. Ranges read one after the other: :class:`Noise`."""
    return Noise(seed, dim).draw(start, stop)


class Noise:
    """A seed's noise read range after range, as generation reads its chunks: the generator of
    the block last read is kept, so a range that starts where the one before stopped goes on
    drawing instead of drawing the block's first rows again (what :func:`noise` alone does for
    a range that starts inside a block). The values are :func:`noise`'s whatever the order."""

    def __init__(self, seed: int, dim: int):
        self.seed, self.dim = seed, dim
        self._block, self._row, self._rng = -1, 0, None  # the block last read, its next row, its generator

    def draw(self, start: int, stop: int) -> np.ndarray:
        """:func:`noise` of ``start:stop``."""
        block, row = divmod(start, BLOCK)
        if block == self._block and row == self._row and row + stop - start <= BLOCK:  # goes on within the block
            self._row = row + stop - start
            return self._rng.standard_normal((stop - start, self.dim), dtype=np.float32)
        out = np.empty((stop - start, self.dim), np.float32)
        done = 0
        while done < len(out):  # block after block (no _blocks generator: a chunk of 16 rows is a call)
            take = min(BLOCK - row, len(out) - done)
            self._rng_at(block, row).standard_normal(dtype=np.float32, out=out[done : done + take])  # in place
            self._row = row + take
            block, row, done = block + 1, 0, done + take
        return out

    def _rng_at(self, block: int, row: int) -> np.random.Generator:
        """The generator of ``block`` about to draw its row ``row``."""
        if block != self._block or row < self._row:  # another block, or back within this one: from its start
            self._block, self._row, self._rng = block, 0, generator(self.seed, NOISE, block)
        if row > self._row:  # the rows before are not wanted: drawn and dropped, to reach this one
            self._rng.standard_normal((row - self._row, self.dim), dtype=np.float32)
        return self._rng


def uniform(seed: int, start: int, stop: int, dim: int) -> np.ndarray:
    """Uniform values in [0, 1) ``[stop - start, dim]`` float64 of samples ``start:stop`` of
    ``seed``'s :data:`REDRAW` stream, block by block as the noise is: what truncation redraws a
    sample's components from (:mod:`~ganforge.inference.control`), so a truncated sample ``i``
    of seed ``s`` is one thing everywhere too. The noise itself is not touched by this stream."""
    out = np.empty((stop - start, dim), np.float64)
    done = 0
    for b, lo, hi in _blocks(start, stop) if stop > start else ():
        out[done : done + hi - lo] = generator(seed, REDRAW, b).random((hi, dim))[lo:hi]
        done += hi - lo
    return out


def labels(seed: int, start: int, stop: int, num_classes: int) -> np.ndarray:
    """Class indices ``[stop - start]`` int64, uniform over ``num_classes``, of samples
    ``start:stop`` of ``seed``: a stream of their own, so a seed's noise is the same whether the
    model is conditional or not."""
    out = np.empty(stop - start, np.int64)
    done = 0
    for b, lo, hi in _blocks(start, stop) if stop > start else ():
        drawn = generator(seed, LABELS, b).integers(0, num_classes, size=hi, dtype=np.int64)
        out[done : done + hi - lo] = drawn[lo:hi]
        done += hi - lo
    return out
