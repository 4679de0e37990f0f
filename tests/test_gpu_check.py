"""make gpu-check: on this CPU machine it says so and exits 0; its steps rehearse on the CPU."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here: make gpu-check runs for real")
def test_without_a_gpu_it_says_so_and_exits_0():
    proc = subprocess.run(["make", "--no-print-directory", "gpu-check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "no NVIDIA GPU" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "no CUDA GPU visible to torch" in proc.stdout, proc.stdout + proc.stderr


def test_every_step_runs_in_a_cpu_rehearsal(tmp_path):
    out = tmp_path / "gpu.md"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--rehearse", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = out.read_text()
    assert "10 of 10 steps passed" in report and "**fail**" not in report, report
    for name in ("gan-train wgan-gp", "torchrun resume", "serve dcgan", "gan-infer --device cpu"):
        assert name in report
