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

__all__ = ["DEFAULT_VARIANT", "VARIANTS", "GeneratorBase", "GeneratorModel", "Variant", "check_conditional",
           "get_variant"]


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}") from None


def check_conditional(variant: Variant, cfg) -> None:
    """``conditional=true`` only for variants whose models take class labels."""
    if cfg.conditional and not variant.config_cls.SUPPORTS_CONDITIONAL:
        able = [v.name for v in VARIANTS.values() if v.config_cls.SUPPORTS_CONDITIONAL]
        raise ConfigError(f"{variant.name} has no classes to condition on; conditional=true works for "
                          f"{', '.join(able)}")
