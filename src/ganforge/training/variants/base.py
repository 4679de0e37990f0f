"""What a variant declares, and the contract every generator honours.

A variant is one file beside this one: its typed config, its Generator and Discriminator (or
critic), the name of its loss. :class:`Variant` is how it registers. :class:`GeneratorModel`
is the generator contract that the loop, export and evaluation rely on, declared once here
instead of being discovered with ``getattr``; :class:`GeneratorBase` implements the part of
it every ganforge generator shares, the conditional preamble ``z + E[labels]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ganforge.training.conditional import LatentClassEmbedding


@dataclass(frozen=True)
class Variant:
    """Everything the shared loop, checkpoints and export need to know of a variant."""

    name: str
    source: str  # the source document it follows, in a few words (docs/variants.md tells more)
    config_cls: type  # a TrainConfig subclass; defaults = the chosen hyperparameters
    generator: Callable[[Any], nn.Module]  # config -> a GeneratorModel
    discriminator: Callable[[Any], nn.Module]  # config -> Discriminator / critic
    loss: str  # a key of ganforge.training.losses.OBJECTIVES
    kind: str  # "series" or "image": how samples are rendered
    load_data: Callable[[Any], Any]  # config -> torch.Tensor (in memory), ImageData or a torch Dataset
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # named config presets
    configure: Callable[[Any, Any], Any] | None = None  # (config, data) -> config with data-derived fields
    # config -> the user's code its models import, option -> "file.py:Name": a checkpoint of such
    # a run names code, imported only to resume or export it (checkpoint.import_recorded)
    user_code: Callable[[Any], Mapping[str, str]] | None = None


@runtime_checkable
class GeneratorModel(Protocol):
    """A generator as the rest of ganforge sees it.

    ``G(z)`` maps noise ``[batch, latent_dim]`` to samples ``[batch, *sample_shape]`` in
    [-1, 1]; a conditional one (``num_classes`` set) also takes ``labels`` int64 ``[batch]``.
    ``class_embedding`` (conditional only) holds the per-class latent offsets ``E``
    (``.weight``, ``[num_classes, latent_dim]``) with ``G(z, y) = G'(z + E[y])``: export writes
    E into the ONNX metadata, and gan-infer walks between classes through it.
    """

    latent_dim: int
    sample_shape: tuple[int, ...]
    num_classes: int | None
    class_embedding: LatentClassEmbedding | None

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


class GeneratorBase(nn.Module):
    """A :class:`GeneratorModel` whose subclass supplies ``decode(z)``: the class offset is
    added here once, so every variant's generator is conditional in the same way."""

    def __init__(self, latent_dim: int, sample_shape: tuple[int, ...], num_classes: int | None = None,
                 class_std: float = 1.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.sample_shape = tuple(sample_shape)
        self.num_classes = num_classes
        self.class_embedding = LatentClassEmbedding(num_classes, latent_dim, class_std) if num_classes else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.class_embedding is not None:
            z = self.class_embedding(z, labels)  # B x latent_dim: the class as an offset of the noise
        return self.decode(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, latent_dim] (class offset included) -> x [B, *sample_shape]."""
        raise NotImplementedError
