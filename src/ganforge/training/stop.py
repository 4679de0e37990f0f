"""Stopping a run on purpose: Ctrl-C, and the errors that end training early."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from ganforge.errors import GanforgeError


class TrainingDiverged(GanforgeError):
    """A loss became NaN or infinite."""


class Interrupted(GanforgeError):
    """Ctrl-C: the run stopped after a whole step, with a checkpoint to resume from."""

    exit_code = 130  # the shell's convention for SIGINT


class StopAfterStep(Exception):
    """Raised by the loop once a requested stop can be honoured between two steps; carries the
    position inside the epoch when the epoch can be picked up exactly there (else None)."""

    def __init__(self, position: dict[str, Any] | None = None):
        super().__init__()
        self.position = position


class StopRequest:
    """The first Ctrl-C asks to stop after the current step; a second one stops at once.

    Under torchrun, torchrun passes a Ctrl-C on to every process once; they agree on the
    step to stop after (the loop asks all ranks) and only rank 0 says so (``quiet`` elsewhere).
    """

    def __init__(self, quiet: bool = False) -> None:
        self.requested = False
        self.previous = None
        self.quiet = quiet

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if not self.quiet:
            print("\nstopping after this step to write a checkpoint (Ctrl-C again to stop at once)", file=sys.stderr)
