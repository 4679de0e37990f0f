"""Writers against links that lead out of the folder they write in (issue 29): a run's checkpoint,
an export folder and a cache file that are links into another run or anywhere else are refused
in one line, and what they lead to is untouched; a checkpoint that is only read may be a link."""

from __future__ import annotations

import shutil

import pytest

from tests.data.make_tiny_models import HERE as DATA
from tests.hostile.harness import assert_ok, assert_refused, run_cli, snapshot


@pytest.fixture
def two_runs(sine_run, tmp_path):
    """runs/mine and runs/theirs, copies of the session's sine run; runs/latest is mine."""
    runs = tmp_path / "runs"
    for name in ("mine", "theirs"):
        shutil.copytree(sine_run.run_dir, runs / name)
    (runs / "latest").symlink_to("mine")
    return runs / "mine", runs / "theirs"


def test_resume_through_a_checkpoint_link_into_another_run_is_refused(two_runs, tmp_path):
    mine, theirs = two_runs
    (mine / "checkpoints" / "last.pt").unlink()
    (mine / "checkpoints" / "last.pt").symlink_to(theirs / "checkpoints" / "last.pt")
    before = snapshot(theirs)
    result = run_cli("gan-train", "--resume", "mine", "--epochs", "5", "--runs-dir", "runs", cwd=tmp_path)
    assert_refused(result, r"refusing to write .*mine/checkpoints/last.pt: .*last.pt is a link to .*theirs/checkpoints/"
                           r"last.pt, outside the run .*mine; replace the link", cli="gan-train")
    assert snapshot(theirs) == before


def test_resume_through_a_checkpoints_folder_link_is_refused(two_runs, tmp_path):
    mine, theirs = two_runs
    shutil.rmtree(mine / "checkpoints")
    (mine / "checkpoints").symlink_to(theirs / "checkpoints")
    before = snapshot(theirs)
    assert_refused(run_cli("gan-train", "--resume", "mine", "--epochs", "5", "--runs-dir", "runs", cwd=tmp_path),
                   r"mine/checkpoints is a link to .*theirs/checkpoints, outside the run", cli="gan-train")
    assert snapshot(theirs) == before


def test_export_reads_a_checkpoint_link_and_writes_into_its_own_run(two_runs, tmp_path):
    mine, theirs = two_runs
    (mine / "checkpoints" / "last.pt").unlink()
    (mine / "checkpoints" / "last.pt").symlink_to(theirs / "checkpoints" / "last.pt")
    before = snapshot(theirs)
    assert_ok(run_cli("gan-export", "mine", "--runs-dir", "runs", cwd=tmp_path), cli="gan-export")
    assert (mine / "export" / "generator.onnx").is_file() and snapshot(theirs) == before


@pytest.mark.parametrize("link", ["export", "export/generator.onnx"])
def test_export_through_an_export_link_into_another_run_is_refused(link, two_runs, tmp_path):
    mine, theirs = two_runs
    (theirs / "export").mkdir()
    (theirs / "export" / "generator.onnx").write_bytes(b"their model")
    (mine / link).parent.mkdir(exist_ok=True)
    (mine / link).symlink_to(theirs / link)
    before = snapshot(theirs)
    assert_refused(run_cli("gan-export", "mine", "--runs-dir", "runs", cwd=tmp_path),
                   rf"refusing to write .*mine/export.*: .*mine/{link} is a link to .*theirs/{link}, outside the "
                   r"(run|export folder)", cli="gan-export")
    assert snapshot(theirs) == before


def test_a_plan_cache_link_out_of_the_cache_folder_is_refused(tmp_path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "precious.json"
    cache.mkdir()
    elsewhere.write_text('{"a user\'s": "file"}\n')
    (cache / "micro-batch.json").symlink_to(elsewhere)
    result = run_cli("gan-infer", "--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out", "g.png",
                     "--device", "cpu", cwd=tmp_path, env={"GANFORGE_CACHE_DIR": str(cache)})
    assert_refused(result, r"refusing to write .*cache/micro-batch.json: .* is a link to .*precious.json, outside the "
                           r"cache folder .*; remove the link")
    assert elsewhere.read_text() == '{"a user\'s": "file"}\n' and not (tmp_path / "g.png").exists()
