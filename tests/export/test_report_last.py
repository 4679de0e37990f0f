"""export.json and the artifacts beside it never disagree, whenever an export dies."""

import json
import os

import onnx
import pytest
import torch

from ganforge.export import export
from ganforge.inference import metadata as meta
from ganforge.training import checkpoint


class Killed(BaseException):
    """What a crash looks like to the code that was running: nothing after it happens."""


def _other_checkpoint(sine_run, tmp_path):
    """The sine run's checkpoint with G's weights moved: another checkpoint (another sha256)."""
    state = checkpoint.load(sine_run.checkpoint)
    for key in ("generator", "generator_ema"):
        if key in state:
            state[key] = {k: v + 0.05 if v.is_floating_point() else v for k, v in state[key].items()}
    path = tmp_path / "other.pt"
    checkpoint.save(path, {k: v for k, v in state.items() if k != "format"})
    return path


def _agree(out):
    """When there is a report, every file it lists is there, of the size it says, and the ONNX
    file comes from the checkpoint it names."""
    report_path = out / "export.json"
    if not report_path.exists():
        return
    report = json.loads(report_path.read_text())
    for key, entry in report["artifacts"].items():
        path = out / entry["path"]
        assert path.exists(), key
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        assert size == entry["size_bytes"], key
    props = {p.key: p.value for p in onnx.load(out / "generator.onnx", load_external_data=False).metadata_props}
    assert props[meta.SOURCE_SHA256] == report["source_checkpoint_sha256"]


def test_a_crash_at_any_move_leaves_a_report_that_describes_its_files(sine_run, tmp_path, monkeypatch):
    other = _other_checkpoint(sine_run, tmp_path)
    real_replace = os.replace
    moves = 0
    crashed_at = []
    for crash_at in range(8):  # each os.replace of the export in turn, then none
        out = tmp_path / f"out{crash_at}"
        export(sine_run.run_dir, formats=["onnx", "torchscript"], out_dir=out)  # checkpoint A
        _agree(out)
        moves = 0

        def replace(src, dst, *, _at=crash_at):
            nonlocal moves
            moves += 1
            if moves == _at + 1:
                raise Killed
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        try:
            export(other, formats=["onnx", "torchscript"], out_dir=out)  # checkpoint B, dies at move crash_at
        except Killed:
            crashed_at.append(crash_at)
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        _agree(out)
        if not crashed_at or crashed_at[-1] != crash_at:  # it finished: B throughout
            report = json.loads((out / "export.json").read_text())
            assert report["source_checkpoint_sha256"] == checkpoint.sha256(other)
            break
    assert crashed_at == list(range(len(crashed_at))) and len(crashed_at) >= 3  # two artifacts and the report


def test_a_failed_move_keeps_the_old_files_and_leaves_no_temporaries(sine_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(sine_run.run_dir, formats=["onnx"], out_dir=out)
    onnx_bytes = (out / "generator.onnx").read_bytes()
    other = _other_checkpoint(sine_run, tmp_path)

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        export(other, formats=["onnx"], out_dir=out)
    monkeypatch.undo()
    assert (out / "generator.onnx").read_bytes() == onnx_bytes
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    _agree(out)
