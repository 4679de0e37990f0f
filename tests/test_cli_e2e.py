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
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", {"gan-train": "ganforge.train_cli",
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
    assert set(report["artifacts"]) == {"onnx", "torchscript", "exported", "triton"}
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


@pytest.mark.parametrize("variant, sets, size", [
    ("mnist-mlp", ["latent_size=8", "hidden_size=16", "batch_size=16"], 28),
    ("dcgan", ["latent_dim=8", "g_features=4", "d_features=4", "batch_size=8"], 32),
])
def test_image_variants_end_to_end(tmp_path, fake_data, variant, sets, size):
    from PIL import Image

    data = fake_data / ("idx" if variant == "mnist-mlp" else "cifar")
    args = [a for s in sets for a in ("--set", s)]
    t = cli("gan-train", variant, "--data", str(data), "--epochs", "1", *args, cwd=tmp_path)
    assert t.returncode == 0, t.stderr
    assert "data: " in t.stderr
    assert cli("gan-export", cwd=tmp_path).returncode == 0
    i = cli("gan-infer", "--n", "64", "--out", "grid.png", cwd=tmp_path)
    assert i.returncode == 0, i.stderr
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (8 * size + 9 * 2,) * 2 and grid.mode == ("L" if variant == "mnist-mlp" else "RGB")
    assert cli("gan-infer", "--n", "32", "--nrow", "16", "--out", "wide.png", cwd=tmp_path).returncode == 0
    assert Image.open(tmp_path / "wide.png").size == (16 * size + 17 * 2, 2 * size + 3 * 2)
    assert cli("gan-infer", "--n", "5", "--out", "each/", cwd=tmp_path).returncode == 0
    assert len(list((tmp_path / "each").glob("shard-*/sample-*.png"))) == 5  # a sharded job's folder


def test_image_data_errors_are_one_line(tmp_path, fake_data):
    from tests.fakedata import write_cifar

    write_cifar(tmp_path / "broken", skip=("data_batch_2",))
    one_line_error(cli("gan-train", "dcgan", "--data", str(tmp_path / "broken"), cwd=tmp_path), "missing data_batch_2")
    one_line_error(cli("gan-train", "mnist-mlp", "--data", str(tmp_path / "nope"), cwd=tmp_path), "does not exist")
    one_line_error(cli("gan-train", "dcgan", "--data", str(fake_data / "cifar"), "--set", "classes=spaceship",
                       cwd=tmp_path), "unknown class 'spaceship'")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("gan-train", "dcgan", "--data", str(tmp_path / "empty"), cwd=tmp_path), "no images")
    assert not (tmp_path / "runs").exists()
