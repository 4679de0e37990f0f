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
them under the same ``y``. This file holds the modules; fitting a config's classes to its
data and the sample grid's labels are set-up, in ``classes.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
