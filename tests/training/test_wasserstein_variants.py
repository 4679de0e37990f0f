import itertools
import json

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError, DataError
from ganforge.training import get_variant, train
from ganforge.training.config import resolve
from ganforge.training.variants import wgan, wgan_gp
from tests.fakedata import write_images

SIZES = [(28, 28), (32, 32), (48, 48), (64, 40), (8, 8), (13, 7), (5, 33), (2, 2)]


@pytest.mark.parametrize("size", SIZES)
def test_plan_formulas_and_shapes(size):
    for n, channels, stride_pad in itertools.product((1, 2, 3, 4, 6), (1, 3), (None, 1)):
        if n > max(size) - 1:
            with pytest.raises(ConfigError, match=f"cannot plan {n} generator layers for {size[0]}x{size[1]}"):
                wgan.plan_generator(size, n)
            continue
        kwargs = {}
        if stride_pad:  # stride 1 everywhere, padding 1 where it keeps K >= 2
            kwargs = {"strides": [1] * n, "paddings": [1] * n}
        g_blocks = wgan.plan_generator(size, n, **kwargs)
        c_blocks = wgan.plan_critic(size, n, **kwargs)
        assert g_blocks[0].in_size == (1, 1) and g_blocks[-1].out_size == size
        assert c_blocks[0].in_size == size and c_blocks[-1].out_size == (1, 1)
        for b in g_blocks:  # K = out - stride*(in - 1) + 2p, per dim
            for d in (0, 1):
                assert b.kernel[d] == b.out_size[d] - b.stride[d] * (b.in_size[d] - 1) + 2 * b.padding[d] >= 1
        for b in c_blocks:  # K = in + 2p - stride*(out - 1)
            for d in (0, 1):
                assert b.kernel[d] == b.in_size[d] + 2 * b.padding[d] - b.stride[d] * (b.out_size[d] - 1) >= 1
        G = wgan.Generator(5, channels, g_blocks, hidden_dim=2)
        C = wgan.Critic(channels, c_blocks, hidden_dim=2)
        x = G(torch.randn(3, 5))
        assert x.shape == (3, channels, *size) and C(x).shape == (3, 1)


def test_impossible_strides_are_refused_with_the_layer():
    with pytest.raises(ConfigError, match=r"generator layer 2 of 2 cannot map 5x5 to 28x28 with stride 7"):
        wgan.plan_generator((28, 28), 2, strides=[1, 7])
    with pytest.raises(ConfigError, match="g_strides has 1 values but there are 3 layers"):
        wgan.plan_generator((28, 28), 3, strides=[2])
    v = get_variant("wgan")
    with pytest.raises(ConfigError, match="try n_layers=3"):
        resolve(v, sets=["image_size=8,8", "n_layers=8"])


def test_critic_has_batchnorm_only_with_clipping():
    cfg = wgan.WGANConfig(image_size=[28, 28], channels=1, n_layers=3, hidden_dim=4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in wgan.build_critic(cfg).modules())
    cfg.penalty = "clip"
    assert any(isinstance(m, nn.BatchNorm2d) for m in wgan.build_critic(cfg).modules())
    assert not any(isinstance(m, (nn.BatchNorm2d,)) for m in wgan_gp.Critic(16, 4).modules())


def test_wgan_takes_the_data_size_and_clip_penalty_trains(tmp_path, fake_data):
    sets = ["latent_dim=8", "hidden_dim=4", "n_layers=3", "batch_size=8", "n_critic=2", "penalty=clip",
            "sample_count=4"]
    result = train("wgan", data=str(fake_data / "idx"), epochs=1, sets=sets, runs_dir=tmp_path, progress=False,
                   device="cpu")
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["image_size"] == [28, 28] and config["channels"] == 1 and config["penalty"] == "clip"
    state = torch.load(result.checkpoint, weights_only=True)
    critic_weights = torch.cat([v.flatten() for k, v in state["discriminator"].items() if "running" not in k
                                and "num_batches" not in k])
    assert critic_weights.abs().max() <= 0.01 + 1e-7
    # 40 images / 8 = 5 critic steps, G every 2nd: 2 generator steps
    assert state["step"] == 5


def test_wgan_non_square_folder_resized(tmp_path):
    write_images(tmp_path / "imgs", n=6, size=(50, 30))
    sets = ["latent_dim=4", "hidden_dim=2", "n_layers=3", "batch_size=3", "n_critic=1", "image_size=20,12",
            "channels=3", "sample_count=2"]
    result = train("wgan", data=str(tmp_path / "imgs"), epochs=1, sets=sets, runs_dir=tmp_path / "r",
                   progress=False, device="cpu")
    from ganforge.training import checkpoint

    G, _, _ = checkpoint.build_generator(checkpoint.load(result.checkpoint))
    assert G.sample_shape == (3, 20, 12)
    from ganforge.export import export
    from ganforge.inference import Generator

    onnx_path = export(result.run_dir, formats="onnx").artifacts["onnx"]  # parity checked at 1, 3, 64 inside
    gen = Generator(onnx_path, device="cpu")
    assert gen.info.sample_shape == (3, 20, 12) and gen.generate(5).shape == (5, 3, 20, 12)


def test_wgan_gp_image_size_and_norm_checked():
    v = get_variant("wgan-gp")
    with pytest.raises(ConfigError, match="image_size must be 4 \\* 2\\^k.*try 32 or 64"):
        resolve(v, sets=["image_size=48"])
    with pytest.raises(ConfigError, match="critic_norm must be one of layernorm, none"):
        resolve(v, sets=["critic_norm=batchnorm"])


def test_parameters_json_as_the_source_uses_it(tmp_path, monkeypatch):
    write_images(tmp_path / "dataset" / "mine", n=8, size=(12, 12))  # smaller than image_size: upscaled
    params = json.loads(open("examples/wgan-gp/parameters.json").read())
    params.update({"image_size": 16, "latent_dim": 8, "g_features": 4, "d_features": 4, "batch_size": 4,
                   "epochs": 1, "n_critic": 2, "runs_dir": "out", "sample_count": 4})
    (tmp_path / "parameters.json").write_text(json.dumps(params))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="8 of 8 images .* smaller than 16x16"):
        result = train(config_file="parameters.json", progress=False, device="cpu")
    assert result.variant == "wgan-gp" and result.run_dir.resolve().parent == (tmp_path / "out").resolve()
    assert (result.run_dir / "train.log").exists() and (result.run_dir / "samples" / "epoch-0001.png").exists()


def test_parameters_json_errors_name_file_and_key(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"variant": "wgan-gp", "lr": 0.1}))
    with pytest.raises(ConfigError, match=r"unknown config key 'lr' in .*p.json; valid keys: .*learning_rate"):
        train(config_file=tmp_path / "p.json")
    (tmp_path / "p.json").write_text(json.dumps({"variant": "wgan-gp", "epochs": "many"}))
    with pytest.raises(ConfigError, match="epochs expects int, got 'many'"):
        train(config_file=tmp_path / "p.json")


def test_wgan_gp_bad_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        train("wgan-gp", data=str(tmp_path / "empty"), runs_dir=tmp_path / "r")
    write_images(tmp_path / "junk", n=0, corrupt=2)
    with pytest.raises(DataError, match="none of the 2 image files"):
        train("wgan-gp", data=str(tmp_path / "junk"), runs_dir=tmp_path / "r")
    with pytest.raises(DataError, match="does not exist"):
        train("wgan-gp", runs_dir=tmp_path / "r")  # default data folder "dataset" is absent
    assert not (tmp_path / "r").exists()
