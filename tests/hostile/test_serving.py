"""gan-infer, gan-eval and gan-bench against hostile arguments and files (issue 16): each
ends in one line, a non-zero exit, bounded memory, and nothing valid overwritten."""

from __future__ import annotations

import numpy as np
import pytest

from tests.data.make_tiny_models import HERE as DATA
from tests.hostile import files
from tests.hostile.harness import assert_ok, assert_refused, run_cli, snapshot

IMAGE = str(DATA / "tiny-image.onnx")
COND = str(DATA / "tiny-cond.onnx")


@pytest.mark.parametrize("args, pattern", [
    (["--n", "1000000000000", "--out", "huge.png"], "a PNG grid holds at most 4096 samples"),
    (["--n", "65536", "--out", "big.png"], r"a PNG grid .* write --out samples.npy or --out DIR/"),
    (["--interpolate", "1,2", "--steps", "100000000", "--out", "w.gif"], "a walk has at most 4096 frames"),
    (["--out", ""], "--out is empty"),
    (["--n", "4", "--out", "grid.jpg"], "--out must be a .png grid, a .npy array, or a folder"),
    (["--n", "4", "--out", "blocker/grid.png"], "cannot write"),
])
def test_infer_arguments(args, pattern, tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder is wanted")
    before = snapshot(tmp_path)
    assert_refused(run_cli("gan-infer", "--model", IMAGE, *args, cwd=tmp_path), pattern)
    assert snapshot(tmp_path) == before


def test_per_class_beyond_a_grid_is_refused_and_a_big_one_streams(tmp_path):
    assert_refused(run_cli("gan-infer", "--model", COND, "--per-class", "10000000", "--out", "c.npy", cwd=tmp_path),
                   "a per-class grid holds at most 4096 samples of each class")
    assert_ok(run_cli("gan-infer", "--model", COND, "--per-class", "4096", "--out", "c.npy", cwd=tmp_path))
    c = np.load(tmp_path / "c.npy", mmap_mode="r")
    assert c.shape == (3 * 4096, 1, 8, 8)


def test_a_large_n_streams_to_npy_in_bounded_memory(tmp_path):
    result = run_cli("gan-infer", "--model", IMAGE, "--n", "200000", "--out", "s.npy", cwd=tmp_path)
    assert_ok(result)
    assert np.load(tmp_path / "s.npy", mmap_mode="r").shape == (200000, 3, 8, 8)  # 154 MB on disk


@pytest.mark.parametrize("make, pattern", [
    (lambda p: files.lying_metadata(p, latent_dim="5000000"), r"latent_dim 5000000, expected 1 to 65536"),
    (lambda p: files.lying_metadata(p, num_classes="100000000000", class_names=None, class_embedding=None),
     "num_classes 100000000000, expected 1 to 100,000"),
    (lambda p: files.lying_metadata(p, num_classes="3", class_names=files.huge_class_names(200000)),
     "class_names longer than 3 names"),
    (lambda p: files.lying_metadata(p, sample_shape="[3, 20000, 20000]"), "1,200,000,000 values a sample"),
    (lambda p: files.lying_metadata(p, sample_shape="[" + "1," * 100000 + "1]"), "invalid ganforge metadata"),
    (lambda p: files.lying_metadata(p, value_range="[NaN, 1]"), "value_range .* not finite"),
    (lambda p: files.expanding_graph(p), r"needs more than the 1.0 GiB memory limit"),
    (lambda p: files.expanding_graph(p, metadata=False), r"needs more than the 1.0 GiB memory limit"),
    (files.truncated, "is not a loadable ONNX model"),
    (files.text_file, "is not a loadable ONNX model"),
])
def test_infer_hostile_models(make, pattern, tmp_path):
    model = make(tmp_path / "m.onnx")
    (tmp_path / "grid.png").write_bytes(b"an earlier grid")
    before = snapshot(tmp_path)
    assert_refused(run_cli("gan-infer", "--model", str(model), "--n", "4", "--out", "grid.png", cwd=tmp_path),
                   pattern)
    assert snapshot(tmp_path) == before


def test_a_nan_model_writes_nothing(tmp_path):
    model = files.nan_model(tmp_path / "nan.onnx")
    (tmp_path / "s.npy").write_bytes(b"an earlier array")
    before = snapshot(tmp_path)
    assert_refused(run_cli("gan-infer", "--model", str(model), "--n", "300", "--out", "s.npy", cwd=tmp_path),
                   "the model produced NaN or infinite values")
    assert snapshot(tmp_path) == before


def test_a_folder_output_is_never_mixed_with_another_job(tmp_path):
    assert_ok(run_cli("gan-infer", "--model", IMAGE, "--n", "10", "--out", "s/", cwd=tmp_path))
    before = snapshot(tmp_path)
    assert_refused(run_cli("gan-infer", "--model", IMAGE, "--n", "3", "--out", "s/", cwd=tmp_path),
                   r"s holds another job: its range differs \(there \[0, 10\], asked \[0, 3\]\)")
    assert snapshot(tmp_path) == before  # the folder as it was, nothing beside it


@pytest.mark.parametrize("value, pattern", [("lots", "GANFORGE_MAX_MEMORY='lots' is not a size"),
                                            ("1K", "below the 64.0 MiB ganforge needs")])
def test_a_bad_memory_limit_is_one_line(value, pattern, tmp_path):
    assert_refused(run_cli("gan-infer", "--model", IMAGE, "--out", "g.png", cwd=tmp_path,
                           env={"GANFORGE_MAX_MEMORY": value}), pattern)


def test_a_lower_memory_limit_refuses_what_the_default_allows(tmp_path):
    model = files.expanding_graph(tmp_path / "m.onnx", shape=(3, 1024, 1024), claims=(3, 1024, 1024))  # 12 MiB
    assert_ok(run_cli("gan-infer", "--model", str(model), "--n", "8", "--batch-size", "8", "--out", "g.npy", cwd=tmp_path))
    assert_refused(run_cli("gan-infer", "--model", str(model), "--n", "8", "--batch-size", "8", "--out", "g.npy", cwd=tmp_path,
                           env={"GANFORGE_MAX_MEMORY": "64M"}), "needs more than the 64.0 MiB memory limit")


@pytest.mark.parametrize("args, pattern", [
    (["--n", "20000000"], r"scoring 20000000 samples .* needs about .* more than the 1.0 GiB limit: pass a smaller --n"),
    (["--out", "blocker/eval"], "cannot write to blocker/eval: blocker is a file"),
])
def test_eval_refuses_before_work(args, pattern, tmp_path):
    (tmp_path / "blocker").write_text("a file")
    assert_refused(run_cli("gan-eval", str(DATA / "tiny-series.onnx"), *args, cwd=tmp_path), pattern, cli="gan-eval")
    assert not (tmp_path / "eval").exists()


def test_eval_of_a_garbage_model(tmp_path):
    assert_refused(run_cli("gan-eval", str(files.text_file(tmp_path / "m.onnx")), cwd=tmp_path),
                   "is not a loadable ONNX model", cli="gan-eval")


@pytest.mark.parametrize("args, pattern", [
    (["--batch-sizes", "200000000"], r"a batch of 200000000 samples .* time smaller --batch-sizes"),
    (["--out", "blocker/bench"], "cannot write to blocker/bench"),
    (["--batch-sizes", "1" + "0" * 5000], "expected comma-separated integers"),
])
def test_bench_refuses_before_work(args, pattern, tmp_path):
    (tmp_path / "blocker").write_text("a file")
    assert_refused(run_cli("gan-bench", "--model", IMAGE, "--no-cold-start", *args, cwd=tmp_path), pattern,
                   cli="gan-bench")
    assert not (tmp_path / "bench").exists()


def test_bench_skips_a_garbage_torchscript_file(tmp_path):
    model = tmp_path / "export" / "generator.onnx"
    model.parent.mkdir()
    model.write_bytes((DATA / "tiny-image.onnx").read_bytes())
    (model.parent / "generator.ts").write_bytes(b"PK\x03\x04 not a zip at all")
    result = run_cli("gan-bench", "--model", str(model), "--backends", "torchscript", "--no-cold-start", cwd=tmp_path)
    assert_refused(result, r"no backend could run.*generator.ts is not a readable TorchScript file",
                   cli="gan-bench")
    result = run_cli("gan-bench", "--model", str(model), "--backends", "onnxruntime-cpu,torchscript",
                     "--batch-sizes", "1,8", "--budget", "0.05", "--no-cold-start", "--out", "b", cwd=tmp_path)
    assert_ok(result, cli="gan-bench")
    assert "torchscript" in result.stdout and "skipped" in result.stdout
