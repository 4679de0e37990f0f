"""The variant registry. Adding a variant = one file here + one line in VARIANTS + its test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganforge.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    """Everything the shared loop, checkpoints and export need to know of a variant."""

    name: str
    source: str  # the source document it follows (shared/sources/...)
    config_cls: type  # a TrainConfig subclass; defaults = the chosen hyperparameters
    generator: Callable[[Any], nn.Module]  # config -> Generator (with .latent_dim, .sample_shape)
    discriminator: Callable[[Any], nn.Module]  # config -> Discriminator / critic
    loss: str  # a key of ganforge.training.losses.OBJECTIVES
    kind: str  # "series" or "image": how samples are rendered
    load_data: Callable[[Any], Any]  # config -> torch.Tensor (in memory) or torch Dataset
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # named config presets
    configure: Callable[[Any, Any], Any] | None = None  # (config, data) -> config with data-derived fields


def _registry() -> dict[str, Variant]:
    from ganforge.training.variants import dcgan, mnist_mlp, sine, wgan, wgan_gp

    return {v.name: v for v in (sine.VARIANT, mnist_mlp.VARIANT, dcgan.VARIANT, wgan.VARIANT, wgan_gp.VARIANT)}


VARIANTS: dict[str, Variant] = _registry()
DEFAULT_VARIANT = "sine"


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}") from None
