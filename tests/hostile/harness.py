"""Run a ganforge CLI the way a user's shell would, under a memory limit and a timeout.

Each case starts a fresh interpreter (``python -m <cli module>``) with ``RLIMIT_AS``
set, so a command that tries to allocate without bound dies instead of swapping,
and is waited for with ``os.wait4``, which reports the child's own peak RSS.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIS = {"gan-infer": "ganforge.inference.cli", "gan-eval": "ganforge.evaluation.cli",
        "gan-bench": "ganforge.bench.cli", "gan-export": "ganforge.export.cli", "gan-train": "ganforge.train_cli"}
TORCH_FREE = {"gan-infer"}
# Address space a CLI may map. torch alone maps about 3.3 GB of address space at import (its CUDA
# libraries), onnxruntime, numpy and pillow about 0.2 GB; the rest is the 1 GiB memory budget and room.
ADDRESS_SPACE = {True: 2 << 30, False: 6 << 30}  # torch-free, torch
# Peak resident memory a case may reach: the 1 GiB budget and the interpreter with its libraries.
MAX_RSS = {True: 1200 << 20, False: 1600 << 20}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    max_rss: int  # bytes, the child's own peak

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(cli: str, *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, file_size: int | None = None) -> Result:
    """``cli`` (``gan-infer`` ...) with ``args`` in a subprocess; ``file_size`` caps the bytes any
    one file may reach (RLIMIT_FSIZE: a write past it fails as on a full disk)."""
    torch_free = cli in TORCH_FREE
    limit = ADDRESS_SPACE[torch_free]

    def limits() -> None:  # runs in the child, before it starts Python
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))), "COLUMNS": "200", **(env or {})}
    full_env.pop("PYTHONWARNINGS", None)  # what a user sees, warnings included
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", CLIS[cli], *args], cwd=cwd, env=full_env, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, preexec_fn=limits)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Result(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                      usage.ru_maxrss * 1024)


def assert_refused(result: Result, pattern: str, *, cli: str = "gan-infer") -> str:
    """A non-zero exit, no traceback, one ``Error:`` line that matches ``pattern`` (a regex),
    and memory within bounds. Returns the line."""
    assert result.returncode not in (0, -9), f"exit {result.returncode}:\n{result.output[-2000:]}"
    assert "Traceback" not in result.output, result.output[-3000:]
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output[-2000:]
    assert re.search(pattern, errors[0]), errors[0]
    assert result.max_rss < MAX_RSS[cli in TORCH_FREE], f"peak RSS {result.max_rss >> 20} MiB: {errors[0]}"
    return errors[0]


def assert_ok(result: Result, *, cli: str = "gan-infer") -> None:
    assert result.returncode == 0, result.output[-3000:]
    assert "Traceback" not in result.output, result.output[-3000:]
    assert result.max_rss < MAX_RSS[cli in TORCH_FREE], f"peak RSS {result.max_rss >> 20} MiB"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path: what 'nothing was overwritten' compares."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
