"""A reader of protobuf's text format (Triton's ``config.pbtxt``) into dicts and lists,
without the message's schema (tritonclient's ``model_config_pb2`` is not a dependency).

    parse('name: "g" input [ { dims: [ 4 ] } ]', repeated={"input", "dims"})
    == {"name": "g", "input": [{"dims": [4]}]}

It reads what the format allows, not one writer's layout: any whitespace, ``#`` comments,
quoted strings (either quote, C escapes, adjacent strings joined), numbers (decimal, hex,
octal, floats with an optional ``f``, ``-`` before any of them, ``inf``/``nan``), identifiers
(enum values; ``true``/``false`` read as bools), messages in ``{ }`` or ``< >`` with or
without ``:``, lists in ``[ ]``, a field written again to add to it, and ``,`` or ``;``
after a field. Without a schema a field written once is its value and a field written as
a list or more than once is a list; names in ``repeated`` are always lists, as protobuf's
repeated fields are whichever way they were written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from ganforge.errors import GanforgeError


class PbtxtError(GanforgeError):
    """Text that is not protobuf text format; the message gives the line."""


_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.]))
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<punct>[{}\[\]<>:,;-])
""", re.X)
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|[xX]([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.S)
_SIMPLE = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v",
           "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}
_CLOSE = {"{": "}", "<": ">"}
_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def parse(text: str, repeated: Iterable[str] = ()) -> dict[str, Any]:
    """The message in ``text`` as a dict (nested messages as dicts, lists as lists)."""
    return _Parser(text, frozenset(repeated)).message(None, 0)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) of every token; whitespace and comments dropped."""
    out, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PbtxtError(f"line {line}: unexpected {text[pos]!r}")
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return out


def _unescape(quoted: str, line: int) -> str:
    body, out, pos = quoted[1:-1], bytearray(), 0
    for m in _ESCAPE.finditer(body):
        out += body[pos:m.start()].encode()
        octal, hex2, u4, u8, char = m.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hex2:
            out.append(int(hex2, 16))
        elif u4 or u8:
            out += chr(int(u4 or u8, 16)).encode()
        elif char in _SIMPLE:
            out += _SIMPLE[char]
        else:
            raise PbtxtError(f"line {line}: unknown escape \\{char} in {quoted}")
        pos = m.end()
    out += body[pos:].encode()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise PbtxtError(f"line {line}: {quoted} is not UTF-8 once unescaped") from None


def _number(text: str, negative: bool) -> int | float:
    lower = text.lower()
    if lower.startswith("0x"):
        value: int | float = int(lower, 16)
    elif re.fullmatch(r"0[0-7]+", lower):  # a leading 0 is octal in the text format, as in C
        value = int(lower, 8)
    elif re.fullmatch(r"\d+", lower):
        value = int(lower)
    else:
        value = float(lower.rstrip("f"))
    return -value if negative else value


class _Parser:
    def __init__(self, text: str, repeated: frozenset[str]):
        self.tokens = _tokens(text)
        self.i = 0
        self.repeated = repeated
        self.last_line = text.count("\n") + 1

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "end of text", self.last_line)

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        self.i += 1
        return token

    def accept(self, punct: str) -> bool:
        kind, text, _ = self.peek()
        if kind == "punct" and text == punct:
            self.i += 1
            return True
        return False

    def fail(self, want: str):
        _, text, line = self.peek()
        raise PbtxtError(f"line {line}: expected {want}, got {text!r}")

    def message(self, close: str | None, opened: int) -> dict[str, Any]:
        """Fields up to ``close`` (None: the end of the text); ``opened``: the line of the opening bracket."""
        values: dict[str, list] = {}
        many: set[str] = set()  # written as a list, or more than once
        while True:
            kind, text, line = self.peek()
            if kind == "end":
                if close is None:
                    break
                raise PbtxtError(f"line {line}: the message opened on line {opened} is not closed with {close!r}")
            if close is not None and self.accept(close):
                break
            if kind != "ident":
                self.fail("a field name")
            name = text
            self.i += 1
            colon = self.accept(":")
            kind, text, line = self.peek()
            if kind == "punct" and text in _CLOSE:
                got = [self.block()]
            elif kind == "punct" and text == "[":
                got = self.sequence(colon, name)
                many.add(name)
            elif colon:
                got = [self.scalar()]
            else:
                self.fail(f"':' or a message after {name!r}")
            if name in values:
                many.add(name)
            values.setdefault(name, []).extend(got)
            if not self.accept(","):
                self.accept(";")
        return {k: v if k in many or k in self.repeated else v[0] for k, v in values.items()}

    def block(self) -> dict[str, Any]:
        _, opening, line = self.take()
        return self.message(_CLOSE[opening], line)

    def sequence(self, colon: bool, name: str) -> list:
        self.take()  # [
        items: list = []
        if self.accept("]"):
            return items
        while True:
            kind, text, _ = self.peek()
            if kind == "punct" and text in _CLOSE:
                items.append(self.block())
            elif colon:  # a list of scalars needs the ':' (of messages it may go without)
                items.append(self.scalar())
            else:
                self.fail(f"':' before a list of values of {name!r}")
            if self.accept("]"):
                return items
            if not self.accept(","):
                self.fail("',' or ']'")

    def scalar(self) -> Any:
        negative = self.accept("-")
        kind, text, line = self.take()
        if kind == "number":
            return _number(text, negative)
        if kind == "ident" and text.lower() in _FLOATS:
            return -_FLOATS[text.lower()] if negative else _FLOATS[text.lower()]
        if negative:
            self.i -= 1
            self.fail("a number after '-'")
        if kind == "string":
            parts = [_unescape(text, line)]
            while self.peek()[0] == "string":  # "a" "b" is "ab"
                _, more, more_line = self.take()
                parts.append(_unescape(more, more_line))
            return "".join(parts)
        if kind == "ident":
            return {"true": True, "True": True, "false": False, "False": False}.get(text, text)
        self.i -= 1
        self.fail("a value")
