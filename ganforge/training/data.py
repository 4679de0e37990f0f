"""Batches for the shared loop, whatever a variant's data source gives.

A variant's ``load_data`` returns a float tensor held in memory (synthetic data),
an :class:`~ganforge.training.datasets.ImageData` (uint8 images decoded once), or
a torch ``Dataset``. In-memory data is sliced by a random permutation (no
per-item Python overhead); a Dataset goes through a DataLoader with worker
processes. Shuffling draws from torch's global RNG, which the checkpoint saves,
so a resumed run sees the same batches as an uninterrupted one. Batches come
out as float32 on the training device, images in [-1, 1].
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.training.datasets import ImageData, to_float


def _features(item):
    """A dataset item may be ``x`` or ``(x, label, ...)``: keep ``x``."""
    return item[0] if isinstance(item, (tuple, list)) else item


class Batches:
    """Shuffled mini-batches of one epoch, on ``device``; a partial last batch is kept."""

    def __init__(self, data: torch.Tensor | ImageData | Dataset, batch_size: int, device: torch.device):
        self.batch_size = batch_size
        self.device = device
        self.loader = None
        self.tensor = data.images if isinstance(data, ImageData) else data
        if isinstance(self.tensor, torch.Tensor):
            if device.type == "cuda":
                self.tensor = self.tensor.pin_memory()
        else:
            workers = default_num_workers()
            self.loader = DataLoader(
                data,
                batch_size=batch_size,
                shuffle=True,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                persistent_workers=workers > 0,
            )

    def __len__(self) -> int:
        n = len(self.tensor) if self.loader is None else len(self.loader.dataset)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        for _, _, batch in self.iterate():
            yield batch

    def iterate(self, perm: torch.Tensor | None = None, start: int = 0
                ) -> Iterator[tuple[torch.Tensor | None, int, torch.Tensor]]:
        """Yield ``(perm, batches done, batch)``. In-memory data can pick up an epoch
        where it stopped: pass the epoch's ``perm`` and the batches already done."""
        if self.loader is not None:
            for i, item in enumerate(self.loader, 1):
                yield None, i, to_float(_features(item).to(self.device, non_blocking=True))
            return
        if perm is None:
            perm = torch.randperm(len(self.tensor))
        for i, first in enumerate(range(0, len(perm), self.batch_size), 1):
            if i <= start:
                continue
            batch = self.tensor[perm[first : first + self.batch_size]]
            yield perm, i, to_float(batch.to(self.device, non_blocking=True))


def default_num_workers() -> int:
    """Loader processes: the cores there are, less one for the training loop, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def real_examples(data: torch.Tensor | ImageData | Dataset, k: int) -> torch.Tensor:
    """``k`` real samples spread over the data, as float, for plots beside generated ones."""
    tensor = data.images if isinstance(data, ImageData) else data
    n = len(tensor)
    idx = torch.linspace(0, n - 1, min(k, n)).long().tolist()
    if isinstance(tensor, torch.Tensor):
        return to_float(tensor[idx])
    return to_float(torch.stack([_features(tensor[i]) for i in idx]))
