"""A per-run time limit for every runtime call (issue 29): a model whose graph never ends (a
Loop of 10^12 iterations) is stopped after ``$GANFORGE_RUN_SECONDS`` (default
:data:`DEFAULT_RUN_SECONDS`) and its run fails in one line, in gan-infer, gan-bench, gan-eval and
gan-serve alike.

One daemon thread for the process watches every run in flight: :func:`guard` registers the run's
deadline and how to stop it (onnxruntime: ``RunOptions.terminate``; OpenVINO: the infer
request's ``cancel()``), and removes it when the run returns; the thread is woken only for a
deadline earlier than the one it sleeps to. A run costs about 4 us more (a lock, a dict entry,
onnxruntime's RunOptions: measured on a batch of one of the 8-value test model, 7 us a run
without, 11 us with); no thread is started per run.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator

from ganforge.errors import GanforgeError

RUN_SECONDS_ENV = "GANFORGE_RUN_SECONDS"
DEFAULT_RUN_SECONDS = 600.0  # one run: the largest batch of the biggest variant takes seconds on a slow CPU
MAX_RUN_SECONDS = 7 * 24 * 3600.0


def run_seconds() -> float:
    """The limit on one run, in seconds: ``$GANFORGE_RUN_SECONDS``, else :data:`DEFAULT_RUN_SECONDS`."""
    text = os.environ.get(RUN_SECONDS_ENV, "").strip()
    if not text:
        return DEFAULT_RUN_SECONDS
    try:
        value = float(text[:40]) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_RUN_SECONDS):
        raise GanforgeError(f"{RUN_SECONDS_ENV}={text[:40]!r} is not a time limit: give seconds above 0 and at most "
                            f"{MAX_RUN_SECONDS:.0f} (a week), such as 600")
    return value


class _Watch:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._runs: dict[int, tuple[float, Callable[[], None]]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf  # when the thread looks next: woken early only for an earlier deadline

    def add(self, seconds: float, stop: Callable[[], None]) -> int:
        with self._lock:
            self._next += 1
            key = self._next
            deadline = time.monotonic() + seconds
            self._runs[key] = (deadline, stop)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ganforge-run-watchdog", daemon=True)
                self._thread.start()
            elif deadline < self._wake_at:  # runs of one limit come in order: the thread sleeps on
                self._lock.notify()
            return key

    def remove(self, key: int) -> bool:
        """Forget run ``key``; whether its time ran out (it was stopped)."""
        with self._lock:
            self._runs.pop(key, None)
            fired = key in self._fired
            self._fired.discard(key)
            return fired

    def _loop(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for key, (deadline, stop) in list(self._runs.items()):
                    if deadline <= now:
                        del self._runs[key]
                        self._fired.add(key)
                        try:
                            stop()
                        except Exception:  # noqa: BLE001  (a runtime's own error: the run ends anyway or not at all)
                            pass
                # a finished run's deadline may wake it for nothing: it looks, and sleeps to the next
                self._wake_at = min((d for d, _ in self._runs.values()), default=now + 3600.0)
                self._lock.wait(timeout=max(self._wake_at - now, 0.001))


_WATCH = _Watch()


class RunTimeout(GanforgeError):
    """A run went past the per-run time limit and was stopped."""


@contextlib.contextmanager
def guard(stop: Callable[[], None], what: str, seconds: float | None = None) -> Iterator[None]:
    """Run the block under the time limit (``seconds``, else :func:`run_seconds`); past it,
    ``stop()`` is called from the watchdog and the block's end raises :class:`RunTimeout` naming
    ``what`` (whatever error the stopped runtime raised)."""
    limit = run_seconds() if seconds is None else seconds
    key = _WATCH.add(limit, stop)
    fired = False
    try:
        yield
    except Exception:
        fired = _WATCH.remove(key)
        if not fired:
            raise
    else:
        fired = _WATCH.remove(key)
    if fired:
        raise RunTimeout(f"{what} ran past the time limit of {limit:g} s a run and was stopped: check the model (a "
                         f"loop that does not end?), or raise the limit ({RUN_SECONDS_ENV}=3600)")
