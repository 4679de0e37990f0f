"""The ``manifest.json`` of a sharded job's folder: what the folder holds, read back and held
against what is asked.

A job's manifest is its plan (:meth:`ganforge.inference.shards.ShardJob.manifest`): the model's
sha256, the seed, the sampling scheme, the range and its shards, the samples' shape, dtype and
value range, the labels, the options that change the samples, the ganforge version. It holds
nothing that changes from one run to the next (no times, no host), so the same job writes the same
bytes, and it is written once, atomically, before the first shard. A shard is complete when it is
there under its final name (each is written whole); the manifest says which shards there should be.

Plain JSON and dicts here; :mod:`ganforge.inference.shards` builds the job from them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from ganforge.errors import GanforgeError, WriteError
from ganforge.fsutil import STAGING_PREFIX, atomic_write_text, remove_leftovers

NAME = "manifest.json"
FORMAT = "ganforge-shards"  # the manifest's own kind ...
VERSION = 1  # ... and version
MAX_MANIFEST_BYTES = 64 << 20  # a manifest read back is refused beyond this (100,000 shards take ~8 MB)

# What a folder's job must agree on with the one asked, in the order a refusal names them, and the
# words it uses: (key in the manifest, what it is).
IDENTITY = (("model_sha256", "model (sha256)"), ("seed", "seed"), ("scheme", "scheme"),
            ("shard_size", "shard size"), ("range", "range"), ("form", "form"), ("labels", "labels"),
            ("options", "generator options"), ("sample", "sample shape"), ("control", "truncation and edits"))


def read(folder: Path) -> dict | None:
    """The manifest of ``folder`` as a dict, None when it has none; one that cannot be read, is too
    big or is not a ganforge shard manifest is a GanforgeError."""
    path = folder / NAME
    if not path.is_file():
        return None
    where = f"{path} is not a ganforge shard manifest"
    fix = "delete the folder to start over, or write to another --out"
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise GanforgeError(f"{path} holds {size:,} bytes, more than a manifest may ({MAX_MANIFEST_BYTES:,}): {fix}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GanforgeError(f"{where} ({type(exc).__name__}: {str(exc)[:80]}): {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GanforgeError(f"{where}: {fix}")
    if data.get("version") != VERSION:
        raise GanforgeError(f"{path} is a shard manifest of version {data.get('version')!r}; this ganforge reads "
                            f"version {VERSION}: use the ganforge that wrote it, or {fix}")
    return data


def text(manifest: dict) -> str:
    """The manifest's bytes: sorted keys, two-space indents, a newline at the end."""
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def write(folder: Path, manifest: dict) -> None:
    """Write ``manifest`` to ``folder`` atomically (a reader sees the old one or the new one)."""
    atomic_write_text(folder / NAME, text(manifest))


def differences(have: dict, want: dict) -> list[str]:
    """What the folder's manifest ``have`` and the asked job's ``want`` disagree on, in words."""
    return [words for key, words in IDENTITY if _normal(have.get(key)) != _normal(want.get(key))]


def _normal(value):
    """JSON's view of ``value`` (tuples as lists), so a job compares equal to its own manifest read back."""
    return json.loads(json.dumps(value, sort_keys=True))


def _shown(value, most: int = 60) -> str:
    shown = json.dumps(value, sort_keys=True)
    return shown if len(shown) <= most else shown[: most - 3] + "..."


def refusal(folder: Path, have: dict, want: dict) -> str | None:
    """The one-line refusal of a folder whose job is another one than asked; None when they agree."""
    differ = differences(have, want)
    if not differ:
        return None
    key = next(k for k, words in IDENTITY if words == differ[0])
    return (f"{folder} holds another job: its {', '.join(differ)} differ{'s' if len(differ) == 1 else ''} "
            f"(there {_shown(have.get(key))}, asked {_shown(want.get(key))}); its shards are never mixed with "
            "these: write to another --out, or delete the folder to start over")


def check_folder(out: Path) -> None:
    """Refuse an output that cannot hold a sharded job: a file, or a folder with files and no
    manifest (one with a manifest is held against the job by :func:`prepare`)."""
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"{out} is a file, not a folder: choose another --out")
    if out.is_dir() and not (out / NAME).exists():
        foreign = sorted(p.name for p in out.iterdir() if not p.name.startswith(STAGING_PREFIX))
        if foreign:
            raise GanforgeError(f"{out} holds files and no {NAME} ({foreign[0]}"
                                f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}): a folder output is a "
                                "sharded job of its own; choose a new or empty folder")


def prepare(out: Path, want: dict) -> None:
    """Make ``out`` ready for the job whose manifest is ``want``: a new or empty folder gets it
    (written before any shard); one with a manifest must hold the same job, else a one-line
    refusal naming what differs; what killed runs left (:func:`ganforge.fsutil.remove_leftovers`) is removed."""
    check_folder(out)
    have = read(out) if out.is_dir() else None
    if have is not None:
        refused = refusal(out, have, want)
        if refused:
            raise GanforgeError(refused)
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
            write(out, want)
        except OSError as exc:
            raise WriteError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out", out, exc) from None
    remove_leftovers(out)
