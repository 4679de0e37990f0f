"""Sizes gan-infer holds in memory are bounded, and non-finite samples are an error (issue 16)."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ganforge.inference.render import MAX_GRID
from tests.data.make_tiny_models import MODELS, build
from tests.inference.test_cli import DATA, assert_one_line_error, run

IMAGE = str(DATA / "tiny-image.onnx")
COND = str(DATA / "tiny-cond.onnx")


@pytest.mark.parametrize("args, fragment", [
    (["--model", IMAGE, "--n", str(MAX_GRID + 1), "--out", "grid.png"],
     f"a PNG grid holds at most {MAX_GRID} samples, got {MAX_GRID + 1}: write --out samples.npy or --out DIR/"),
    (["--model", IMAGE, "--n", "1000000000000", "--out", "huge.png"], "a PNG grid holds at most"),
    (["--model", COND, "--per-class", "10000000", "--out", "c.npy"], "a per-class grid holds at most 4096 samples"),
    (["--model", COND, "--per-class", str(MAX_GRID // 2), "--out", "c.png"],  # 3 classes: 6144 samples
     f"a PNG grid holds at most {MAX_GRID} samples, got {3 * (MAX_GRID // 2)}"),
    (["--model", IMAGE, "--interpolate", "1,2", "--steps", "100000000", "--out", "w.npy"],
     f"a walk has at most {MAX_GRID} frames"),
    (["--model", IMAGE, "--out", ""], "--out is empty: name a .png grid"),  # was: the current folder
])
def test_sizes_held_in_memory_are_refused_in_one_line(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run(*args), fragment)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary


def test_a_large_n_streams_to_npy(tmp_path):
    result = run("--model", IMAGE, "--n", str(MAX_GRID + 1), "--out", str(tmp_path / "s.npy"))
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "s.npy", mmap_mode="r").shape == (MAX_GRID + 1, 3, 8, 8)


@pytest.fixture
def nan_model(tmp_path):
    """tiny-image with one weight NaN: every sample has a NaN pixel."""
    model = build(**MODELS["tiny-image.onnx"])
    (w,) = [t for t in model.graph.initializer if t.name == "W"]
    W = numpy_helper.to_array(w).copy()
    W[0, 5] = np.nan
    w.CopyFrom(numpy_helper.from_array(W, "W"))
    path = tmp_path / "nan.onnx"
    onnx.save_model(model, str(path))
    return str(path)


@pytest.mark.parametrize("out", ["grid.png", "s.npy", "walk.gif"])
def test_non_finite_samples_are_an_error_and_nothing_is_written(nan_model, out, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / out).write_bytes(b"an earlier result")
    extra = ["--interpolate", "1,2"] if out.endswith(".gif") else ["--n", "8"]
    result = run("--model", nan_model, *extra, "--out", str(target / out))
    assert_one_line_error(result, "the model produced NaN or infinite values in")
    assert [p.name for p in target.iterdir()] == [out]  # no temporary left
    assert (target / out).read_bytes() == b"an earlier result"  # and the earlier file kept


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_output_is_a_job_a_rerun_completes_and_another_is_refused(tmp_path):
    out = tmp_path / "s"
    assert run("--model", IMAGE, "--n", "10", "--out", f"{out}/").exit_code == 0
    before = tree(out)
    assert "made 0 of 1 shards, 1 already there" in run("--model", IMAGE, "--n", "10", "--out", f"{out}/").output
    assert_one_line_error(run("--model", IMAGE, "--n", "3", "--out", f"{out}/"),
                          f"{out} holds another job: its range differs (there [0, 10], asked [0, 3])")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary beside it


def test_a_folder_with_other_files_is_refused_and_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert_one_line_error(run("--model", IMAGE, "--n", "3", "--out", f"{out}/"),
                          "holds files and no manifest.json (notes.txt)")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_non_finite_samples_write_no_shard(nan_model, tmp_path):
    out = tmp_path / "s"
    assert run("--model", IMAGE, "--n", "2", "--out", f"{out}/").exit_code == 0
    before = tree(out)
    assert_one_line_error(run("--model", nan_model, "--n", "2", "--out", f"{out}/"), "its model (sha256) differs")
    assert tree(out) == before
    assert_one_line_error(run("--model", nan_model, "--n", "5", "--out", f"{tmp_path / 'new'}/"), "NaN or infinite")
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["manifest.json"]  # the plan alone: no shard, no temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.onnx", "new", "s"]


def test_a_killed_runs_temporary_folder_is_removed_by_the_next_run(tmp_path):
    from tests.leftovers import dead_pid, staging_leftover

    dead = dead_pid()
    staging_leftover(tmp_path, "w", pid=dead, folder_output=True)  # a walk's folder of frames is written whole
    assert run("--model", IMAGE, "--interpolate", "1,2", "--steps", "2", "--out", f"{tmp_path / 'w'}/").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    (tmp_path / "s").mkdir()
    staging_leftover(tmp_path / "s", "shard-000000", pid=dead, folder_output=True)  # a shard's, in the job's folder
    assert run("--model", IMAGE, "--n", "2", "--out", f"{tmp_path / 's'}/").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["manifest.json", "shard-000000"]


def test_a_killed_runs_temporary_file_is_removed_by_the_next_run(tmp_path):
    import os

    from tests.leftovers import dead_pid, staging_leftover

    staging_leftover(tmp_path, "s.npy", pid=dead_pid(), token="abc123")  # what a killed --out s.npy leaves
    live = staging_leftover(tmp_path, "s.npy", pid=os.getpid(), token="def456")  # another writer, still running
    assert run("--model", IMAGE, "--n", "2", "--out", str(tmp_path / "s.npy")).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "s.npy"])
