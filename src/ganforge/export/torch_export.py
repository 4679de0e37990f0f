"""``torch.export``: an ExportedProgram (``.pt2``), the path PyTorch recommends
for deployment without Python (AOTInductor, ExecuTorch), with a dynamic batch
dimension and ganforge's metadata as extra files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganforge.export.formats import CallCache, precisions_of
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check, torch_artifact_checks


class Exported:
    """generator.pt2"""

    name = "exported"
    precisions = precisions_of("exported")
    is_dir = False

    def filename(self, precision: str) -> str:
        return "generator.pt2"

    def convert(self, spec: ExportSpec, path: Path, cache: CallCache) -> dict[str, Any]:
        G = spec.generator.eval()
        batch = torch.export.Dim("batch", min=1)
        with torch.no_grad():
            program = torch.export.export(G, spec.example_inputs(2), dynamic_shapes=spec.dynamic_shapes(batch))
        torch.export.save(program, str(path), extra_files=spec.metadata())
        return {"precision": "fp32", "exporter": f"torch.export {torch.__version__}"}

    def validate(self, spec: ExportSpec, path: Path, cache: CallCache) -> list[Check]:
        return torch_artifact_checks(
            spec, "torch.export.load", lambda extra: torch.export.load(str(path), extra_files=extra).module(), path)


FORMAT = Exported()
