import numpy as np
import pytest
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.inference.render import BORDER, SERIES_CELL, out_form, render_grid, save_samples, to_uint8


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
    for i in (0, 4):  # each sample at its own size, exactly its pixels: a data set for other tools
        np.testing.assert_array_equal(np.asarray(Image.open(files[i])), to_uint8(x[i]).transpose(1, 2, 0))
    gray = save_samples(x[:2, :1], f"{tmp_path}/gray/", kind="image")
    np.testing.assert_array_equal(np.asarray(Image.open(gray[1])), to_uint8(x[1, 0]))
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == [f.name for f in files]  # no temporaries
    with pytest.raises(GanforgeError, match="must be a .png grid"):
        save_samples(x, tmp_path / "g.jpg", kind="image")
    assert not (tmp_path / "g.jpg").exists()


def test_series_cells_share_one_fixed_y_range():
    # the same curve scaled by 0.5 must sit closer to the zero line: no per-cell autoscaling
    t = np.linspace(0, 2 * np.pi, 32)
    img = np.asarray(render_grid(np.stack([np.sin(t), 0.5 * np.sin(t)]).astype(np.float32), "series", nrow=2))
    w, h = SERIES_CELL
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    rows = [np.nonzero(blue[:, BORDER + i * (w + BORDER):][:, :w].any(1))[0] for i in range(2)]
    assert rows[1].max() - rows[1].min() < 0.7 * (rows[0].max() - rows[0].min())


def test_series_values_clip_and_nan_do_not_break_the_plot():
    x = np.array([[5.0] * 8, [np.nan] * 8, [-5.0] * 8], np.float32)
    img = np.asarray(render_grid(x, "series", nrow=3))
    assert img.shape == (SERIES_CELL[1] + 2 * BORDER, 3 * SERIES_CELL[0] + 4 * BORDER, 3)
    assert render_grid(np.zeros((1, 1), np.float32), "series").size == (SERIES_CELL[0] + 2 * BORDER,
                                                                        SERIES_CELL[1] + 2 * BORDER)


def test_nrow_is_columns_and_default_is_square():
    x = np.zeros((64, 1, 4, 4), np.float32)
    assert render_grid(x, "image").size == (8 * 4 + 9 * BORDER,) * 2
    assert render_grid(x, "image", nrow=16).size == (16 * 4 + 17 * BORDER, 4 * 4 + 5 * BORDER)
    assert render_grid(x[:5], "image", nrow=16).size == (5 * 4 + 6 * BORDER, 4 + 2 * BORDER)  # never wider than n
    with pytest.raises(ValueError, match="nrow"):
        render_grid(x, "image", nrow=0)


def test_custom_value_range_maps_to_full_scale():
    x = np.array([[[[0.0, 0.5, 1.0]]]], np.float32)
    row = np.asarray(render_grid(x, "image", value_range=(0.0, 1.0)))[BORDER, BORDER : BORDER + 3]
    assert row.tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="low < high"):
        render_grid(x, "image", value_range=(1.0, 1.0))


@pytest.mark.parametrize("shape", [(0, 32), (32,)])
def test_empty_or_unbatched_input_is_refused(shape):
    with pytest.raises(ValueError, match=r"batch of samples"):
        render_grid(np.zeros(shape, np.float32), "series")


def test_png_bytes_are_deterministic(tmp_path):
    x = np.random.default_rng(2).uniform(-1, 1, (6, 32)).astype(np.float32)
    a = save_samples(x, tmp_path / "a.png", kind="series")[0].read_bytes()
    b = save_samples(x, tmp_path / "b.png", kind="series")[0].read_bytes()
    x[0, 0] = -x[0, 0]
    c = save_samples(x, tmp_path / "c.png", kind="series")[0].read_bytes()
    assert a == b != c


def test_out_forms_and_missing_parents(tmp_path):
    assert out_form(tmp_path / "a.PNG") == "png" and out_form("x.npy") == "npy"
    assert out_form(f"{tmp_path}/new/") == "dir" and out_form(tmp_path) == "dir"  # an existing folder
    for bad in ("grid.jpg", "grid", "out.png.bak"):
        with pytest.raises(GanforgeError, match=r"--out must be a \.png grid, a \.npy array, or a folder"):
            out_form(bad)
    x = np.zeros((2, 8), np.float32)
    (png,) = save_samples(x, tmp_path / "deep" / "er" / "g.png", kind="series")
    assert png.is_file()
    (tmp_path / "empty").mkdir()
    files = save_samples(x, tmp_path / "empty", kind="series")  # existing folder, no slash
    assert [f.name for f in files] == ["sample-00000.png", "sample-00001.png"]
    with pytest.raises(GanforgeError, match="deep holds files gan-infer did not write \\(er\\)"):
        save_samples(x, tmp_path / "deep", kind="series")  # its subfolder is not ours to replace


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    old = tmp_path / "g.png"
    old.write_bytes(b"precious")

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half a png")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    with pytest.raises(GanforgeError, match=r"cannot write .*g\.png: No space left on device"):
        save_samples(np.zeros((2, 8), np.float32), old, kind="series")
    assert old.read_bytes() == b"precious" and [p.name for p in tmp_path.iterdir()] == ["g.png"]


def test_save_batches_streams_npy_and_folders(tmp_path):
    from ganforge.inference.render import save_batches

    rng = np.random.default_rng(3)
    batches = [rng.uniform(-1, 1, (b, 3, 4, 4)).astype(np.float32) for b in (4, 4, 2)]
    seen = []
    (npy,) = save_batches(iter(batches), 10, (3, 4, 4), tmp_path / "x.npy", kind="image",
                          progress=lambda done, n: seen.append((done, n)))
    np.testing.assert_array_equal(np.load(npy), np.concatenate(batches))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    files = save_batches(iter(batches), 10, (3, 4, 4), f"{tmp_path}/each/", kind="image")
    assert [f.name for f in files] == [f"sample-{i:05d}.png" for i in range(10)]
    with pytest.raises(ValueError, match="expected 11 samples, got 10"):
        save_batches(iter(batches), 11, (3, 4, 4), tmp_path / "short.npy", kind="image")
    assert not (tmp_path / "short.npy").exists()  # nothing half-written


def test_generate_streams_the_same_samples(tmp_path):
    from pathlib import Path

    from ganforge.inference import Generator, generate

    model = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"
    generate(model, 300, tmp_path / "a.npy", seed=4, batch_size=64)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), Generator(model).generate(300, seed=4))


def test_gif_out_is_for_walks_only(tmp_path):
    assert out_form("walk.GIF", walk=True) == "gif" and out_form("strip.png", walk=True) == "png"
    with pytest.raises(GanforgeError, match=r"cannot write 'x\.gif': a \.gif is the animation of a walk, made with "
                                            r"--interpolate A,B; for samples --out must be a \.png grid"):
        out_form("x.gif")
    with pytest.raises(GanforgeError, match=r"--out must be a \.gif animation, a \.png strip, a \.npy array"):
        out_form("walk.mp4", walk=True)


def test_frame_images_scale_up_tiny_images_and_draw_series():
    from ganforge.inference.render import frame_images

    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 8, 12)).astype(np.float32)
    frames = frame_images(x, "image")
    assert len(frames) == 3 and frames[0].size == (12 * 16, 8 * 16) and frames[0].mode == "RGB"
    np.testing.assert_array_equal(np.asarray(frames[2])[::16, ::16], to_uint8(x[2]).transpose(1, 2, 0))
    assert frame_images(np.zeros((1, 1, 200, 300), np.float32), "image")[0].size == (300, 200)  # big: as is
    curves = frame_images(np.zeros((2, 32), np.float32), "series")
    assert [c.size for c in curves] == [(SERIES_CELL[0] + 2 * BORDER, SERIES_CELL[1] + 2 * BORDER)] * 2


def test_save_gif_frames_durations_and_atomic_write(tmp_path, monkeypatch):
    from ganforge.inference.render import save_gif

    images = [Image.fromarray(np.full((4, 4), 60 * i, np.uint8), "L") for i in range(4)]
    path = save_gif(images, tmp_path / "sub" / "a.gif", [500, 100, 100, 700])
    with Image.open(path) as im:
        assert im.n_frames == 4 and im.info["loop"] == 0
        shown = []
        for i in range(4):
            im.seek(i)
            shown.append((im.info["duration"], np.asarray(im.convert("L"))[0, 0]))
    assert shown == [(500, 0), (100, 60), (100, 120), (700, 180)]
    assert save_gif(images, tmp_path / "b.gif", 100).read_bytes() == save_gif(images, tmp_path / "c.gif", 100).read_bytes()
    with pytest.raises(ValueError, match="4 images but 2 durations"):
        save_gif(images, tmp_path / "d.gif", [1, 2])
    old = tmp_path / "b.gif"
    before = old.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"GIF89a half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(GanforgeError, match=r"cannot write .*b\.gif: No space left on device"):
        save_gif(images, old, 100)
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["b.gif", "c.gif", "sub"]
