"""gan-directions: principal directions of a model's own samples (any generator), and with
labelled data a direction a class, written beside the model and read back by gan-infer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.directions import find_directions
from ganforge.directions.cli import main
from ganforge.errors import GanforgeError
from ganforge.inference import Generator, generate
from ganforge.inference import directions as D
from tests.data.make_tiny_models import build

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    from ganforge.evaluation import images as E

    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")


def test_principal_directions_are_distinct_measured_and_written_beside_the_model(tmp_path):
    model = tmp_path / "export" / "generator.onnx"
    model.parent.mkdir()
    shutil.copy(DATA / "tiny-image.onnx", model)
    found, path = find_directions(model, k=3, samples=512)
    assert path == model.parent / "directions.json" and found.names == ["pc0", "pc1", "pc2"]
    vectors = np.stack([d.vector for d in found.directions])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    cosines = np.abs(vectors @ vectors.T)[~np.eye(3, dtype=bool)]
    assert cosines.max() < 0.5  # none a duplicate of another
    for d in found.directions:
        assert d.kind == "principal" and 0.25 <= d.step <= 8 and d.measured["value_change_per_step"] > 0
    assert found.directions[0].measured["explained_variance"] >= found.directions[1].measured["explained_variance"]
    again = D.for_generator(Generator(model, device="cpu"))
    assert again.names == found.names and np.array_equal(again.directions[0].vector, found.directions[0].vector)
    # the same model gives the same directions
    second, _ = find_directions(model, k=3, samples=512, out=tmp_path / "other.json")
    assert json.loads((tmp_path / "other.json").read_text())["directions"] == json.loads(path.read_text())["directions"]


def test_an_edit_along_a_principal_direction_changes_the_samples_by_what_was_measured(tmp_path):
    model = tmp_path / "generator.onnx"
    shutil.copy(DATA / "tiny-image.onnx", model)
    found, _ = find_directions(model, k=2, samples=512)
    plain, moved = tmp_path / "a.npy", tmp_path / "b.npy"
    generate(model, 256, plain, seed=1, device="cpu")
    generate(model, 256, moved, seed=1, edits=["pc0"], device="cpu")
    change = float(np.abs(np.load(moved) - np.load(plain)).mean())
    assert change == pytest.approx(found.get("pc0").measured["value_change_per_step"], rel=0.35)


def _two_class_folder(root: Path, n: int = 60) -> Path:
    """8x8 grey images: 'dark' ones and 'bright' ones, a sub-folder a class."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 215)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(level + rng.normal(0, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i}.png")
    return root


def _brightness_model(path: Path) -> Path:
    """x = tanh(z @ W) of 1x8x8, whose brightness follows z[3] (and a little of the rest)."""
    import onnx
    from onnx import numpy_helper

    model = build(8, (1, 8, 8), "image", seed=0)
    w = np.random.default_rng(1).normal(0, 0.1, (8, 64)).astype(np.float32)
    w[3] = 1.2
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "W"))
    onnx.save_model(model, str(path))
    return path


def test_a_class_direction_moves_samples_toward_its_class(tmp_path):
    data = _two_class_folder(tmp_path / "data")
    model = _brightness_model(tmp_path / "generator.onnx")
    found, _ = find_directions(model, k=0, data=data, evaluator_steps=80)
    assert found.names == ["bright", "dark"]  # the folder's classes, sorted
    bright = found.get("bright")
    assert bright.kind == "class" and bright.measured["class"] == "bright"
    assert abs(float(bright.vector[3])) > 0.9  # the brightness axis, found from the evaluator's labels alone
    assert bright.vector[3] > 0 and found.get("dark").vector[3] < 0
    curve = [point["probability"] for point in bright.measured["curve"]]
    assert all(b >= a - 0.02 for a, b in zip(curve, curve[1:]))  # rises with the step
    assert bright.measured["assigned_at_step"] >= 0.8


def test_gan_directions_cli_writes_and_says_what_it_found(tmp_path):
    model = tmp_path / "generator.onnx"
    shutil.copy(DATA / "tiny-image.onnx", model)
    got = CliRunner().invoke(main, [str(model), "--k", "2", "--samples", "256"])
    assert got.exit_code == 0, got.output
    lines = got.output.strip().splitlines()
    assert lines[0].startswith("pc0") and "principal" in lines[0] and "mean change of a value a step" in lines[0]
    assert lines[-1].startswith(f"wrote {model.parent / 'directions.json'} (2 directions)")
    got = CliRunner().invoke(main, [str(model), "--k", "0"])
    assert got.exit_code == 1 and "find nothing" in got.output
    got = CliRunner().invoke(main, [str(tmp_path / "none.onnx")])
    assert got.exit_code == 1 and got.output.count("\n") == 1 and "no exported model" in got.output


def test_too_few_samples_for_the_latent_is_one_line(tmp_path):
    with pytest.raises(GanforgeError, match=r"need at least 16 samples"):
        find_directions(DATA / "tiny-image.onnx", k=2, samples=10, out=tmp_path / "d.json")
