"""The variant registry. Adding a variant = one file here + one line in VARIANTS + its test.

``base`` declares what a variant is; the variant files import from it, never from this
package, so nothing imports a module that is still initialising.
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.limits import MAX_TRAIN_PARAMETERS
from ganforge.training.variants import custom, dcgan, mnist_mlp, sine, wgan, wgan_gp
from ganforge.training.variants.base import GeneratorBase, GeneratorModel, Variant

VARIANTS: dict[str, Variant] = {
    v.name: v for v in (sine.VARIANT, mnist_mlp.VARIANT, dcgan.VARIANT, wgan.VARIANT, wgan_gp.VARIANT)
}
DEFAULT_VARIANT = "sine"
# The user's own modules (gan-train --generator ...): a variant for the loop, checkpoints and
# export, but not one of VARIANTS, which lists ganforge's own models (each with its tiny test config).
CUSTOM = custom.VARIANT

__all__ = ["CUSTOM", "DEFAULT_VARIANT", "VARIANTS", "GeneratorBase", "GeneratorModel", "Variant", "check_config",
           "check_size", "count_parameters", "get_variant"]


def get_variant(name: str) -> Variant:
    if name == CUSTOM.name:
        return CUSTOM
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)} (or train your own "
                          f"modules: {custom.USAGE})") from None


def check_config(variant: Variant, cfg) -> None:
    """What a config may ask only of some variants: classes, a discriminator's loss, image augmentation."""
    if cfg.conditional and not variant.config_cls.SUPPORTS_CONDITIONAL:
        able = [v.name for v in VARIANTS.values() if v.config_cls.SUPPORTS_CONDITIONAL]
        raise ConfigError(f"{variant.name} has no classes to condition on; conditional=true works for "
                          f"{', '.join(able)}")
    with_d = [v.name for v in VARIANTS.values() if v.loss != "wasserstein"]
    for key, used in (("loss", cfg.loss is not None), ("r1_weight", cfg.r1_weight > 0)):
        if used and variant.loss == "wasserstein":
            raise ConfigError(f"{variant.name} trains a critic with the Wasserstein loss and its gradient penalty; "
                              f"{key} applies to {', '.join(with_d)}")
    if cfg.augment and variant.kind != "image":
        raise ConfigError(f"augment applies to images; {variant.name} makes {variant.kind}")
    if variant.user_code is not None:  # the user's classes import and build, before any data is read or G probed
        with torch.device("meta"), _NoRandomInit():
            _refuse_size(variant, *custom.check_classes(cfg))
    if variant.configure is None:  # sizes that do not wait for the data: refuse huge models before reading it
        check_size(variant, cfg)


def count_parameters(variant: Variant, cfg) -> tuple[int, int]:
    """(G's, D's) parameter counts for ``cfg``, from models built on the meta device: no memory."""
    with torch.device("meta"), _NoRandomInit():
        G, D = variant.generator(cfg), variant.discriminator(cfg)
    return sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())


class _NoRandomInit(torch.overrides.TorchFunctionMode):
    """Skip random draws (and their scaling by a number) while counting: on the meta device they
    go through torch's Python references, which import torch._dynamo (a second), and meta
    tensors hold no values anyway. Anything else runs as usual."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        tensors = [a for a in (*args, *kwargs.values()) if torch.is_tensor(a)]
        if name == "randn":
            return torch.empty(*args, **kwargs)
        if name == "normal_" and tensors:  # the tensor it fills, unchanged
            return tensors[0]
        if name in ("mul", "__mul__", "__rmul__") and len(tensors) == 1:  # a tensor times a number
            return tensors[0]
        return func(*args, **kwargs)


def check_size(variant: Variant, cfg) -> None:
    """Refuse a complete config whose G and D together exceed MAX_TRAIN_PARAMETERS."""
    _refuse_size(variant, *count_parameters(variant, cfg))


def _refuse_size(variant: Variant, g: int, d: int) -> None:
    if g + d > MAX_TRAIN_PARAMETERS:
        raise ConfigError(f"{variant.name} with this config has {(g + d) / 1e6:,.0f}M parameters (G {g / 1e6:,.1f}M, "
                          f"D {d / 1e6:,.1f}M), more than the {MAX_TRAIN_PARAMETERS // 1_000_000}M ganforge trains; lower "
                          "the widths, latent size or image size")
