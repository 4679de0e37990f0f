"""The export pipeline: spec -> convert -> validate -> move into place.

    from ganforge.export import export
    result = export("runs/latest", formats=["onnx", "torchscript"])
    result = export(UserSource((100, 1, 1), module="dcgan.py:Generator", weights="netG.pth"), out_dir="out")

Each artifact is written under a temporary name, checked, and only when every
requested artifact passed every check are they moved into place, ``export.json``
last (the old one removed first: a report never describes other files than those
beside it). What an export of another checkpoint left in the folder is removed then
(:mod:`ganforge.export.stale`): an export folder holds one checkpoint's artifacts. A
failure raises :class:`ExportCheckError` and leaves everything as it was.
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ganforge
from ganforge.errors import ConfigError, GanforgeError, first_line
from ganforge.export import onnx_format, stale, torch_export, torchscript, triton
from ganforge.export.formats import NAMES, PRECISIONS, CallCache, ExportFormat
from ganforge.export.spec import ExportSpec, UserSource, spec_from_checkpoint, spec_from_module
from ganforge.export.validate import Check, ExportCheckError, generator_checks, raise_failures
from ganforge.fsutil import atomic_dir, atomic_path, atomic_write_text, inside
from ganforge.training.run import DEFAULT_RUNS_DIR, resolve_run, run_of_checkpoint

IMPLEMENTED: dict[str, ExportFormat] = {f.name: f for f in (onnx_format.FORMAT, torchscript.FORMAT,
                                                              torch_export.FORMAT, triton.FORMAT)}
# one format under each name gan-export offers, in its order (a name without one fails at import)
FORMATS: dict[str, ExportFormat] = {name: IMPLEMENTED[name] for name in NAMES}
REPORT = "export.json"
MAX_REPORT_BYTES = 16 << 20  # an earlier export.json read back (a few KiB each artifact)

__all__ = ["FORMATS", "Check", "ExportCheckError", "ExportResult", "ExportSpec", "UserSource", "export"]


@dataclass
class ExportResult:
    out_dir: Path
    artifacts: dict[str, Path]  # artifact key ("onnx", "onnx-fp16", "triton", ...) -> file or folder
    report: Path  # export.json
    checks: dict[str, list[Check]]
    notes: list[str] = field(default_factory=list)  # warnings raised while exporting


def artifact_key(fmt: str, precision: str) -> str:
    return fmt if precision == "fp32" else f"{fmt}-{precision}"


def parse_formats(value: str | list[str] | tuple[str, ...], precision: str = "fp32") -> list[str]:
    """Format names; ``all`` = every format that offers ``precision``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose from: {', '.join(PRECISIONS)}")
    names = [value] if isinstance(value, str) else list(value)
    if "all" in names:
        return [n for n, m in FORMATS.items() if precision in m.precisions]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format {unknown[0]!r}; choose from: {', '.join([*FORMATS, 'all'])}")
    unsupported = [n for n in names if precision not in FORMATS[n].precisions]
    if unsupported:
        offer = [n for n, m in FORMATS.items() if precision in m.precisions]
        raise ConfigError(f"--precision {precision} applies to {', '.join(offer)}, not {', '.join(unsupported)} "
                          f"(those are fp32 only)")
    return list(dict.fromkeys(names))


def export(
    source: str | Path | UserSource | None = None,
    *,
    formats: str | list[str] | tuple[str, ...] = ("onnx",),
    precision: str = "fp32",
    out_dir: str | Path | None = None,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
) -> ExportResult:
    """Export the generator of ``source`` (run folder, run name, checkpoint or None = latest; or a
    user's own generator, :class:`UserSource`, which needs ``out_dir``)."""
    names = parse_formats(formats, precision)
    with warnings.catch_warnings(record=True) as caught_source:  # the user's code may warn as it loads
        warnings.simplefilter("always")
        spec = _spec(source, precision, out_dir, runs_dir)
    out = Path(out_dir) if out_dir is not None else _default_out(spec.checkpoint)
    for name in names:  # every artifact, and the report, is written in the export folder, not through a link
        inside(out, out / FORMATS[name].filename(precision), what="the export folder")
    inside(out, out / REPORT, what="the export folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanforgeError(f"cannot create export folder {out}: {exc.strerror}; pass a writable --out") from None
    checks: dict[str, list[Check]] = {}
    cache = CallCache()  # onnx and triton share one ONNX export and its checks
    entries: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    with warnings.catch_warnings(record=True) as caught, contextlib.ExitStack() as stack:
        warnings.simplefilter("always")
        for name in names:
            fmt = FORMATS[name]
            key = artifact_key(name, precision)
            rel = fmt.filename(precision)
            paths[key] = out / rel
            staged = atomic_dir if fmt.is_dir else atomic_path
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(staged(out / rel))  # moved into place only if all pass
            t0 = time.perf_counter()
            try:
                info = fmt.convert(spec, tmp, cache)
            except GanforgeError:
                raise
            except Exception as exc:  # an exporter failure is the model's, not the user's input
                raise GanforgeError(f"{name} conversion failed: {first_line(exc, 300, typed=True)}") from exc
            seconds = time.perf_counter() - t0
            checks[key] = [*generator_checks(spec), *fmt.validate(spec, tmp, cache)]
            raise_failures(f"{name} ({precision})", checks[key])
            diffs = [c.max_abs_diff for c in checks[key] if c.max_abs_diff is not None]
            entries[key] = {
                "format": name,
                "path": rel,
                "size_bytes": _size(tmp),
                "seconds": round(seconds, 3),
                **info,
                "atol": spec.atol,
                **({"mean_atol": spec.mean_atol} if spec.mean_atol is not None else {}),
                "deviation_from_fp32": max(diffs) if diffs else None,
                "checks": [c.to_json() for c in checks[key]],
            }
        old = _old_report(out)
        # what another checkpoint's export left here: removed, so that no reader serves its weights
        stale_found = stale.find(out, spec.info.source_checkpoint_sha256, FORMATS.values(),
                                 {FORMATS[n].filename(precision) for n in names}, old)
        notes = list(dict.fromkeys([*spec.notes, *_notes([*caught_source, *caught]),
                                    *filter(None, [stale.note(stale_found)])]))
        report = _report(spec, out, entries, notes, old, {rel for rel, _ in stale_found})
        # every artifact passed: they move into place as the stack closes, and the report that
        # describes them comes last; the old one goes first, so that a crash in between leaves
        # no report rather than one that describes other files
        (out / REPORT).unlink(missing_ok=True)
        stale.remove(out, stale_found)
    atomic_write_text(out / REPORT, json.dumps(report, indent=2) + "\n")
    return ExportResult(out, paths, out / REPORT, checks, notes)


def _spec(source, precision: str, out_dir, runs_dir) -> ExportSpec:
    if not isinstance(source, UserSource):
        return spec_from_checkpoint(resolve_run(source, runs_dir), precision)
    if out_dir is None:  # checked before the user's code runs
        raise ConfigError("a generator of your own has no run folder to export into: pass --out DIR")
    return spec_from_module(source, precision)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """Warnings raised while exporting, each once. torch.jit's deprecation notices are left out:
    nothing a user can do about them (the TorchScript entry of export.json says so once)."""
    notes = []
    for w in caught:
        text = str(w.message)
        if "torch.jit" in text and "deprecated" in text:
            continue
        # w.message is an instance of w.category; its whole first line, uncut as it always was
        notes.append(first_line(w.message, limit=len(text), typed=True))
    return list(dict.fromkeys(notes))


def _default_out(ckpt: Path) -> Path:
    """``<run>/export`` of the run the checkpoint was found in; refused where it is a link that leaves it."""
    run = run_of_checkpoint(ckpt)
    if run is None:
        return ckpt.parent / "export"
    inside(run.path, run.export_dir, what="the run", fix="remove the link, or pass --out")
    return run.export_dir


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _old_report(out: Path) -> dict | None:
    """The export.json in ``out`` as JSON, None when there is none or it is not a report."""
    with contextlib.suppress(OSError, ValueError, RecursionError):
        path = out / REPORT
        if path.is_file() and path.stat().st_size <= MAX_REPORT_BYTES:
            old = json.loads(path.read_text())
            return old if isinstance(old, dict) else None
    return None


def _report(spec: ExportSpec, out: Path, entries: dict[str, dict[str, Any]], notes: list[str], old: dict | None,
            removed: set[str]) -> dict[str, Any]:
    """export.json; artifacts exported earlier from the same checkpoint (and still there, not ``removed``)
    are kept in it."""
    previous: dict[str, Any] = {}
    if old is not None and old.get("source_checkpoint_sha256") == spec.info.source_checkpoint_sha256:
        previous = {k: v for k, v in (old.get("artifacts") or {}).items() if isinstance(v, dict)
                    and isinstance(v.get("path"), str) and v["path"] not in removed and (out / v["path"]).exists()}
    return {
        "ganforge_version": ganforge.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_checkpoint": str(spec.checkpoint),
        "source_checkpoint_sha256": spec.info.source_checkpoint_sha256,
        **({"source": spec.source} if spec.source else {}),  # a user's generator: module, init args, weights
        "variant": spec.info.variant,
        "epoch": spec.epoch,
        "weights": spec.weights,  # "ema" when the run kept a moving average of G (--ema)
        "latent_dim": spec.info.latent_dim,
        "sample_shape": list(spec.info.sample_shape),
        "kind": spec.info.kind,
        **({"num_classes": spec.info.num_classes, "class_names": list(spec.info.class_names)}
           if spec.info.conditional else {}),
        "batch_sizes_checked": list(spec.batch_sizes),
        "versions": _versions(),
        "artifacts": {**previous, **entries},
        "notes": notes,
    }
