"""Your own architecture on ganforge's loop (gan-train --generator FILE.py:G ...): a module file
written here trains, resumes, exports and serves like a variant; the code a checkpoint names
is imported only to resume or export that run, with a notice, and refused in one line when it
is gone or the record is not a plain spec; every mistake is one line before a run folder exists."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganforge.errors import CheckpointError, ConfigError, GanforgeWarning
from ganforge.export import export
from ganforge.export.cli import main as export_main
from ganforge.inference import Generator
from ganforge.train_cli import main
from ganforge.training import checkpoint
from ganforge.training.accel import use_channels_last
from ganforge.training.losses import HingeObjective, WassersteinObjective, make_objective
from ganforge.training.variants import CUSTOM, count_parameters
from ganforge.training.variants.custom import CustomConfig, UserDiscriminator, UserGenerator

MODULES = '''
import torch
from torch import nn


class ConvG(nn.Module):
    """z [B, nz, 1, 1] -> x [B, nc, 16, 16]"""

    def __init__(self, nz=16, ngf=8, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())  # 16x16

    def forward(self, z):
        return self.main(z)


class ConvD(nn.Module):
    """x [B, nc, 16, 16] -> [B, 1, 1, 1]"""

    def __init__(self, ndf=8, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 8x8
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 4x4
            nn.Conv2d(ndf * 2, 1, 4, 1, 0))  # 1x1

    def forward(self, x):
        return self.main(x)


class MlpG(nn.Module):
    """z [B, nz] -> x [B, 1, 28, 28]"""

    def __init__(self, nz=16, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(nz, hidden), nn.ReLU(), nn.Linear(hidden, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class MlpD(nn.Module):
    """x [B, 1, 28, 28] -> [B]"""

    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


class NotAModule:
    pass


class Fails(nn.Module):
    def __init__(self):
        raise ValueError("no weights here")


class PatchD(ConvD):
    def forward(self, x):
        return self.main[:2](x)[:, :1]  # B x 1 x 8 x 8: a score a patch


class SigmoidD(ConvD):
    def __init__(self):
        super().__init__()
        self.main.append(nn.Sigmoid())


class LoudG(MlpG):
    def __init__(self):
        super().__init__()
        self.net[-1] = nn.Identity()  # no Tanh
        with torch.no_grad():
            self.net[-2].bias.fill_(3.0)


class NeedsValues(ConvD):
    """A constructor that reads a tensor's value: cannot be built on the meta device."""

    def __init__(self):
        super().__init__(ndf=int(torch.tensor(8).item()))
'''
CONV_SETS = ("--set", "image_size=16", "--set", "batch_size=4", "--set", "sample_count=4", "--device", "cpu")


def _invoke(command, *args):
    """A CLI in this process: (exit code, output with stderr, the exception that ended it)."""
    result = CliRunner().invoke(command, [str(a) for a in args])
    return result.exit_code, result.output, result.exception


def _train(*args):
    code, output, exc = _invoke(main, *args)
    assert code == 0, (exc, output)
    return output


def _one_line_error(code, output, exception) -> str:
    assert code == 1 and isinstance(exception, SystemExit), (exception, output)  # a click error, not a crash
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


def _conv(own, g="ConvG", d="ConvD"):
    return ("--generator", f"{own}/my.py:{g}", "--discriminator", f"{own}/my.py:{d}", "--latent-shape", "16,1,1")


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A folder holding the user's module file, my.py."""
    root = tmp_path_factory.mktemp("own")
    (root / "my.py").write_text(MODULES)
    return root


@pytest.fixture(scope="module")
def conv_run(own, fake_data):
    """One epoch of the DCGAN-like pair on 16x16 images (later tests resume and export it)."""
    _train(*_conv(own), "--data", fake_data / "images", "--epochs", 1, "--runs-dir", own / "runs", *CONV_SETS)
    return (own / "runs" / "latest").resolve()


@pytest.fixture
def moved(own):
    """Moves my.py away for the test, and back after it."""
    (own / "my.py").rename(own / "moved.py")
    yield own / "my.py"
    (own / "my.py").unlink(missing_ok=True)
    (own / "moved.py").rename(own / "my.py")


def test_own_conv_modules_train_and_resume_where_they_stopped(conv_run, own):
    config = json.loads((conv_run / "config.json").read_text())
    assert (config["variant"], config["generator"], config["latent_shape"]) == ("custom", f"{own}/my.py:ConvG",
                                                                                  [16, 1, 1])
    assert (config["image_size"], config["channels"], config["loss"]) == ([16, 16], 3, "bce")
    first = checkpoint.load(conv_run / "checkpoints" / "last.pt")
    assert (first["epoch"], first["step"]) == (1, 3)  # 12 images, batches of 4
    assert any(k.startswith("net.main.") for k in first["generator"])  # the user's module inside the adapter

    output = _train("--resume", conv_run, "--epochs", 2)
    assert f"importing {own}/my.py:ConvG and {own}/my.py:ConvD (this runs it)" in output
    assert "trained 1 epochs (2 in all) of custom" in output
    state = checkpoint.load(conv_run / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step"], len(state["history"])) == (2, 6, 2)  # it went on from step 3
    assert state["history"][0] == first["history"][0]
    assert not torch.equal(state["generator"]["net.main.0.weight"], first["generator"]["net.main.0.weight"])


def test_own_conv_modules_export_with_every_check_and_serve(conv_run, tmp_path):
    result = export(conv_run, formats="onnx", out_dir=tmp_path / "export")
    assert result.checks["onnx"] and all(c.passed for c in result.checks["onnx"])
    assert {c.name for c in result.checks["onnx"]} >= {"eval_mode", "metadata"}
    report = json.loads(result.report.read_text())
    assert (report["variant"], report["latent_dim"], report["sample_shape"]) == ("custom", 16, [3, 16, 16])
    gen = Generator(result.artifacts["onnx"], device="cpu")
    x = gen.generate(8)
    assert x.shape == (8, 3, 16, 16) and np.abs(x).max() <= 1 and x.std() > 0
    G, _, _ = checkpoint.build_generator(checkpoint.load(conv_run / "checkpoints" / "last.pt"))
    z = gen.sample_noise(8, 0)
    with torch.no_grad():
        np.testing.assert_allclose(x, G(torch.from_numpy(z)).numpy(), atol=1e-4)


def test_loading_a_checkpoint_never_imports_its_code_resume_and_export_do(conv_run, own, capsys):
    marker = own / "imported"
    original = (own / "my.py").read_text()
    (own / "my.py").write_text(f"open({str(marker)!r}, 'w').close()\n" + original)
    try:
        state = checkpoint.load(conv_run / "checkpoints" / "last.pt")
        assert not marker.exists() and capsys.readouterr().err == ""
        checkpoint.build_generator(state)
        assert marker.exists()
        assert f"note: the checkpoint names code of its own: importing {own}/my.py:ConvG" in capsys.readouterr().err
    finally:
        (own / "my.py").write_text(original)
        marker.unlink(missing_ok=True)


def test_a_moved_module_file_is_refused_in_one_line_on_resume_and_export(conv_run, own, moved):
    line = _one_line_error(*_invoke(main, "--resume", conv_run, "--epochs", 3))
    assert f"was trained with {own}/my.py:ConvG, which cannot be imported now ({moved} is not a file): " \
           f"restore it there" in line
    line = _one_line_error(*_invoke(export_main, conv_run, "--out", own / "nowhere"))
    assert f"the checkpoint was trained with {own}/my.py:ConvG, which cannot be imported now" in line
    moved.write_text(MODULES.replace("class ConvG(", "class Renamed("))  # the file is back, the class is not
    with pytest.raises(CheckpointError, match=f"{own}/my.py:ConvG, which cannot be imported now .*has no 'ConvG'"):
        export(conv_run, formats="onnx", out_dir=own / "nowhere")
    assert not (own / "nowhere").exists()


@pytest.mark.parametrize(("key", "value", "match"), [
    ("generator", "__import__('os').system('true'):G", "generator must name a class as path/to/file.py:Name"),
    ("generator", "my.py:G; rm -rf ~", "generator must name a class"),
    ("discriminator", "my.py\n:D", "discriminator must name a class"),
    ("generator", ["my.py:G"], "generator expects str"),
    ("generator", "my.py:ConvG", r"it names code by a relative path \('my.py:ConvG'\)"),
    ("init_args", {"width": 10**12}, "init_args holds 1000000000000, more than"),
    ("init_args", {"data": "x" * 20_000}, "init_args is longer than"),
    ("latent_shape", [4096, 4096], "--latent-shape 4096,4096: give 1 to 4 positive sizes"),
])
def test_a_recorded_spec_that_is_not_plain_is_refused_on_load(conv_run, tmp_path, key, value, match):
    state = torch.load(conv_run / "checkpoints" / "last.pt", weights_only=True)
    state["config"][key] = value
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=f"checkpoint config does not fit variant custom: .*{match}"):
        checkpoint.load(tmp_path / "last.pt")


def test_own_mlp_modules_on_idx_with_hinge_a_relative_spec_and_init_args(own, fake_data, tmp_path, monkeypatch):
    shutil.copy(own / "my.py", tmp_path / "my.py")
    monkeypatch.chdir(tmp_path)
    _train("--generator", "my.py:MlpG", "--discriminator", "my.py:MlpD", "--latent-shape", 16, "--loss", "hinge",
           "--init-args", '{"hidden": 24}', "--d-init-args", '{"hidden": 12}', "--data", fake_data / "idx",
           "--epochs", 1, "--runs-dir", "runs", "--set", "batch_size=20", "--set", "sample_count=4", "--device", "cpu")
    state = checkpoint.load(tmp_path / "runs" / "latest" / "checkpoints" / "last.pt")
    variant, cfg = checkpoint.checked_config(state)
    assert (cfg.generator, cfg.init_args, cfg.d_init_args) == (f"{tmp_path}/my.py:MlpG", {"hidden": 24},
                                                               {"hidden": 12})  # the file by its absolute path
    assert isinstance(make_objective(variant.loss, cfg), HingeObjective)
    assert state["generator"]["net.net.0.weight"].shape == (24, 16)
    result = export(tmp_path / "runs" / "latest", formats="onnx", out_dir=tmp_path / "export")
    x = Generator(result.artifacts["onnx"], device="cpu").generate(8)
    assert x.shape == (8, 1, 28, 28) and np.abs(x).max() <= 1


def test_wgan_gp_trains_own_modules_as_a_critic_with_the_gradient_penalty(own, fake_data, tmp_path):
    _train(*_conv(own), "--loss", "wgan-gp", "--set", "n_critic=2", "--data", fake_data / "images", "--epochs", 1,
           "--runs-dir", tmp_path / "runs", *CONV_SETS)
    state = checkpoint.load(tmp_path / "runs" / "latest" / "checkpoints" / "last.pt")
    variant, cfg = checkpoint.checked_config(state)
    objective = make_objective(variant.loss, cfg)
    assert isinstance(objective, WassersteinObjective)
    assert (objective.penalty, objective.gp_weight, objective.n_critic) == ("gp", 10.0, 2)
    assert state["epoch"] == 1 and np.isfinite(state["history"][0]["g"])  # G stepped (3 critic steps, n_critic 2)


@pytest.mark.parametrize(("args", "message"), [
    (("--generator", "{own}/nope.py:G", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1"),
     "--generator {own}/nope.py:G: {own}/nope.py is not a file"),
    (("--generator", "{own}/my.py:Nope", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1"),
     "--generator {own}/my.py:Nope: my.py has no 'Nope'; its nn.Module classes: ConvG, ConvD"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:NotAModule", "--latent-shape", "16,1,1"),
     "--discriminator {own}/my.py:NotAModule: NotAModule is not a torch.nn.Module; name the discriminator's class"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--init-args", '{"width": 3}'), "ConvG(nz=16, ngf=8, nc=3) got an unexpected keyword argument 'width'"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--d-init-args", '{"nc": "three"}'), "--discriminator {own}/my.py:ConvD: ConvD(nc='three') failed: TypeError"),
    (("--generator", "{own}/my.py:Fails", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1"),
     "Fails() failed: ValueError: no weights here"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--init-args", "{bad"), "--init-args is not valid JSON"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--init-args", "[8]"), "--init-args must be a JSON object"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16;1;1"),
     "--latent-shape: expected sizes after the batch such as 100,1,1 or 128; got '16;1;1'"),
    (("--generator", "{own}/my.py:ConvG", "--latent-shape", "16,1,1"), "--generator needs --discriminator FILE.py:D"),
    (("--discriminator", "{own}/my.py:ConvD"), "--discriminator goes with --generator"),
    (("dcgan", "--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16"),
     "drop 'dcgan'"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--init-args", '{"ngf": 8000}'), "more than the 200M ganforge trains"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--set", "n_critic=5"), "n_critic applies to --loss wgan-gp"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--set", "conditional=true"), "custom has no classes to condition on"),
    # found by the probes, once the data's size is known
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16"),
     "{own}/my.py:ConvG fails on noise [2, 16] (RuntimeError: "),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:ConvD", "--latent-shape", "16,1,1",
      "--set", "image_size=8"),
     "--set image_size=8,8, but {own}/my.py:ConvG makes images of 16x16 ([2, 3, 16, 16] from noise [2, 16, 1, 1])"),
    (("--generator", "{own}/my.py:ConvG", "--discriminator", "{own}/my.py:PatchD", "--latent-shape", "16,1,1"),
     "{own}/my.py:PatchD gives [2, 1, 8, 8] for 2 images of 3x16x16; it must give one score a sample"),
])
def test_mistakes_are_one_line_before_a_run_folder_exists(own, fake_data, tmp_path, args, message):
    args = [a.replace("{own}", str(own)) for a in args]
    line = _one_line_error(*_invoke(main, "--data", fake_data / "images", "--set", "image_size=16", "--set",
                                    "batch_size=4", "--runs-dir", tmp_path / "runs", "--device", "cpu", *args))
    assert message.replace("{own}", str(own)) in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("g", "given", "says"), [
    ("ConvG", "16", "this generator's forward takes [16, 1, 1] (its first layer, ConvTranspose2d(16, ...)); pass "
                    "--latent-shape 16,1,1"),
    ("ConvG", "8,1,1", "takes [16, 1, 1] (its first layer, ConvTranspose2d(16, ...))"),
    ("MlpG", "16,1,1", "this generator's forward takes [16] (its first layer, Linear(16, ...)); pass --latent-shape 16"),
    ("MlpG", "32", "takes [16] (its first layer, Linear(16, ...)); pass --latent-shape 16"),
])
def test_a_wrong_latent_shape_names_the_one_g_takes(own, fake_data, tmp_path, g, given, says):
    line = _one_line_error(*_invoke(main, "--generator", f"{own}/my.py:{g}", "--discriminator", f"{own}/my.py:ConvD",
                                    "--latent-shape", given, "--data", fake_data / "images", "--runs-dir",
                                    tmp_path / "runs", "--device", "cpu"))
    assert f"{own}/my.py:{g} fails on noise [2, {given.replace(',', ', ')}]" in line and says in line
    assert not (tmp_path / "runs").exists()


def _cfg(own, **keys):
    base = {"generator": f"{own}/my.py:ConvG", "discriminator": f"{own}/my.py:ConvD", "latent_shape": [16, 1, 1],
            "image_size": [16, 16], "channels": 3, "data": "unused"}
    return CustomConfig(**{**base, **keys})


def test_a_sigmoid_on_d_and_outputs_beyond_one_are_warned_about(own):
    with pytest.warns(GanforgeWarning, match="SigmoidD ends with a Sigmoid, but --loss bce takes raw scores"):
        UserDiscriminator(_cfg(own, discriminator=f"{own}/my.py:SigmoidD"))
    with pytest.warns(GanforgeWarning, match=r"LoudG makes values up to \d.*end it with nn.Tanh\(\)"):
        UserGenerator(_cfg(own, generator=f"{own}/my.py:LoudG", latent_shape=[16], image_size=[28, 28], channels=1))


def test_a_class_that_cannot_be_built_on_meta_is_counted_on_the_cpu(own):
    g, d = count_parameters(CUSTOM, _cfg(own, discriminator=f"{own}/my.py:NeedsValues"))
    assert (g, d) == count_parameters(CUSTOM, _cfg(own))


def test_the_config_holds_the_bounds(own):
    with pytest.raises(ConfigError, match="your own modules need --generator FILE.py:G"):
        _cfg(own, generator=None).validate()
    with pytest.raises(ConfigError, match="r1_weight applies to --loss bce or hinge"):
        _cfg(own, loss="wgan-gp", r1_weight=1.0).validate()
    with pytest.raises(ConfigError, match="init_args is nested more than 8 deep"):
        _cfg(own, init_args={"a": [[[[[[[[[1]]]]]]]]]}).validate()
    with pytest.raises(ConfigError, match="minibatch_std is a layer of ganforge's own discriminators"):
        _cfg(own, minibatch_std=True).validate()


def test_gan_train_list_names_your_own_modules():
    code, output, _ = _invoke(main, "--list")
    assert code == 0 and "custom" in output and "docs/training.md#your-own-architecture" in output


def test_the_adapters_make_a_generator_model_and_one_score_a_sample(own):
    from ganforge.training import GeneratorModel

    G, D = UserGenerator(_cfg(own)), UserDiscriminator(_cfg(own))
    assert isinstance(G, GeneratorModel) and G.num_classes is None and G.class_embedding is None
    assert (G.latent_dim, G.sample_shape) == (16, (3, 16, 16))
    x = G(torch.randn(5, 16))
    assert x.shape == (5, 3, 16, 16) and D(x).shape == (5, 1)
    assert not list(G.parameters(recurse=False)) and not list(D.parameters(recurse=False))  # weights: the user's
    # CUDA trains ganforge's conv models channels_last; the user's keep their layout (a .view() would fail)
    assert not use_channels_last(torch.device("cuda"), G, D)
