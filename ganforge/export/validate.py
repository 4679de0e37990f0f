"""Checks that gate every artifact: each is run, every failure is gathered, and one
:class:`ExportCheckError` lists them. An artifact that fails is never moved into place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    from ganforge.export.spec import ExportSpec


class ExportCheckError(GanforgeError):
    """One or more export checks failed; the message lists each with its figure."""

    def __init__(self, fmt: str, failures: list[Check]):
        self.failures = failures
        parts = "; ".join(f"{c.name}" + (f" (batch {c.batch_size})" if c.batch_size else "") + f": {c.detail}" for c in failures)
        super().__init__(f"{fmt} export failed its checks, nothing written: {parts}")


@dataclass
class Check:
    name: str  # what was checked
    passed: bool
    detail: str = ""  # the measured figure or the reason
    batch_size: int | None = None
    max_abs_diff: float | None = None
    atol: float | None = None
    mean_abs_diff: float | None = None  # int8's check: its values are off by a little everywhere
    mean_atol: float | None = None
    shape: list[int] | None = None
    expected_shape: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def parity(batch: int, got: np.ndarray, want: np.ndarray, atol: float, mean_atol: float | None = None) -> Check:
    """Exact output shape, max |got - want| <= atol and, with ``mean_atol``, mean |got - want| <= it."""
    shape, expected = list(got.shape), list(want.shape)
    if shape != expected:
        return Check("parity", False, f"shape {shape}, expected {expected}", batch, shape=shape, expected_shape=expected, atol=atol)
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    diff = float(error.max()) if got.size else 0.0
    ok = bool(np.isfinite(diff) and diff <= atol)
    detail = f"max abs diff {diff:.3g} (atol {atol:g})"
    mean = None
    if mean_atol is not None:
        mean = float(error.mean()) if got.size else 0.0
        ok = ok and mean <= mean_atol
        detail += f", mean {mean:.3g} (at most {mean_atol:g})"
    return Check("parity", ok, detail, batch, max_abs_diff=diff, atol=atol, shape=shape, expected_shape=expected,
                 mean_abs_diff=mean, mean_atol=mean_atol)


def raise_failures(fmt: str, checks: list[Check]) -> None:
    failures = [c for c in checks if not c.passed]
    if failures:
        raise ExportCheckError(fmt, failures)


def torch_artifact_checks(spec: ExportSpec, loader: str, load: Callable[[dict], Callable]) -> list[Check]:
    """The checks of a torch artifact (TorchScript, ``.pt2``): ``load(extra)`` reads it back with
    its extra files into ``extra``, which must hold exactly the ganforge metadata, and what it
    returns must match eager at every checked batch size. ``loader`` names the load in a failure."""
    extra = dict.fromkeys(spec.metadata(), "")
    try:
        run = load(extra)
    except Exception as exc:  # torch raises RuntimeError or its own types
        return [Check(loader, False, str(exc).splitlines()[0][:200])]
    return [spec.extra_files_check(extra), *spec.parity_checks(run)]
