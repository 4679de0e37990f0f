"""The variant registry. Adding a variant = one file here + one line in VARIANTS + its test.

``base`` declares what a variant is; the variant files import from it, never from this
package, so nothing imports a module that is still initialising.
"""

from __future__ import annotations

from ganforge.errors import ConfigError
from ganforge.training.variants import dcgan, mnist_mlp, sine, wgan, wgan_gp
from ganforge.training.variants.base import GeneratorBase, GeneratorModel, Variant

VARIANTS: dict[str, Variant] = {
    v.name: v for v in (sine.VARIANT, mnist_mlp.VARIANT, dcgan.VARIANT, wgan.VARIANT, wgan_gp.VARIANT)
}
DEFAULT_VARIANT = "sine"

__all__ = ["DEFAULT_VARIANT", "VARIANTS", "GeneratorBase", "GeneratorModel", "Variant", "check_config",
           "get_variant"]


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}") from None


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
