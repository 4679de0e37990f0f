"""An export folder holds one checkpoint's artifacts: what an export of another checkpoint left
there (TorchScript, fp16, int8, Triton) is removed when the run is exported again, so that no
reader serves the older weights under the new model's name; a user's own files stay."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from ganforge.export import export
from ganforge.inference.cli import main as infer
from ganforge.training import train
from tests.conftest import tiny_sets


def _run(tmp_path):
    return train("sine", epochs=1, sets=tiny_sets("sine"), runs_dir=tmp_path / "runs", progress=False, device="cpu")


def test_a_later_export_removes_what_another_checkpoint_left(tmp_path):
    run = _run(tmp_path)
    export(run.run_dir, formats=["onnx", "torchscript", "triton"])
    export(run.run_dir, formats="onnx", precision="int8")
    out = run.run_dir / "export"
    (out / "notes.txt").write_text("mine")
    (out / "generator.mine.ts").symlink_to(out / "generator.ts")
    before = sorted(p.name for p in out.iterdir())
    assert {"generator.ts", "generator.int8.onnx", "triton"} <= set(before)
    # the same checkpoint again: nothing is another's, nothing removed
    export(run.run_dir, formats="onnx")
    assert sorted(p.name for p in out.iterdir()) == before
    train(resume=run.run_dir, epochs=2, progress=False, device="cpu")  # last.pt changes
    result = export(run.run_dir, formats="onnx")
    left = sorted(p.name for p in out.iterdir())
    assert "generator.ts" not in left and "generator.int8.onnx" not in left and "triton" not in left
    assert {"generator.onnx", "export.json", "notes.txt"} <= set(left)
    assert os.path.islink(out / "generator.mine.ts")  # a link is never followed nor removed
    report = json.loads((out / "export.json").read_text())
    assert set(report["artifacts"]) == {"onnx"}
    assert any("exported from another checkpoint" in n for n in report["notes"])
    assert any("exported from another checkpoint" in n for n in result.notes)
    got = CliRunner().invoke(infer, ["--model", str(out / "generator.onnx"), "--precision", "int8", "--n", "4",
                                     "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert got.exit_code == 1 and "needs" in got.output and "gan-export --precision int8" in got.output
    assert not (tmp_path / "g.png").exists()


def test_a_file_no_ganforge_record_names_is_left_alone(tmp_path):
    run = _run(tmp_path)
    export(run.run_dir, formats="onnx")
    out = run.run_dir / "export"
    (out / "generator.ts").write_bytes(b"a user's own file under the name")  # no digest, not in export.json
    train(resume=run.run_dir, epochs=2, progress=False, device="cpu")
    export(run.run_dir, formats="onnx")
    assert (out / "generator.ts").read_bytes() == b"a user's own file under the name"
