"""The run directory (DESIGN.md, "Artifacts and contracts").

    runs/<variant>-<YYYYmmdd-HHMMSS>/
      config.json  checkpoints/last.pt  train.log  metrics.csv
      samples/epoch-0001.png ...  losses.png  progress.gif  export/

``runs/latest`` is a relative symlink to the newest run, replaced atomically.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ganforge.errors import CheckpointError, ConfigError
from ganforge.fsutil import atomic_write_text

DEFAULT_RUNS_DIR = Path("runs")
LATEST = "latest"
CHECKPOINT = Path("checkpoints") / "last.pt"
METRIC_FIELDS = ("epoch", "step", "d_real", "d_fake", "g", "diversity", "seconds", "eval")


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

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files a killed process left behind (``.<name>.*.tmp*``); the real
        files were never touched by them. Returns how many were removed."""
        removed = 0
        for folder in (self.path, self.path / "checkpoints", self.samples):
            for tmp in folder.glob(".*.tmp*"):
                if tmp.is_file():
                    tmp.unlink()
                    removed += 1
        return removed

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
        tmp = self.path.parent / f".{LATEST}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            tmp.symlink_to(self.path.name, target_is_directory=True)
            os.replace(tmp, link)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            # A filesystem without symlinks: leave a pointer file instead.
            if not link.is_symlink() and not link.is_dir():
                atomic_write_text(link, self.path.name + "\n")


def resolve_run(arg: str | Path | None, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    """Find the checkpoint a user means by RUN|CHECKPOINT.

    ``None`` or ``latest`` -> ``<runs_dir>/latest``; a run folder -> its
    ``checkpoints/last.pt``; a run name -> ``<runs_dir>/<name>``; a file -> itself.
    """
    runs_dir = Path(runs_dir)
    if arg is None or str(arg) == LATEST:
        candidate = runs_dir / LATEST
        if not candidate.exists():
            raise CheckpointError(f"no runs in {runs_dir} yet: train one with gan-train, or name a run or checkpoint")
        if candidate.is_file():  # pointer file where symlinks are unavailable
            candidate = runs_dir / candidate.read_text().strip()
    else:
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


def run_of_checkpoint(ckpt: Path) -> RunDir | None:
    """The run a checkpoint lives in, when it sits at ``<run>/checkpoints/last.pt``."""
    ckpt = Path(ckpt).resolve()
    if ckpt.parent.name == "checkpoints":
        return RunDir(ckpt.parent.parent)
    return None


def open_log(run: RunDir, console_level: int = logging.INFO) -> logging.Logger:
    """A logger that writes every line to ``train.log`` and summaries to stderr."""
    logger = logging.getLogger(f"ganforge.run.{run.name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    close_log(logger)
    file_handler = logging.FileHandler(run.log, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    console = logging.StreamHandler()
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(file_handler)
    logger.addHandler(console)
    return logger


def close_log(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
