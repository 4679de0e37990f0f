"""An export folder holds one checkpoint's artifacts. When gan-export writes some formats from a
checkpoint, the artifacts it wrote there earlier from another checkpoint (``--format all``, then more
training, then ``--format onnx``) are removed, so that no reader finds an older TorchScript, fp16,
int8, ``.pt2`` or Triton file beside the new ONNX file and serves the older weights.

Only what gan-export wrote is removed, found under the names it writes (:meth:`ExportFormat.filename`
of every format and precision) and proven another checkpoint's: by the digest the artifact records
(``ganforge.source_checkpoint_sha256``: ONNX metadata, a TorchScript or ``.pt2`` file's extra file,
a Triton entry's ``model.onnx``), or, for one that records none, by the earlier ``export.json`` that
lists it under another checkpoint's digest. A link, a file of another kind than the format writes, or
a file no ganforge record names is never touched; in a Triton entry only ``config.pbtxt`` and
``1/model.onnx`` are removed, and the folders they leave empty.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ganforge.errors import GanforgeError, printable
from ganforge.export.formats import ExportFormat
from ganforge.inference.siblings import UNREADABLE, source_of

TRITON_FILES = ("config.pbtxt", "1/model.onnx")  # what the triton format writes in its entry


def recorded_source(path: Path, is_dir: bool):
    """The source digest the artifact at ``path`` records; None when it records none; UNREADABLE
    when it cannot be read."""
    if is_dir:
        model = path / "1" / "model.onnx"
        return source_of(model) if _regular(model) else UNREADABLE
    return source_of(path)


def _regular(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISREG(os.lstat(path).st_mode)
    return False


def _within(out: Path, path: Path) -> bool:
    home, real = os.path.realpath(out), os.path.realpath(path)
    return real.startswith(home.rstrip(os.sep) + os.sep)


def _listed(report: dict | None) -> dict[str, object]:
    """Artifact path -> the checkpoint digest of the earlier export.json that lists it."""
    if not isinstance(report, dict) or not isinstance(report.get("artifacts"), dict):
        return {}
    sha = report.get("source_checkpoint_sha256")
    return {e["path"]: sha for e in report["artifacts"].values() if isinstance(e, dict) and isinstance(e.get("path"), str)}


def find(out: Path, sha: str | None, formats: Iterable[ExportFormat], written: set[str],
         report: dict | None) -> list[tuple[str, bool]]:
    """(path relative to ``out``, is a folder) of every artifact in ``out`` that another checkpoint's
    export left, which this export (of the checkpoint whose digest is ``sha``, writing ``written``)
    does not replace; ``report``: the export.json that was there, read as JSON (or None)."""
    listed = _listed(report)
    stale = []
    for fmt in formats:
        for rel in dict.fromkeys(fmt.filename(p) for p in fmt.precisions):
            path = out / rel
            if rel in written:
                continue
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # not there (or not to be looked at)
            if not (stat.S_ISDIR(mode) if fmt.is_dir else stat.S_ISREG(mode)) or not _within(out, path):
                continue  # a link (or under one out of the folder), or another kind of file: not gan-export's
            own = recorded_source(path, fmt.is_dir)
            if own != sha and (isinstance(own, str) or (rel in listed and listed[rel] != sha)):
                stale.append((rel, fmt.is_dir))
    return stale


def remove(out: Path, stale: list[tuple[str, bool]]) -> None:
    """Remove what :func:`find` found; a file that cannot be removed is a one-line GanforgeError."""
    for rel, is_dir in stale:
        path = out / rel
        files = [path / name for name in TRITON_FILES] if is_dir else [path]
        for file in files:
            if not _regular(file):
                continue
            try:
                file.unlink()
            except OSError as exc:
                raise GanforgeError(f"cannot remove {printable(str(file))}, exported from another checkpoint: "
                                    f"{exc.strerror or exc}; remove it by hand, or export to another --out") from None
        if is_dir:  # the folders it leaves empty (a user's own files in them stay, and so do they)
            for folder in (path / "1", path, path.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def note(stale: list[tuple[str, bool]]) -> str | None:
    """The export's note on what it removed (export.json and gan-export's output)."""
    if not stale:
        return None
    return (f"removed {', '.join(rel for rel, _ in stale)}: exported from another checkpoint (an export folder "
            "holds one checkpoint's artifacts; export those formats again if you need them)")
