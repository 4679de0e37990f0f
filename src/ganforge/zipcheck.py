"""Torch files proven before torch reads them.

``torch.save`` writes a zip archive: a pickle (``data.pkl``, everything but the tensors' bytes)
and a record a tensor storage, each with its CRC-32 in the zip's directory. torch itself never
checks those CRCs, nor what a record declares it unpacks to: one byte flipped inside a weight
loads as a wrong weight, and a 4 MB file with one deflated 4 GiB record inflates to 4 GiB. So
every reader of a torch file (checkpoints, ``--weights``, programs, gan-eval's evaluator)
opens it here first::

    with zipcheck.opened(path, CHECKPOINT) as f:   # proven: CRCs, sizes, the pickle's shape
        state = torch.load(f, map_location="cpu", weights_only=True)

What is checked, before torch sees a byte: the zip's directory (at most ``MAX_TORCH_RECORDS``
records), every record's declared size and all of them together against
:func:`ganforge.limits.unpacked_bound`, every record's CRC-32 (streamed, a MiB at a time:
0.07 s for 210 MB), and the pickle's operations, nesting and longest list (what torch would
build from it) against ``MAX_PICKLE_*`` and the reader's own bound. The same open file is then
handed to torch, so what was proven is what is read.

torch's legacy format (before PyTorch 1.6: a bare pickle, no checksums) cannot be proven, and
is refused with the reader's way round (ganforge never wrote one).

Ground floor and torch-free: stdlib ``zipfile`` and ``pickletools``.
"""

from __future__ import annotations

import contextlib
import os
import pickletools
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ganforge.errors import GanforgeError
from ganforge.limits import (MAX_PICKLE_DEPTH, MAX_PICKLE_OPS, MAX_TORCH_RECORDS, UNPACKED_ENV, fmt_bytes,
                             unpacked_bound)

CHUNK = 1 << 20  # bytes read at once, for the CRCs and the pickle
ZIP_START = b"PK\x03\x04"
# torch's legacy format starts with a pickle of its magic number (a protocol opcode, then LONG1 of 10 bytes);
# a file that only starts with a pickle's protocol byte is no torch file of any age
LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
MAX_DIRECTORY_ENTRY = 1024  # bytes of one record's directory entry (46 and its name; torch's are under 200)


@dataclass(frozen=True)
class Reader:
    """Who reads a torch file, for its messages: ``noun`` names the file ("checkpoint"), ``fix`` is
    what to do with a damaged one, ``legacy`` with one in torch's legacy format, ``foreign`` (with
    ``{path}`` and ``{reason}``) the whole message for a file that is no torch file at all (by default
    "<path> is not a readable <noun> (<reason>); is the file complete?"), ``error`` the type raised and
    ``items`` the most items one list or dict of its pickle may hold (None: no bound but the others)."""

    noun: str
    fix: str
    legacy: str
    error: type[GanforgeError] = GanforgeError
    foreign: str | None = None
    items: int | None = None
    incomplete: str = "is the file complete?"  # what to do with one that cannot be read as a zip at all

    def fail(self, path: Path, problem: str) -> GanforgeError:
        return self.error(f"{self.noun} {path} {problem}")

    def unreadable(self, path: Path, reason: str) -> GanforgeError:
        return self.error(f"{path} is not a readable {self.noun} ({reason}); {self.incomplete}")


@contextlib.contextmanager
def opened(path: str | Path, reader: Reader) -> Iterator[BinaryIO]:
    """``path`` opened for reading and proven (:func:`verify`), at its start: hand it to torch."""
    path = Path(path)
    try:  # without blocking: a FIFO in its place would wait for a writer forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise reader.unreadable(path, exc.strerror or type(exc).__name__) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise reader.fail(path, "is not a regular file (a device or a pipe?); pass the file itself")
    with os.fdopen(fd, "rb") as f:
        verify(f, path, reader)
        f.seek(0)
        yield f


def verify_file(path: str | Path, reader: Reader) -> None:
    """Prove the torch file at ``path`` (for a loader that takes a path: torch.jit.load)."""
    with opened(path, reader):
        pass


def verify(f: BinaryIO, path: Path, reader: Reader) -> None:
    """Raise ``reader.error`` unless ``f`` is a whole torch zip archive within the bounds."""
    f.seek(0)
    head = f.read(64)
    if not head.startswith(ZIP_START):
        if head[:1] == b"\x80" and head[2:14] == LEGACY_MAGIC:
            raise reader.fail(path, f"is in torch's legacy format (before PyTorch 1.6), whose records carry no "
                                    f"checksum to prove them: {reader.legacy}")
        reason = foreign_kind(head)
        raise (reader.error(reader.foreign.format(path=path, reason=reason)) if reader.foreign
               else reader.unreadable(path, reason))
    _check_directory(f, path, reader)
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise reader.unreadable(path, f"its zip directory is broken: {str(exc)[:80]}") from None
    with archive:
        records = archive.infolist()
        _check_sizes(records, path, reader)
        for info in records:
            _check_record(archive, info, path, reader)
        for info in records:
            if info.filename.endswith(".pkl"):  # torch.save's data.pkl, TorchScript's constants.pkl too
                with archive.open(info) as stream:
                    problem = scan_pickle(stream, items=reader.items)
                if problem:
                    raise reader.fail(path, f"holds {problem} in {_short(info.filename)}; is it the right file?")


def foreign_kind(head: bytes) -> str:
    """What a file that is no zip archive seems to be, from its first bytes."""
    if not head:
        return "it is empty"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it is a text file"
    return "its first bytes are not torch.save's"


def _short(name: str) -> str:
    """A record's name without the archive's top folder: ``data/3``, as torch names storages."""
    return name.split("/", 1)[1] if "/" in name else name


def _check_directory(f: BinaryIO, path: Path, reader: Reader) -> None:
    """The record count and directory size the zip's end record declares, bounded before zipfile
    reads the directory (and builds an object a record)."""
    size = f.seek(0, 2)
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise reader.unreadable(path, "it is cut short: no zip directory at its end")
    records, directory = struct.unpack("<10xHI", tail[at + 4: at + 20])
    locator = tail[at - 20: at] if at >= 20 else b""
    if locator.startswith(b"PK\x06\x07"):  # zip64: the counts are in its own end record
        (offset,) = struct.unpack("<Q", locator[8:16])
        f.seek(offset)
        end64 = f.read(56)
        if len(end64) < 56 or not end64.startswith(b"PK\x06\x06"):
            raise reader.unreadable(path, "its zip64 directory record is missing")
        records, directory = struct.unpack("<QQ", end64[32:48])
    if records > MAX_TORCH_RECORDS or directory > MAX_TORCH_RECORDS * MAX_DIRECTORY_ENTRY:
        raise reader.fail(path, f"declares {records:,} records in a {fmt_bytes(directory)} directory, more than "
                                f"the {MAX_TORCH_RECORDS:,} of any torch file ganforge reads; is it the right file?")


def _check_sizes(records: list[zipfile.ZipInfo], path: Path, reader: Reader) -> None:
    """What the records declare they unpack to, each and all together, against the bound."""
    bound = unpacked_bound()
    total = 0
    for info in records:
        total += info.file_size
        if total > bound:
            alone = f" ({_short(info.filename)} alone {info.file_size:,})" if info.file_size > bound else ""
            raise reader.fail(path, f"declares records of more than {bound:,} bytes once unpacked{alone}, the limit "
                                    f"of what a torch file may hold; is it the right file? (If it is, raise the "
                                    f"limit: {UNPACKED_ENV}=8G)")


def _check_record(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, reader: Reader) -> None:
    """One record read through (streamed, zipfile comparing its CRC-32 with the directory's at its end)."""
    name = _short(info.filename)
    if info.flag_bits & 0x1:
        raise reader.fail(path, f"is damaged: record {name} is encrypted; {reader.fix}")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise reader.fail(path, f"is damaged: record {name} uses zip compression method {info.compress_type}, "
                                f"which torch cannot read; {reader.fix}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise reader.fail(path, f"is damaged: record {name} is stored as {info.compress_size:,} bytes but "
                                f"declares {info.file_size:,}; {reader.fix}")
    read = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                read += len(chunk)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise reader.fail(path, f"is damaged: record {name} fails its CRC; {reader.fix}") from None
        raise reader.fail(path, f"is damaged: record {name} cannot be read ({str(exc)[:80]}); {reader.fix}") from None
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise reader.fail(path, f"is damaged: record {name} is cut short ({str(exc)[:80] or type(exc).__name__}); "
                                f"{reader.fix}") from None
    if read != info.file_size:
        raise reader.fail(path, f"is damaged: record {name} holds {read:,} bytes, not the {info.file_size:,} it "
                                f"declares; {reader.fix}")


# ---------------------------------------------------------------- the pickle, measured without building it

# What an opcode does to the stack, for the scan (pickletools' stack_before/stack_after say the rest)
NOOP, STOP, MARK, PUSH, NEW, DUP, PUT, MEMOIZE, GET, INTO, INTO_MARKED, FROM_MARKED, OTHER = range(13)
_KINDS = {"PROTO": NOOP, "FRAME": NOOP, "STOP": STOP, "MARK": MARK, "DUP": DUP, "PUT": PUT, "BINPUT": PUT,
          "LONG_BINPUT": PUT, "MEMOIZE": MEMOIZE, "GET": GET, "BINGET": GET, "LONG_BINGET": GET,
          "APPEND": INTO, "SETITEM": INTO, "BUILD": INTO, "APPENDS": INTO_MARKED, "SETITEMS": INTO_MARKED,
          "ADDITEMS": INTO_MARKED, "LIST": FROM_MARKED, "TUPLE": FROM_MARKED, "DICT": FROM_MARKED,
          "FROZENSET": FROM_MARKED, "OBJ": FROM_MARKED, "INST": FROM_MARKED}
_PER_ITEM = {"SETITEM": 2, "SETITEMS": 2, "DICT": 2, "BUILD": 0}  # values an item takes (BUILD adds none)
_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: (1, "<B"), pickletools.TAKEN_FROM_ARGUMENT4: (4, "<I"),
           pickletools.TAKEN_FROM_ARGUMENT4U: (4, "<I"), pickletools.TAKEN_FROM_ARGUMENT8U: (8, "<Q")}


class _Box:
    """A container being built: its items so far and how deep it nests."""

    __slots__ = ("items", "depth")

    def __init__(self, depth: int = 1) -> None:
        self.items, self.depth = 0, depth


_SCALAR = _Box(0)  # every value that holds no others (numbers, strings, None, a storage)


def _ops_table() -> list[tuple | None]:
    """By opcode byte: (kind, fixed argument bytes, (length prefix bytes, format) or None, lines of
    text, values popped, pops to a mark, pushes, values an item takes)."""
    table: list[tuple | None] = [None] * 256
    for op in pickletools.opcodes:
        popped = len([x for x in op.stack_before if x not in (pickletools.markobject, pickletools.stackslice)])
        pushed = len([x for x in op.stack_after if x is not pickletools.markobject])
        kind = _KINDS.get(op.name, PUSH if not op.stack_before and pushed == 1 else OTHER)
        if op.name.startswith("EMPTY_"):
            kind = NEW
        n = op.arg.n if op.arg is not None else 0
        fixed, prefix, lines = (n, None, 0) if n >= 0 else (0, None, 2 if op.name in ("GLOBAL", "INST") else 1) \
            if n == pickletools.UP_TO_NEWLINE else (0, _PREFIX[n], 0)
        table[op.code.encode("latin-1")[0]] = (kind, fixed, prefix, lines, popped,
                                               pickletools.markobject in op.stack_before, pushed,
                                               _PER_ITEM.get(op.name, 1))
    return table


_OPS = _ops_table()
_MAX_LINE = 4096  # bytes of a text argument (protocol 0): a module and name, a number


def scan_pickle(stream: BinaryIO, *, items: int | None = None, max_ops: int = MAX_PICKLE_OPS,
                max_depth: int = MAX_PICKLE_DEPTH) -> str | None:
    """What is wrong with the pickle in ``stream`` for a reader that would build it, or None: more
    than ``max_ops`` operations, containers nested deeper than ``max_depth``, or a list or dict of
    more than ``items`` items. Measured from its operations alone, as the unpickler's own stack
    would hold them but with small boxes standing for the containers, never building a value (a
    MiB of it read at a time); a pickle that does not parse is left to torch, whose error names it."""
    read, table = stream.read, _OPS
    buf, pos, stack, marks, memo, ops = b"", 0, [], [], {}, 0
    limit = items if items is not None else 1 << 62
    try:
        while True:
            if pos + 16 > len(buf):  # an opcode and any fixed argument (8 bytes at most) at hand
                buf, pos = buf[pos:] + read(CHUNK), 0
                if not buf:
                    return None
            entry = table[buf[pos]]
            if entry is None:
                return None
            kind, fixed, prefix, lines, popped, marked, pushed, per_item = entry
            pos += 1
            ops += 1
            if ops > max_ops:
                return f"more than {max_ops:,} pickle operations (values for torch to build)"
            arg = None
            if fixed:
                if kind == PUT or kind == GET:
                    arg = int.from_bytes(buf[pos: pos + fixed], "little")
                pos += fixed
            elif prefix is not None:
                (n,) = struct.unpack_from(prefix[1], buf, pos)
                pos += prefix[0] + n
                if pos > len(buf):  # a long string or bytes: skipped unread
                    buf, pos = _skip(read, pos - len(buf)), 0
            elif lines:
                for _ in range(lines):
                    buf, pos, line = _line(read, buf, pos)
                if kind == PUT or kind == GET:
                    arg = int(line) if line.isdigit() else None
            if kind == PUSH:
                stack.append(_SCALAR)
            elif kind == NEW:
                stack.append(_Box())
            elif kind == MARK:
                marks.append(len(stack))
            elif kind == PUT:
                memo[arg] = stack[-1]
            elif kind == MEMOIZE:
                memo[len(memo)] = stack[-1]
            elif kind == GET:
                stack.append(memo.get(arg, _SCALAR))
            elif kind == STOP:
                return None
            elif kind == DUP:
                stack.append(stack[-1])
            elif kind == NOOP:
                continue
            else:
                # to the mark, or the values popped (into a container: those above it, which stays)
                at = marks.pop() if marked else len(stack) - popped + (kind == INTO)
                if at < 0:
                    return None
                values = stack[at:]
                del stack[at:]
                if kind == INTO or kind == INTO_MARKED:
                    box = stack[-1]
                    if box is _SCALAR:
                        continue
                    if per_item:
                        box.items += len(values) // per_item
                else:
                    box = _Box()
                    box.items = len(values) // per_item if kind == FROM_MARKED else 0
                    if pushed:
                        stack.append(box)
                if values:
                    deepest = max(v.depth for v in values) + 1
                    if deepest > box.depth:
                        box.depth = deepest
                if box.items > limit:
                    return f"a list or dict of more than {items:,} items"
                if box.depth > max_depth:
                    return f"values nested more than {max_depth} deep"
    except (EOFError, IndexError, struct.error, KeyError, ValueError):
        return None  # cut short or malformed: torch's own error names it


def _skip(read, n: int) -> bytes:
    """Read past ``n`` bytes of the stream; returns b"" (nothing at hand)."""
    while n > 0:
        chunk = read(min(n, CHUNK))
        if not chunk:
            raise EOFError
        n -= len(chunk)
    return b""


def _line(read, buf: bytes, pos: int) -> tuple[bytes, int, bytes]:
    """(buffer, position after it, the line) of the text argument at ``pos``."""
    while (end := buf.find(b"\n", pos)) < 0:
        if len(buf) - pos > _MAX_LINE:
            raise EOFError
        more = read(CHUNK)
        if not more:
            raise EOFError
        buf, pos = buf[pos:] + more, 0
    return buf, end + 1, buf[pos:end]
