"""Export formats by name, and the contract every format honours. torch-free: ``gan-export
--help`` builds its choices from here without importing torch.

The pipeline registers one :class:`ExportFormat` under each name of :data:`OFFERS` and
uses only what the protocol declares; a test proves every registered format agrees
with its entry here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ganforge.export.spec import ExportSpec
    from ganforge.export.validate import Check

PRECISIONS = ("fp32", "fp16", "int8")  # fp16 and int8 are conversions of the ONNX graph

# name -> (precisions offered, what it is for: gan-export --help)
OFFERS: dict[str, tuple[tuple[str, ...], str]] = {
    "onnx": (PRECISIONS, "serving"),
    "torchscript": (("fp32",), "libtorch, deprecated"),
    "exported": (("fp32",), "torch.export .pt2"),
    "triton": (PRECISIONS, "a Triton model repository"),
}
NAMES = tuple(OFFERS)


def precisions_of(name: str) -> tuple[str, ...]:
    return OFFERS[name][0]


class CallCache(dict):
    """What one ``export()`` call makes once and its formats share (the ONNX model at the
    call's precision, the checks already run on an ONNX file's bytes), so that asking for
    onnx and triton together exports and checks the graph once. Keys are tuples that
    start with the maker's name."""

    def once(self, key: tuple, make):
        if key not in self:
            self[key] = make()
        return self[key]


@runtime_checkable
class ExportFormat(Protocol):
    """One export format: what the pipeline knows of it, and all it calls."""

    name: str  # the --format choice, a key of OFFERS
    precisions: tuple[str, ...]  # what --precision it offers (OFFERS)
    is_dir: bool  # the artifact is a folder: staged and moved into place whole

    def filename(self, precision: str) -> str:
        """The artifact's path relative to the export folder."""
        ...

    def convert(self, spec: ExportSpec, path: Path, cache: CallCache) -> dict[str, Any]:
        """Write the artifact at ``path`` (a fresh folder when ``is_dir``); return what goes into export.json."""
        ...

    def validate(self, spec: ExportSpec, path: Path, cache: CallCache) -> list[Check]:
        """Every check of the artifact at ``path``, passed or not; never raises for a failed one."""
        ...
