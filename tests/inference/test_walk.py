"""Walks through the latent space: between two seeds, within a class, from one class to another."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.inference import Generator, generate_walk, interpolate
from ganforge.inference.walk import FRAME_MS, HOLD_MS, slerp, walk_ends
from tests.data.make_tiny_models import MODELS, build, class_embedding, weights

DATA = Path(__file__).resolve().parents[1] / "data"
COND = DATA / "tiny-cond.onnx"
KW = MODELS["tiny-cond.onnx"]
W = weights(KW["latent_dim"], 64, KW["seed"])
E = class_embedding(3, KW["latent_dim"], KW["seed"]).astype(np.float64)


def G(z, code):
    """tiny-cond.onnx in numpy, given the class code added to the noise: tanh((z + code) @ W)."""
    return np.tanh((np.asarray(z, np.float64) + code) @ W).reshape(-1, 1, 8, 8)


@pytest.fixture(scope="module")
def gen():
    return Generator(COND, device="cpu")


def seeds_with_labels(gen, differ: bool) -> tuple[int, int]:
    """Two seeds whose first samples get different (or equal) default labels."""
    first = [int(gen.sample_labels(1, s)[0]) for s in range(20)]
    return next((0, s) for s in range(1, 20) if (first[s] != first[0]) == differ)


def test_slerp_keeps_the_ends_and_follows_the_circle():
    a, b = np.array([3.0, 0.0], np.float32), np.array([0.0, 3.0], np.float32)
    points = slerp(a, b, np.linspace(0, 1, 5))
    assert points.dtype == np.float32 and points.shape == (5, 2)
    np.testing.assert_array_equal(points[0], a)
    np.testing.assert_array_equal(points[-1], b)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 3.0, rtol=1e-6)  # on the circle, not the chord
    np.testing.assert_allclose(points[2], [3 / np.sqrt(2), 3 / np.sqrt(2)], rtol=1e-6)
    # (anti)parallel vectors: a straight line
    np.testing.assert_allclose(slerp(a, 2 * a, [0.5])[0], 1.5 * a)
    np.testing.assert_allclose(slerp(a, -a, [0.25, 0.5]), [0.5 * a, 0 * a], atol=1e-7)


def test_unconditional_walk_ends_at_the_seeds_first_samples():
    gen = Generator(DATA / "tiny-image.onnx", device="cpu")
    frames = interpolate(gen, 3, 7, 5)
    assert frames.shape == (5, 3, 8, 8)
    np.testing.assert_allclose(frames[0], gen.generate(4, seed=3)[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], gen.generate(4, seed=7)[0], atol=1e-6)
    kw = MODELS["tiny-image.onnx"]
    mid = slerp(gen.sample_noise(1, 3)[0], gen.sample_noise(1, 7)[0], [0.5])
    np.testing.assert_allclose(frames[2], np.tanh(mid @ weights(8, 192, kw["seed"])).reshape(3, 8, 8), atol=1e-5)
    assert walk_ends(gen, 3, 7) is None


def test_default_labels_are_the_seeds_own(gen):
    seed_a, seed_b = seeds_with_labels(gen, differ=True)
    frames = interpolate(gen, seed_a, seed_b, 4)
    np.testing.assert_allclose(frames[0], gen.generate(3, seed=seed_a)[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], gen.generate(3, seed=seed_b)[0], atol=1e-6)
    assert walk_ends(gen, seed_a, seed_b) == (gen.sample_labels(1, seed_a)[0], gen.sample_labels(1, seed_b)[0])


def test_one_label_fixes_the_class(gen):
    z = slerp(gen.sample_noise(1, 2)[0], gen.sample_noise(1, 5)[0], np.linspace(0, 1, 6))
    np.testing.assert_allclose(interpolate(gen, 2, 5, 6, labels=["trouser"]), G(z, E[1]), atol=1e-5)


def test_two_labels_walk_the_class_code(gen):
    steps = 5
    frames = interpolate(gen, 4, 9, steps, labels=["sneaker", "T-shirt/top"])
    z_a, z_b = gen.sample_noise(1, 4)[0], gen.sample_noise(1, 9)[0]
    np.testing.assert_allclose(frames[0], gen(z_a[None], [2])[0], atol=1e-6)  # G(z_A, label A)
    np.testing.assert_allclose(frames[-1], gen(z_b[None], [0])[0], atol=1e-6)  # G(z_B, label B)
    for i, t in enumerate(np.linspace(0, 1, steps)):  # the blended class code (1 - t) E[A] + t E[B]
        z = slerp(z_a, z_b, [t])
        np.testing.assert_allclose(frames[i], G(z, (1 - t) * E[2] + t * E[0])[0], atol=1e-5)
    # the midpoint is neither class: the walk really moved through the code
    mid = G(slerp(z_a, z_b, [0.5]), 0.5 * (E[2] + E[0]))[0]
    assert not np.allclose(mid, G(slerp(z_a, z_b, [0.5]), E[2])[0], atol=1e-3)
    # one seed, two classes: the noise stays, the class moves
    same = interpolate(gen, 4, 4, 3, labels=[2, 0])
    np.testing.assert_allclose(same[1], G(z_a[None], 0.5 * (E[2] + E[0]))[0], atol=1e-5)


def test_walk_errors(gen, tmp_path):
    with pytest.raises(GanforgeError, match="a walk takes one label .* or two .*, got 3"):
        interpolate(gen, 1, 2, 4, labels=[0, 1, 2])
    with pytest.raises(GanforgeError, match="steps must be >= 2, got 1"):
        interpolate(gen, 1, 2, 1)
    with pytest.raises(GanforgeError, match="unknown label 'boot'; this model knows: 0=T-shirt/top"):
        interpolate(gen, 1, 2, 4, labels=["boot"])
    with pytest.raises(GanforgeError, match="labels need a conditional model"):
        interpolate(Generator(DATA / "tiny-gray.onnx"), 1, 2, 4, labels=["0"])
    pytest.importorskip("onnx")
    import onnx

    path = tmp_path / "no-embedding.onnx"
    onnx.save_model(build(**{**KW, "props": {"ganforge.class_embedding": None}}), str(path))
    plain = Generator(path, device="cpu")
    assert plain.info.class_embedding is None
    with pytest.raises(GanforgeError, match="no ganforge.class_embedding .* cannot walk from class Trouser to "
                                            "Sneaker; give one --label"):
        interpolate(plain, 1, 2, 4, labels=["trouser", "sneaker"])
    assert interpolate(plain, 1, 2, 4, labels=["sneaker"]).shape == (4, 1, 8, 8)  # within a class it can


def test_generate_walk_writes_gif_png_and_npy(tmp_path):
    gif = generate_walk(COND, 3, 7, tmp_path / "w.gif", steps=6, labels=["sneaker", "trouser"])
    assert gif.paths == [tmp_path / "w.gif"] and gif.n == 6 and gif.labels == ("Sneaker", "Trouser")
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == 6 and im.size == (128, 128)  # 8x8 scaled up 16x, nearest neighbour
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [HOLD_MS] + [FRAME_MS] * 4 + [HOLD_MS]
    generate_walk(COND, 3, 7, tmp_path / "w.npy", steps=6, labels=["sneaker", "trouser"])
    frames = np.load(tmp_path / "w.npy")
    np.testing.assert_array_equal(frames, interpolate(Generator(COND), 3, 7, 6, labels=["sneaker", "trouser"]))
    generate_walk(COND, 3, 7, tmp_path / "w.png", steps=6, labels=["sneaker", "trouser"])
    assert Image.open(tmp_path / "w.png").size == (6 * 8 + 7 * 2, 8 + 2 * 2)  # one row
    # the GIF's first frame is the first sample, upscaled
    with Image.open(tmp_path / "w.gif") as im:
        first = np.asarray(im.convert("L"))
    from ganforge.inference.render import to_uint8

    np.testing.assert_array_equal(first, to_uint8(frames[0, 0]).repeat(16, 0).repeat(16, 1))
    series = generate_walk(DATA / "tiny-series.onnx", 0, 1, tmp_path / "s.gif", steps=3)
    assert series.labels is None and Image.open(tmp_path / "s.gif").n_frames == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(out="w.jpg"), "must be a .gif animation, a .png strip"),
    (dict(labels=[0, 1, 2]), "got 3"),
    (dict(labels=["boot"]), "unknown label 'boot'"),
    (dict(steps=1), "steps must be >= 2"),
])
def test_generate_walk_checks_first_and_writes_nothing(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.setattr("onnxruntime.InferenceSession.run", lambda *a, **k: pytest.fail("the model ran"))
    out = tmp_path / kwargs.pop("out", "w.gif")
    with pytest.raises(GanforgeError, match=message):
        generate_walk(COND, 1, 2, out, **kwargs)
    assert not list(tmp_path.iterdir())
