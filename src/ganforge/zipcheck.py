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
:func:`ganforge.limits.unpacked_bound`, every record's CRC-32 (streamed, a MiB at a time: about
0.1 s for 200 MB), and the pickle's operations, nesting and longest list (what torch would
build from it) against ``MAX_PICKLE_*`` and the reader's own bound. The same open file is then
handed to torch, so what was proven is what is read.

torch's legacy format (before PyTorch 1.6: a bare pickle, no checksums) cannot be proven, and
is refused with the reader's way round (ganforge never wrote one).

Ground floor and torch-free: stdlib ``zipfile`` and ``pickletools``.
"""

from __future__ import annotations

import contextlib
import pickletools
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
PICKLE_START = b"\x80"  # torch's legacy format starts with a pickle's protocol opcode
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

    def fail(self, path: Path, problem: str) -> GanforgeError:
        return self.error(f"{self.noun} {path} {problem}")

    def unreadable(self, path: Path, reason: str) -> GanforgeError:
        return self.error(f"{path} is not a readable {self.noun} ({reason}); is the file complete?")


@contextlib.contextmanager
def opened(path: str | Path, reader: Reader) -> Iterator[BinaryIO]:
    """``path`` opened for reading and proven (:func:`verify`), at its start: hand it to torch."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise reader.unreadable(path, exc.strerror or type(exc).__name__) from None
    with f:
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
        if head.startswith(PICKLE_START):
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
            if info.filename.endswith("data.pkl") and info.filename.count("/") == 1:  # torch.save's pickle
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

_MARK = object()  # a MARK on the scanned stack
# opcodes by what they do to the stack, beyond what pickletools' stack_before/stack_after say
_INTO_TOP = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}  # pop n values into the container below them
_INTO_MARKED = {"APPENDS": 1, "SETITEMS": 2, "ADDITEMS": 1}  # pop to the mark, into the container below it
_FROM_MARKED = {"LIST": 1, "TUPLE": 1, "DICT": 2, "FROZENSET": 1, "OBJ": 1, "INST": 1}  # a new container
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}


class _Box:
    """A container being built: its items so far and how deep it nests."""

    __slots__ = ("items", "depth")

    def __init__(self, depth: int = 1) -> None:
        self.items, self.depth = 0, depth


_SCALAR = _Box(0)  # every value that holds no others (numbers, strings, None, a storage)


def _ops_table() -> dict[int, tuple[str, int, int, bool, int]]:
    """code -> (name, argument length or how to find it, values popped, pops to a mark, values pushed)."""
    table = {}
    for op in pickletools.opcodes:
        before = op.stack_before
        marked = pickletools.markobject in before
        popped = len([s for s in before if s not in (pickletools.markobject, pickletools.stackslice)])
        pushed = len([s for s in op.stack_after if s is not pickletools.markobject])
        arg = op.arg
        if arg is None:
            how = 0
        elif arg.n >= 0:
            how = arg.n
        elif arg.n == pickletools.UP_TO_NEWLINE:
            how = -1 if op.name not in ("GLOBAL", "INST") else -9  # two lines
        else:
            how = {pickletools.TAKEN_FROM_ARGUMENT1: -2, pickletools.TAKEN_FROM_ARGUMENT4: -3,
                   pickletools.TAKEN_FROM_ARGUMENT4U: -3, pickletools.TAKEN_FROM_ARGUMENT8U: -4}[arg.n]
        table[op.code.encode("latin-1")[0]] = (op.name, how, popped, marked, pushed)
    return table


_OPS = _ops_table()
_PREFIX = {-2: (1, "<B"), -3: (4, "<I"), -4: (8, "<Q")}


class _Stream:
    """Bytes of a stream, a chunk at a time: ``take`` small pieces, ``skip`` large ones unread."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.buf, self.pos = stream, b"", 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self.buf = self.buf[self.pos:] + self.stream.read(max(CHUNK, n))
            self.pos = 0
            if n > len(self.buf):
                raise EOFError
        piece = self.buf[self.pos: self.pos + n]
        self.pos += n
        return piece

    def skip(self, n: int) -> None:
        left = len(self.buf) - self.pos
        if n <= left:
            self.pos += n
            return
        n -= left
        self.buf, self.pos = b"", 0
        while n > 0:
            chunk = self.stream.read(min(n, CHUNK))
            if not chunk:
                raise EOFError
            n -= len(chunk)

    def line(self) -> bytes:
        out = b""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                out += self.buf[self.pos: end]
                self.pos = end + 1
                return out
            out += self.buf[self.pos:]
            if len(out) > 4096:
                raise EOFError
            self.buf, self.pos = self.stream.read(CHUNK), 0
            if not self.buf:
                raise EOFError


def scan_pickle(stream: BinaryIO, *, items: int | None = None, max_ops: int = MAX_PICKLE_OPS,
                max_depth: int = MAX_PICKLE_DEPTH) -> str | None:
    """What is wrong with the pickle in ``stream`` for a reader that would build it, or None: more
    than ``max_ops`` operations, containers nested deeper than ``max_depth``, or a list or dict of
    more than ``items`` items. Measured from its operations alone (a stack of small boxes standing
    for the containers), never building a value; a pickle that does not parse is left to torch."""
    src, stack, memo, ops = _Stream(stream), [], {}, 0
    limit = items if items is not None else float("inf")
    try:
        while True:
            code = src.take(1)[0]
            entry = _OPS.get(code)
            if entry is None:
                return None  # not a pickle torch can read: its own error says so
            name, how, popped, marked, pushed = entry
            ops += 1
            if ops > max_ops:
                return f"more than {max_ops:,} pickle operations (values for torch to build)"
            arg = _argument(src, how)
            if name == "STOP":
                return None
            if name == "MARK":
                stack.append(_MARK)
                continue
            if name == "DUP":
                stack.append(stack[-1])
                continue
            if name in _MEMO_PUT:
                if stack:
                    memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
                continue
            if name in _MEMO_GET:
                stack.append(memo.get(arg, _SCALAR))
                continue
            if name in _INTO_TOP or name in _INTO_MARKED:
                if name in _INTO_TOP:
                    values = [stack.pop() for _ in range(_INTO_TOP[name])]
                else:
                    values = _pop_mark(stack)
                target = stack[-1] if stack else None
                if isinstance(target, _Box) and target is not _SCALAR:
                    if name != "BUILD":
                        target.items += len(values) // (_INTO_TOP.get(name) or _INTO_MARKED[name])
                    target.depth = max([target.depth, *(v.depth + 1 for v in values if isinstance(v, _Box))])
                    if target.items > limit:
                        return f"a list or dict of more than {items:,} items"
                    if target.depth > max_depth:
                        return f"values nested more than {max_depth} deep"
                continue
            values = _pop_mark(stack) if marked else []
            values += [stack.pop() for _ in range(popped)]
            if pushed:
                if name.startswith("EMPTY_") or name in _FROM_MARKED or values:
                    box = _Box(1 + max((v.depth for v in values if isinstance(v, _Box)), default=0))
                    box.items = len(values) // _FROM_MARKED.get(name, 1) if name in _FROM_MARKED else 0
                    if box.items > limit:
                        return f"a list or dict of more than {items:,} items"
                    if box.depth > max_depth:
                        return f"values nested more than {max_depth} deep"
                    stack.append(box)
                else:
                    stack.append(_SCALAR)
    except (EOFError, IndexError, struct.error, KeyError):
        return None  # cut short or malformed: torch's own error names it


def _pop_mark(stack: list) -> list:
    values = []
    while stack:
        top = stack.pop()
        if top is _MARK:
            return values
        values.append(top)
    raise IndexError


def _argument(src: _Stream, how: int) -> int | None:
    """Read (or skip) an opcode's argument; returns it when it is a memo index."""
    if how == 0:
        return None
    if how > 0:
        data = src.take(how)
        return int.from_bytes(data, "little") if how in (1, 4) else None
    if how == -1:
        line = src.line()
        return int(line) if line.isdigit() else None
    if how == -9:
        src.line()
        src.line()
        return None
    size, fmt = _PREFIX[how]
    (n,) = struct.unpack(fmt, src.take(size))
    src.skip(n)
    return None
