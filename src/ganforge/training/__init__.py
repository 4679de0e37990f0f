"""Training (torch): the variant registry, the shared loop and the run directory.

    from ganforge.training import train
    result = train("sine", epochs=50)

Names load on first use, so ``gan-train --help`` and a missing ``train`` extra
answer without importing torch.
"""

from __future__ import annotations

from ganforge._lazy import lazy_getattr

_LAZY = {
    "train": "ganforge.training.loop",
    "fit": "ganforge.training.loop",
    "TrainResult": "ganforge.training.loop",
    "TrainRequest": "ganforge.training.request",
    "Hook": "ganforge.training.trainer",
    "VARIANTS": "ganforge.training.variants",
    "Variant": "ganforge.training.variants",
    "GeneratorModel": "ganforge.training.variants",
    "get_variant": "ganforge.training.variants",
}
__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
