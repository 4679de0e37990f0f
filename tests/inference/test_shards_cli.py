"""gan-infer's sharded jobs from the command line: --range, --format, --workers, --verify, the
refusals (one line, nothing written) and the progress lines."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.inference import Generator, keyed
from ganforge.inference.cli import main
from ganforge.inference.render import to_uint8
from ganforge.inference.verify import MOST, PER_SHARD

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE, SERIES, COND = (str(DATA / f"tiny-{name}.onnx") for name in ("image", "series", "cond"))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, fragment):
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and fragment in lines[0], result.output
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_range_is_the_same_slice_in_every_form(tmp_path):
    gen = Generator(IMAGE)
    whole = gen.generate(3000, 7)
    assert run("--model", IMAGE, "--seed", 7, "--range", "1500:2600", "--out", tmp_path / "r.npy").exit_code == 0
    assert np.array_equal(np.load(tmp_path / "r.npy"), whole[1500:2600])
    result = run("--model", IMAGE, "--seed", 7, "--range", "1000:3000", "--format", "npy", "--shard-size", 1024,
                 "--out", f"{tmp_path / 'dir'}/")
    assert result.exit_code == 0 and "2000 samples 1000:3000, seed 7, made 3 of 3 shards" in result.output
    got = np.concatenate([np.load(tmp_path / "dir" / f"shard-00000{k}.npy") for k in (0, 1, 2)])
    assert np.array_equal(got, whole[1000:3000])
    assert run("--model", IMAGE, "--seed", 7, "--range", "4:8", "--out", tmp_path / "g.png").exit_code == 0
    assert run("--model", IMAGE, "--seed", 7, "--range", "0:4", "--out", tmp_path / "g0.png").exit_code == 0
    assert tree(tmp_path)["g.png"] != tree(tmp_path)["g0.png"]
    one_line_error(run("--model", IMAGE, "--range", "5:5", "--out", tmp_path / "x.npy"), "stop must be greater")


def test_the_manifest_says_what_the_folder_holds(tmp_path):
    result = run("--model", COND, "--n", 50, "--label", "1", "--label", "0", "--shard-size", 32, "--seed", 2,
                 "--out", f"{tmp_path / 'c'}/")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    from ganforge import __version__
    from ganforge.fsutil import file_sha256

    assert manifest["model_sha256"] == file_sha256(COND) and manifest["scheme"] == keyed.SCHEME == "keyed-blocks-v1"
    assert (manifest["seed"], manifest["range"], manifest["count"], manifest["shard_size"]) == (2, [0, 50], 50, 32)
    assert [(s["name"], s["range"], s["count"]) for s in manifest["shards"]] == [
        ("shard-000000", [0, 32], 32), ("shard-000001", [32, 50], 18)]
    assert manifest["sample"] == {"shape": [1, 8, 8], "dtype": "float32", "value_range": [-1.0, 1.0], "kind": "image",
                                  "png": "uint8 = clip(rint((x - low) * 255 / (high - low)), 0, 255)", "png_scale": 1}
    assert manifest["labels"]["mode"] == "given" and manifest["labels"]["indices"] == [1, 0]
    assert manifest["ganforge_version"] == __version__ and manifest["form"] == "png"
    assert manifest["options"]["provider"] == "onnxruntime"  # one runtime, whatever a machine measured


def test_verify_passes_on_a_good_folder_and_names_a_changed_sample(tmp_path):
    out = tmp_path / "v"
    assert run("--model", IMAGE, "--n", 5000, "--format", "npy", "--shard-size", 1024, "--out", f"{out}/").exit_code == 0
    result = run("--verify", out)
    assert result.exit_code == 0 and result.output.strip() == (
        f"verified {out}: 15 samples made again in all 5 shards match the files; the model's sha256 matches the "
        "manifest; all 5 shards are there")
    shard = out / "shard-000002.npy"
    data = bytearray(shard.read_bytes())
    data[128:] = np.zeros(len(data) - 128, np.uint8).tobytes()  # every sample of the shard changed, the size kept
    shard.write_bytes(bytes(data))
    line = one_line_error(run("--verify", out), f"{shard}: sample 2")
    assert "differs from what the model makes of it" in line
    shard.write_bytes(bytes(data[:-4]))
    one_line_error(run("--verify", out), f"{shard} holds 786,556 bytes, a complete shard 786,560")
    shard.unlink()
    one_line_error(run("--verify", out), "1 of 5 shards are missing (shard-000002.npy first): rerun")
    assert run("--model", IMAGE, "--n", 5000, "--format", "npy", "--shard-size", 1024, "--out", f"{out}/").exit_code == 0
    assert run("--verify", out).exit_code == 0
    one_line_error(run("--verify", out, "--model", SERIES), f"{SERIES} is not the model that made {out}")
    one_line_error(run("--verify", out, "--seed", 3), "--seed does not go with --verify DIR")
    one_line_error(run("--verify", tmp_path), "holds no manifest.json")


def test_verify_checks_pngs_through_the_same_quantisation(tmp_path):
    out = tmp_path / "p"
    assert run("--model", IMAGE, "--n", 40, "--shard-size", 16, "--scale", 2, "--out", f"{out}/").exit_code == 0
    assert run("--verify", out).exit_code == 0
    sample = Generator(IMAGE).generate(1, 0, start=20)[0]
    pixels = np.asarray(Image.open(out / "shard-000001" / "sample-00020.png"))
    assert np.array_equal(pixels, to_uint8(sample).transpose(1, 2, 0).repeat(2, 0).repeat(2, 1))
    for png in (out / "shard-000001").iterdir():  # another sample's picture under every name of the shard
        shutil.copy(out / "shard-000000" / "sample-00000.png", png)
    one_line_error(run("--verify", out), f"{out / 'shard-000001'}: sample ")


def test_verify_is_bounded_however_many_shards(tmp_path):
    out = tmp_path / "many"
    assert run("--model", SERIES, "--n", 400, "--shard-size", 4, "--format", "npy", "--out", f"{out}/").exit_code == 0
    result = run("--verify", out)
    assert result.exit_code == 0
    assert f"{MOST} samples made again in {MOST // PER_SHARD} of 100 shards" in result.output


@pytest.mark.parametrize("args, fragment", [
    (("--n", 10, "--range", "0:10"), "--n N is --range 0:N: pass one of them"),
    (("--format", "npy"), "--format is for a folder output (--out DIR/, a sharded job)"),
    (("--workers", 2), "--workers is for a folder output"),
    (("--shard-size", 8), "--shard-size is for a folder output"),
])
def test_folder_options_go_with_a_folder(tmp_path, args, fragment):
    result = run("--model", IMAGE, *args, "--out", tmp_path / "x.npy")
    assert result.exit_code != 0 and fragment in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_bad_folder_jobs_are_one_line_and_write_nothing(tmp_path):
    one_line_error(run("--model", IMAGE, "--workers", 0, "--out", f"{tmp_path / 'a'}/"), "--workers")
    one_line_error(run("--model", IMAGE, "--format", "npy", "--scale", 2, "--out", f"{tmp_path / 'a'}/"),
                   "npy shards hold the samples' values, not pixels")
    one_line_error(run("--model", COND, "--per-class", 2, "--out", f"{tmp_path / 'a'}/"),
                   "a per-class grid goes to a .png grid or a .npy file")
    assert list(tmp_path.iterdir()) == []
    assert run("--model", IMAGE, "--n", 20, "--out", f"{tmp_path / 'a'}/").exit_code == 0
    before = tree(tmp_path / "a")
    for args, differs in ((("--seed", 1), "seed"), (("--format", "npy"), "form"), (("--model", SERIES), "model (sha256)"),
                          (("--shard-size", 5), "shard size"), (("--scale", 3), "sample shape")):
        line = one_line_error(run("--model", IMAGE, "--n", 20, *args, "--out", f"{tmp_path / 'a'}/"),
                              f"{tmp_path / 'a'} holds another job: its {differs}")
        assert line.endswith("write to another --out, or delete the folder to start over")
    assert tree(tmp_path / "a") == before


def test_a_job_says_its_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_PROGRESS_SECONDS", "0.000001")  # a line after every shard
    result = run("--model", IMAGE, "--n", 3000, "--shard-size", 1024, "--format", "npy", "--out", f"{tmp_path / 'o'}/")
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("gan-infer: shards 1/3 (33%), ") and "samples/s, about " in lines[0]
    assert lines[-2].startswith("gan-infer: shards 3/3 (100%)")
    assert lines[-1].startswith("gan-infer: ") and "in all (3 shards, " in lines[-1]
