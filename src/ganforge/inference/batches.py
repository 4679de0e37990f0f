"""How a :class:`~ganforge.inference.Generator` turns many samples into runs: noise keyed by
(seed, index) (:mod:`~ganforge.inference.keyed`: samples never depend on the batch size, and
any range is made on its own), chunks sized for memory, each run
in micro-batches, and the batches of a per-class grid. A mixin over the Generator's runs
(``_micro``, ``_run_noise``), its ``info`` and its labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.inference import keyed
from ganforge.inference.control import Control
from ganforge.inference import labels as labelling
from ganforge.values import check_count, check_seed, check_start

MAX_BATCH = 1024  # samples per chunk when generating many ...
BATCH_BYTES = 4 << 20  # ... or fewer, so that one chunk's output stays near 4 MiB: big images, smaller chunks


class Batching:
    """The batch methods of :class:`~ganforge.inference.Generator`."""

    @property
    def default_batch(self) -> int:
        """Samples per chunk when generating many (each chunk then runs in :attr:`micro_batch`
        pieces): up to 1024, a power of two that keeps one chunk's output within 4 MiB, so
        memory stays small for big images (benchmarks/results/streaming.md)."""
        per_sample = 4 * math.prod(self.info.sample_shape)
        fits = max(1, BATCH_BYTES // per_sample)
        return min(MAX_BATCH, 1 << (fits.bit_length() - 1))

    def sample_noise(self, n: int, seed: int, start: int = 0) -> np.ndarray:
        """Noise ``[n, latent_dim]`` float32 of samples ``start:start + n`` of ``seed``: what
        ``generate(n, seed, start=start)`` feeds the model."""
        n, seed, start = check_count(n), check_seed(seed), check_start(start)
        return self._noise(n, seed, start)

    def _noise(self, n: int, seed: int, start: int = 0) -> np.ndarray:
        return keyed.noise(seed, start, start + n, self.info.latent_dim)

    # --- batches ------------------------------------------------------------------------------------

    def iter_batches(self, n: int, seed: int = 0, batch_size: int | None = None,
                     labels: np.ndarray | None = None, start: int = 0, *,
                     control: Control | None = None) -> Iterator[np.ndarray]:
        """Yield samples ``start:start + n`` of ``seed`` in batches of ``batch_size`` samples a run
        (default: batches of :attr:`default_batch`, each run in :attr:`micro_batch` pieces).

        Noise is keyed by (seed, index) (:mod:`~ganforge.inference.keyed`), so the samples do not
        depend on ``batch_size`` and a range equals the same slice of the whole. A conditional
        model takes ``labels`` (class indices ``[n]``) or, when None, labels drawn as
        :meth:`sample_labels` draws them. ``control``: truncation and edits of the noise
        (:mod:`~ganforge.inference.control`), keyed by (seed, index) as the noise is. Arguments are
        checked here, not at the first ``next()`` (:meth:`stream` takes them checked).
        """
        n, seed, start = check_count(n), check_seed(seed), check_start(start)
        labels = None if labels is None else self._check_labels(labels, n)  # None: drawn below, if conditional
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        return self.stream(n, seed, batch_size, labels, start=start, control=control)

    def stream(self, n: int, seed: int, batch_size: int | None = None, labels: np.ndarray | None = None, *,
               small_job: bool = False, start: int = 0, control: Control | None = None) -> Iterator[np.ndarray]:
        """:meth:`iter_batches` on arguments already checked (a
        :class:`~ganforge.inference.request.GenerationRequest`'s; ``labels`` int64 ``[n]`` in range,
        or None: drawn, for a conditional model); ``small_job``: as :meth:`__call__` takes it."""
        drawn = labels is None and self.info.conditional
        noise = keyed.Noise(seed, self.info.latent_dim)  # chunk after chunk: each row drawn once

        def chunk(at: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
            z = noise.draw(start + at, start + at + b)
            if control:
                z = control.apply(z, seed, start + at)
            if drawn:
                return z, labelling.draw_labels(self.info, seed, start + at, start + at + b)
            return z, None if labels is None else labels[at : at + b]

        return self._batches(n, chunk, batch_size, small_job)

    def run_batches(self, z: np.ndarray, labels: np.ndarray | None = None,
                    batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Like :meth:`iter_batches` on given noise ``z`` (and ``labels``) instead of a seed's."""
        z = self._check_noise(z)
        labels = self._check_labels(labels, len(z))
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        return self._batches(len(z), lambda start, b: (z[start : start + b],
                                                       None if labels is None else labels[start : start + b]),
                             batch_size)

    def per_class_batches(self, per_class: int, classes: list[int], seed: int,
                          batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Samples of a per-class grid, row after row: ``per_class`` noises (:meth:`sample_noise`),
        the same in every row, each row one of ``classes``. Streams: memory does not grow with
        the rows."""
        if not self.info.conditional:
            raise GanforgeError(self._no_classes("per-class grids"))
        per_class, seed = check_count(per_class, "per_class"), check_seed(seed)
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        return self.stream_per_class(per_class, classes, seed, batch_size)

    def stream_per_class(self, per_class: int, classes: list[int], seed: int, batch_size: int | None = None, *,
                         small_job: bool = False, start: int = 0,
                         control: Control | None = None) -> Iterator[np.ndarray]:
        """:meth:`per_class_batches` on arguments already checked, of a conditional model, its
        noises those of samples ``start:start + per_class``; ``small_job``: as :meth:`__call__` takes it."""
        noise = self._noise(per_class, seed, start)
        if control:
            noise = control.apply(noise, seed, start)
        row = np.asarray(classes, np.int64)

        def chunk(start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            index = np.arange(start, start + b)
            return noise[index % per_class], row[index // per_class]

        return self._batches(per_class * len(row), chunk, batch_size, small_job)

    def _batches(self, n: int, chunk, batch_size: int | None, small_job: bool = False) -> Iterator[np.ndarray]:
        """``chunk(start, b)`` gives the noise and labels of samples ``start:start + b``.
        No ``batch_size``: chunks sized for memory, each run in micro-batches; else exactly
        ``batch_size`` samples a run."""
        step, run = (self.default_batch, self._micro) if batch_size is None else (batch_size, self._run_noise)
        done = 0
        while done < n:
            b = min(step, n - done)
            z, labels = chunk(done, b)
            yield run(np.ascontiguousarray(z, dtype=np.float32), labels, small_job=small_job)
            done += b

    def generate(self, n: int, seed: int = 0, batch_size: int | None = None,
                 labels: np.ndarray | None = None, start: int = 0, *,
                 control: Control | None = None) -> np.ndarray:
        """Samples ``start:start + n`` ``[n, *sample_shape]`` float32 of ``seed`` (and ``labels``
        and ``control``, see :meth:`iter_batches`), whatever ``batch_size``."""
        batches = self.iter_batches(n, seed, batch_size, labels, start, control=control)
        out = np.empty((n, *self.info.sample_shape), np.float32)  # filled in place: no second copy
        done = 0
        for batch in batches:
            out[done : done + len(batch)] = batch
            done += len(batch)
        return out
