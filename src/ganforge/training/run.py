"""The run directory (docs/architecture.md, "Artifacts and contracts").

    runs/<variant>-<YYYYmmdd-HHMMSS>/
      config.json  checkpoints/last.pt  train.log  metrics.csv
      samples/epoch-0001.png ...  losses.png  progress.gif  export/

``runs/latest`` is a relative symlink to the newest run, replaced atomically (a pointer file
holding the run's name where symlinks are unavailable). It moves when a run starts, so that
``runs/latest/train.log`` follows the run in progress; until that run's first checkpoint,
``resolve_run`` falls back to the newest run that has one.

A run's files that cannot be written (a full disk) end the run in one line naming the file
and the free space (:func:`write_error`); checkpoints are written atomically, so the last
one stays whole.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ganforge.errors import CheckpointError, ConfigError, WriteError, first_line, printable
from ganforge.fsutil import (atomic_write_text, destination_of, free_bytes, inside, read_only, remove_leftovers,
                             staging)
from ganforge.runs import DEFAULT_RUNS_DIR, LATEST, latest_with

CHECKPOINT = Path("checkpoints") / "last.pt"
METRIC_FIELDS = ("epoch", "step", "d_real", "d_fake", "g", "diversity", "seconds", "eval")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# The disk a run goes to must hold a checkpoint: about four copies of G's and D's weights (the
# weights, the EMA copy of G, Adam's two moments), and a little for samples, metrics and the log.
CHECKPOINT_COPIES = 4
SPACE_MARGIN = 1 << 20


class RunDir:
    """Paths of one run and the small files written into it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch-{epoch:04d}.png"

    config = property(lambda self: self.path / "config.json")
    log = property(lambda self: self.path / "train.log")
    metrics = property(lambda self: self.path / "metrics.csv")
    losses_plot = property(lambda self: self.path / "losses.png")
    progress_gif = property(lambda self: self.path / "progress.gif")
    export_dir = property(lambda self: self.path / "export")

    @classmethod
    def create(cls, runs_dir: str | Path, variant: str) -> RunDir:
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create runs folder {runs_dir}: {exc.strerror}; pass a writable --runs-dir") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            path = runs_dir / (f"{variant}-{stamp}" + (f"-{i + 1}" if i else ""))
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand runs in one second
            raise ConfigError(f"too many runs named {variant}-{stamp} in {runs_dir}")
        run = cls(path)
        (path / "checkpoints").mkdir()
        run.samples.mkdir()
        return run

    def writes(self) -> tuple[Path, ...]:
        """Every path a run writes through (its files, and the folders that hold the others)."""
        return (self.path / "checkpoints", self.checkpoint, self.best_checkpoint, self.samples, self.config,
                self.log, self.metrics, self.losses_plot, self.progress_gif, self.export_dir,
                self.path / "tensorboard")

    def check_inside(self) -> None:
        """Refuse in one line a run that would write outside its folder: a checkpoint, a file or a
        folder of it that is a link into another run (or anywhere else)."""
        for path in self.writes():
            inside(self.path, path, what="the run", fix="replace the link with a copy of what it leads to, or name "
                                                         "the run it leads to")

    def remove_stale_temporaries(self) -> int:
        """Delete the temporaries a killed ganforge process left in the run (those it can prove it
        made: :func:`ganforge.fsutil.remove_leftovers`); the real files were never touched by them.
        Returns how many were removed."""
        return sum(remove_leftovers(folder) for folder in (self.path, self.path / "checkpoints", self.samples))

    def write_config(self, resolved: dict[str, Any]) -> None:
        atomic_write_text(self.config, json.dumps(resolved, indent=2) + "\n")

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write_text(self.metrics, buf.getvalue())

    def mark_latest(self) -> None:
        """Point ``<runs_dir>/latest`` at this run (relative symlink, replaced atomically)."""
        link = self.path.parent / LATEST
        try:
            with staging(self.path.parent, LATEST) as folder:
                (folder / LATEST).symlink_to(self.path.name, target_is_directory=True)
                os.replace(folder / LATEST, link)
        except OSError:
            # A filesystem without symlinks: leave a pointer file instead.
            if not link.is_symlink() and not link.is_dir():
                atomic_write_text(link, self.path.name + "\n")


def resolve_run(arg: str | Path | None, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    """Find the checkpoint a user means by RUN|CHECKPOINT.

    ``None`` or ``latest`` -> ``<runs_dir>/latest``, or, when that run has no checkpoint yet
    (it was stopped before its first epoch ended), the newest run that has one, with a
    warning; a run folder -> its ``checkpoints/last.pt``; a run name -> ``<runs_dir>/<name>``;
    a file -> itself.
    """
    runs_dir = Path(runs_dir)
    if arg is None or str(arg) == LATEST:
        return _latest_checkpoint(runs_dir)
    candidate = Path(arg)
    if not candidate.exists() and not candidate.is_absolute() and (runs_dir / candidate).exists():
        candidate = runs_dir / candidate
    if candidate.is_dir():
        ckpt = candidate / CHECKPOINT
        if not ckpt.exists():
            raise CheckpointError(f"{candidate} has no {CHECKPOINT}: is it a ganforge run folder?")
        return ckpt
    if not candidate.exists():
        raise CheckpointError(f"{arg} is neither a run folder nor a checkpoint file")
    return candidate


def _latest_checkpoint(runs_dir: Path) -> Path:
    return latest_with(runs_dir, CHECKPOINT, what="a checkpoint",
                       make="train one with gan-train, or name a run or checkpoint", stacklevel=4)


def run_of_checkpoint(ckpt: Path) -> RunDir | None:
    """The run a checkpoint lives in, when it sits at ``<run>/checkpoints/last.pt``: the folder it
    is found in, not the one a link named ``last.pt`` leads to (:meth:`RunDir.check_inside` refuses
    such a run before anything writes in it)."""
    ckpt = Path(os.path.abspath(ckpt))
    if ckpt.parent.name == "checkpoints":
        return RunDir(ckpt.parent.parent)
    return None


def open_log(run: RunDir, console_level: int = logging.INFO) -> logging.Logger:
    """A logger that writes every line to ``train.log`` and summaries to stderr."""
    logger = logging.getLogger(f"ganforge.run.{run.name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    close_log(logger)
    file_handler = _LogFile(run.log, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(_Printable("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    console = logging.StreamHandler()
    console.setLevel(console_level)
    console.setFormatter(_Printable("%(message)s"))
    logger.addHandler(file_handler)
    logger.addHandler(console)
    return logger


class _Printable(logging.Formatter):
    """One line a record, whatever outside strings (class names, paths) its message holds."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class _LogFile(logging.FileHandler):
    """train.log. A line that cannot be written (a full disk) is dropped instead of printed with a
    traceback: the run's next write of a file that matters says what is wrong, in one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def close_log(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


# ---------------------------------------------------------------- writes that fail


def _mb(n: int | None) -> str:  # two figures at least: 1.4 MB needed, 0.6 MB free never reads "1 MB, 1 MB"
    return "? MB" if n is None else f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def write_error(path: Path, exc: BaseException, needed: int | None = None) -> WriteError:
    """One line for a failed write of ``path``. It is a full disk when the system says so (ENOSPC,
    EDQUOT), or when a writer that does not say why failed with less free than the ``needed``
    bytes."""
    free = free_bytes(path.parent)
    if (isinstance(exc, OSError) and exc.errno == errno.EROFS) or read_only(path.parent):
        return WriteError(f"cannot write {path}: {path.parent} is read-only; pass --runs-dir on a writable disk",
                          path, exc)
    full = (isinstance(exc, OSError) and exc.errno in DISK_FULL) or \
        (needed is not None and free is not None and free < needed)
    if full:
        return WriteError(f"cannot write {path}: disk full ({_mb(free)} free on {path.parent}); free space or pass "
                          "--runs-dir on another disk", path, exc)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
    return WriteError(f"cannot write {path}: {reason} ({_mb(free)} free on {path.parent}); check that folder, or pass "
                      "--runs-dir elsewhere", path, exc)


def _written(filename: Any, folder: Path) -> Path:
    """The file a failed write was for: atomic_path's temporary stands for its destination."""
    if not filename:
        return folder
    return destination_of(os.fsdecode(filename))


@contextlib.contextmanager
def writes(folder: Path) -> Iterator[None]:
    """A full disk while writing a run's files (samples, metrics, plots, config, log) ends the run in
    one line naming the file, instead of a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise write_error(_written(exc.filename, folder), exc) from None
    except WriteError as exc:  # a writer shared with gan-infer says "--out": a run's fix is --runs-dir
        cause = exc.cause
        if not isinstance(cause, OSError) or cause.errno not in DISK_FULL or exc.path is None:
            raise
        raise write_error(_written(cause.filename or exc.path, folder), cause) from None


def check_space(folder: Path, needed: int) -> None:
    """Refuse to start a run whose checkpoint clearly cannot fit on the disk of ``folder``."""
    free = free_bytes(folder)
    if read_only(folder):
        raise WriteError(f"cannot write a run in {folder}: it is read-only; pass --runs-dir on a writable disk")
    if free is not None and free < needed:
        raise WriteError(f"not enough space for a checkpoint in {folder}: about {_mb(needed)} needed, {_mb(free)} "
                         "free; free space or pass --runs-dir on another disk")
