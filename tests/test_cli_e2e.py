"""The three CLIs end to end, as a user runs them: separate processes, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def cli(name, *args, cwd):
    exe = BIN / name
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", {"gan-train": "ganforge.training.cli",
                                                                   "gan-export": "ganforge.export.cli",
                                                                   "gan-infer": "ganforge.inference.cli"}[name]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def one_line_error(proc, fragment):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr


def test_train_export_infer(tmp_path):
    t = cli("gan-train", "--epochs", "3", "--set", "n_rows=64", cwd=tmp_path)
    assert t.returncode == 0, t.stderr
    assert (tmp_path / "runs" / "latest" / "checkpoints" / "last.pt").exists()
    e = cli("gan-export", "--format", "all", cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    export_dir = tmp_path / "runs" / "latest" / "export"
    report = json.loads((export_dir / "export.json").read_text())
    assert set(report["artifacts"]) == {"onnx", "torchscript"}
    i1 = cli("gan-infer", "--n", "64", "--out", "grid.png", cwd=tmp_path)
    assert i1.returncode == 0, i1.stderr
    first = (tmp_path / "grid.png").read_bytes()
    i2 = cli("gan-infer", "--n", "64", "--out", "again.png", cwd=tmp_path)
    assert i2.returncode == 0 and (tmp_path / "again.png").read_bytes() == first
    r = cli("gan-train", "--resume", "--epochs", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "runs" / "latest" / "samples").glob("*.png"))) == 4


@pytest.mark.parametrize("args, fragment", [
    (("gan-train", "gan"), "unknown variant 'gan'"),
    (("gan-train", "--set", "latnt=3"), "unknown config key 'latnt'"),
    (("gan-train", "--set", "epochs=ten"), "epochs expects int"),
    (("gan-train", "--config", "missing.json"), "does not exist"),
    (("gan-export",), "no runs in runs yet"),
    (("gan-export", "nothing.pt"), "neither a run folder nor a checkpoint"),
    (("gan-export", "corrupt.pt"), "not a readable checkpoint"),
    (("gan-infer", "--n", "4", "--out", "g.png"), "gan-train, then gan-export"),
])
def test_bad_input_is_one_line(tmp_path, args, fragment):
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 truncated")
    proc = cli(*args, cwd=tmp_path)
    one_line_error(proc, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.pt"]  # nothing created


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="machine has CUDA")
def test_cuda_without_cuda(tmp_path):
    one_line_error(cli("gan-train", "--device", "cuda", cwd=tmp_path), "no CUDA")
