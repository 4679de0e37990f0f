import numpy as np
import pytest
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.inference.render import BORDER, SERIES_CELL, render_grid, save_samples, to_uint8


def test_image_grid_tiles_with_border():
    samples = np.zeros((64, 3, 8, 8), np.float32)
    img = render_grid(samples, "image")
    assert img.mode == "RGB" and img.size == (8 * 8 + 9 * BORDER,) * 2
    img = render_grid(samples[:10], "image", nrow=5)
    assert img.size == (5 * 8 + 6 * BORDER, 2 * 8 + 3 * BORDER)


def test_image_values_map_and_clip():
    samples = np.array([[[[-1.0, 0.0, 1.0, 5.0]]]], np.float32)  # 1x1x1x4 grayscale
    img = render_grid(samples, "image")
    assert img.mode == "L"
    row = np.asarray(img)[BORDER, BORDER : BORDER + 4]
    assert row.tolist() == [0, 128, 255, 255]
    assert to_uint8(np.array([-2.0, 2.0])).tolist() == [0, 255]


def test_series_grid_draws_each_curve_in_its_cell():
    t = np.linspace(0, 2 * np.pi, 32)
    curves = np.stack([np.sin(t), -np.sin(t), np.zeros(32), np.ones(32)]).astype(np.float32)
    img = np.asarray(render_grid(curves, "series"))
    w, h = SERIES_CELL
    assert img.shape == (2 * h + 3 * BORDER, 2 * w + 3 * BORDER, 3)
    cell = lambda i: img[BORDER + (i // 2) * (h + BORDER):][:h, BORDER + (i % 2) * (w + BORDER):][:, :w]
    blue = lambda c: (c[..., 2] > 150) & (c[..., 0] < 100)
    # the constant +1 curve sits at the top of its cell, sin starts in the middle and rises
    top_rows = np.nonzero(blue(cell(3)).any(1))[0]
    assert top_rows.max() < h // 4
    assert blue(cell(0))[:, :10].any() and not np.array_equal(cell(0), cell(1))


def test_render_is_deterministic():
    x = np.random.default_rng(0).uniform(-1, 1, (9, 32)).astype(np.float32)
    assert render_grid(x, "series").tobytes() == render_grid(x, "series").tobytes()


@pytest.mark.parametrize("shape, kind", [((4, 32), "image"), ((4, 3, 8, 8), "series"), ((4, 2, 8, 8), "image")])
def test_shape_kind_mismatch(shape, kind):
    with pytest.raises(ValueError):
        render_grid(np.zeros(shape, np.float32), kind)


def test_save_samples_forms(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, (5, 3, 8, 8)).astype(np.float32)
    (png,) = save_samples(x, tmp_path / "g.png", kind="image")
    assert Image.open(png).size == (3 * 8 + 4 * BORDER, 2 * 8 + 3 * BORDER)
    (npy,) = save_samples(x, tmp_path / "a.npy", kind="image")
    np.testing.assert_array_equal(np.load(npy), x)
    files = save_samples(x, f"{tmp_path}/each/", kind="image")
    assert [f.name for f in files] == [f"sample-{i:05d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (8 + 2 * BORDER,) * 2
    with pytest.raises(GanforgeError, match="must be a .png grid"):
        save_samples(x, tmp_path / "g.jpg", kind="image")
    assert not (tmp_path / "g.jpg").exists()
