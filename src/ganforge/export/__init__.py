"""Export (torch + onnx): TorchScript and ONNX writers and the checks that gate them.

    from ganforge.export import export
    result = export("runs/latest", formats=["onnx", "torchscript"])

Names load on first use, so ``gan-export --help`` and a missing ``train`` extra
answer without importing torch.
"""

from __future__ import annotations

from ganforge._lazy import lazy_getattr

_LAZY = {
    "export": "ganforge.export.pipeline",
    "ExportResult": "ganforge.export.pipeline",
    "FORMATS": "ganforge.export.pipeline",
    "ExportFormat": "ganforge.export.formats",
    "ExportSpec": "ganforge.export.spec",
    "UserSource": "ganforge.export.spec",
    "Check": "ganforge.export.validate",
    "ExportCheckError": "ganforge.export.validate",
}
__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
