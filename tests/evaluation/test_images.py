import numpy as np
import pytest

from ganforge.errors import DataError
from ganforge.evaluation import evaluate
from ganforge.evaluation import images as E
from ganforge.training.datasets import load_folder, load_idx
from tests.fakedata import write_idx, write_images


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")


def test_evaluator_learns_classes_and_is_cached(tmp_path):
    data = load_idx(write_idx(tmp_path / "idx", n=200))
    ev = E.train_evaluator(data, steps=150)
    assert ev.task == "classes" and ev.accuracy > 0.5  # labels are learnable from the fake digits
    again = E.train_evaluator(data, steps=150)
    assert (again.fingerprint, again.accuracy) == (ev.fingerprint, ev.accuracy)
    assert len(list(E.CACHE.glob("*.pt"))) == 1
    feats = ev.embed(data.images[:7])
    assert feats.shape == (7, E.FEATURES)
    real = data.images.numpy()
    same = E.compare(ev, real[:100], real[:100], data.labels.numpy()[:100])
    assert same["frechet_distance"] == pytest.approx(0, abs=1e-2) and same["precision"] == 1.0
    noise = np.random.default_rng(0).uniform(-1, 1, (100, 1, 28, 28)).astype(np.float32)
    far = E.compare(ev, real[:100], noise, data.labels.numpy()[:100])
    assert far["frechet_distance"] > 1.0 and far["coverage"] < 0.2


def test_unlabelled_folder_uses_rotation(tmp_path):
    data = load_folder(write_images(tmp_path / "imgs", n=12, size=(16, 16)), image_size=16, channels=3)
    ev = E.train_evaluator(data, steps=5, cache=False)
    assert ev.task == "rotation" and ev.classes == ["0", "90", "180", "270"]


def test_gan_eval_on_an_exported_image_model(tmp_path, fake_data):
    from ganforge.export import export
    from ganforge.training import train

    run = train("mnist-mlp", epochs=1, data=str(fake_data / "idx"),
                sets=["latent_size=8", "hidden_size=16", "batch_size=16"], runs_dir=tmp_path / "runs",
                progress=False, device="cpu")
    export(run.run_dir, formats="onnx")
    report = evaluate(run.run_dir, data=fake_data / "idx", n=16, out_dir=tmp_path / "eval", evaluator_steps=20)
    assert report["evaluator"]["kind"] == "image" and report["evaluator"]["fingerprint"]
    assert report["n_real"] == 32 and report["n_generated"] == 16
    g, f = report["generated"], report["floor"]
    assert set(g) >= {"frechet_distance", "precision", "recall", "density", "coverage", "class_histogram"}
    assert f["frechet_distance"] < g["frechet_distance"]  # 1 epoch on 40 images: far from the floor
    assert "Evaluator: classes network" in (tmp_path / "eval" / "eval.md").read_text()
    with pytest.raises(DataError, match="needs --data"):
        evaluate(run.run_dir, n=16)


def test_label_accuracy_counts_hits_per_class():
    class Stub:
        accuracy, class_accuracy = 0.9, [1.0, 0.8]

        def predict(self, fake):
            return np.array([0, 0, 1, 0, 1, 1])

    out = E.label_accuracy(Stub(), np.zeros(6), np.array([0, 0, 0, 1, 1, 1]), ["a", "b"])
    assert out["accuracy"] == pytest.approx(4 / 6) and out["per_class"] == {"a": pytest.approx(2 / 3, abs=1e-4),
                                                                            "b": pytest.approx(2 / 3, abs=1e-4)}
    assert out["ceiling"] == 0.9 and out["ceiling_per_class"] == {"a": 1.0, "b": 0.8} and out["n"] == 6


def test_gan_eval_measures_label_accuracy_of_a_conditional_model(tmp_path):
    from ganforge.export import export
    from ganforge.training import train

    data = write_idx(tmp_path / "idx", n=200)
    run = train("mnist-mlp", epochs=1, data=str(data), sets=["latent_size=8", "hidden_size=16", "batch_size=16",
                                                             "conditional=true"],
                runs_dir=tmp_path / "runs", progress=False, device="cpu")
    export(run.run_dir, formats="onnx")
    report = evaluate(run.run_dir, data=data, n=40, out_dir=tmp_path / "eval", evaluator_steps=150)
    cond = report["conditional"]
    assert cond["n"] == 40 and 0 <= cond["accuracy"] <= 1 and set(cond["per_class"]) == {str(i) for i in range(10)}
    assert cond["ceiling"] == report["evaluator"]["accuracy"] and len(cond["ceiling_per_class"]) == 10
    assert "Conditional: the evaluator classifies" in (tmp_path / "eval" / "eval.md").read_text()


def test_per_class_recall_tells_a_class_that_collapsed():
    """Class 0's generated samples are one image repeated (recall near 0), class 1's are real
    images of class 1 (recall near its floor)."""

    class Identity:
        def embed(self, x):
            return np.asarray(x, dtype=np.float64).reshape(len(x), -1)

    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 4)) + np.repeat([[0.0] * 4, [10.0] * 4], 100, axis=0)
    labels = np.repeat([0, 1], 100)
    other = rng.normal(size=(200, 4)) + np.repeat([[0.0] * 4, [10.0] * 4], 100, axis=0)
    fake = np.concatenate([np.repeat(real[:1], 100, axis=0), rng.normal(size=(100, 4)) + 10.0])
    out = E.per_class(Identity(), (real, labels), (other, labels), (fake, labels), ["a", "b"])
    assert out["a"]["recall"] < 0.05 and out["a"]["floor_recall"] > 0.8
    assert out["b"]["recall"] > 0.8 and out["b"]["n_generated"] == 100


def test_an_evaluator_cache_link_out_of_the_cache_folder_is_refused_before_training(tmp_path):
    from ganforge.errors import GanforgeError

    data = load_idx(write_idx(tmp_path / "idx", n=40))
    E.CACHE.mkdir()
    elsewhere = tmp_path / "precious.pt"
    elsewhere.write_bytes(b"a user's file")
    (E.CACHE / f"{E.fingerprint(data)}-5.pt").symlink_to(elsewhere)
    with pytest.raises(GanforgeError, match=r"refusing to write .*-5.pt: .* is a link to .*precious.pt, outside the "
                                            r"cache folder"):
        E.train_evaluator(data, steps=5)
    assert elsewhere.read_bytes() == b"a user's file"
    assert E.train_evaluator(data, steps=5, cache=False).task == "classes"  # no cache: nothing to refuse
