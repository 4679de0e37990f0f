"""Controllable generation's mechanics (ganforge.inference.control and .directions): truncation
keyed by (seed, index), edits along named directions read from directions.json, and their
one-line refusals; through the Python API and gan-infer."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.fsutil import file_sha256
from ganforge.inference import Control, Edit, Generator, generate, generate_sweep, keyed
from ganforge.inference import directions as D
from ganforge.inference.cli import main
from ganforge.inference.control import ndtri, parse_edit, parse_sweep, truncate

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE, COND = DATA / "tiny-image.onnx", DATA / "tiny-cond.onnx"


def model_with_directions(folder: Path, source: Path = IMAGE, names=("pc0", "sneaker")) -> Path:
    """A copy of ``source`` in ``folder`` with a directions.json of unit axis vectors, step 1.5."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "generator.onnx"
    shutil.copy(source, model)
    dim = Generator(model, device="cpu").info.latent_dim
    found = tuple(D.Direction(name, "principal" if name.startswith("pc") else "class",
                              np.eye(dim, dtype=np.float32)[i], 1.5) for i, name in enumerate(names))
    D.save(D.Directions(file_sha256(model), dim, found), D.path_for(model))
    return model


# --- truncation -------------------------------------------------------------------------------------


def test_ndtri_is_the_normal_quantile():
    p = np.array([1e-12, 1e-6, 0.01, 0.02425, 0.1, 0.5, 0.9, 0.97575, 0.999999])
    back = np.array([0.5 * math.erfc(-q / math.sqrt(2)) for q in ndtri(p)])
    assert np.allclose(back, p, rtol=1e-7, atol=0)  # float32 resolves 6e-8
    assert ndtri(np.array([0.5]))[0] == pytest.approx(0, abs=1e-12)


def test_truncation_cuts_only_the_components_beyond_it_from_a_keyed_stream():
    z = keyed.noise(3, 100, 2100, 16)
    t = truncate(z, 1.0, 3, 100)
    assert np.abs(t).max() <= 1.0 and t.dtype == np.float32
    inside = np.abs(z) <= 1.0
    assert np.array_equal(t[inside], z[inside])  # what was within T is left as it was
    assert not np.array_equal(t[~inside], z[~inside])
    # a range truncated alone is the same slice of the whole: keyed by (seed, index), not by position
    assert np.array_equal(truncate(keyed.noise(3, 1000, 1040, 16), 1.0, 3, 1000), t[900:940])
    # the redrawn values follow the normal cut to [-1, 1]: mean 0, variance 1 - 2 phi(1) / (2 Phi(1) - 1)
    big = truncate(keyed.noise(0, 0, 60_000, 8), 1.0, 0, 0)
    phi, Phi = math.exp(-0.5) / math.sqrt(2 * math.pi), 0.5 * math.erfc(-1 / math.sqrt(2))
    assert abs(big.mean()) < 0.005 and big.var() == pytest.approx(1 - 2 * phi / (2 * Phi - 1), abs=0.005)
    assert np.array_equal(truncate(z, 50.0, 3, 100), z)  # nothing is beyond 50


def test_truncated_samples_are_addressable_whatever_the_batch(tmp_path):
    gen = Generator(IMAGE, device="cpu")
    control = Control(0.7)
    whole = gen.generate(300, seed=4, control=control)
    assert np.array_equal(gen.generate(300, seed=4, batch_size=7, control=control), whole)
    assert np.array_equal(gen.generate(50, seed=4, start=200, control=control), whole[200:250])
    assert not np.array_equal(whole, gen.generate(300, seed=4))
    # the model sees exactly the truncated noise
    z = truncate(keyed.noise(4, 0, 300, gen.info.latent_dim), 0.7, 4, 0)
    assert np.allclose(gen(z), whole, atol=1e-6)
    out = tmp_path / "t.npy"
    generate(IMAGE, 300, out, seed=4, truncation=0.7, device="cpu")
    assert np.array_equal(np.load(out), whole)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), 1e9, "big"])
def test_a_truncation_that_is_no_threshold_is_one_line(tmp_path, value):
    with pytest.raises(GanforgeError, match=r"^--truncation must be"):
        generate(IMAGE, 4, tmp_path / "g.png", truncation=value, device="cpu")
    assert not (tmp_path / "g.png").exists()


# --- edits and directions -------------------------------------------------------------------------------


def test_an_edit_moves_every_noise_vector_by_its_steps(tmp_path):
    model = model_with_directions(tmp_path / "m")
    gen = Generator(model, device="cpu")
    z = keyed.noise(2, 0, 20, 8)
    for edits, shift in ((["sneaker"], 1.5 * np.eye(8)[1]), (["sneaker=+2", "pc0=-1"], 3 * np.eye(8)[1] - 1.5 * np.eye(8)[0])):
        out = tmp_path / "e.npy"
        generate(model, 20, out, seed=2, edits=edits, device="cpu")
        assert np.allclose(np.load(out), gen(z + shift.astype(np.float32)), atol=1e-6)
    # truncation first, then the edit
    generate(model, 20, out, seed=2, edits=["pc0"], truncation=0.5, device="cpu")
    assert np.allclose(np.load(out), gen(truncate(z, 0.5, 2, 0) + 1.5 * np.eye(8, dtype=np.float32)[0]), atol=1e-6)


def test_the_directions_file_round_trips_and_names_what_it_knows(tmp_path):
    model = model_with_directions(tmp_path / "m", names=("pc0", "pc1", "ankle-boot"))
    found = D.for_generator(Generator(model, device="cpu"))
    assert found.names == ["pc0", "pc1", "ankle-boot"] and found.get("PC1").step == 1.5
    with pytest.raises(GanforgeError, match=r"^no direction 'boot' for this model; it has: pc0, pc1, ankle-boot$"):
        found.get("boot")
    assert D.slug("Ankle boot") == "ankle-boot" and D.slug("T-shirt/top") == "t-shirt-top"


def test_a_model_without_directions_says_how_to_make_them(tmp_path):
    model = tmp_path / "generator.onnx"
    shutil.copy(IMAGE, model)
    with pytest.raises(GanforgeError, match=r"has no named directions \(.*directions.json does not exist\): make "
                                            r"them with gan-directions .*generator.onnx"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")
    assert not (tmp_path / "g.png").exists()


def test_directions_made_for_another_model_are_refused(tmp_path):
    model = model_with_directions(tmp_path / "m")
    shutil.copy(DATA / "tiny-gray.onnx", model)  # the model changed, its directions did not
    with pytest.raises(GanforgeError, match=r"directions.json was made for another model \(sha256 .*: make them again"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")


def _write(model: Path, data) -> None:
    D.path_for(model).write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize("change, words", [
    (lambda d: d["directions"][0].update(vector=[1.0] * 8), "not of unit length"),
    (lambda d: d["directions"][0].update(vector=[1.0, 0.0]), "is not 8 finite numbers"),
    (lambda d: d["directions"][0].update(step=-1), "without a step above 0"),
    (lambda d: d["directions"][0].update(name="Has Space"), "without a name of its own"),
    (lambda d: d["directions"].append(dict(d["directions"][0])), "without a name of its own"),
    (lambda d: d["directions"][0].update(kind="magic"), "of unknown kind"),
    (lambda d: d.update(version=9), "is not a ganforge-directions file of version 1"),
    (lambda d: d.update(latent_dim=True), "has no latent_dim"),
])
def test_a_directions_file_is_checked_field_by_field(tmp_path, change, words):
    model = model_with_directions(tmp_path / "m")
    data = json.loads(D.path_for(model).read_text())
    change(data)
    _write(model, data)
    with pytest.raises(GanforgeError, match=re.escape(words) + r".*: make it again with gan-directions$"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")


def test_a_directions_file_is_untrusted_input(tmp_path):
    model = model_with_directions(tmp_path / "m")
    path = D.path_for(model)
    for content, words in (("[" * 100_000, "is not a JSON directions file"), ("\xff\xfe", "is not a JSON"),
                           ("[]", "is not a JSON directions file")):
        path.write_bytes(content.encode("latin-1"))
        with pytest.raises(GanforgeError, match=words):
            generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")
    path.unlink()
    os.mkfifo(path)  # never blocks: opened without waiting, refused as no regular file
    with pytest.raises(GanforgeError, match="is not a regular file"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")
    path.unlink()
    path.symlink_to("/dev/zero")
    with pytest.raises(GanforgeError, match="cannot be read"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")
    path.unlink()
    with open(path, "wb") as f:
        f.truncate(D.MAX_FILE_BYTES + 1)
    with pytest.raises(GanforgeError, match="more than a directions file holds"):
        generate(model, 4, tmp_path / "g.png", edits=["pc0"], device="cpu")


@pytest.mark.parametrize("text, words", [
    ("", "--edit takes NAME or NAME=AMOUNT"), ("=2", "--edit takes NAME"), ("pc0=big", "must be a number"),
    ("pc0=1e9", "from -100 to 100"), ("pc0=nan", "from -100 to 100"),
])
def test_bad_edits_are_one_line(text, words):
    with pytest.raises(GanforgeError, match=re.escape(words)):
        parse_edit(text)


def test_edits_and_sweeps_parse():
    assert parse_edit("sneaker") == Edit("sneaker", 1.0) and parse_edit(" pc1=-1 ") == Edit("pc1", -1.0)
    assert parse_sweep("pc0") == ("pc0", -2.0, 2.0) and parse_sweep("pc0=-1:3") == ("pc0", -1.0, 3.0)
    for bad, words in (("pc0=3", "takes a span A:B"), ("pc0=1:1", "spans nothing"), ("=1:2", "--sweep takes NAME")):
        with pytest.raises(GanforgeError, match=words):
            parse_sweep(bad)


# --- sweeps ----------------------------------------------------------------------------------------------


def test_a_sweep_is_a_row_a_sample_and_a_column_an_amount(tmp_path):
    model = model_with_directions(tmp_path / "m")
    result = generate_sweep(model, "pc0=-2:2", tmp_path / "s.npy", n=3, steps=5, seed=6, edits=["sneaker=1"],
                            device="cpu")
    assert result.amounts == [-2.0, -1.0, 0.0, 1.0, 2.0]
    cells = np.load(tmp_path / "s.npy")
    gen = Generator(model, device="cpu")
    z = keyed.noise(6, 0, 3, 8) + 1.5 * np.eye(8, dtype=np.float32)[1]
    for r in range(3):
        for c, a in enumerate(result.amounts):
            expect = gen(z[r : r + 1] + np.float32(a * 1.5) * np.eye(8, dtype=np.float32)[0])
            assert np.allclose(cells[r * 5 + c], expect[0], atol=1e-6)
    assert np.allclose(cells[2::5], generate_plain(model, 3, 6, tmp_path, edits=["sneaker"]), atol=1e-6)
    generate_sweep(model, "pc0", tmp_path / "s.png", n=3, steps=4, device="cpu")
    with Image.open(tmp_path / "s.png") as grid:
        assert grid.size[0] > grid.size[1]  # 4 columns, 3 rows


def generate_plain(model, n, seed, tmp_path, **kw):
    generate(model, n, tmp_path / "p.npy", seed=seed, device="cpu", **kw)
    return np.load(tmp_path / "p.npy")


def test_a_sweep_of_a_direction_also_edited_is_refused(tmp_path):
    model = model_with_directions(tmp_path / "m")
    with pytest.raises(GanforgeError, match=r"--sweep pc0 moves that direction already: drop its --edit"):
        generate_sweep(model, "pc0", tmp_path / "s.png", edits=["pc0=1"], device="cpu")


# --- gan-infer ------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, [*map(str, args), "--device", "cpu"])


def test_gan_infer_truncation_edit_and_sweep(tmp_path):
    model = model_with_directions(tmp_path / "m")
    got = run("--model", model, "--n", 16, "--truncation", 0.5, "--edit", "sneaker=+2", "--out", tmp_path / "g.png")
    assert got.exit_code == 0, got.output
    assert "16 samples, seed 0, truncation 0.5, edits sneaker=+2" in got.output
    got = run("--model", model, "--sweep", "pc0", "--steps", 5, "--out", tmp_path / "s.png")
    assert got.exit_code == 0 and "8 samples x 5 steps along pc0, -2 to +2, seed 0" in got.output, got.output
    got = run("--model", model, "--edit", "boot", "--out", tmp_path / "x.png")
    assert got.exit_code == 1 and got.output.strip().splitlines() == [
        "Error: no direction 'boot' for this model; it has: pc0, sneaker"]
    assert not (tmp_path / "x.png").exists()
    got = run("--model", model, "--edit", "pc0", "--edit", "pc0=2", "--out", tmp_path / "x.png")
    assert got.exit_code == 1 and "one --edit a direction: pc0 given twice" in got.output
    got = run("--model", model, "--sweep", "pc0", "--range", "0:4", "--out", tmp_path / "x.png")
    assert got.exit_code == 2 and "--range does not go with --sweep NAME" in got.output
    got = run("--model", model, "--interpolate", "1,2", "--truncation", "0.5", "--out", tmp_path / "w.gif")
    assert got.exit_code == 2 and "--truncation does not go with --interpolate" in got.output
    got = run("--model", model, "--sweep", "pc0", "--out", f"{tmp_path / 'd'}/")
    assert got.exit_code == 1 and "a sweep is one grid" in got.output


def test_a_folder_job_records_its_control_and_refuses_another(tmp_path):
    model = model_with_directions(tmp_path / "m")
    out = f"{tmp_path / 'job'}/"
    got = run("--model", model, "--n", 40, "--format", "npy", "--shard-size", 16, "--truncation", 0.8,
              "--edit", "pc0=-1", "--out", out)
    assert got.exit_code == 0, got.output
    manifest = json.loads((tmp_path / "job" / "manifest.json").read_text())
    assert manifest["control"]["truncation"] == 0.8 and manifest["control"]["edits"] == [["pc0", -1.0]]
    assert len(manifest["control"]["shift"]) == 8
    whole = np.concatenate([np.load(p) for p in sorted((tmp_path / "job").glob("shard-*.npy"))])
    assert np.array_equal(whole, generate_plain(model, 40, 0, tmp_path, truncation=0.8, edits=["pc0=-1"]))
    got = run("--verify", tmp_path / "job")
    assert got.exit_code == 0 and "match the files" in got.output, got.output
    got = run("--model", model, "--n", 40, "--format", "npy", "--shard-size", 16, "--truncation", 0.9, "--out", out)
    assert got.exit_code == 1 and "its truncation and edits differ" in got.output, got.output

