"""SIGKILL at several points (inside epochs, inside checkpoint writes): every resume starts
from an intact checkpoint, loses at most one checkpoint interval, and the finished run has
the weights of a run that was never killed."""

import os
import signal
import subprocess
import sys
import time

import torch

from ganforge.training import checkpoint, train

SETS = ["n_rows=32000", "sample_count=4", "checkpoint_every=40"]  # 1000 steps an epoch


def _start(runs, resume=None):
    args = ["--resume", str(resume)] if resume else ["sine", *[a for s in SETS for a in ("--set", s)]]
    cmd = [sys.executable, "-m", "ganforge.train_cli", *args, "--epochs", "3", "--runs-dir", str(runs)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_kill_anywhere_and_resume(tmp_path):
    runs = tmp_path / "runs"
    run_dir = None
    steps_seen = []
    for delay in (0.4, 0.9, 0.05, 0.6):  # after this process's first checkpoint write
        before = [p.stat().st_mtime_ns for p in runs.glob("*/checkpoints/last.pt")]
        proc = _start(runs, resume=run_dir)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and \
                [p.stat().st_mtime_ns for p in runs.glob("*/checkpoints/last.pt")] == before:
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        run_dir = next(p for p in runs.iterdir() if p.name != "latest")
        state = checkpoint.load(run_dir / "checkpoints" / "last.pt")  # intact: loads and is ganforge's
        steps_seen.append(int(state["step"]))
    # every process wrote checkpoints before it was killed, and each resume went on from the last one
    assert all(a < b for a, b in zip(steps_seen, steps_seen[1:])), steps_seen
    final = train(resume=run_dir, runs_dir=runs, progress=False, device="cpu")
    assert not list((run_dir / "checkpoints").glob(".ganforge-tmp-*"))  # stale temporaries were cleared
    straight = train("sine", epochs=3, sets=SETS, runs_dir=tmp_path / "straight", progress=False, device="cpu")
    a = torch.load(final.checkpoint, weights_only=True)
    b = torch.load(straight.checkpoint, weights_only=True)
    assert a["step"] == b["step"] == 3000
    for part in ("generator", "discriminator"):
        for k in b[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_checkpoint_every_writes_inside_the_epoch(tmp_path):
    run = train("sine", epochs=1, sets=["n_rows=640", "sample_count=4", "checkpoint_every=7"], runs_dir=tmp_path,
                progress=False, device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["epoch"] == 1 and "partial" not in state  # the epoch-end checkpoint replaced the partial ones
