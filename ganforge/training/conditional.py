"""Class-conditional generation (``--set conditional=true``), shared by the image variants.

The generator takes a class label beside the noise: a learned embedding of the label,
one vector a class in the latent space, is added to the noise, ``G(z + E[y])``. For the
first layer this is the usual concatenation ``W_z z + W_y e(y)`` with the label's
part in the span of the noise's (ample: the latent space has more dimensions than the
data has classes), and it keeps the class code where ``gan-infer`` can reach it: the
exported graph takes ``labels`` int64, ``E`` travels in its metadata, and a walk from
class A to class B feeds ``z + (1-t) E[A] + t E[B] - E[A]`` with label A.

The discriminator/critic is a projection discriminator (Miyato & Koyama, 2018,
arXiv:1802.05637): its last layer's output gains ``<embed(y), phi(x)>``, where
``phi(x)`` is the input of that layer, averaged over space for conv features.

The loop trains conditional models on the data's own labels: a D step compares real
images of classes ``y`` with ``G(z, y)``, and the gradient penalty interpolates between
them under the same ``y``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError, DataError

class LatentClassEmbedding(nn.Module):
    """``z [B, L], labels [B] -> z + weight[labels]``: each class an offset in latent space."""

    def __init__(self, num_classes: int, latent_dim: int, std: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, latent_dim) * std)  # std: ``class_embedding_std``

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional generator needs labels [batch] beside z")
        return z + F.embedding(labels, self.weight)


class ClassProjection(nn.Module):
    """``<embed(labels), phi>`` [B, 1] for features ``phi`` [B, F] or [B, F, H, W] (averaged over space)."""

    def __init__(self, num_classes: int, features: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pooled = features.flatten(2).mean(2) if features.dim() > 2 else features
        return (self.embed(labels) * pooled).sum(1, keepdim=True)


def _last_affine(net: nn.Sequential) -> int:
    return max(i for i, m in enumerate(net) if isinstance(m, (nn.Linear, nn.Conv2d)))


def projection_for(net: nn.Sequential, num_classes: int | None) -> ClassProjection | None:
    """The projection head for a discriminator ``net`` (None when not conditional)."""
    if not num_classes:
        return None
    last = net[_last_affine(net)]
    return ClassProjection(num_classes, last.in_features if isinstance(last, nn.Linear) else last.in_channels)


def discriminate(net: nn.Sequential, projection: ClassProjection | None, x: torch.Tensor,
                 labels: torch.Tensor | None) -> torch.Tensor:
    """Run ``net``; with a projection, add its term to the last Linear/Conv layer's output
    (before a final Sigmoid, if any)."""
    if projection is None:
        return net(x)
    if labels is None:
        raise ValueError("a conditional discriminator needs labels [batch] beside x")
    i = _last_affine(net)
    h = net[:i](x)
    out = net[i](h)
    out = out + projection(h, labels).view(-1, *([1] * (out.dim() - 1)))
    return net[i + 1 :](out)


def configure(cfg: Any, data: Any, variant: str) -> Any:
    """Fill ``num_classes`` and ``class_names`` of a conditional config from its data."""
    if not getattr(cfg, "conditional", False):
        return cfg
    from ganforge.training.datasets import ImageData

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
