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
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["manifest.json", "shard-000000"]  # a sharded job
    assert sorted(p.name for p in (tmp_path / "each" / "shard-000000").iterdir()) == [
        "sample-00000.png", "sample-00001.png", "sample-00002.png"]


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


def test_success_line_names_file_count_time_and_providers(tmp_path):
    result = run("--model", SERIES, "--n", "7", "--out", str(tmp_path / "g.png"), "--seed", "3")
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"wrote {tmp_path / 'g.png'} (7 samples, seed 3, ")
    assert line.endswith("s on cpu: onnxruntime (CPUExecutionProvider))")


def test_batch_size_does_not_change_the_png(tmp_path):
    outs = [tmp_path / f"{b}.png" for b in ("1", "5", "64")]
    for out in outs:
        b = out.stem
        assert run("--model", str(DATA / "tiny-image.onnx"), "--n", "9", "--batch-size", b, "--out", str(out)).exit_code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()


def test_missing_parent_folders_are_created(tmp_path):
    out = tmp_path / "a" / "b" / "grid.png"
    assert run("--model", SERIES, "--n", "2", "--out", str(out)).exit_code == 0 and out.is_file()


@pytest.mark.parametrize("args, fragment", [
    (("--n", "0"), "0 is not in the range x>=1"),
    (("--n", "-3"), "-3 is not in the range x>=1"),
    (("--n", "many"), "'many' is not a valid integer"),
    (("--seed", "-1"), "'--seed': -1 is not in the range x>=0"),
    (("--batch-size", "0"), "'--batch-size': 0 is not in the range x>=1"),
    (("--nrow", "0"), "'--nrow': 0 is not in the range x>=1"),
    (("--device", "tpu"), "'--device': 'tpu' is not one of 'auto', 'cpu', 'cuda'"),
])
def test_bad_parameters_are_usage_errors(tmp_path, args, fragment):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    result = run("--model", SERIES, "--n", "4", "--out", str(keep), *args)
    assert result.exit_code == 2
    assert_one_line_error(result, fragment)
    assert keep.read_bytes() == b"precious" and [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_not_a_generator_names_what_it_found(tmp_path):
    result = run("--model", str(DATA / "not-a-generator.onnx"), "--n", "4", "--out", str(tmp_path / "g.png"))
    assert_one_line_error(result, "found inputs: a tensor(float) ['batch', 4], b tensor(float) ['batch', 4]")
    assert not (tmp_path / "g.png").exists()


def test_folder_given_as_model(tmp_path):
    result = run("--model", str(tmp_path), "--n", "4", "--out", str(tmp_path / "g.png"))
    assert_one_line_error(result, "is a folder; pass the .onnx file")
    assert list(tmp_path.iterdir()) == []


def test_out_form_is_checked_before_the_model_runs(tmp_path, monkeypatch):
    from ganforge.inference import session

    def must_not_open(*args, **kwargs):
        raise AssertionError("opened the model before checking --out")

    monkeypatch.setattr(session.Generator, "__init__", must_not_open)
    for out in ("grid.jpg", "grid"):
        result = run("--model", SERIES, "--n", "4", "--out", str(tmp_path / out))
        assert_one_line_error(result, "--out must be a .png grid, a .npy array, or a folder (ending in /)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("out", ["/proc/x.png", "/proc/x.npy", "/proc/self/nope/"])
def test_out_in_a_place_nobody_can_write(out):
    assert_one_line_error(run("--model", SERIES, "--n", "2", "--out", out), "cannot write /proc/")


def test_cuda_on_a_machine_without_it(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu installed")
    result = run("--model", SERIES, "--device", "cuda", "--n", "2", "--out", str(tmp_path / "g.png"))
    assert_one_line_error(result, "--device cuda needs onnxruntime-gpu")
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_entry_point(tmp_path):
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", SERIES, "--n", "3",
                         "--out", str(tmp_path / "g.png")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("wrote "), ok.stderr
    bad = subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", str(tmp_path / "nope.onnx"),
                          "--n", "3", "--out", str(tmp_path / "h.png")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [f"Error: model file {tmp_path / 'nope.onnx'} does not exist"]


# --- conditional models: --label, --per-class; walks: --interpolate, --steps -------------------------

COND = str(DATA / "tiny-cond.onnx")
KNOWN = "this model knows: 0=T-shirt/top, 1=Trouser, 2=Sneaker"


def summary(result):
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    return line


def test_labels_by_name_and_index(tmp_path):
    import numpy as np

    from ganforge.inference import Generator
    from tests.inference.test_conditional import tiny_cond

    line = summary(run("--model", COND, "--label", "SNEAKER", "--label", "1", "--n", "5", "--seed", "3",
                       "--out", str(tmp_path / "x.npy")))
    assert "(5 samples, seed 3, labels Sneaker, Trouser, " in line
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"),
                               tiny_cond(Generator(COND).sample_noise(5, 3), [2, 2, 2, 1, 1]), atol=1e-5)
    assert "(4 samples, seed 0, random labels, " in summary(run("--model", COND, "--n", "4", "--out",
                                                               str(tmp_path / "r.png")))


def test_per_class_grid(tmp_path):
    from PIL import Image

    line = summary(run("--model", COND, "--per-class", "4", "--out", str(tmp_path / "g.png")))
    assert "(12 samples, seed 0, 4 per class: T-shirt/top, Trouser, Sneaker, " in line
    assert Image.open(tmp_path / "g.png").size == (4 * 8 + 5 * 2, 3 * 8 + 4 * 2)
    line = summary(run("--model", COND, "--per-class", "2", "--label", "trouser", "--out", str(tmp_path / "t.png")))
    assert "(2 samples, seed 0, 2 per class: Trouser, " in line


def test_interpolate_writes_a_gif_of_steps_frames(tmp_path):
    from PIL import Image

    line = summary(run("--model", COND, "--interpolate", "3,7", "--steps", "5", "--label", "sneaker",
                       "--label", "trouser", "--out", str(tmp_path / "walk.gif")))
    assert line.startswith(f"wrote {tmp_path / 'walk.gif'} (5 frames, seeds 3 -> 7, labels Sneaker -> Trouser, ")
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 5 and im.size == (128, 128)
    line = summary(run("--model", SERIES, "--interpolate", "0, 4", "--out", str(tmp_path / "strip.png")))
    assert "(16 frames, seeds 0 -> 4, " in line  # --steps defaults to 16; no labels on an unconditional model
    assert Image.open(tmp_path / "strip.png").size[1] < Image.open(tmp_path / "strip.png").size[0] // 10  # one row
    line = summary(run("--model", COND, "--interpolate", "1,2", "--steps", "3", "--label", "0",
                       "--out", str(tmp_path / "w.npy")))
    assert "(3 frames, seeds 1 -> 2, label T-shirt/top, " in line


@pytest.mark.parametrize("args, fragment, code", [
    (("--model", COND, "--label", "shrt"), f"unknown label 'shrt'; {KNOWN}", 1),
    (("--model", COND, "--label", "5"), f"label '5' is out of range; {KNOWN}", 1),
    (("--model", SERIES, "--label", "0"), "labels need a conditional model; ", 1),
    (("--model", SERIES, "--per-class", "2"), "per-class grids need a conditional model; ", 1),
    (("--model", COND, "--label", "0", "--label", "1", "--label", "2", "--n", "2"), "3 labels need at least 3", 1),
    (("--model", COND, "--per-class", "2", "--n", "8"), "--n does not go with --per-class", 2),
    (("--model", COND, "--per-class", "2", "--nrow", "3"), "--nrow does not go with --per-class", 2),
    (("--model", COND, "--per-class", "0"), "'--per-class': 0 is not in the range x>=1", 2),
    (("--model", COND, "--steps", "8"), "--steps is for --interpolate A,B", 2),
    (("--model", COND, "--interpolate", "3"), "expected two seeds A,B such as 3,7; got '3'", 2),
    (("--model", COND, "--interpolate", "a,b"), "expected two seeds A,B such as 3,7", 2),
    (("--model", COND, "--interpolate", "3,-7"), "seeds are whole numbers >= 0, such as 3,7", 2),
    (("--model", COND, "--interpolate", "3,7", "--n", "4"), "--n does not go with --interpolate A,B", 2),
    (("--model", COND, "--interpolate", "3,7", "--per-class", "4"), "--per-class does not go with --interpolate", 2),
    (("--model", COND, "--interpolate", "3,7", "--seed", "1"), "--seed does not go with --interpolate", 2),
    (("--model", COND, "--interpolate", "3,7", "--steps", "1"), "'--steps': 1 is not in the range x>=2", 2),
    (("--model", COND, "--interpolate", "3,7", "--label", "0", "--label", "1", "--label", "2"),
     "a walk takes one label (a fixed class) or two", 1),
])
def test_label_and_walk_mistakes_are_one_line(tmp_path, args, fragment, code):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    result = run(*args, "--out", str(keep))
    assert result.exit_code == code
    assert_one_line_error(result, fragment)
    assert keep.read_bytes() == b"precious" and [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_a_gif_without_interpolate_says_what_it_is_for(tmp_path):
    result = run("--model", COND, "--n", "4", "--out", str(tmp_path / "x.gif"))
    assert_one_line_error(result, "a .gif is the animation of a walk, made with --interpolate A,B")
    assert not list(tmp_path.iterdir())
    result = run("--model", COND, "--interpolate", "1,2", "--out", str(tmp_path / "x.jpg"))
    assert_one_line_error(result, "--out must be a .gif animation, a .png strip, a .npy array")
