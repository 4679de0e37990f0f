"""A file picked beside a model (generator.int8.onnx for --precision int8, gan-bench's fp16 peer) is
used only when it comes from the model's checkpoint: another checkpoint's would serve its weights
under the model's name."""

from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from ganforge.errors import ModelFileError
from ganforge.inference import Generator, siblings
from ganforge.inference.cli import main
from ganforge.inference.metadata import LATENT_DIM, SOURCE_SHA256, read_props
from tests.data.make_tiny_models import build

A, B = "a" * 64, "b" * 64


def _pair(folder: Path, model_sha: str | None, sibling_sha: str | None, sibling: str = "generator.int8.onnx",
          seed: int = 2) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    model, other = folder / "generator.onnx", folder / sibling
    onnx.save_model(build(8, (3, 8, 8), "image", seed=2, props={SOURCE_SHA256: model_sha}), str(model))
    onnx.save_model(build(8, (3, 8, 8), "image", seed=seed, props={SOURCE_SHA256: sibling_sha}), str(other))
    return model, other


def test_read_props_reads_the_top_level_only_and_never_raises(tmp_path):
    model, _ = _pair(tmp_path, A, A)
    assert read_props(model, {SOURCE_SHA256, LATENT_DIM}) == {SOURCE_SHA256: A, LATENT_DIM: "8"}
    data = model.read_bytes()
    for bad in (data[: len(data) // 2], b"\xff" * 64, b"", b"{}\n", data[:3]):
        (tmp_path / "bad.onnx").write_bytes(bad)
        props = read_props(tmp_path / "bad.onnx", {SOURCE_SHA256})
        assert props is None or SOURCE_SHA256 not in props
    assert read_props(tmp_path / "none.onnx", {SOURCE_SHA256}) is None


def test_a_value_too_long_to_be_a_digest_is_not_read(tmp_path):
    onnx.save_model(build(8, (3, 8, 8), "image", seed=2, props={SOURCE_SHA256: "c" * 100_000}), str(tmp_path / "m.onnx"))
    assert read_props(tmp_path / "m.onnx", {SOURCE_SHA256, LATENT_DIM}) == {LATENT_DIM: "8"}


@pytest.mark.parametrize("model_sha, sibling_sha, same", [
    (A, A, True),
    (None, None, True),  # neither says: a user's own pair of files
    (A, B, False),  # another checkpoint's: what a later export of the run left stale
    (A, None, False),
    (None, A, False),
])
def test_int8_is_run_only_from_the_models_checkpoint(tmp_path, model_sha, sibling_sha, same):
    model, int8 = _pair(tmp_path, model_sha, sibling_sha, seed=3)
    assert (siblings.mismatch(model, int8) is None) == same
    if same:
        assert Generator(model, device="cpu", precision="int8").path == int8
        return
    with pytest.raises(ModelFileError, match=r"--precision int8 runs the int8 file of the model's own checkpoint.*"
                                             r"generator\.int8\.onnx.*export it again"):
        Generator(model, device="cpu", precision="int8")
    assert Generator(int8, device="cpu", precision="int8").path == int8  # named itself: run as it is


def test_gan_infer_refuses_a_stale_int8_file_in_one_line(tmp_path):
    model, int8 = _pair(tmp_path / "export", A, B, seed=3)
    out = tmp_path / "g.png"
    result = CliRunner().invoke(main, ["--model", str(model), "--n", "4", "--out", str(out), "--precision", "int8",
                                       "--device", "cpu"])
    assert result.exit_code == 1 and not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "comes from another checkpoint than" in lines[0] and "aaaaaaaaaaaa..." in lines[0]
    assert "Traceback" not in result.output


def test_gan_bench_skips_another_checkpoints_fp16_file(tmp_path):
    from ganforge.bench import run_bench

    model, fp16 = _pair(tmp_path / "export", A, B, sibling="generator.fp16.onnx", seed=3)
    report = run_bench(model, batch_sizes=(1,), budget_s=0.01, max_repeats=2, cold=False,
                       backends=("onnxruntime-cpu",))
    assert [b["name"] for b in report["backends"]] == ["onnxruntime-cpu"]
    assert "comes from another checkpoint than" in report["skipped"]["onnxruntime-cpu-fp16"]
    _pair(tmp_path / "export", A, A, sibling="generator.fp16.onnx", seed=3)  # the model's own: timed
    report = run_bench(model, batch_sizes=(1,), budget_s=0.01, max_repeats=2, cold=False,
                       backends=("onnxruntime-cpu",))
    assert [b["name"] for b in report["backends"]] == ["onnxruntime-cpu", "onnxruntime-cpu-fp16"]


def test_gan_bench_does_not_time_a_checkpoint_trained_on_since_the_export(tmp_path):
    from ganforge.bench import run_bench

    model, _ = _pair(tmp_path / "export", A, A, seed=3)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"another checkpoint's bytes")  # its sha256 is not A
    report = run_bench(model, batch_sizes=(1,), budget_s=0.01, max_repeats=2, cold=False,
                       backends=("onnxruntime-cpu", "torch-eager"))
    assert [b["name"] for b in report["backends"]] == ["onnxruntime-cpu"]
    assert "is no longer the checkpoint generator.onnx was exported from" in report["skipped"]["torch-eager"]
