"""The runs folder as its readers see it: which run ``runs/latest`` names, and the newest run
that holds a given file when it does not.

``runs/latest`` moves when a run starts, so it may name a run that has no checkpoint yet
(killed in its first epoch) or no export yet; every command that defaults to it then takes
the newest run that has what it needs, and says so once. torch-free on purpose: gan-infer
finds its default model here.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path

from ganforge.errors import CheckpointError, GanforgeWarning

DEFAULT_RUNS_DIR = Path("runs")
LATEST = "latest"
MAX_POINTER_BYTES = 4096  # a pointer file holds one run's name (at most 255 bytes on any file system)


def latest_run(runs_dir: str | os.PathLike[str]) -> Path | None:
    """The run folder ``<runs_dir>/latest`` names (symlink or pointer file), or None when there is
    no ``latest``. It must name a folder directly inside ``runs_dir``: anything else is refused."""
    runs_dir = Path(runs_dir)
    link = runs_dir / LATEST
    if link.is_symlink():
        name = os.readlink(link)
    elif link.is_file():  # a pointer file, where symlinks are unavailable
        with open(link, "rb") as f:
            raw = f.read(MAX_POINTER_BYTES + 1)
        if len(raw) > MAX_POINTER_BYTES:
            raise CheckpointError(f"{link} is not a pointer to a run (it holds more than a run's name); delete it, "
                                  "or name the run to use")
        name = raw.decode("utf-8", "replace").strip()
    else:
        return link if link.is_dir() else None
    if not _plain_name(name):
        raise CheckpointError(f"{link} points outside {runs_dir} ({name[:80]!r}); it must name a run folder in "
                              f"{runs_dir}: delete it, or name the run to use")
    return runs_dir / name


def _plain_name(name: str) -> bool:
    """A folder's own name: no separator, no ``..``, not absolute."""
    return bool(name) and name not in (".", "..") and not re.search(r"[/\\\0\n]", name)


def newest_with(runs_dir: str | os.PathLike[str], relative: str | os.PathLike[str]) -> Path | None:
    """The newest ``<run>/<relative>`` in ``runs_dir`` (by its time of writing), or None."""
    found = []
    for path in Path(runs_dir).glob(f"*/{Path(relative).as_posix()}"):
        with contextlib.suppress(OSError):
            if path.relative_to(runs_dir).parts[0] != LATEST and path.is_file():
                found.append((path.stat().st_mtime_ns, path))
    return max(found)[1] if found else None


def latest_with(runs_dir: str | os.PathLike[str], relative: str | os.PathLike[str], *, what: str, make: str,
                stacklevel: int = 3) -> Path:
    """``<latest run>/<relative>``; when the latest run has none (``what``, e.g. "a checkpoint"), the
    newest run's that has one, with a warning; when no run has one, a CheckpointError that says
    to ``make`` it (e.g. "train one with gan-train")."""
    runs_dir = Path(runs_dir)
    target = latest_run(runs_dir)
    if target is not None and (target / relative).is_file():
        return target / relative
    newest = newest_with(runs_dir, relative)
    if newest is None:
        if target is None:
            raise CheckpointError(f"no runs in {runs_dir} yet: {make}")
        raise CheckpointError(f"{runs_dir / LATEST} is {target.name}, which has no {relative}, and no other run in "
                              f"{runs_dir} has one: {make}")
    run = newest.relative_to(runs_dir).parts[0]
    why = (f"{runs_dir / LATEST} is {target.name}, which has no {relative}" if target is not None
           else f"there is no {runs_dir / LATEST}")
    warnings.warn(GanforgeWarning(f"{why}; using {run}, the newest run with {what}"), stacklevel=stacklevel)
    return newest
