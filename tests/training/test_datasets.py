import pickle
import warnings

import numpy as np
import pytest
import torch

from ganforge.errors import ConfigError, DataError, GanforgeWarning
from ganforge.training.data import Batches, real_examples
from ganforge.training.datasets import detect, load_cifar, load_folder, load_idx, parse_classes
from tests.fakedata import write_cifar, write_idx, write_images


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    write_idx(tmp_path, n=30, gz=gz)
    data = load_idx(tmp_path)
    assert data.images.shape == (30, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (30,) and data.labels.dtype == torch.int64
    assert data.images.max() >= 200 and detect(tmp_path) == "idx"


def test_idx_torchvision_root_layout(tmp_path):
    write_idx(tmp_path / "FashionMNIST" / "raw", n=12, gz=False)
    assert len(load_idx(tmp_path, dataset="fashion-mnist")) == 12
    with pytest.raises(DataError, match="no MNIST-format files"):
        load_idx(tmp_path, dataset="mnist")


def test_idx_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_idx(tmp_path / "missing")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_idx(tmp_path)
    write_idx(tmp_path, n=10, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100])  # truncated
    with pytest.raises(DataError, match="not a readable IDX file"):
        load_idx(tmp_path)


def test_cifar_filter_by_names_and_indices(tmp_path):
    write_cifar(tmp_path, per_batch=12)
    data = load_cifar(tmp_path, classes=["automobile"])
    raw = [pickle.load(open(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}", "rb")) for i in range(1, 6)]
    n_cars = sum(lbl == 1 for b in raw for lbl in b["labels"])
    assert len(data) == n_cars and data.images.shape[1:] == (3, 32, 32) and data.classes == ["automobile"]
    first = raw[0]["data"][0].reshape(3, 32, 32)
    assert torch.equal(data.images[0], torch.from_numpy(first))  # channel order as CIFAR stores it
    both = load_cifar(tmp_path, classes=["1", "truck"])
    assert both.classes == ["automobile", "truck"] and set(both.labels.tolist()) <= {0, 1}
    assert len(both) == n_cars + sum(lbl == 9 for b in raw for lbl in b["labels"])


def test_cifar_errors(tmp_path):
    write_cifar(tmp_path, skip=("data_batch_3",))
    with pytest.raises(DataError, match="missing data_batch_3"):
        load_cifar(tmp_path, classes=["automobile"])
    with pytest.raises(ConfigError, match="unknown class 'spaceship'.*0=airplane.*9=truck"):
        parse_classes(["spaceship"])


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_batch_never_runs_code(tmp_path, capsys):
    write_cifar(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": []}, f)
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        load_cifar(tmp_path, classes=["automobile"])
    assert "pwned" not in capsys.readouterr().out


def test_image_folder_flat_and_classes(tmp_path):
    write_images(tmp_path / "flat", n=5, size=(40, 36))
    flat = load_folder(tmp_path / "flat", image_size=32, channels=3)
    assert flat.images.shape == (5, 3, 32, 32) and flat.classes == ["images"]
    write_images(tmp_path / "classes", n=6, classes=("cats", "dogs"))
    data = load_folder(tmp_path / "classes", image_size=(16, 24), channels=1)
    assert data.images.shape == (6, 1, 16, 24) and data.classes == ["cats", "dogs"]
    assert sorted(data.labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_image_folder_skips_corrupt_and_warns_on_upscale(tmp_path):
    write_images(tmp_path, n=3, size=(20, 20), corrupt=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_folder(tmp_path, image_size=32, channels=3)
    messages = [str(w.message) for w in caught if issubclass(w.category, GanforgeWarning)]
    assert len(data) == 3
    assert any("skipped 2 of 5" in m for m in messages) and any("3 of 3 images" in m and "upscaled" in m for m in messages)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_folder(tmp_path / "empty", image_size=32, channels=3)
    write_images(tmp_path / "bad", n=0, corrupt=3)
    with pytest.raises(DataError, match="none of the 3 image files"):
        load_folder(tmp_path / "bad", image_size=32, channels=3)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        load_folder(tmp_path / "file.txt", image_size=32, channels=3)


def test_batches_turn_uint8_into_float_in_range(tmp_path):
    write_idx(tmp_path, n=10)
    data = load_idx(tmp_path)
    batches = list(Batches(data, 4, torch.device("cpu")))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    x = torch.cat(batches)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() <= 1 and x.max() > 0.5
    assert sorted(x.sum((1, 2, 3)).tolist()) == sorted(real_examples(data, 10).sum((1, 2, 3)).tolist())
    assert np.isclose(real_examples(data, 3).min().item(), -1)
