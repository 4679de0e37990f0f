"""Checks that gate every artifact: each is run, every failure is gathered, and one
:class:`ExportCheckError` lists them. An artifact that fails is never moved into place.

What is exported is :class:`~ganforge.export.spec.ExportSpec`, a description; the checks of
it and of every artifact made from it live here (the split of Hugging Face optimum's
exporters), so that this module imports the spec and never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge import zipcheck
from ganforge.errors import GanforgeError, first_line
from ganforge.export.spec import ATOL, ExportSpec

# A torch artifact read back before its checks: a record that does not match its CRC was not written whole
ARTIFACT = zipcheck.Reader("artifact", "export again", error=GanforgeError, legacy="export again")


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


def torch_artifact_checks(spec: ExportSpec, loader: str, load: Callable[[dict], Callable],
                          path: Path | None = None) -> list[Check]:
    """The checks of a torch artifact (TorchScript, ``.pt2``) at ``path``: its zip records are whole
    (their CRCs: torch's loaders check none), ``load(extra)`` reads it back with its extra files into
    ``extra``, which must hold exactly the ganforge metadata, and what it returns must match eager at
    every checked batch size. ``loader`` names the load in a failure."""
    extra = dict.fromkeys(spec.metadata(), "")
    try:
        if path is not None:
            zipcheck.verify_file(path, ARTIFACT)
        run = load(extra)
    except Exception as exc:  # torch raises RuntimeError or its own types
        return [Check(loader, False, first_line(exc))]
    return [extra_files_check(spec, extra), *parity_checks(spec, run)]


def generator_checks(spec: ExportSpec) -> list[Check]:
    """The checks of the generator itself, first in every artifact's list: it is in eval mode, and
    a user's generator was measured independent of its batch (:func:`~ganforge.export.spec.spec_from_module`)."""
    training = [n for n, m in spec.generator.named_modules() if m.training]
    checks = [Check("eval_mode", not training, "generator in eval mode" if not training
                    else f"modules in training mode: {', '.join(training[:5]) or 'root'}")]
    if spec.batch_diff is not None:
        checks.append(Check("batch_independent", True, f"a sample alone and in a batch differ by {spec.batch_diff:.3g} "
                                                       f"(atol {ATOL['fp32']:g})"))
    return checks


@torch.no_grad()
def reference(spec: ExportSpec, *inputs: torch.Tensor) -> torch.Tensor:
    """PyTorch eager output, the ground truth every artifact is compared with."""
    return spec.generator(*inputs)


def extra_files_check(spec: ExportSpec, extra: dict) -> Check:
    """The ``metadata`` check of a torch artifact: its extra files (read back as
    bytes or str) must hold exactly the ganforge metadata."""
    read = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    ok = read == spec.metadata()
    return Check("metadata", ok, "ganforge metadata in extra files" if ok else "extra files differ")


def parity_checks(spec: ExportSpec, run) -> list[Check]:
    """Shape and max-abs parity of ``run(z)`` or ``run(z, labels)`` (an artifact's output,
    array or tensor) against eager, at every checked batch size."""
    checks = []
    for b in spec.batch_sizes:
        inputs = spec.example_inputs(b)
        with torch.no_grad():
            got = run(*inputs)
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        checks.append(parity(b, got, reference(spec, *inputs).numpy(), spec.atol, spec.mean_atol))
    return checks


def class_embedding_check(spec: ExportSpec, run) -> list[Check]:
    """A conditional artifact's class walk works through its metadata: ``run(z + E[b] - E[a], a)``
    with E from the metadata must equal eager ``G(z, b)`` (what gan-infer's class walks rely on)."""
    info = spec.info
    if not info.conditional or (info.class_embedding is None and not spec.embedding_required):
        return []
    if info.class_embedding is None:
        return [Check("class_embedding", False, "conditional model without a class embedding in its metadata")]
    z, b = spec.example_inputs(64, seed=1)
    a = (b + 1) % info.num_classes
    E = torch.tensor(info.class_embedding, dtype=torch.float32)
    with torch.no_grad():
        got = run(z + E[b] - E[a], a)
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    check = parity(64, got, reference(spec, z, b).numpy(), spec.atol, spec.mean_atol)
    check.name = "class_embedding"
    return [check]
