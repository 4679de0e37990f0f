"""What a killed ganforge writer leaves: a staging folder as ganforge.fsutil.staging makes it (the
marker naming the process), holding a half-written file or folder for ``dest``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from ganforge import fsutil


def dead_pid() -> int:
    """The pid of a process that has ended (and, so soon after, is not reused)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def staging_leftover(folder: Path, dest: str, *, pid: int, token: str = "abcd1234", folder_output: bool = False) -> Path:
    tmp = folder / f"{fsutil.STAGING_PREFIX}{token}"
    tmp.mkdir()
    owner = {"magic": "ganforge temporary", "token": token, "dest": dest, "pid": pid, "host": socket.gethostname(),
             "started": fsutil._start_time(pid) if pid == os.getpid() else None}
    (tmp / fsutil.MARKER).write_text(json.dumps(owner) + "\n")
    if folder_output:
        (tmp / dest).mkdir()
        (tmp / dest / "sample-00000.png").write_bytes(b"half")
    else:
        (tmp / dest).write_bytes(b"half")
    return tmp
