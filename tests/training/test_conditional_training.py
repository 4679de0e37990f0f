"""Conditional generation (conditional=true): data labels, models, loop, grids, export."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganforge.errors import ConfigError, DataError
from ganforge.export import export
from ganforge.inference import Generator as OnnxGenerator
from ganforge.training import VARIANTS, checkpoint, get_variant, train
from ganforge.training.request import TrainRequest, new_config
from ganforge.training.conditional import ClassProjection, LatentClassEmbedding, discriminate, projection_for
from ganforge.training.config import resolve
from ganforge.training.data import Batches
from ganforge.training.datasets import FASHION_CLASSES, ImageData, load_idx, parse_classes
from tests.conftest import TINY
from tests.fakedata import write_idx, write_images

CONDITIONAL = sorted(name for name, v in VARIANTS.items() if v.config_cls.SUPPORTS_CONDITIONAL)


def test_the_image_variants_support_it_and_sine_says_so():
    assert CONDITIONAL == ["dcgan", "mnist-mlp", "wgan", "wgan-gp"]
    v = get_variant("sine")
    with pytest.raises(ConfigError, match="sine has no classes to condition on; conditional=true works for "
                                          "mnist-mlp, dcgan, wgan, wgan-gp"):
        new_config(v, TrainRequest(sets=["conditional=true"]))
    v = get_variant("mnist-mlp")
    with pytest.raises(ConfigError, match="come from the data with conditional=true"):
        resolve(v, sets=["num_classes=3"])


def test_labels_travel_with_their_images():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    data = ImageData(images, torch.arange(10) % 3, ["a", "b", "c"], "test")
    torch.manual_seed(0)
    seen = []
    for x, y in Batches(data, 4, torch.device("cpu"), labels=True):
        index = ((x[:, 0, 0, 0] + 1) * 127.5).round().long()  # back from [-1, 1] to the uint8 value = index
        assert torch.equal(y, index % 3) and y.dtype == torch.int64
        seen += index.tolist()
    assert sorted(seen) == list(range(10))
    assert all(not isinstance(b, tuple) for b in Batches(data, 4, torch.device("cpu")))


def test_fashion_mnist_gets_its_class_names(tmp_path):
    assert load_idx(write_idx(tmp_path / "digits", n=60)).classes == [str(i) for i in range(10)]
    assert load_idx(write_idx(tmp_path / "fashion-mnist", n=60)).classes == list(FASHION_CLASSES)
    assert load_idx(write_idx(tmp_path / "x", n=60), dataset="fashion-mnist").classes[7] == "Sneaker"
    assert parse_classes(["all"]) == list(range(10))


def test_projection_discriminator_adds_the_class_term_before_the_sigmoid():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.LeakyReLU(0.2), nn.Linear(5, 1), nn.Sigmoid())
    proj = projection_for(net, 3)
    assert isinstance(proj, ClassProjection) and proj.embed.weight.shape == (3, 5)
    x, y = torch.randn(6, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    h = net[:3](x)
    want = torch.sigmoid(net[3](h) + (proj.embed.weight[y] * h).sum(1, keepdim=True))
    torch.testing.assert_close(discriminate(net, proj, x, y), want)
    assert not torch.allclose(discriminate(net, proj, x, y), discriminate(net, proj, x, (y + 1) % 3))
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 2))
    proj = projection_for(conv, 2)
    h = conv[:2](torch.randn(2, 3, 4, 4))
    assert proj.embed.weight.shape == (2, 4) and proj(h, torch.tensor([0, 1])).shape == (2, 1)
    with pytest.raises(ValueError, match="needs labels"):
        discriminate(net, projection_for(net, 3), x, None)


def test_the_class_is_an_offset_of_the_noise():
    emb = LatentClassEmbedding(3, 4)
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 2, 1])
    torch.testing.assert_close(emb(z, y), z + emb.weight[y])


@pytest.fixture(scope="module")
def conditional_data(tmp_path_factory, fake_data):
    root = tmp_path_factory.mktemp("cond-data")
    write_images(root / "folder", n=12, size=(20, 18), classes=("cats", "dogs", "owls"))
    return {"idx": fake_data / "idx", "cifar": fake_data / "cifar", "images": root / "folder"}


@pytest.fixture(scope="module")
def conditional_runs(tmp_path_factory, fake_data, conditional_data):
    runs = tmp_path_factory.mktemp("cond-runs")
    out = {}
    for name in CONDITIONAL:
        sets = {**TINY[name](fake_data), "conditional": "true", "sample_count": 6}
        if name == "wgan-gp":
            sets["data"] = conditional_data["images"]
        out[name] = train(name, epochs=2, sets=[f"{k}={v}" for k, v in sets.items()], runs_dir=runs,
                          progress=False, device="cpu")
    return out


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_variants_train_on_their_labels(name, conditional_runs):
    run = conditional_runs[name]
    state = checkpoint.load(run.checkpoint)
    cfg = state["config"]
    want = {"mnist-mlp": [str(i) for i in range(10)], "wgan": [str(i) for i in range(10)],
            "dcgan": ["automobile", "truck"], "wgan-gp": ["cats", "dogs", "owls"]}[name]
    assert cfg["conditional"] and cfg["class_names"] == want and cfg["num_classes"] == len(want)
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["class_names"] == want
    G, _, _ = checkpoint.build_generator(state)
    z = torch.randn(4, G.latent_dim)
    with torch.no_grad():
        a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)  # the label changes the sample
    # the per-epoch grid: one row per class, each row the same noise under another class
    grid = Image.open(run.run_dir / "samples" / "epoch-0002.png")
    h, w = G.sample_shape[1:]
    per_class = len(state["fixed_noise"]) // len(want)
    assert len(state["fixed_noise"]) == per_class * len(want) and per_class >= 4
    assert torch.equal(state["fixed_noise"][:per_class], state["fixed_noise"][-per_class:])
    assert grid.size == (per_class * (w + 2) + 2, len(want) * (h + 2) + 2)


def test_conditional_resume_goes_on(conditional_runs):
    before = checkpoint.load(conditional_runs["mnist-mlp"].checkpoint)
    result = train(resume=conditional_runs["mnist-mlp"].run_dir, epochs=3, progress=False, device="cpu")
    after = checkpoint.load(result.checkpoint)
    assert after["epoch"] == 3 and torch.equal(after["fixed_noise"], before["fixed_noise"])
    assert after["config"]["class_names"] == before["config"]["class_names"]


def test_one_class_is_refused_before_a_run_folder_exists(tmp_path, fake_data):
    sets = [f"{k}={v}" for k, v in TINY["wgan-gp"](fake_data).items()] + ["conditional=true"]
    with pytest.raises(DataError, match="needs two or more classes; the data .*has one .'faces'.: "
                                        "put each class.*subfolder of its own"):
        train("wgan-gp", epochs=1, sets=sets, runs_dir=tmp_path / "runs", progress=False)
    sets = [f"{k}={v}" for k, v in TINY["dcgan"](fake_data).items() if k != "classes"] + ["conditional=true"]
    with pytest.raises(DataError, match="classes=all"):
        train("dcgan", epochs=1, sets=sets, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_export_every_format(name, conditional_runs):
    run = conditional_runs[name]
    result = export(run.run_dir, formats="all")
    report = json.loads(result.report.read_text())
    state = checkpoint.load(run.checkpoint)
    names = state["config"]["class_names"]
    assert report["num_classes"] == len(names) and report["class_names"] == names
    for key, entry in report["artifacts"].items():
        assert all(c["passed"] for c in entry["checks"]), key
        assert [c["batch_size"] for c in entry["checks"] if c["name"] == "parity"] == [1, 3, 64, 257], key
    onnx_checks = [c["name"] for c in report["artifacts"]["onnx"]["checks"]]
    assert "class_embedding" in onnx_checks and "io_types" in onnx_checks
    gen = OnnxGenerator(result.artifacts["onnx"], device="cpu")
    info = gen.info
    G, _, _ = checkpoint.build_generator(state)
    assert info.num_classes == len(names) and list(info.class_names) == names
    np.testing.assert_array_equal(np.array(info.class_embedding, np.float32),
                                  G.class_embedding.weight.detach().numpy())
    z, labels = gen.sample_noise(7, seed=3), np.arange(7) % len(names)
    with torch.no_grad():
        want = G(torch.from_numpy(z), torch.from_numpy(labels)).numpy()
    np.testing.assert_allclose(gen(z, labels), want, atol=1e-4, rtol=0)
    pbtxt = (result.artifacts["triton"] / "config.pbtxt").read_text()
    assert 'name: "labels"\n    data_type: TYPE_INT64\n    dims: [ 1 ]\n    reshape: { shape: [ ] }' in pbtxt


def test_conditional_fp16_and_int8(conditional_runs):
    run = conditional_runs["mnist-mlp"].run_dir
    fp16 = json.loads(export(run, formats="onnx", precision="fp16").report.read_text())["artifacts"]["onnx-fp16"]
    assert all(c["passed"] for c in fp16["checks"]) and fp16["deviation_from_fp32"] <= 1e-2
    int8 = json.loads(export(run, formats="onnx", precision="int8").report.read_text())["artifacts"]["onnx-int8"]
    assert all(c["passed"] for c in int8["checks"]) and int8["deviation_from_fp32"] <= 5e-2
