"""TorchScript: a traced generator with ganforge's metadata as extra files.

``torch.jit.trace`` is deprecated in current PyTorch and warns; it is kept for
users whose serving stack loads TorchScript (libtorch, older Triton backends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganforge.export.formats import CallCache, precisions_of
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check, torch_artifact_checks


class TorchScript:
    """generator.ts"""

    name = "torchscript"
    precisions = precisions_of("torchscript")
    is_dir = False

    def filename(self, precision: str) -> str:
        return "generator.ts"

    def convert(self, spec: ExportSpec, path: Path, cache: CallCache) -> dict[str, Any]:
        G = spec.generator.eval()
        with torch.no_grad():
            traced = torch.jit.trace(G, spec.example_inputs(2), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=spec.metadata())
        return {"precision": "fp32", "exporter": f"torch.jit.trace {torch.__version__}",
                "note": "TorchScript (torch.jit) is deprecated in this PyTorch; generator.ts is kept for libtorch "
                        "users, generator.onnx is the recommended artifact"}

    def validate(self, spec: ExportSpec, path: Path, cache: CallCache) -> list[Check]:
        return torch_artifact_checks(
            spec, "torch.jit.load",
            lambda extra: torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval(), path)


FORMAT = TorchScript()
