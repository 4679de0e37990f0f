import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganforge.inference.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
SERIES = str(DATA / "tiny-series.onnx")


def run(*args):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, fragment):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and fragment in lines[0], result.output


def test_same_seed_same_bytes(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        result = run("--model", SERIES, "--n", "16", "--out", str(out), "--seed", seed)
        assert result.exit_code == 0, result.output
        assert "wrote" in result.output
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_nrow_npy_and_folder(tmp_path):
    assert run("--model", str(DATA / "tiny-image.onnx"), "--n", "6", "--nrow", "3", "--out", str(tmp_path / "g.png")).exit_code == 0
    assert run("--model", SERIES, "--n", "5", "--out", str(tmp_path / "x.npy")).exit_code == 0
    assert run("--model", SERIES, "--n", "3", "--out", str(tmp_path / "each") + "/").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["sample-00000.png", "sample-00001.png", "sample-00002.png"]


@pytest.mark.parametrize("n", ["0", "-3"])
def test_bad_n(tmp_path, n):
    result = run("--model", SERIES, "--n", n, "--out", str(tmp_path / "g.png"))
    assert result.exit_code == 2 and "--n" in result.output and not (tmp_path / "g.png").exists()


def test_bad_models_and_outputs_leave_files_alone(tmp_path):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01junk")
    cases = [
        ((("--model", str(tmp_path / "missing.onnx"))), "does not exist"),
        ((("--model", str(bad))), "not a loadable ONNX model"),
        ((("--model", str(DATA / "not-a-generator.onnx"))), "not a generator"),
        ((("--model", SERIES, "--device", "cuda")), "cuda"),
    ]
    for args, fragment in cases:
        if "cuda" in args:
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers():
                continue
        result = run(*args, "--n", "4", "--out", str(keep))
        assert_one_line_error(result, fragment)
        assert keep.read_bytes() == b"precious"
    result = run("--model", SERIES, "--n", "4", "--out", str(tmp_path / "x.jpg"))
    assert_one_line_error(result, "must be a .png grid")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "keep.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    result = run("--model", SERIES, "--n", "4", "--out", str(ro / "g.png"))
    assert_one_line_error(result, "cannot write")


def test_unwritable_out_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("--model", SERIES, "--n", "4", "--out", str(blocker / "g.png"))
    assert_one_line_error(result, "cannot write")


def test_default_model_missing_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("--n", "4", "--out", "g.png")
    assert_one_line_error(result, "gan-train, then gan-export")


def test_foreign_model_through_the_cli(tmp_path):
    from PIL import Image

    out = tmp_path / "g.png"
    result = run("--model", str(DATA / "foreign-nhwc.onnx"), "--layout", "nhwc", "--value-range", "-1,1",
                 "--n", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (2 * 8 + 3 * 2,) * 2
    bad = run("--model", SERIES, "--value-range", "1,0", "--n", "2", "--out", str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "LOW must be below HIGH" in bad.output
