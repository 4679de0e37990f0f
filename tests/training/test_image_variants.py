import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError, DataError
from ganforge.export import export
from ganforge.inference import Generator as OnnxGenerator
from ganforge.training import checkpoint, get_variant, train
from ganforge.training.config import resolve
from ganforge.training.variants import dcgan, mnist_mlp
from tests.fakedata import write_cifar, write_images


def test_mnist_mlp_networks():
    G, D = mnist_mlp.Generator(64, 256), mnist_mlp.Discriminator(256)
    linears = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    assert linears == [(64, 256), (256, 256), (256, 784)]
    assert isinstance(list(G.net)[-1], nn.Tanh) and isinstance(list(D.net)[-1], nn.Linear)  # logits
    x = G(torch.randn(5, 64))
    assert x.shape == (5, 1, 28, 28) and D(x).shape == (5, 1)


def test_mnist_mlp_keeps_the_source_knob_names():
    v = get_variant("mnist-mlp")
    cfg = resolve(v, sets=["num_epochs=3", "latent_size=16", "hidden_size=32",
                                                      "learning_rate=1e-3"])
    assert (cfg.epochs, cfg.latent_size, cfg.hidden_size, cfg.learning_rate) == (3, 16, 32, 1e-3)
    with pytest.raises(ConfigError, match="num_epochs"):  # listed among the valid keys
        resolve(v, sets=["epochz=3"])


def test_dcgan_networks():
    G, D = dcgan.Generator(100, 64), dcgan.Discriminator(64)
    x = G(torch.randn(4, 100))
    assert x.shape == (4, 3, 32, 32) and D(x).shape == (4, 1)
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    convs = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(convs.std().item() - 0.02) < 0.002  # DCGAN init


def test_dcgan_unknown_class_lists_the_ten():
    v = get_variant("dcgan")
    with pytest.raises(ConfigError, match="unknown class 'spaceship'.*1=automobile"):
        resolve(v, sets=["classes=spaceship"])
    cfg = resolve(v, sets=["classes=automobile,9"])
    assert cfg.classes == ["automobile", "9"]


def test_dcgan_trains_on_an_image_folder_and_exports_batchnorm_in_eval_mode(tmp_path):
    write_images(tmp_path / "imgs", n=12, size=(48, 40), classes=("a", "b"), corrupt=1)
    sets = ["latent_dim=8", "g_features=4", "d_features=4", "batch_size=4", "sample_count=4"]
    with pytest.warns(UserWarning, match="skipped 1 of 13"):
        result = train("dcgan", data=str(tmp_path / "imgs"), epochs=2, sets=sets, runs_dir=tmp_path / "runs",
                       progress=False, device="cpu")
    exported = export(result.run_dir, formats="all")
    G, _, _ = checkpoint.build_generator(checkpoint.load(result.checkpoint))
    z = np.random.default_rng(0).standard_normal((6, 8), dtype=np.float32)
    got = OnnxGenerator(exported.artifacts["onnx"], device="cpu")(z)
    with torch.no_grad():
        eval_out = G.eval()(torch.from_numpy(z)).numpy()
        train_out = G.train()(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(got, eval_out, atol=1e-4)
    assert np.abs(got - train_out).max() > 1e-3  # batch statistics would give something else


def test_dcgan_bad_data(tmp_path):
    write_cifar(tmp_path / "c", skip=("data_batch_5",))
    with pytest.raises(DataError, match="missing data_batch_5"):
        train("dcgan", data=str(tmp_path / "c"), runs_dir=tmp_path / "runs")
    with pytest.raises(DataError, match="does not exist"):
        train("dcgan", data=str(tmp_path / "nope"), runs_dir=tmp_path / "runs")
    with pytest.raises(DataError, match="needs --data"):
        train("mnist-mlp", runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
