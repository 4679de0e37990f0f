"""Ctrl-C stops after a whole step and writes a checkpoint; resuming gives the same weights
as a run that was never interrupted, wherever the interrupt landed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from ganforge.training import train

SETS = ["n_rows=16000", "sample_count=4", "log_every=1"]


def test_sigint_checkpoints_and_resume_is_exact(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "ganforge.train_cli", "sine", "--epochs", "3", "--runs-dir", str(runs),
           *[a for s in SETS for a in ("--set", s)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.time() + 120
    while not list(runs.glob("*/checkpoints/last.pt")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "checkpoint written: " in err and "; resume with: gan-train --resume" in err
    run_dir = Path(err.split("gan-train --resume ")[-1].strip().splitlines()[0])
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] < 3
    resumed = train(resume=run_dir, runs_dir=runs, progress=False, device="cpu")
    straight = train("sine", epochs=3, sets=SETS, runs_dir=tmp_path / "straight", progress=False, device="cpu")
    a = torch.load(resumed.checkpoint, weights_only=True)
    b = torch.load(straight.checkpoint, weights_only=True)
    assert a["step"] == b["step"] and "partial" not in a
    for k in b["generator"]:
        assert torch.equal(a["generator"][k], b["generator"][k]), k
    for k in b["discriminator"]:
        assert torch.equal(a["discriminator"][k], b["discriminator"][k]), k
    assert [r["g"] for r in a["history"]] == [r["g"] for r in b["history"]]
