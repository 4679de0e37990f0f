"""Training (torch): the variant registry, the shared loop and the run directory.

    from ganforge.training import train
    result = train("sine", epochs=50)

Names load on first use, so ``gan-train --help`` and a missing ``train`` extra
answer without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "train": "ganforge.training.loop",
    "TrainResult": "ganforge.training.loop",
    "VARIANTS": "ganforge.training.variants",
    "Variant": "ganforge.training.variants",
    "get_variant": "ganforge.training.variants",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganforge.training' has no attribute {name!r}")
