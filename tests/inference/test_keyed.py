"""Addressable samples (ganforge.inference.keyed, scheme keyed-blocks-v1): sample i of seed s is
one thing everywhere. Pinned values, so the scheme never changes silently; a range equals the
same slice of the whole (noise, labels, and real tiny models' samples whatever the batch size,
micro-batch, runtime or start); and the properties of numpy's draws the scheme relies on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.inference import Generator, generate, keyed, runtimes
from ganforge.values import MAX_INDEX, check_start, parse_range
from tests.inference.test_session import DATA

IMAGE, SERIES, COND = DATA / "tiny-image.onnx", DATA / "tiny-series.onnx", DATA / "tiny-cond.onnx"

# --- (a) the scheme, pinned ------------------------------------------------------------------------

# (seed, index): the float32 bit patterns of the first 3 noise values of that sample, its label of 10
# classes and of 1000. Computed once with numpy 2.4 when keyed-blocks-v1 was made; a change here is a
# new scheme with a new name, never an edit of these numbers.
PINNED = {
    (0, 0): ((0x3F8F0E3D, 0xBFB18D4F, 0xBEDA6798), 5, 522),
    (0, 1023): ((0xBF404357, 0xBF64160C, 0xBF3AAC67), 6, 602),
    (0, 1024): ((0x3F89F0DD, 0x3F5AD5E0, 0x3D228C07), 6, 674),
    (0, 5_000_000): ((0xBF5195F8, 0xBF93D145, 0x3ED604DD), 3, 398),
    (12345, 0): ((0xBF9BA749, 0xBEBD196E, 0x3FEEDD35), 7, 739),
    (12345, 1023): ((0xC0150D0E, 0x3EA593DE, 0x402580D3), 7, 723),
    (12345, 1024): ((0xBFA7B3BC, 0xBFC4D34F, 0xBF8B34C8), 5, 562),
    (12345, 5_000_000): ((0x3F8DE547, 0xBE5A5F8B, 0x3F25E804), 7, 788),
}


def test_the_scheme_has_its_name_and_block():
    assert keyed.SCHEME == "keyed-blocks-v1" and keyed.BLOCK == 1024


@pytest.mark.parametrize("seed, index", list(PINNED))
def test_pinned_values(seed, index):
    bits, label10, label1000 = PINNED[seed, index]
    z = keyed.noise(seed, index, index + 1, 3)
    assert z.dtype == np.float32 and z.shape == (1, 3)
    assert tuple(int(v) for v in z[0].view(np.uint32)) == bits
    assert keyed.labels(seed, index, index + 1, 10).tolist() == [label10]
    assert keyed.labels(seed, index, index + 1, 1000).tolist() == [label1000]


@pytest.mark.parametrize("seed, index", [(0, 0), (3, 1023), (3, 1024), (7, 2500), (12345, 5_000_000)])
def test_block_b_of_seed_s_is_default_rng_of_s_stream_b(seed, index):
    """The definition: block b's rows, in order, from default_rng([seed, stream, b])."""
    block, row = divmod(index, keyed.BLOCK)
    rows = np.random.default_rng([seed, keyed.NOISE, block]).standard_normal((row + 1, 5), dtype=np.float32)
    np.testing.assert_array_equal(keyed.noise(seed, index, index + 1, 5)[0], rows[-1])
    drawn = np.random.default_rng([seed, keyed.LABELS, block]).integers(0, 4, size=row + 1, dtype=np.int64)
    assert keyed.labels(seed, index, index + 1, 4)[0] == drawn[-1]


def test_the_first_block_is_the_seeds_old_single_stream():
    """numpy's SeedSequence reads [s, 0, 0] as s: samples 0-1023 of a seed are those ganforge drew
    before keyed-blocks-v1 (default_rng(seed), labels default_rng([seed, 1])); from 1024 on they differ."""
    old = np.random.default_rng(9).standard_normal((1100, 4), dtype=np.float32)
    new = keyed.noise(9, 0, 1100, 4)
    np.testing.assert_array_equal(new[:1024], old[:1024])
    assert not np.array_equal(new[1024:], old[1024:])
    old_labels = np.random.default_rng([9, 1]).integers(0, 3, size=1024, dtype=np.int64)
    np.testing.assert_array_equal(keyed.labels(9, 0, 1024, 3), old_labels)


def test_streams_and_seeds_are_apart():
    z = keyed.noise(5, 0, 2048, 2)
    assert not np.array_equal(z[:1024], z[1024:])  # each block its own generator
    assert not np.array_equal(z, keyed.noise(6, 0, 2048, 2))
    assert keyed.noise(5, 0, 0, 3).shape == (0, 3) and keyed.labels(5, 7, 7, 3).shape == (0,)


# --- (b) a range equals the same slice of the whole --------------------------------------------------

RANGES = [(0, 1), (0, 1024), (1, 2), (1000, 1100), (1023, 1025), (1024, 2048), (1500, 3900), (2047, 4097),
          (4999, 5000)]


@pytest.mark.parametrize("dim", [1, 3, 100])
def test_a_noise_range_is_the_slice_of_the_whole(dim):
    whole = keyed.noise(11, 0, 5000, dim)
    for a, b in RANGES:
        np.testing.assert_array_equal(keyed.noise(11, a, b, dim), whole[a:b], err_msg=f"{a}:{b}")


@pytest.mark.parametrize("classes", [1, 3, 10, 100_000])
def test_a_label_range_is_the_slice_of_the_whole(classes):
    whole = keyed.labels(11, 0, 5000, classes)
    assert whole.dtype == np.int64 and whole.min() >= 0 and whole.max() < classes
    for a, b in RANGES:
        np.testing.assert_array_equal(keyed.labels(11, a, b, classes), whole[a:b], err_msg=f"{a}:{b}")


@pytest.mark.parametrize("step", [1, 7, 100, 1000, 1024, 1500])
@pytest.mark.parametrize("first", [0, 5, 1020])
def test_noise_read_chunk_after_chunk_is_the_whole(step, first):
    whole = keyed.noise(4, first, 3100, 6)
    stream = keyed.Noise(4, 6)
    parts = [stream.draw(a, min(a + step, 3100)) for a in range(first, 3100, step)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_noise_read_out_of_order_is_still_each_samples_own():
    whole = keyed.noise(4, 0, 3000, 3)
    stream = keyed.Noise(4, 3)
    for a, b in [(10, 20), (5, 8), (8, 1030), (2000, 2001), (40, 41), (2999, 3000), (0, 3000), (1024, 1025)]:
        np.testing.assert_array_equal(stream.draw(a, b), whole[a:b], err_msg=f"{a}:{b}")


@pytest.fixture(scope="module")
def image():
    return Generator(IMAGE, device="cpu")


@pytest.fixture(scope="module")
def cond():
    return Generator(COND, device="cpu")


WHOLE = 3100  # samples: three block edges


@pytest.fixture(scope="module")
def image_whole(image):
    return image.generate(WHOLE, seed=3)


@pytest.mark.parametrize("batch_size", [None, 1, 7, 100, 1024, 2000])
@pytest.mark.parametrize("start, n", [(0, 50), (1000, 50), (1023, 2), (1024, 30), (1020, 1100), (2047, 1053)])
def test_generated_range_is_the_slice_of_the_whole(image, image_whole, batch_size, start, n):
    if batch_size == 1 and n > 100:
        n = 60  # a run a sample: kept short
    got = image.generate(n, seed=3, batch_size=batch_size, start=start)
    assert got.shape == (n, 3, 8, 8)
    np.testing.assert_array_equal(got, image_whole[start : start + n])


@pytest.mark.parametrize("micro", [1, 3, 64, 1000])
def test_micro_batches_do_not_move_samples(image, image_whole, monkeypatch, micro):
    monkeypatch.setattr(image, "micro_batch", micro)
    np.testing.assert_array_equal(image.generate(1500, seed=3, start=1000), image_whole[1000:2500])


def test_iter_batches_and_sample_noise_take_start(image, image_whole):
    parts = list(image.iter_batches(700, seed=3, batch_size=300, start=2000))
    assert [len(p) for p in parts] == [300, 300, 100]
    np.testing.assert_array_equal(np.concatenate(parts), image_whole[2000:2700])
    z = image.sample_noise(5, 3, start=1022)
    np.testing.assert_array_equal(z, keyed.noise(3, 1022, 1027, image.info.latent_dim))
    np.testing.assert_array_equal(image(z), image_whole[1022:1027])


def test_a_series_model_too():
    gen = Generator(SERIES, device="cpu")
    whole = gen.generate(2100, seed=0)
    for start, n, batch in [(0, 10, None), (1020, 10, 3), (1024, 1076, 512), (5, 2095, 1000)]:
        np.testing.assert_array_equal(gen.generate(n, seed=0, batch_size=batch, start=start), whole[start : start + n])


@pytest.mark.parametrize("batch_size", [None, 5, 1024])
def test_conditional_drawn_labels_follow_the_sample(cond, batch_size):
    whole = cond.generate(2600, seed=8)
    labels = cond.sample_labels(2600, 8)
    np.testing.assert_array_equal(cond.sample_labels(600, 8, start=1000), labels[1000:1600])
    for start, n in [(0, 3), (1023, 3), (1000, 1600), (2047, 553)]:
        np.testing.assert_array_equal(cond.generate(n, seed=8, batch_size=batch_size, start=start),
                                      whole[start : start + n], err_msg=f"{start}+{n}")
    # the drawn labels are the ones fed: the model on keyed noise and keyed labels
    z = cond.sample_noise(600, 8, start=1000)
    np.testing.assert_array_equal(cond(z, labels[1000:1600]), whole[1000:1600])


def test_given_labels_apply_to_the_range_asked(cond):
    """Labels given are the range's own (split in blocks of the n asked), not the whole's."""
    labels = np.array([2] * 40, np.int64)
    got = cond.generate(40, seed=8, labels=labels, start=1010)
    np.testing.assert_array_equal(got, cond(cond.sample_noise(40, 8, start=1010), labels))


def test_generate_to_npy_is_the_slice_of_the_whole(tmp_path):
    generate(IMAGE, 2100, tmp_path / "whole.npy", seed=5, device="cpu")
    generate(IMAGE, 1100, tmp_path / "part.npy", seed=5, start=1000, device="cpu", batch_size=333)
    whole, part = np.load(tmp_path / "whole.npy"), np.load(tmp_path / "part.npy")
    np.testing.assert_array_equal(part, whole[1000:2100])
    generate(COND, 2100, tmp_path / "cwhole.npy", seed=5, device="cpu")
    generate(COND, 76, tmp_path / "cpart.npy", seed=5, start=2024, device="cpu")
    np.testing.assert_array_equal(np.load(tmp_path / "cpart.npy"), np.load(tmp_path / "cwhole.npy")[2024:2100])


def test_a_per_class_grid_takes_the_noise_of_its_range(tmp_path, cond):
    from ganforge.inference.generation import run_generation
    from ganforge.inference.request import GenerationRequest

    run_generation(GenerationRequest(model=COND, per_class=4, out=tmp_path / "g.npy", seed=2, start=1022,
                                     device="cpu"))
    grid = np.load(tmp_path / "g.npy")  # rows of classes 0, 1, 2; columns samples 1022-1025
    z = cond.sample_noise(4, 2, start=1022)
    want = np.concatenate([cond(z, np.full(4, c, np.int64)) for c in range(3)])
    np.testing.assert_array_equal(grid, want)


@pytest.mark.skipif(runtimes.openvino_version() is None, reason="the openvino extra is not installed")
def test_openvino_gives_each_sample_as_onnxruntime_does(tmp_path):
    """In a child (OpenVINO's threads stay out of the pytest process): OpenVINO's ranges are the
    slices of its whole, byte for byte, and its samples onnxruntime's (to 1e-5: two runtimes)."""
    code = textwrap.dedent(f"""
        import numpy as np
        from ganforge.inference import Generator
        for model in ({str(IMAGE)!r}, {str(COND)!r}):
            ort = Generator(model, device="cpu", provider="onnxruntime")
            ov = Generator(model, device="cpu", provider="openvino")
            whole, ref = ov.generate(2200, seed=4), ort.generate(2200, seed=4)
            assert np.abs(whole - ref).max() < 1e-5, np.abs(whole - ref).max()
            for start, n, batch in [(0, 5, None), (1023, 2, None), (1000, 1200, 256), (2047, 153, 7)]:
                part = ov.generate(n, seed=4, batch_size=batch, start=start)
                assert np.array_equal(part, whole[start:start + n]), (model, start, n, batch)
            assert ov.used == {{"openvino"}} and ort.used == {{"onnxruntime"}}
        print("ok")
    """)
    env = {**os.environ, "GANFORGE_CACHE_DIR": str(tmp_path / "cache"), runtimes.PROVIDER_ENV: ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


def test_start_is_checked(image):
    for bad, message in [(-1, "start must be >= 0"), (1.5, "start must be a whole number"),
                         (MAX_INDEX + 1, "at most 2\\*\\*53")]:
        with pytest.raises(GanforgeError, match=message):
            image.generate(2, seed=0, start=bad)
        with pytest.raises(GanforgeError, match=message):
            image.sample_noise(2, 0, start=bad)
    assert check_start(MAX_INDEX) == MAX_INDEX
    np.testing.assert_array_equal(image.sample_noise(1, 0, start=MAX_INDEX - 1),
                                  keyed.noise(0, MAX_INDEX - 1, MAX_INDEX, 8))


def test_parse_range():
    assert parse_range("0:1000") == (0, 1000) and parse_range(":5") == (0, 5) and parse_range(" 7 : 9 ") == (7, 9)
    for bad, message in [("5", "START:STOP"), ("a:b", "START:STOP"), ("5:5", "greater than its start"),
                         ("9:3", "greater than its start"), ("-1:3", "START:STOP"), (f"0:{MAX_INDEX + 1}", "2\\*\\*53")]:
        with pytest.raises(GanforgeError, match=message):
            parse_range(bad)


# --- (c) what the scheme relies on in numpy's draws --------------------------------------------------

@pytest.mark.parametrize("dim", [1, 3, 100, 128])
@pytest.mark.parametrize("cuts", [(1,), (3, 4), (511, 1), (1, 2, 3, 1018), (1023,)])
def test_normal_draws_in_pieces_are_the_draw_in_one(dim, cuts):
    """keyed.noise drops a block's first rows by drawing them, and Noise goes on where it stopped:
    float32 normals drawn in pieces (odd counts of values too, in place or not) are those drawn at once."""
    total = sum(cuts) + 5
    one = np.random.default_rng([2, 0, 1]).standard_normal((total, dim), dtype=np.float32)
    rng = np.random.default_rng([2, 0, 1])
    parts, done = [], 0
    for i, rows in enumerate(cuts):
        if i % 2:
            out = np.empty((rows, dim), np.float32)
            rng.standard_normal(dtype=np.float32, out=out)
            parts.append(out)
        else:
            parts.append(rng.standard_normal((rows, dim), dtype=np.float32))
        done += rows
    parts.append(rng.standard_normal((total - done, dim), dtype=np.float32))
    np.testing.assert_array_equal(np.concatenate(parts), one)


@pytest.mark.parametrize("classes", [1, 2, 3, 10, 1000, 100_000])
def test_label_draws_are_prefixes_of_longer_ones(classes):
    """keyed.labels draws a block's first ``hi`` labels and keeps ``lo:hi``: a shorter draw is a
    prefix of a longer one."""
    longest = np.random.default_rng([2, 1, 3]).integers(0, classes, size=keyed.BLOCK, dtype=np.int64)
    for size in (1, 2, 5, 513, 1023):
        short = np.random.default_rng([2, 1, 3]).integers(0, classes, size=size, dtype=np.int64)
        np.testing.assert_array_equal(short, longest[:size])


# --- the scheme, said ------------------------------------------------------------------------------

def test_results_and_gan_infer_v_name_the_scheme(tmp_path):
    from click.testing import CliRunner

    from ganforge.inference import generate_walk
    from ganforge.inference.cli import main as infer

    assert generate(IMAGE, 3, tmp_path / "x.npy", device="cpu").scheme == "keyed-blocks-v1"
    assert generate_walk(IMAGE, 1, 2, tmp_path / "w.npy", steps=3, device="cpu").scheme == keyed.SCHEME
    out = tmp_path / "g.png"
    verbose = CliRunner().invoke(infer, ["--model", str(IMAGE), "--n", "4", "--out", str(out), "-v"])
    assert verbose.exit_code == 0, verbose.output
    said = [line for line in verbose.output.splitlines() if "keyed-blocks-v1" in line]
    assert len(said) == 1 and said[0].startswith("noise: keyed-blocks-v1"), verbose.output
    quiet = CliRunner().invoke(infer, ["--model", str(IMAGE), "--n", "4", "--out", str(out)])
    assert quiet.exit_code == 0 and "keyed-blocks" not in quiet.output
