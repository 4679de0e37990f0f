"""Which model gan-infer, gan-eval and gan-bench use when none is named."""

import os
import shutil
import time

import pytest

from ganforge.errors import CheckpointError, GanforgeWarning
from ganforge.inference import default_model, generate
from tests.data.make_tiny_models import HERE as DATA


def _run(runs, name, exported=True):
    (runs / name / "checkpoints").mkdir(parents=True)
    if exported:
        (runs / name / "export").mkdir()
        shutil.copy(DATA / "tiny-image.onnx", runs / name / "export" / "generator.onnx")
    return runs / name


def test_the_latest_runs_export(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "a")
    _run(runs, "b")
    (runs / "latest").symlink_to("b")
    assert default_model(runs) == runs / "b" / "export" / "generator.onnx"
    (runs / "latest").unlink()
    (runs / "latest").write_text("a\n")  # a pointer file, where symlinks are unavailable
    assert default_model(runs) == runs / "a" / "export" / "generator.onnx"


def test_a_latest_run_without_an_export_falls_back_to_the_newest_with_one(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    old, new = _run(runs, "old"), _run(runs, "new")
    past = time.time() - 100
    os.utime(old / "export" / "generator.onnx", (past, past))
    _run(runs, "training", exported=False)
    (runs / "latest").symlink_to("training")
    with pytest.warns(GanforgeWarning, match="latest is training, which has no export/generator.onnx; using new, the "
                                             "newest run with an export"):
        assert default_model(runs) == new / "export" / "generator.onnx"
    monkeypatch.chdir(tmp_path)
    with pytest.warns(GanforgeWarning, match="using new"):
        assert generate(None, 4, "g.png").model.resolve() == new / "export" / "generator.onnx"


@pytest.mark.parametrize("target, fragment", [("/etc", "points outside"), ("../elsewhere", "points outside")])
def test_latest_must_stay_inside_the_runs_folder(tmp_path, target, fragment):
    runs = tmp_path / "runs"
    _run(runs, "a")
    (runs / "latest").symlink_to(target)
    with pytest.raises(CheckpointError, match=fragment):
        default_model(runs)


def test_no_model_anywhere_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match=r"no runs in .* yet: train and export one first \(gan-train, then "
                                              r"gan-export\), or pass --model FILE.onnx"):
        default_model(tmp_path / "runs")
    runs = tmp_path / "runs"
    _run(runs, "x", exported=False)
    (runs / "latest").symlink_to("x")
    with pytest.raises(CheckpointError, match="latest is x, which has no export/generator.onnx, and no other run"):
        default_model(runs)
