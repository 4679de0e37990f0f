"""Progress that reaches a log: when stderr is not a terminal (a pipe, ``nohup``, CI, ``script``), a
long command says where it is at least every :data:`INTERVAL_S` seconds, as a line: steps (or
samples) done, the epoch and how far into it, samples/s and the time left. A terminal keeps its bar.

Ground floor and torch-free. The clock is injectable (``Meter(clock=...)``, or :data:`now` patched
for a whole command), so the tests run on a fake clock, not wall time; the interval comes from
``GANFORGE_PROGRESS_SECONDS`` (default 30).

At the end, :meth:`Meter.final` says the whole run's time and whether the time-left figures were
honest: each estimate made is held against the time the rest really took.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from ganforge.errors import GanforgeError

INTERVAL_S = 30.0
ENV = "GANFORGE_PROGRESS_SECONDS"
HONEST = 0.2  # a time-left figure whose foretold end is within this fraction of the run's time is called right
now = time.monotonic  # the clock a Meter reads when none is given (tests patch it)


def interval() -> float:
    """Seconds between two lines: ``$GANFORGE_PROGRESS_SECONDS``, else :data:`INTERVAL_S`."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise GanforgeError(f"{ENV} must be a number of seconds > 0, got {text!r}")
    return value


def to_log(stream=None) -> bool:
    """Whether progress goes out as lines: ``stream`` (stderr) is not a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ticking(call: Callable[[], object], meter: Meter) -> Callable[[], object]:
    """``call``, looking at ``meter``'s clock after each run (a line when one is due; counts nothing)."""
    def run():
        out = call()
        meter.step(steps=0)
        return out
    return run


def duration(seconds: float) -> str:
    """``3.2s``, ``4m05s``, ``2h03m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Meter:
    """Counts the steps of one long piece of work and, every ``every`` seconds on ``clock``, writes a
    line (``lines=True``) and records the time-left estimate. ``total``: steps in all; ``per``:
    steps an epoch and ``epochs``/``first_epoch`` when the work has epochs (training)."""

    def __init__(self, total: int, *, what: str = "", unit: str = "step", units: str | None = None,
                 write: Callable[[str], None] = say,
                 every: float | None = None, clock: Callable[[], float] | None = None, lines: bool = True,
                 per: int | None = None, epochs: int | None = None, first_epoch: int = 1, start: int = 0):
        self.total, self.what, self.unit, self.write, self.lines = max(0, total), what, unit, write, lines
        self.units = units or f"{unit}s"
        self.every = interval() if every is None else every
        self.clock = clock
        self.per, self.epochs, self.first_epoch = per, epochs, first_epoch
        self.start = start  # steps already done before this call (a resumed epoch): counted in the position
        self.done = self.samples = 0
        self.began = self.last = self._now()
        self.estimates: list[tuple[float, float]] = []  # (when, seconds left said then)
        self.ended: float | None = None
        self.written = 0  # lines written

    def _now(self) -> float:
        return (self.clock or now)()

    def step(self, samples: int = 0, steps: int = 1) -> None:
        self.done += steps
        self.samples += samples
        t = self._now()
        if t - self.last >= self.every:
            self.last = t
            line = self.line(t)
            if self.lines:
                self.write(line)
                self.written += 1

    def update(self, done: int, samples: int | None = None) -> None:
        """Set the count (a callback that reports totals, such as generate()'s ``progress(done, n)``)."""
        self.step(0 if samples is None else samples - self.samples, done - self.done)

    def line(self, t: float | None = None) -> str:
        """Where the work is, and records the estimate of the time left."""
        t = self._now() if t is None else t
        spent = t - self.began
        parts = [f"{self.units} {self.done:,}/{self.total:,}" if self.total else f"{self.units} {self.done:,}"]
        if self.per and self.epochs:
            at = self.start + self.done
            epoch = self.first_epoch + min(at // self.per, self.epochs - self.first_epoch)
            into = at - (epoch - self.first_epoch) * self.per
            parts.append(f"epoch {epoch}/{self.epochs} at {100 * into / self.per:.0f}%")
        elif self.total:
            parts.append(f"{100 * self.done / self.total:.0f}%")
        text = (f"{self.what}: " if self.what else "") + " ".join(parts[:1]) + (
            f" ({', '.join(parts[1:])})" if parts[1:] else "")
        if spent > 0 and self.samples:
            text += f", {self.samples / spent:,.0f} samples/s"
        if spent > 0 and 0 < self.done < self.total:
            left = spent * (self.total - self.done) / self.done
            self.estimates.append((t, left))
            text += f", about {duration(left)} left"
        return text

    def final(self) -> str:
        """The whole run's time, and how right the time-left figures were."""
        self.ended = self._now()
        spent = self.ended - self.began
        text = (f"{self.what}: " if self.what else "") + f"{duration(spent)} in all"
        if spent > 0 and self.samples:
            units = self.unit if self.done == 1 else self.units
            text += f" ({self.done:,} {units}, {self.samples / spent:,.0f} samples/s)"
        if not self.estimates:
            return text + "; it ended before a time-left figure was due"
        # each figure's error: the end it foretold against the real one, over the whole run's time
        errors = [((when + left - self.ended) / max(spent, 1e-9), when, left) for when, left in self.estimates]
        error, when, left = max(errors, key=lambda e: abs(e[0]))
        n = len(self.estimates)
        verdict = "right" if abs(error) <= HONEST else "off"
        return (f"{text}; the time left was {verdict}: of {n} figure{'s' if n != 1 else ''} the worst said "
                f"{duration(left)} at {duration(when - self.began)} and the rest took {duration(self.ended - when)} "
                f"({abs(error):.0%} of the run {'over' if error > 0 else 'under'})")


def sample_lines(what: str = "", write: Callable[[str], None] = say) -> Callable[[int, int], None]:
    """A ``progress(done, n)`` callback (generate()'s) that writes a line at least every interval, and
    the final line when done reaches n (a job short enough to have written none says nothing)."""
    meter: list[Meter] = []
    began = now()  # the command's time counts from here (the model's opening included)

    def progress(done: int, n: int) -> None:
        if not meter:
            meter.append(Meter(n, what=what, unit="sample", write=write))
            meter[0].began = meter[0].last = began
        m = meter[0]
        m.update(done, samples=done)
        if done >= n and m.ended is None and m.written:
            write(m.final())

    return progress


def shard_lines(what: str = "", write: Callable[[str], None] = say, every: float | None = None,
                end: Callable[[str], None] | None = None) -> Callable[[int, int, int], None]:
    """A ``progress(shards_done, shards_to_make, samples_done)`` callback of a sharded job: a line at
    least every interval (``every``; default :func:`interval`): shards done, samples/s, the time
    left; and when the last shard is done, the whole run's line to ``end`` (default ``write``), if
    any line was written."""
    meter: list[Meter] = []
    began = now()  # the command's time counts from here (the model's opening included)

    def progress(done: int, total: int, samples: int) -> None:
        if not meter:
            meter.append(Meter(total, what=what, unit="shard", write=write, every=every))
            meter[0].began = meter[0].last = began
        m = meter[0]
        m.update(done, samples=samples)
        if done >= total and m.ended is None and m.written:
            (end or write)(m.final())

    return progress
