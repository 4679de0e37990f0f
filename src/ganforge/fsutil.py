"""Atomic file writes: a file that matters is written to a temporary name in the
same folder and moved into place with ``os.replace``, so an interrupted process
never leaves a half-written checkpoint, model or image behind. Also where ganforge
keeps its caches (:func:`cache_dir`).

torch-free on purpose: ``ganforge.inference`` imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success move it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is untouched. The
    temporary is named after the process (``.<stem>.<pid>-*.tmp<suffix>``): those a killed
    process left (a pid no longer running) are removed by the next call. ``exclusive``: never
    over an existing ``dest`` (it is linked into place, which fails when the name is taken):
    FileExistsError then, the temporary removed.
    """
    dest = Path(dest)
    for stale in dest.parent.glob(f".{dest.stem}.*-*.tmp{dest.suffix}"):
        pid = stale.name[len(dest.stem) + 2:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()
    # the temporary name keeps the suffix: some writers (torch.export.save) insist on it
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.{os.getpid()}-", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
    try:
        yield tmp_path
        if exclusive:
            _link_new(tmp_path, dest)
        else:
            os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _link_new(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` under the name ``dest`` only if no file has it (FileExistsError otherwise)."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then move (a narrow race, no partial file)
        if dest.exists():
            raise FileExistsError(17, "File exists", str(dest)) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def cache_dir() -> Path:
    """``$GANFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganforge``, else ``~/.cache/ganforge``: the one
    folder of every ganforge cache (gan-infer's micro-batches, gan-eval's evaluators)."""
    if os.environ.get("GANFORGE_CACHE_DIR"):
        return Path(os.environ["GANFORGE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganforge"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; on success it replaces ``dest`` whole.

    An existing ``dest`` is moved aside first and removed only once the new one
    is in place; on any exception the temporary folder is removed and ``dest``
    is untouched. Temporaries are named after the process (``.<name>.<pid>-*``): those
    of a process that was killed are removed by the next call. ``exclusive``: never over an
    existing ``dest``: FileExistsError then, the temporary removed.
    """
    import shutil

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*dest.parent.glob(f".{dest.name}.*-*.tmp"), *dest.parent.glob(f".{dest.name}.*-*.old")]:
        pid = stale.name[len(dest.name) + 2:].split("-", 1)[0]  # what a killed process left behind
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tag = f".{dest.name}.{os.getpid()}-"
    tmp = Path(tempfile.mkdtemp(prefix=tag, suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if exclusive:
            _rename_new(tmp, dest)
            return
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=tag, suffix=".old", dir=dest.parent))
            os.replace(dest, old / dest.name)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_new(tmp: Path, dest: Path) -> None:
    """Move the folder ``tmp`` to ``dest`` only if nothing has that name (FileExistsError otherwise):
    rename fails onto a folder with files in it, and ``dest`` is looked at first for the rest."""
    import errno

    if dest.exists() or dest.is_symlink():
        raise FileExistsError(errno.EEXIST, "File exists", str(dest))
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "File exists", str(dest)) from None
        raise


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Free bytes on the disk holding ``folder`` (or its nearest existing parent); None when
    that cannot be told (an error, or a pseudo file system such as /proc, which has no size)."""
    import shutil

    where = Path(folder).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return None
    return usage.free if usage.total else None


def check_free_space(folder: str | os.PathLike[str], nbytes: int, what: str) -> None:
    """Refuse in one line, before the work, to write ``nbytes`` (``what``) where the disk
    holding ``folder`` has less free (when it cannot be told, the write itself will say)."""
    from ganforge.errors import GanforgeError
    from ganforge.limits import fmt_bytes

    free = free_bytes(folder)
    if free is not None and nbytes > free:
        raise GanforgeError(f"{what} needs {fmt_bytes(nbytes)} but {Path(folder)} has {fmt_bytes(free)} free: free "
                            "some space or write elsewhere")


def check_writable(folder: str | os.PathLike[str], option: str = "--out") -> None:
    """Refuse in one line, before the work, an output folder that cannot be written: a file
    is created and removed in it, or in its nearest existing parent when it does not exist
    yet (nothing is left behind either way)."""
    from ganforge.errors import GanforgeError

    folder = Path(folder)
    where = folder
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise GanforgeError(f"cannot write to {folder}: {where} is a file, not a folder; pass another {option}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ganforge-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise GanforgeError(f"cannot write to {folder}: {exc.strerror or exc}; pass a writable {option}") from None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, read in 1 MiB blocks (a model or a checkpoint can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
