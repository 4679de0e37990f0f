"""--scale N / scale=N: pictures N times larger a side, nearest neighbour, pixel for pixel; never a
.npy; the scaled picture's size checked against the memory budget before it is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageSequence

from ganforge.errors import GanforgeError
from ganforge.inference import generate, generate_walk, render
from ganforge.inference.cli import main as infer

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE, SERIES, GRAY = DATA / "tiny-image.onnx", DATA / "tiny-series.onnx", DATA / "tiny-gray.onnx"


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB") if img.mode == "P" else img)


def blown_up(a: np.ndarray, n: int) -> np.ndarray:
    return a.repeat(n, axis=0).repeat(n, axis=1)


@pytest.mark.parametrize("model", [IMAGE, SERIES, GRAY])
@pytest.mark.parametrize("scale", [2, 3, 16])
def test_a_grid_scaled_is_each_pixel_a_square(tmp_path, model, scale):
    generate(model, 10, tmp_path / "one.png", seed=4, nrow=4, device="cpu")
    generate(model, 10, tmp_path / "big.png", seed=4, nrow=4, device="cpu", scale=scale)
    one, big = pixels(tmp_path / "one.png"), pixels(tmp_path / "big.png")
    assert big.shape[:2] == (one.shape[0] * scale, one.shape[1] * scale)
    np.testing.assert_array_equal(big, blown_up(one, scale))


def test_scale_one_is_the_picture_as_before(tmp_path):
    generate(IMAGE, 5, tmp_path / "a.png", seed=1, device="cpu")
    generate(IMAGE, 5, tmp_path / "b.png", seed=1, device="cpu", scale=1)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_gan_infer_scale_writes_generates_bytes(tmp_path):
    result = CliRunner().invoke(infer, ["--model", str(IMAGE), "--n", "6", "--seed", "2", "--scale", "4",
                                        "--out", str(tmp_path / "cli.png")])
    assert result.exit_code == 0, result.output
    generate(IMAGE, 6, tmp_path / "api.png", seed=2, device="cpu", scale=4)
    assert (tmp_path / "cli.png").read_bytes() == (tmp_path / "api.png").read_bytes()


def test_a_folder_scales_each_sample(tmp_path):
    generate(IMAGE, 3, f"{tmp_path}/one/", seed=2, device="cpu")
    generate(IMAGE, 3, f"{tmp_path}/big/", seed=2, device="cpu", scale=5)
    for name in ("sample-00000.png", "sample-00002.png"):
        one, big = pixels(tmp_path / "one" / "shard-000000" / name), pixels(tmp_path / "big" / "shard-000000" / name)
        assert one.shape == (8, 8, 3) and big.shape == (40, 40, 3)
        np.testing.assert_array_equal(big, blown_up(one, 5))


def test_walk_strip_and_gif_scale(tmp_path):
    for form in ("png", "gif"):
        generate_walk(GRAY, 1, 2, tmp_path / f"one.{form}", steps=4, device="cpu")
        generate_walk(GRAY, 1, 2, tmp_path / f"big.{form}", steps=4, device="cpu", scale=2)
    np.testing.assert_array_equal(pixels(tmp_path / "big.png"), blown_up(pixels(tmp_path / "one.png"), 2))
    with Image.open(tmp_path / "one.gif") as one, Image.open(tmp_path / "big.gif") as big:
        small = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(one)]
        large = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(big)]
    assert len(small) == len(large) >= 2 and small[0].shape == (128, 128) and large[0].shape == (256, 256)
    for a, b in zip(small, large):
        np.testing.assert_array_equal(b, blown_up(a, 2))


def test_npy_is_never_scaled(tmp_path):
    out = tmp_path / "x.npy"
    result = CliRunner().invoke(infer, ["--model", str(IMAGE), "--n", "4", "--scale", "2", "--out", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert len(errors) == 1 and "a .npy array holds the samples' values" in errors[0] and "drop --scale" in errors[0]
    assert not out.exists()
    with pytest.raises(GanforgeError, match="not pixels: scale 2"):
        generate_walk(IMAGE, 1, 2, tmp_path / "w.npy", steps=3, scale=2)
    generate(IMAGE, 4, out, device="cpu", scale=1)  # the default is no scale
    assert out.exists()


@pytest.mark.parametrize("bad", ["0", "17", "2.5"])
def test_scale_out_of_range_is_a_usage_error(tmp_path, bad):
    result = CliRunner().invoke(infer, ["--model", str(IMAGE), "--n", "4", "--scale", bad,
                                        "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 2 and "--scale" in result.output and not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("bad, message", [(0, "scale must be >= 1"), (17, "scale must be at most 16"),
                                          (2.0, "scale must be a whole number")])
def test_scale_is_checked_before_the_model_opens(tmp_path, bad, message):
    with pytest.raises(GanforgeError, match=message):
        generate(tmp_path / "missing.onnx", 4, tmp_path / "g.png", scale=bad)


def test_the_scaled_size_is_checked_before_drawing(tmp_path, monkeypatch):
    """4096 samples of 3x8x8 fit a 64 MiB budget as a grid, not at scale 16 (300 MiB): refused in
    one line, nothing drawn or written."""
    monkeypatch.setenv("GANFORGE_MAX_MEMORY", "64M")
    drawn = []
    monkeypatch.setattr(render, "render_grid", lambda *a, **k: drawn.append(1))
    with pytest.raises(GanforgeError, match=r"a PNG grid of 4096 samples of shape \[3, 8, 8\] at scale 16 needs "
                                            r"about .* ask for a smaller scale"):
        generate(IMAGE, 4096, tmp_path / "g.png", device="cpu", scale=16)
    with pytest.raises(GanforgeError, match="a walk of 4096 frames .* at scale 16 .* a smaller scale"):
        generate_walk(IMAGE, 1, 2, tmp_path / "w.gif", steps=4096, device="cpu", scale=16)
    assert not drawn and not list(tmp_path.iterdir())
