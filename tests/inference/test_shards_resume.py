"""A real gan-infer killed in the middle of a sharded job, then rerun: only the missing shards are
made, and the folder ends byte for byte as an uninterrupted run leaves it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE = str(DATA / "tiny-image.onnx")
ROOT = Path(__file__).resolve().parents[2]
POLLS = 12_000  # at most 60 s of 5 ms looks for the first shard


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganforge.inference.cli", "--model", IMAGE, "--n", "10240", "--shard-size", "1024",
            "--seed", "5", "--out", f"{out}/", *extra]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def shards_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("shard-")) if folder.is_dir() else []


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_after_first_shard(out: Path, *extra: str) -> list[str]:
    """Start the job, SIGKILL it once its first shard is in place (its workers are left to notice),
    and return the shards there then."""
    proc = subprocess.Popen(command(out, *extra), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        for _ in range(POLLS):
            if shards_in(out) or proc.poll() is not None:
                break
            time.sleep(0.005)
        workers = children(proc.pid)
        proc.kill()
    finally:
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the job ended before it was killed"
    for _ in range(400):  # at most 20 s: a worker whose parent is gone ends by itself
        if not any(running(pid) for pid in workers):
            break
        time.sleep(0.05)
    left = [pid for pid in workers if running(pid)]
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived their killed parent"
    return shards_in(out)


def rerun(out: Path, *extra: str) -> str:
    done = subprocess.run(command(out, *extra), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("form, extra", [("npy", ("--format", "npy")), ("png", ("--workers", "2"))])
def test_a_killed_job_rerun_makes_only_the_missing_shards(tmp_path, form, extra):
    whole = tmp_path / "whole"
    assert "made 10 of 10 shards, 0 already there" in rerun(whole, *extra)
    out = tmp_path / "killed"
    there = kill_after_first_shard(out, *extra)
    assert 1 <= len(there) < 10, there
    kept = {name: (out / name).stat().st_mtime_ns for name in there}
    line = rerun(out, *extra)
    assert f"made {10 - len(there)} of 10 shards, {len(there)} already there" in line
    assert {name: (out / name).stat().st_mtime_ns for name in there} == kept  # not made again
    assert tree(out) == tree(whole)  # every file, the manifest too, byte for byte
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temporaries are gone
    shutil_rmtree_part(out, form)
    assert "made 2 of 10 shards, 8 already there" in rerun(out, *extra)
    assert tree(out) == tree(whole)


def shutil_rmtree_part(out: Path, form: str) -> None:
    """Delete two shards, as a user tidying a folder might."""
    import shutil

    for name in shards_in(out)[3:5]:
        (shutil.rmtree if form == "png" else os.unlink)(out / name)
