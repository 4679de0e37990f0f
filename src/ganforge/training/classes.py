"""Class-conditional set-up (``--set conditional=true``): a config's classes come from its
data, and the per-epoch sample grid draws a row a class. The modules that take the labels
are in ``conditional.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ganforge.errors import ConfigError, DataError
from ganforge.training.datasets import ImageData


def configure(cfg: Any, data: Any, variant: str) -> Any:
    """Fill ``num_classes`` and ``class_names`` of a conditional config from its data."""
    if not getattr(cfg, "conditional", False):
        return cfg
    if not isinstance(data, ImageData):
        raise ConfigError(f"conditional=true needs labelled images; {variant}'s data has no labels")
    classes = list(data.classes)
    if len(classes) < 2:
        raise DataError(f"conditional=true needs two or more classes; the data ({data.source}) has one "
                        f"({classes[0]!r}): "
                        "put each class's images in a subfolder of its own (--data DIR/<class>/*.png)"
                        + (", or choose several CIFAR-10 classes (--set classes=all)" if variant == "dcgan" else ""))
    seen = int(data.labels.max()) + 1 if len(data.labels) else 0
    if seen > len(classes) or (len(data.labels) and int(data.labels.min()) < 0):
        raise DataError(f"{data.source} has labels outside 0..{len(classes) - 1}; is the label file complete?")
    for key, value in (("num_classes", len(classes)), ("class_names", classes)):
        given = getattr(cfg, key)
        if given is not None and given != value:
            raise ConfigError(f"{key} comes from the data ({value}), but the config says {given}; leave it unset")
    return replace(cfg, num_classes=len(classes), class_names=classes)


def fixed_labels(num_classes: int, per_class: int, device: torch.device) -> torch.Tensor:
    """Labels of the per-epoch sample grid: one row per class, ``per_class`` columns."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)


def grid_columns(sample_count: int, num_classes: int) -> int:
    """Samples per class in the per-epoch grid: about ``sample_count`` in all, at least 4 a row."""
    return max(4, min(16, round(sample_count / num_classes)))
