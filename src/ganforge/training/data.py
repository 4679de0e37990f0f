"""Batches for the shared loop, whatever a variant's data source gives.

A variant's ``load_data`` returns a float tensor held in memory (synthetic data),
an :class:`~ganforge.training.datasets.ImageData` (uint8 images decoded once), or
a torch ``Dataset``. In-memory data is sliced by a random permutation (no
per-item Python overhead); a Dataset goes through a DataLoader with worker
processes. Shuffling draws from torch's global RNG, which the checkpoint saves,
so a resumed run sees the same batches as an uninterrupted one. Batches come
out as float32 on the training device, images in [-1, 1]; with ``labels=True``
(conditional models) each comes with its int64 class labels.

Under torchrun (``shard=(rank, world_size)``) both paths go through a
``DistributedSampler``: every epoch is shuffled from ``seed + epoch`` alike on
all ranks, padded to a multiple of the world size, and each rank takes every
``world_size``-th index from its rank on, so all ranks run the same number of
steps on disjoint samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ganforge import threads
from ganforge.training.datasets import ImageData, to_float


def _features(item):
    """A dataset item may be ``x`` or ``(x, label, ...)``: keep ``x``."""
    return item[0] if isinstance(item, (tuple, list)) else item


def _labels(item) -> torch.Tensor:
    """The labels of a DataLoader batch ``(x, labels, ...)``."""
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise TypeError("conditional training needs a dataset of (image, label) items")
    return torch.as_tensor(item[1], dtype=torch.int64)


class Batches:
    """Shuffled mini-batches of one epoch, on ``device``; a partial last batch is kept.

    On CUDA, in-memory batches are gathered into pinned host memory and copied
    asynchronously (a DataLoader pins its own); ``channels_last`` gives image batches
    the NHWC memory layout that the conv variants use there.
    """

    def __init__(self, data: torch.Tensor | ImageData | Dataset, batch_size: int, device: torch.device, *,
                 shard: tuple[int, int] = (0, 1), seed: int = 0, channels_last: bool = False, labels: bool = False):
        self.batch_size = batch_size
        self.device = device
        self.channels_last = channels_last
        self.pin = device.type == "cuda"
        self.loader = None
        self.tensor = data.images if isinstance(data, ImageData) else data
        self.labels = None  # int64 [N] when batches carry labels (in-memory data)
        if labels:
            if not isinstance(data, (ImageData, Dataset)):
                raise TypeError("labels=True needs ImageData or a Dataset of (image, label) items")
            self.labels = data.labels if isinstance(data, ImageData) else None
        self.with_labels = labels
        rank, world_size = shard
        self.sampler = None
        if world_size > 1:
            self.sampler = DistributedSampler(self.tensor, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        if not isinstance(self.tensor, torch.Tensor):
            workers = default_num_workers()
            self.loader = DataLoader(
                data,
                batch_size=batch_size,
                shuffle=self.sampler is None,
                sampler=self.sampler,
                num_workers=workers,
                pin_memory=self.pin,
                persistent_workers=workers > 0,
            )

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.tensor)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        for _, _, batch, labels in self.iterate():
            yield (batch, labels) if self.with_labels else batch

    def iterate(self, perm: torch.Tensor | None = None, start: int = 0, epoch: int = 0
                ) -> Iterator[tuple[torch.Tensor | None, int, torch.Tensor, torch.Tensor | None]]:
        """Yield ``(perm, batches done, batch, labels or None)``. In-memory data can pick up
        an epoch where it stopped: pass the epoch's ``perm`` and the batches already done (a
        shard's ``perm`` follows from ``epoch``)."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        if self.loader is not None:
            for i, item in enumerate(self.loader, 1):
                labels = _labels(item).to(self.device, non_blocking=True) if self.with_labels else None
                yield None, i, self._on_device(_features(item)), labels
            return
        if perm is None:
            perm = torch.tensor(list(self.sampler)) if self.sampler is not None else torch.randperm(len(self.tensor))
        for i, first in enumerate(range(0, len(perm), self.batch_size), 1):
            if i <= start:
                continue
            idx = perm[first : first + self.batch_size]
            batch = self.tensor[idx]
            labels = self.labels[idx].to(self.device, non_blocking=True) if self.labels is not None else None
            yield perm, i, self._on_device(batch.pin_memory() if self.pin else batch), labels

    def _on_device(self, batch: torch.Tensor) -> torch.Tensor:
        batch = to_float(batch.to(self.device, non_blocking=True))
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def default_num_workers() -> int:
    """Loader processes: the idle cores this process has, less its compute threads, at most 8 (ganforge.threads)."""
    return threads.loader_workers()


def real_examples(data: torch.Tensor | ImageData | Dataset, k: int) -> torch.Tensor:
    """``k`` real samples spread over the data, as float, for plots beside generated ones."""
    tensor = data.images if isinstance(data, ImageData) else data
    n = len(tensor)
    idx = torch.linspace(0, n - 1, min(k, n)).long().tolist()
    if isinstance(tensor, torch.Tensor):
        return to_float(tensor[idx])
    return to_float(torch.stack([_features(tensor[i]) for i in idx]))
