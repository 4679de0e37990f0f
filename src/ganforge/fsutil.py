"""Atomic file writes: a file that matters is written under a temporary in the same
folder and moved into place with ``os.replace``, so an interrupted process never leaves
a half-written checkpoint, model or image behind; the clean-up of what a killed process
left removes only what ganforge can prove it made (:func:`staging`). Also where ganforge
keeps its caches (:func:`cache_dir`), and the check that a write stays inside the folder
it is meant for (:func:`inside`).

torch-free on purpose: ``ganforge.inference`` imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


# Every temporary lives in a staging folder of its own, beside its destination (the same disk,
# so os.replace moves it): ``.ganforge-tmp-<random>/`` with MARKER written in it first, naming
# the process that made it. The clean-up of a killed process's leftovers removes only such a
# folder whose marker is whole and names this folder and a process that no longer runs: a
# user's file, whatever its name, has no such marker and is never touched.
STAGING_PREFIX = ".ganforge-tmp-"
MARKER = ".ganforge-temporary"
_MAGIC = "ganforge temporary"
_OLD = MARKER + ".old"  # atomic_dir: where the previous folder waits until the new one is in place
MAX_MARKER_BYTES = 4096


@contextlib.contextmanager
def staging(folder: str | os.PathLike[str], dest: str = "") -> Iterator[Path]:
    """A private folder inside ``folder`` for temporaries (``dest``: the name they are for), removed
    with all it holds when the block ends. Leftovers of killed processes in ``folder`` are removed
    first (:func:`remove_leftovers`)."""
    folder = Path(folder)
    remove_leftovers(folder)
    tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    try:
        owner = {"magic": _MAGIC, "token": tmp.name[len(STAGING_PREFIX):], "dest": dest, **_process()}
        (tmp / MARKER).write_text(json.dumps(owner) + "\n")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_leftovers(folder: str | os.PathLike[str]) -> int:
    """Remove the staging folders in ``folder`` that killed ganforge processes left (their marker
    names a process of this machine that no longer runs); returns how many. A folder output that
    was moved aside and not yet replaced when its process was killed is moved back first."""
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(STAGING_PREFIX)]
    except OSError:
        return 0
    for entry in entries:
        owner = _owner(Path(entry.path))
        if owner is None or _running(owner):
            continue
        old, dest = Path(entry.path) / _OLD, owner.get("dest")
        if isinstance(dest, str) and dest and _plain(dest) and old.is_dir() and not os.path.lexists(
                Path(folder) / dest):
            with contextlib.suppress(OSError):
                os.replace(old, Path(folder) / dest)  # the earlier output, which was never replaced
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def _owner(tmp: Path) -> dict | None:
    """The marker of a staging folder, when it is one ganforge made: a real folder (not a link)
    holding a small regular marker file whose token is the folder's own name."""
    import stat

    try:
        if not stat.S_ISDIR(os.lstat(tmp).st_mode):
            return None
        fd = os.open(tmp / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            raw = f.read(MAX_MARKER_BYTES + 1)
        owner = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_MARKER_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or owner.get("magic") != _MAGIC or \
            owner.get("token") != tmp.name[len(STAGING_PREFIX):]:
        return None
    return owner


def _process(pid: int | None = None) -> dict:
    """What names a process beyond its pid (which the system reuses): its machine and start time."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "started": _start_time(pid)}


def _start_time(pid: int) -> int | None:
    """The process's start, in clock ticks since boot (/proc/<pid>/stat, field 22); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096)
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _running(owner: dict) -> bool:
    """Whether the process a marker names may still run: True unless it is this machine's and gone
    (or its pid now belongs to a process that started at another time)."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True  # another machine's (a shared disk), or a marker that says nothing: leave it
    if not _alive(pid):
        return False
    started, now = owner.get("started"), _start_time(pid)
    return started is None or now is None or started == now


def _plain(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def destination_of(path: str | os.PathLike[str]) -> Path:
    """The path a temporary stands for: ``<folder>/.ganforge-tmp-*/<name>...`` is ``<folder>/<name>...``
    (what a message about a failed write should name); any other path is itself."""
    path = Path(path)
    parts = path.parts
    for i, part in enumerate(parts):
        if part.startswith(STAGING_PREFIX) and i + 1 < len(parts):
            return Path(*parts[:i], *parts[i + 1:])
    return path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path for ``dest`` (an empty file of the same name, in a staging folder
    beside it); on success move it onto ``dest``.

    On any exception the temporary is removed and ``dest`` is untouched; a killed process's
    temporary is removed by the next write in that folder (:func:`staging`). A ``dest`` that is a
    link is replaced by the file, never written through. ``exclusive``: never over an existing
    ``dest`` (it is linked into place, which fails when the name is taken): FileExistsError then,
    the temporary removed.
    """
    dest = Path(dest)
    with staging(dest.parent, dest.name) as folder:
        tmp = folder / dest.name  # the same name: some writers (torch.export.save) insist on the suffix
        tmp.touch(exist_ok=False)
        yield tmp
        if exclusive:
            _link_new(tmp, dest)
        else:
            os.replace(tmp, dest)


def _link_new(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` under the name ``dest`` only if no file has it (FileExistsError otherwise)."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then move (a narrow race, no partial file)
        if os.path.lexists(dest):
            raise FileExistsError(17, "File exists", str(dest)) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed process its parent has not reaped yet (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096)
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")
    except (OSError, ValueError):
        return True


def cache_dir() -> Path:
    """``$GANFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganforge``, else ``~/.cache/ganforge``: the one
    folder of every ganforge cache (gan-infer's micro-batches, gan-eval's evaluators)."""
    if os.environ.get("GANFORGE_CACHE_DIR"):
        return Path(os.environ["GANFORGE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganforge"


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary folder for ``dest``; on success it replaces ``dest`` whole.

    An existing ``dest`` is moved aside first (into the same staging folder) and removed only once
    the new one is in place; on any exception the temporary folder is removed and ``dest`` is
    untouched. A process killed between the two moves leaves the earlier folder in its staging
    folder, and the next write there moves it back (:func:`remove_leftovers`). ``exclusive``: never
    over an existing ``dest``: FileExistsError then, the temporary removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with staging(dest.parent, dest.name) as folder:
        tmp = folder / dest.name
        tmp.mkdir()  # the usual mode (the umask's), where mkdtemp's is 0700
        yield tmp
        if exclusive:
            _rename_new(tmp, dest)
            return
        if os.path.lexists(dest):
            os.replace(dest, folder / _OLD)
        os.replace(tmp, dest)


def _rename_new(tmp: Path, dest: Path) -> None:
    """Move the folder ``tmp`` to ``dest`` only if nothing has that name (FileExistsError otherwise):
    rename fails onto a folder with files in it, and ``dest`` is looked at first for the rest."""
    import errno

    if os.path.lexists(dest):
        raise FileExistsError(errno.EEXIST, "File exists", str(dest))
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "File exists", str(dest)) from None
        raise


def inside(folder: str | os.PathLike[str], path: str | os.PathLike[str], *, what: str = "",
           fix: str = "remove the link") -> Path:
    """``path`` once every link on the way to it is followed, when it stays inside ``folder`` (its
    links followed too); else a one-line GanforgeError: a command writes through ``path`` only
    where the folder it means to write in holds it. ``what`` names ``folder`` in the message (a
    run, an export folder, the cache folder) and ``fix`` says the way round."""
    from ganforge.errors import GanforgeError, printable

    folder, path = Path(folder), Path(path)
    home, real = Path(os.path.realpath(folder)), Path(os.path.realpath(path))
    if real == home or home in real.parents:
        return real
    via = next((p for p in [path, *path.parents] if p.is_symlink()), None)
    link = f"{printable(str(via))} is a link to {printable(os.readlink(via))}" if via is not None else \
        f"{printable(str(path))} leads to {printable(str(real))}"
    raise GanforgeError(f"refusing to write {printable(str(path))}: {link}, outside {what or 'its folder'} "
                        f"{printable(str(folder))}; {fix}")


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a regular file to read, as the end of a sentence ("does not exist", "is a
    folder", "is a device, a pipe or a socket, not a file", "is a link to ..., which does not exist"); None
    when it is one. ``/dev/zero`` exists: saying it does not sends the user looking for a typo."""
    import stat

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            from ganforge.errors import printable

            return f"is a link to {printable(os.readlink(path))}, which does not exist"
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if not stat.S_ISREG(mode):
        return "is a device, a pipe or a socket, not a file"
    return None


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Free bytes on the disk holding ``folder`` (or its nearest existing parent); None when
    that cannot be told (an error, or a pseudo file system such as /proc, which has no size)."""
    where = Path(folder).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return None
    return usage.free if usage.total else None


def read_only(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` (or its nearest existing parent) cannot be written: a read-only file system,
    or a folder this user may not write. Its free space then says nothing about the failure."""
    where = Path(folder).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if os.statvfs(where).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(where, os.W_OK)


def check_free_space(folder: str | os.PathLike[str], nbytes: int, what: str) -> None:
    """Refuse in one line, before the work, to write ``nbytes`` (``what``) where the disk
    holding ``folder`` has less free (when it cannot be told, the write itself will say)."""
    from ganforge.errors import GanforgeError
    from ganforge.limits import fmt_bytes

    free = free_bytes(folder)
    if read_only(folder):
        raise GanforgeError(f"cannot write {what} to {Path(folder)}: it is read-only; write elsewhere")
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
