"""Packaging: the extras in setup.cfg, and the one line a CLI prints when one is missing.

A missing package is simulated by ``sys.modules[name] = None`` in a subprocess, which makes
``import name`` raise ImportError as if it were not installed. The wheel and sdist builds
are checked by scripts/check-lean-install.sh (make lean-check), not here.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def extras() -> dict[str, list[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {name: [re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower() for line in value.split("\n") if line.strip()]
            for name, value in cfg["options.extras_require"].items()}


def run_without(module: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.modules[{module!r}] = None\n{code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_extras_split_as_documented():
    e = extras()
    assert e["cpu"] == ["onnxruntime"] and e["gpu"] == ["onnxruntime-gpu"]
    assert e["tensorboard"] == ["tensorboard"]
    assert "tensorboard" not in e["train"] and {"torch", "torchvision", "onnx", "onnxscript"} <= set(e["train"])
    assert {"pytest", "tensorboard"} <= set(e["dev"])  # make test installs [train,cpu,dev]: the tensorboard tests run
    assert e["ray"] == ["ray"] and "ray" in e["dev"]  # the Ray tests run in CI too
    assert not {"torch", "onnxruntime", "onnxruntime-gpu"} & set(e["ray"])  # a Ray worker picks its runtime, no torch
    for name, packages in e.items():  # they install the same module
        assert not {"onnxruntime", "onnxruntime-gpu"} <= set(packages), name


def test_gan_export_without_onnxruntime_names_both_extras(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    out = run_without("onnxruntime", "from ganforge.export.cli import main; main(['--format', 'onnx'])", tmp_path)
    assert out.returncode == 1, out
    assert out.stdout == ""
    assert out.stderr == ("Error: gan-export checks every export with onnxruntime (onnxruntime is missing): "
                          "pip install 'ganforge[cpu]' (or 'ganforge[gpu]' on a CUDA machine)\n")
    assert not (tmp_path / "runs").exists()


def test_gan_train_tensorboard_without_tensorboard_names_its_extra(tmp_path):
    pytest.importorskip("torch")
    out = run_without("tensorboard", "from ganforge.train_cli import main; "
                                     "main(['--tensorboard', '--epochs', '1', '--runs-dir', 'runs'])", tmp_path)
    assert out.returncode == 1, out
    assert out.stderr == ("Error: --tensorboard needs the 'tensorboard' extra (tensorboard is missing): "
                          "pip install 'ganforge[tensorboard]'\n")
    assert not (tmp_path / "runs").exists()  # refused before a run folder exists


def test_gan_infer_ray_without_ray_names_its_extra(tmp_path):
    model = ROOT / "tests" / "data" / "tiny-image.onnx"
    out = run_without("ray", "from ganforge.inference.cli import main; "
                             f"main(['--model', {str(model)!r}, '--n', '10', '--out', 'o/', '--ray'])", tmp_path)
    assert out.returncode == 1, out
    assert out.stderr == "Error: gan-infer --ray needs the 'ray' extra (ray is missing): pip install 'ganforge[ray]'\n"
    assert not (tmp_path / "o").exists()  # refused before the folder is made


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target, extras_", [("demo", "train,cpu"), ("test", "train,cpu,dev")])
def test_make_torch_index_installs_torch_first_only_when_set(tmp_path, target, extras_):
    def dry(*args):
        return subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.splitlines()

    index = "https://download.pytorch.org/whl/cpu"
    lines = dry(f"TORCH_INDEX={index}")
    torch_line = [i for i, line in enumerate(lines) if f"pip install --progress-bar on torch torchvision --index-url '{index}'" in line]
    extras_line = [i for i, line in enumerate(lines) if f"pip install --progress-bar on -e '.[{extras_}]'" in line]
    assert len(torch_line) == 1 and len(extras_line) == 1 and torch_line[0] < extras_line[0], lines
    assert not [line for line in dry() if "--index-url" in line]


def test_what_the_readmes_quick_start_writes_is_ignored_and_cleaned():
    """The files the README's commands write in the clone do not clutter `git status`, and `make clean`
    removes them."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    quick = readme.split("## The commands")[0]
    written = set(re.findall(r"(?:--out|-o) (\w[\w.-]*\.(?:png|npy|gif))\b", quick)) | {"grid.png"}  # make demo's
    assert {"more.png", "fashion.png", "served.png"} <= written
    ignored = set((root / ".gitignore").read_text().split())
    clean = next(line for line in (root / "Makefile").read_text().splitlines() if line.startswith("\trm -rf"))
    assert {f"/{name}" for name in written} <= ignored
    assert all(name in clean.split() for name in written | {"runs", "bench", "eval"})


def test_the_package_lives_under_src_so_the_clone_cannot_shadow_it():
    # From the clone's parent, a root-level ganforge/ folder beside the editable install's finder
    # made `ganforge` the clone folder itself (a namespace package) and `ganforge.runs` its runs/
    # folder: "cannot import name 'DEFAULT_RUNS_DIR' from 'ganforge.runs' (unknown location)".
    # With src/, the editable install is a path entry that wins over a namespace folder
    # (scripts/check-lean-install.sh imports an editable install from the clone's parent).
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options"]["package_dir"].split() == ["=", "src"]
    assert cfg["options.packages.find"]["where"] == "src"
    assert (ROOT / "src" / "ganforge" / "__init__.py").is_file() and not (ROOT / "ganforge").exists()
