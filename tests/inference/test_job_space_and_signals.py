"""A folder job checks the disk has room for what it still has to make, before making any of it;
SIGTERM (and SIGHUP) end gan-infer as Ctrl-C does: temporaries removed, complete shards kept, a
rerun completes (issue 29)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ganforge import fsutil
from ganforge.fsutil import STAGING_PREFIX
from ganforge.inference.cli import main

MODEL = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"
ROOT = Path(__file__).resolve().parents[2]


def test_a_job_that_cannot_fit_on_the_disk_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "free_bytes", lambda folder: 10 << 20)  # a disk with 10 MiB free
    out = tmp_path / "job"
    got = CliRunner().invoke(main, ["--model", str(MODEL), "--n", "60000", "--format", "npy", "--out", f"{out}/",
                                    "--device", "cpu"])
    assert got.exit_code == 1, got.output
    assert got.output.strip().splitlines() == [
        f"Error: 6 npy shards of 60,000 samples needs 43.9 MiB but {out} has 10.0 MiB free: free some space or "
        "write elsewhere"]
    assert [p.name for p in out.iterdir()] == ["manifest.json"]  # no shard begun
    small = tmp_path / "small"
    got = CliRunner().invoke(main, ["--model", str(MODEL), "--n", "600", "--format", "npy", "--out", f"{small}/",
                                    "--device", "cpu"])
    assert got.exit_code == 0, got.output  # what fits is made


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_job_leaves_no_temporaries_and_reruns_to_the_end(tmp_path, sig):
    out = tmp_path / "job"
    command = [sys.executable, "-m", "ganforge.inference.cli", "--model", str(MODEL), "--range", "0:400000",
               "--format", "npy", "--shard-size", "2000", "--out", f"{out}/", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(20_000):  # bounded: the job itself takes seconds
        if proc.poll() is not None or len(list(out.glob("shard-*.npy"))) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the job finished before the signal reached it")
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1].startswith(f"Error: stopped by {signal.Signals(sig).name}; temporaries removed")
    assert "Traceback" not in err
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]  # nothing half-written left
    kept = sorted(p.name for p in out.glob("shard-*.npy"))
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(kept)} already there" in rerun.stdout
    whole = np.concatenate([np.load(p) for p in sorted(out.glob("shard-*.npy"))])
    assert len(whole) == 400000
