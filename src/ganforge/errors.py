"""Errors a user can cause, and how CLIs turn them into one line.

torch-free on purpose: ``ganforge.inference`` imports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class GanforgeError(Exception):
    """A problem the user can fix. Its message says what is wrong and what to do.

    CLIs print it as one line (no traceback) and exit non-zero.
    """


class ConfigError(GanforgeError):
    """A bad config key, value or file."""


class DataError(GanforgeError):
    """Training data that is missing or unusable."""


class CheckpointError(GanforgeError):
    """A checkpoint that is missing, corrupt or not ganforge's."""


class ModelFileError(GanforgeError):
    """A model file (ONNX) that is missing, corrupt or not a generator."""


class WriteError(GanforgeError):
    """A file that cannot be written (a full disk, a read-only folder): ``path`` names it and
    ``cause`` is the OSError, so that a caller can say it in its own terms (--out, --runs-dir)."""

    def __init__(self, message: str, path=None, cause: BaseException | None = None):
        super().__init__(message)
        self.path, self.cause = path, cause


class DeviceError(GanforgeError):
    """A device that was asked for but is not available."""


class MissingExtraError(GanforgeError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, extra: str, exc: BaseException | None = None):
        missing = f" ({exc.name} is missing)" if isinstance(exc, ImportError) and exc.name else ""
        super().__init__(f"{what} needs the '{extra}' extra{missing}: pip install 'ganforge[{extra}]'")


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn a GanforgeError (and Ctrl-C) into click's one-line error exit. SIGTERM and SIGHUP (a
    `kill`, a closed terminal, a job scheduler's stop) end the command the same way, through the
    ``finally`` blocks that remove its temporaries (the default action would end it at once and
    leave them), exit status 143 (129)."""
    import click

    previous = _on_termination()
    _received.clear()
    try:
        yield
    except (GanforgeError, Terminated) as exc:
        if _received:  # the signal, whatever it interrupted (a write it broke ends as a WriteError)
            signum, name = _received[0]
            error = click.ClickException(f"stopped by {name}; temporaries removed: rerun the same command to finish "
                                         "(a folder job keeps its complete shards)")
            error.exit_code = 128 + signum
            raise error from None
        # printable: an outside string in it cannot break the line or rewrite the screen
        error = click.ClickException(printable(exc))
        error.exit_code = getattr(exc, "exit_code", 1)
        raise error from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted") from None
    finally:
        _restore(previous)


_received: list[tuple[int, str]] = []  # the SIGTERM or SIGHUP that arrived, if one did


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (a BaseException, so no ``except Exception``
    swallows it)."""

    def __init__(self, signum: int, name: str):
        super().__init__(name)
        self.signum, self.name = signum, name


def _on_termination() -> dict:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum, frame):
        name = signal.Signals(signum).name
        _received.append((signum, name))
        raise Terminated(signum, name)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, stop)
        except (OSError, ValueError):
            continue
    return previous


def _restore(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        try:
            signal.signal(sig, handler)
        except (OSError, ValueError, TypeError):
            continue


class GanforgeWarning(UserWarning):
    """Something the user should know that does not stop the work (skipped files, upscaling)."""


@contextlib.contextmanager
def quiet_log(name: str = "") -> Iterator[None]:
    """Keep the logger ``name``'s warnings (the root logger's by default) off the console meanwhile:
    libraries that advise through logging what the user cannot act on."""
    import logging

    log = logging.getLogger(name or None)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def short_warnings() -> None:
    """Show GanforgeWarnings as one ``warning: ...`` line, without file and line numbers.

    Idempotent: calling it again (a CLI run many times in one process) installs nothing more.
    """
    import sys
    import warnings

    if getattr(warnings.showwarning, "_ganforge", False):
        return
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, GanforgeWarning):
            print(f"warning: {printable(message)}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show._ganforge = True
    warnings.showwarning = show


def printable(text: object, limit: int | None = None) -> str:
    """``text`` as it may reach a terminal: every control character (newlines, escape sequences,
    C1 controls) and every lone surrogate (from a file name that is not UTF-8) written as a
    backslash escape, and cut to ``limit`` characters (``...`` marks a cut). An outside string
    (a class name, a file name, a metadata value) is made printable before it is printed, so
    that it cannot rewrite the screen and a one-line error stays one line."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def first_line(exc: BaseException, limit: int = 200, *, typed: bool = False) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters and printable
    (:func:`printable`), for a one-line error about a foreign failure; the exception's type name
    when the message is empty or blank (so that no caller indexes an empty ``splitlines()``).
    ``typed``: ``TypeName: first line``."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = printable(lines[0].strip()[:limit])
    return f"{type(exc).__name__}: {text}" if typed else text
