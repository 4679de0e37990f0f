"""Batches for the shared loop, whatever a variant's data source gives.

A variant's ``load_data`` returns either a tensor held in memory (synthetic
data) or a torch ``Dataset``. Both are iterated here: an in-memory tensor is
sliced by a random permutation (no per-item Python overhead), a Dataset goes
through a DataLoader. Shuffling draws from torch's global RNG, which the
checkpoint saves, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset


def _features(item):
    """A dataset item may be ``x`` or ``(x, label, ...)``: keep ``x``."""
    return item[0] if isinstance(item, (tuple, list)) else item


class Batches:
    """Shuffled mini-batches of one epoch, on ``device``; a partial last batch is kept."""

    def __init__(self, data: torch.Tensor | Dataset, batch_size: int, device: torch.device):
        self.data = data
        self.batch_size = batch_size
        self.device = device
        self.loader = None
        if not isinstance(data, torch.Tensor):
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
        n = len(self.data)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.loader is not None:
            for item in self.loader:
                yield _features(item).to(self.device, non_blocking=True)
            return
        perm = torch.randperm(len(self.data))
        for start in range(0, len(perm), self.batch_size):
            yield self.data[perm[start : start + self.batch_size]].to(self.device)


def default_num_workers() -> int:
    """Loader processes: the cores there are, less one for the training loop, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def real_examples(data: torch.Tensor | Dataset, k: int) -> torch.Tensor:
    """The first ``k`` real samples, for plots beside generated ones."""
    if isinstance(data, torch.Tensor):
        return data[:k]
    return torch.stack([_features(data[i]) for i in range(min(k, len(data)))])
