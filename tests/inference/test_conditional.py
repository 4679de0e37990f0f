"""Conditional generators: labels beside the noise, checked and fed; the contract of the graph."""

from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import GanforgeError, ModelFileError
from ganforge.inference import Generator
from tests.data.make_tiny_models import MODELS, build, class_embedding, weights

DATA = Path(__file__).resolve().parents[1] / "data"
COND = DATA / "tiny-cond.onnx"
KNOWN = "this model knows: 0=T-shirt/top, 1=Trouser, 2=Sneaker"


def tiny_cond(z, labels, offset=0.0):
    """What tiny-cond.onnx computes, in numpy: tanh((z + E[labels] + offset) @ W)."""
    kw = MODELS["tiny-cond.onnx"]
    W = weights(kw["latent_dim"], int(np.prod(kw["sample_shape"])), kw["seed"])
    E = class_embedding(len(kw["classes"]), kw["latent_dim"], kw["seed"])
    return np.tanh((z + E[np.asarray(labels)] + offset) @ W).reshape(len(z), *kw["sample_shape"])


@pytest.fixture(scope="module")
def gen():
    return Generator(COND, device="cpu")


def test_metadata_and_labels_are_fed(gen):
    assert gen.info.conditional and gen.info.num_classes == 3
    assert gen.info.class_names == ("T-shirt/top", "Trouser", "Sneaker")
    np.testing.assert_array_equal(np.asarray(gen.info.class_embedding, np.float32), class_embedding(3, 8, 9))
    z = gen.sample_noise(6, 4)
    labels = np.array([0, 1, 2, 2, 1, 0])
    out = gen(z, labels)
    np.testing.assert_allclose(out, tiny_cond(z, labels), atol=1e-5)
    # the class really changes the sample: the same noise under another label differs
    assert not np.allclose(out[:1], gen(z[:1], [1]))


def test_labels_are_sliced_with_the_noise_in_micro_batches(gen, monkeypatch):
    z = gen.sample_noise(10, 1)
    labels = np.array([2, 2, 1, 0, 0, 1, 2, 1, 0, 0])  # no period of 3: each run must get its own slice
    monkeypatch.setattr(gen, "micro_batch", 3)
    np.testing.assert_allclose(gen(z, labels), tiny_cond(z, labels), atol=1e-5)


def test_generate_draws_labels_from_their_own_stream(gen):
    labels = gen.sample_labels(50, 7)
    assert labels.dtype == np.int64 and set(labels.tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(labels, np.random.default_rng([7, 1, 0]).integers(0, 3, size=50))  # block 0, stream 1
    out = gen.generate(50, seed=7)
    # the noise is the seed's (keyed by sample), exactly as for an unconditional model
    np.testing.assert_allclose(out, tiny_cond(gen.sample_noise(50, 7), labels), atol=1e-5)
    np.testing.assert_array_equal(gen.sample_noise(50, 7), Generator(DATA / "tiny-gray.onnx").sample_noise(50, 7))


@pytest.mark.parametrize("labels", [None, np.array([2, 0, 1] * 12 + [1])])
def test_same_seed_same_labels_same_bytes_whatever_the_batch_size(gen, labels):
    a = gen.generate(37, seed=5, batch_size=37, labels=labels)
    for batch_size in (4, 1, None):
        np.testing.assert_array_equal(a, gen.generate(37, seed=5, batch_size=batch_size, labels=labels))
    if labels is not None:
        np.testing.assert_allclose(a, tiny_cond(gen.sample_noise(37, 5), labels), atol=1e-5)


def test_run_batches_runs_given_noise_and_labels(gen):
    z, labels = gen.sample_noise(7, 2), np.array([1, 1, 0, 2, 2, 0, 1])
    batches = list(gen.run_batches(z, labels, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_allclose(np.concatenate(batches), tiny_cond(z, labels), atol=1e-5)


def test_parse_labels_names_and_indices(gen):
    assert gen.parse_labels(["sneaker", "T-SHIRT/TOP", " trouser ", "0", 2, np.int64(1)]) == [2, 0, 1, 0, 2, 1]


@pytest.mark.parametrize("values, message", [
    (["shrt"], f"unknown label 'shrt'; {KNOWN}$"),
    ([""], "unknown label ''"),
    (["3"], f"label '3' is out of range; {KNOWN}$"),
    ([-1], "label -1 is out of range"),
    (["-1"], "unknown label '-1'"),
    ([1.0], "unknown label 1.0"),
])
def test_unknown_labels_list_the_known_ones(gen, values, message):
    with pytest.raises(GanforgeError, match=message):
        gen.parse_labels(values)


def test_a_long_class_list_is_cut(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    path = tmp_path / "many.onnx"
    onnx.save_model(build(4, (32,), "series", classes=tuple(f"c{i}" for i in range(30))), str(path))
    with pytest.raises(GanforgeError, match=r"knows: 0=c0, 1=c1, .*, 19=c19, \.\.\. and 10 more$"):
        Generator(path, device="cpu").parse_labels(["c30"])


@pytest.mark.parametrize("call, message", [
    (lambda g: g(g.sample_noise(2, 0)), r"is conditional: pass labels, class indices \[batch\] in \[0, 3\)"),
    (lambda g: g(g.sample_noise(2, 0), [0, 3]), "label 3 is out of range: this model has 3 classes, labels 0 to 2"),
    (lambda g: g(g.sample_noise(2, 0), [-1, 0]), "label -1 is out of range"),
    (lambda g: g(g.sample_noise(2, 0), [0]), r"labels must have shape \[2\]"),
    (lambda g: g(g.sample_noise(2, 0), [0.0, 1.0]), "labels must be class indices"),
    (lambda g: g.generate(3, labels=[0, 1]), r"labels must have shape \[3\]"),
    (lambda g: g.iter_batches(2, labels=[0, 9]), "label 9 is out of range"),  # checked before next()
])
def test_bad_labels_are_refused_before_running(gen, monkeypatch, call, message):
    monkeypatch.setattr(gen.session, "run", lambda *a: pytest.fail("the model ran"))
    with pytest.raises(GanforgeError, match=message):
        call(gen)


@pytest.mark.parametrize("call", [
    lambda g: g(g.sample_noise(2, 0), [0, 1]),
    lambda g: g.generate(2, labels=[0, 1]),
    lambda g: g.parse_labels(["0"]),
    lambda g: g.sample_labels(2, 0),
])
def test_labels_on_an_unconditional_model_say_so(call):
    gen = Generator(DATA / "tiny-gray.onnx", device="cpu")
    with pytest.raises(GanforgeError, match=r"labels need a conditional model; .*tiny-gray.onnx has no classes "
                                             r"\(export a run trained with --set conditional=true\)$"):
        call(gen)


def test_tuning_runs_a_conditional_model_on_noise_alone(gen):
    z = gen.sample_noise(4, 0)
    np.testing.assert_allclose(gen._run_noise(z), tiny_cond(z, [0, 0, 0, 0]), atol=1e-5)


def test_metadata_and_graph_must_agree_on_labels(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    with pytest.raises(ModelFileError, match="metadata says 3 classes but the graph has no input 'labels'; re-export"):
        Generator(DATA / "cond-no-labels.onnx", device="cpu")
    kw = dict(latent_dim=4, sample_shape=(32,), kind="series", classes=("a", "b"))
    cases = [
        # a labels input but no classes in the metadata
        (dict(props={"ganforge.num_classes": None, "ganforge.class_names": None, "ganforge.class_embedding": None}),
         "takes 'labels' but its metadata has no ganforge.num_classes"),
        # classes in the metadata, labels input there, plus one more input
        (dict(extra_input=True), (r"expected inputs 'z' float \[batch, 4\] and 'labels' int64 \[batch\] "
                                  r"\(2 classes in its metadata\), found inputs: z .*, b .*, labels")),
    ]
    for extra, message in cases:
        path = tmp_path / "bad.onnx"
        onnx.save_model(build(**kw, **extra), str(path))
        with pytest.raises(ModelFileError, match=message):
            Generator(path, device="cpu")


# --- generate(): labels in blocks, per-class grids ---------------------------------------------------

def test_given_labels_fill_contiguous_blocks(tmp_path):
    from ganforge.inference import generate

    result = generate(COND, 7, tmp_path / "x.npy", seed=2, labels=["sneaker", "0", 1])
    assert result.labels == ("Sneaker", "T-shirt/top", "Trouser") and result.n == 7
    blocks = np.array([2, 2, 2, 0, 0, 1, 1])  # sample i gets label (i * 3 // 7)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), tiny_cond(Generator(COND).sample_noise(7, 2), blocks),
                               atol=1e-5)
    # one label alone: every sample of that class
    generate(COND, 4, tmp_path / "one.npy", seed=2, labels="trouser")
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), tiny_cond(Generator(COND).sample_noise(4, 2), [1] * 4),
                               atol=1e-5)


def test_random_labels_when_none_are_given(tmp_path):
    from ganforge.inference import generate

    result = generate(COND, 9, tmp_path / "x.npy", seed=4)
    assert result.labels is None
    gen = Generator(COND)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), tiny_cond(gen.sample_noise(9, 4), gen.sample_labels(9, 4)),
                               atol=1e-5)


def test_per_class_grid_rows_are_classes_columns_share_noise(tmp_path):
    from PIL import Image

    from ganforge.inference import generate
    from ganforge.inference.render import BORDER, render_grid

    result = generate(COND, None, tmp_path / "x.npy", seed=1, per_class=4, labels=["sneaker", "trouser"])
    assert result.n == 8 and result.labels == ("Sneaker", "Trouser")
    x = np.load(tmp_path / "x.npy")
    z = Generator(COND).sample_noise(4, 1)  # column j: noise vector j of the seed, in every row
    np.testing.assert_allclose(x[:4], tiny_cond(z, [2] * 4), atol=1e-5)
    np.testing.assert_allclose(x[4:], tiny_cond(z, [1] * 4), atol=1e-5)
    # every class, and the PNG is that grid: one row a class, per_class columns
    every = generate(COND, None, tmp_path / "g.png", seed=1, per_class=4)
    assert every.n == 12 and every.labels == ("T-shirt/top", "Trouser", "Sneaker")
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (3 * 8 + 4 * BORDER, 4 * 8 + 5 * BORDER)
    expected = np.asarray(render_grid(tiny_cond(np.tile(z, (3, 1)), np.repeat([0, 1, 2], 4)), "image", nrow=4))
    assert np.abs(grid.astype(int) - expected).max() <= 1  # up to the rounding of onnxruntime against numpy
    # the same seed, batch size or not: the same bytes
    generate(COND, None, tmp_path / "b.png", seed=1, per_class=4, batch_size=5)
    assert (tmp_path / "b.png").read_bytes() == (tmp_path / "g.png").read_bytes()


@pytest.mark.parametrize("model, kwargs, message", [
    (COND, dict(n=8, per_class=2), "pass n or per_class, not both"),
    (COND, dict(n=None, per_class=2, nrow=3), "nrow does not go with per_class"),
    (COND, dict(n=None, per_class=0), "per_class must be >= 1"),
    (COND, dict(n=2, labels=["a", "b", "c"]), "3 labels need at least 3 samples, got n=2"),
    (COND, dict(n=4, labels=[]), "labels is empty"),
    (COND, dict(n=4, labels=["shrt"]), f"unknown label 'shrt'; {KNOWN}$"),
    (COND, dict(n=None, per_class=2, labels=["7"]), "label '7' is out of range"),
    (DATA / "tiny-gray.onnx", dict(n=4, labels=["0"]), "labels need a conditional model"),
    (DATA / "tiny-gray.onnx", dict(n=None, per_class=2), "per-class grids need a conditional model"),
])
def test_bad_label_arguments_write_nothing(tmp_path, monkeypatch, model, kwargs, message):
    from ganforge.inference import generate

    monkeypatch.setattr("onnxruntime.InferenceSession.run", lambda *a, **k: pytest.fail("the model ran"))
    with pytest.raises(GanforgeError, match=message):
        generate(model, out=tmp_path / "g.png", **kwargs)
    assert not list(tmp_path.iterdir())


def test_only_ascii_digits_are_indices(gen):
    with pytest.raises(GanforgeError, match="unknown label '³'"):  # str.isdigit() is true for it, int() refuses it
        gen.parse_labels(["³"])
