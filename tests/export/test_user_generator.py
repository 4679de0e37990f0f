"""Bring your own generator: gan-export --module/--weights (or --torchscript, --exported) on
generators written the way common scripts write them, then gan-infer with no flags."""

import argparse
import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganforge import usercode
from ganforge.errors import ConfigError
from ganforge.export.cli import main as gan_export
from ganforge.export.spec import SOURCE_LATENT_SHAPE
from ganforge.inference import metadata as meta

# the MNIST GAN source's model block: an MLP, 784 Tanh pixels out (its inference reshapes them to 28x28)
MNIST_MLP = '''
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, latent_size=16, hidden_size=32, image_size=784):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(latent_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, image_size),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.model(x)
'''

# pytorch/examples dcgan/main.py's netG: sizes as module globals, Generator(ngpu), input [N, nz, 1, 1]
DCGAN = '''
import torch.nn as nn

nz = 100
ngf = 8
nc = 3


class Generator(nn.Module):
    def __init__(self, ngpu):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output
'''

# PyTorch-GAN's gan.py generator: BatchNorm1d(out_feat, 0.8) (eps = 0.8, positional), output viewed as images
PYTORCH_GAN = '''
import numpy as np
import torch.nn as nn

latent_dim = 12
img_shape = (1, 28, 28)


class Generator(nn.Module):
    def __init__(self):
        super(Generator, self).__init__()

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(latent_dim, 16, normalize=False),
            *block(16, 32),
            *block(32, 64),
            nn.Linear(64, int(np.prod(img_shape))),
            nn.Tanh()
        )

    def forward(self, z):
        img = self.model(z)
        img = img.view(img.size(0), *img_shape)
        return img
'''

# odd ones: conditional (Sigmoid output in [0, 1]), batch-dependent, a script that parses arguments at import
OTHERS = '''
import torch
import torch.nn as nn


class CondGenerator(nn.Module):
    def __init__(self, latent_dim=8, n_classes=3):
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(nn.Linear(latent_dim + n_classes, 32), nn.ReLU(), nn.Linear(32, 3 * 8 * 8),
                                   nn.Sigmoid())

    def forward(self, noise, labels):
        x = torch.cat((self.label_emb(labels), noise), -1)
        return self.model(x).view(x.size(0), 3, 8, 8)


class MeanCentred(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 32)

    def forward(self, z):
        x = self.fc(z)
        return torch.tanh(x - x.mean(0, keepdim=True))  # batch statistics, in eval mode too


class StuckInTraining(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 32)
        self.bn = nn.BatchNorm1d(32)

    def train(self, mode=True):
        return super().train(True)

    def forward(self, z):
        return torch.tanh(self.bn(self.fc(z)))


not_a_class = 3
'''

SCRIPT = '''
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--dataroot", required=True)
opt = parser.parse_args()
'''


def _import(path):
    spec = importlib.util.spec_from_file_location(f"test_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights_init(m):
    """pytorch/examples dcgan's initialisation."""
    if "Conv" in type(m).__name__:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


def _trained(G, latent_shape):
    """G after a few forward passes in training mode: BatchNorm's running statistics move off 0 and 1."""
    torch.manual_seed(0)
    G.apply(weights_init)
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # a cumulative average: the statistics of the batches seen, as after training
    G.train()
    with torch.no_grad():
        for _ in range(3):
            G(torch.randn(64, *latent_shape))
    for m in norms:
        m.momentum = 0.1
    return G.eval()


@pytest.fixture(scope="module")
def gens(tmp_path_factory):
    """The generator files and their weights, saved the way their scripts save them."""
    root = tmp_path_factory.mktemp("byog")
    for name, text in {"mnist_gan": MNIST_MLP, "dcgan": DCGAN, "pytorch_gan": PYTORCH_GAN, "others": OTHERS,
                       "script": SCRIPT}.items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))
    torch.manual_seed(0)
    mnist = _import(root / "mnist_gan.py").Generator()
    torch.save(mnist.state_dict(), root / "generator.pth")  # the MNIST source
    dcgan = _trained(_import(root / "dcgan.py").Generator(1), (100, 1, 1))
    torch.save(dcgan.state_dict(), root / "netG_epoch_24.pth")  # pytorch/examples dcgan
    torch.save(torch.nn.DataParallel(dcgan).state_dict(), root / "netG_dataparallel.pth")  # module.main.0.weight
    pgan = _trained(_import(root / "pytorch_gan.py").Generator(), (12,))
    torch.save({"generator": pgan.state_dict(), "discriminator": {"fc.weight": torch.zeros(1)}, "epoch": 199,
                "args": argparse.Namespace(lr=2e-4, b1=0.5)}, root / "pytorch_gan.pth")
    others = _import(root / "others.py")
    torch.save(others.CondGenerator().state_dict(), root / "cond.pth")
    torch.save(others.MeanCentred().state_dict(), root / "mean.pth")
    torch.save(others.StuckInTraining().state_dict(), root / "stuck.pth")
    # a whole pickled module, saved from a script that imports the class: the pickle names mnist_gan.Generator
    subprocess.run([sys.executable, "-c", "import torch, mnist_gan; torch.save(mnist_gan.Generator(), 'whole.pth')"],
                   cwd=root, check=True)
    return root, {"mnist": mnist, "dcgan": dcgan, "pgan": pgan}


def _export(args, expect_ok=True):
    result = CliRunner().invoke(gan_export, [str(a) for a in args])
    if expect_ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return result


def _infer(model, out):
    """gan-infer with no flag but the model: everything it needs is in the file."""
    done = subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", str(model), "--n", "64",
                           "--out", str(out)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return Image.open(out)


def _report(out):
    report = json.loads((out / "export.json").read_text())
    for key, artifact in report["artifacts"].items():
        checks = artifact["checks"]
        parity = [c for c in checks if c["name"] == "parity"]
        assert [c["batch_size"] for c in parity] == [1, 3, 64, 257], key
        assert all(c["passed"] for c in checks), key
        assert {"eval_mode", "batch_independent"} <= {c["name"] for c in checks}
    return report


def _props(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _onnx(path, z, labels=None):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z} if labels is None else {"z": z, "labels": labels}
    return sess.run(["x"], feeds)[0]


def test_mnist_mlp_state_dict(gens, tmp_path):
    root, models = gens
    out = tmp_path / "mnist"
    _export(["--module", root / "mnist_gan.py:Generator", "--weights", root / "generator.pth", "--latent-shape", "16",
             "--kind", "image", "--format", "onnx", "--precision", "fp16", "--out", out])
    _export(["--module", root / "mnist_gan.py:Generator", "--weights", root / "generator.pth", "--latent-shape", "16",
             "--kind", "image", "--out", out])
    report = _report(out)
    assert report["sample_shape"] == [1, 28, 28] and report["kind"] == "image" and report["latent_dim"] == 16
    assert set(report["artifacts"]) == {"onnx", "onnx-fp16"}  # one source, both kept
    assert report["source"]["module"].endswith("mnist_gan.py:Generator") and report["epoch"] is None
    z = np.random.default_rng(1).standard_normal((5, 16), dtype=np.float32)
    with torch.no_grad():
        want = models["mnist"](torch.from_numpy(z)).numpy().reshape(5, 1, 28, 28)
    np.testing.assert_allclose(_onnx(out / "generator.onnx", z), want, atol=1e-5)
    assert _infer(out / "generator.onnx", tmp_path / "grid.png").size[0] >= 8 * 28


def test_dcgan_netG_from_dataparallel(gens, tmp_path):
    root, models = gens
    out = tmp_path / "dcgan"
    result = _export(["--module", root / "dcgan.py:Generator", "--init-args", '{"ngpu": 1}', "--weights",
                      root / "netG_dataparallel.pth", "--latent-shape", "100,1,1", "--out", out])
    assert "'module.' prefix removed" in result.output
    report = _report(out)
    assert report["sample_shape"] == [3, 64, 64] and report["source"]["latent_shape"] == [100, 1, 1]
    model = onnx.load(str(out / "generator.onnx"))
    z_dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert z_dims == ["batch", 100]  # DESIGN's contract; the [N, 100, 1, 1] reshape is inside the graph
    props = _props(out / "generator.onnx")
    assert json.loads(props[SOURCE_LATENT_SHAPE]) == [100, 1, 1]
    info = meta.ModelInfo.from_metadata(props)  # the extra key does not disturb the reader
    assert info.latent_dim == 100 and info.sample_shape == (3, 64, 64) and info.value_range == (-1.0, 1.0)
    z = np.random.default_rng(2).standard_normal((3, 100), dtype=np.float32)
    with torch.no_grad():  # the user's own module, BatchNorm on its running statistics
        want = models["dcgan"](torch.from_numpy(z).view(3, 100, 1, 1)).numpy()
    assert np.abs(want).max() > 0.05  # a test that could fail: the weights matter
    np.testing.assert_allclose(_onnx(out / "generator.onnx", z), want, atol=1e-5)
    assert _infer(out / "generator.onnx", tmp_path / "grid.png").size[0] >= 8 * 64


def test_pytorch_gan_checkpoint_dict_every_format(gens, tmp_path):
    root, models = gens
    out = tmp_path / "pgan"
    result = _export(["--module", root / "pytorch_gan.py:Generator", "--weights", root / "pytorch_gan.pth",
                      "--latent-shape", "12", "--format", "all", "--out", out])
    assert "state_dict under 'generator'" in result.output
    report = _report(out)
    assert set(report["artifacts"]) == {"onnx", "torchscript", "exported", "triton"}
    assert report["sample_shape"] == [1, 28, 28]
    z = np.random.default_rng(3).standard_normal((4, 12), dtype=np.float32)
    with torch.no_grad():  # BatchNorm1d(eps=0.8) folded into the graph, not dropped
        want = models["pgan"](torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(_onnx(out / "generator.onnx", z), want, atol=1e-5)
    _infer(out / "generator.onnx", tmp_path / "grid.png")


def test_conditional_with_its_own_value_range(gens, tmp_path):
    root, _ = gens
    out = tmp_path / "cond"
    _export(["--module", root / "others.py:CondGenerator", "--weights", root / "cond.pth", "--latent-shape", "8",
             "--num-classes", "3", "--value-range", "0,1", "--out", out])
    report = _report(out)
    assert report["num_classes"] == 3
    info = meta.ModelInfo.from_metadata(_props(out / "generator.onnx"))
    assert info.value_range == (0.0, 1.0) and info.num_classes == 3 and info.class_embedding is None
    done = subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", str(out / "generator.onnx"),
                           "--per-class", "2", "--out", str(tmp_path / "classes.png")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_torchscript_and_exported_sources(gens, tmp_path):
    root, models = gens
    G = models["dcgan"]
    with torch.no_grad(), pytest.warns(FutureWarning):  # torch.jit is deprecated; users still have such files
        torch.jit.save(torch.jit.trace(G, torch.randn(2, 100, 1, 1)), tmp_path / "netG.ts")
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(G, (torch.randn(2, 100, 1, 1),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "netG.pt2")
    z = np.random.default_rng(4).standard_normal((3, 100), dtype=np.float32)
    with torch.no_grad():
        want = G(torch.from_numpy(z).view(3, 100, 1, 1)).numpy()
    for option, file in (("--torchscript", "netG.ts"), ("--exported", "netG.pt2")):
        out = tmp_path / file.replace(".", "_")
        _export([option, tmp_path / file, "--latent-shape", "100,1,1", "--out", out])
        assert _report(out)["source"]["program"].endswith(file)
        np.testing.assert_allclose(_onnx(out / "generator.onnx", z), want, atol=1e-5)
    _export(["--torchscript", tmp_path / "netG.pt2", "--latent-shape", "100,1,1", "--out", tmp_path / "x"], False)
    result = _export(["--module", root / "dcgan.py:Generator", "--weights", tmp_path / "netG.ts", "--latent-shape",
                      "100,1,1", "--out", tmp_path / "x"], False)
    assert "--torchscript" in result.output


def test_pickled_module_refused_then_trusted(gens, tmp_path):
    root, _ = gens
    args = ["--module", root / "mnist_gan.py:Generator", "--weights", root / "whole.pth", "--latent-shape", "16",
            "--out", tmp_path / "out"]
    result = _export(args, expect_ok=False)
    assert "torch.save(model.state_dict(), 'G.pth')" in result.output and "--trust-pickle" in result.output
    assert not (tmp_path / "out" / "export.json").exists()
    result = _export([*args, "--trust-pickle"])
    assert "ran the pickle" in result.output
    assert _report(tmp_path / "out")["sample_shape"] == [784]  # without --kind image: a series, and a hint
    assert "--kind image" in result.output


@pytest.mark.parametrize("module, weights, extra, says", [
    ("mnist_gan.py:Generator", "pytorch_gan.pth", [],
     "2 keys missing (model.4.weight, model.4.bias); 14 unexpected (model.3.weight"),
    ("mnist_gan.py:Generator", "generator.pth", ["--init-args", '{"hidden_size": 64}'],
     "5 tensors differ in shape (model.0.weight [32, 16] in the file, [64, 16] in the module;"),
    ("dcgan.py:Generator", "netG_epoch_24.pth", [], "--init-args '{\"ngpu\": ...}'"),
    ("dcgan.py:Generator", "netG_epoch_24.pth", ["--init-args", '{"ngpu": 1, "nz": 5}'], "unexpected keyword"),
    ("others.py:MeanCentred", "mean.pth", [], "depends on the rest of the batch"),
    ("others.py:StuckInTraining", "stuck.pth", [], "fc, bn stay in training mode"),
    ("others.py:CondGenerator", "cond.pth", [], "needs --num-classes K"),
    ("others.py:MeanCentred", "mean.pth", ["--num-classes", "3"], "drop --num-classes"),
    ("others.py:not_a_class", "mean.pth", [], "is not a class (int object)"),
    ("others.py:Nope", "mean.pth", [], "has no 'Nope'; its nn.Module classes: CondGenerator, MeanCentred"),
    ("script.py:Generator", "mean.pth", [],
     "raised SystemExit: 2 after printing '__main__.py: error: the following arguments are required"),
    ("missing.py:G", "mean.pth", [], "is not a file"),
    ("no_such_package.models:G", "mean.pth", [], "no module named 'no_such_package'"),
])
def test_refusals(gens, tmp_path, module, weights, extra, says):
    root, _ = gens
    where = module if ":" in module and not module.split(":")[0].endswith(".py") else root / module
    result = _export(["--module", where, "--weights", root / weights, "--latent-shape", "16" if "mnist" in module
                      else "100,1,1" if "dcgan" in module else "8", *extra, "--out", tmp_path / "out"], False)
    assert says in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_dcgan_latent_shape_rejected(gens, tmp_path):
    root, _ = gens
    result = _export(["--module", root / "dcgan.py:Generator", "--init-args", '{"ngpu": 1}', "--weights",
                      root / "netG_epoch_24.pth", "--latent-shape", "100", "--out", tmp_path], False)
    assert "rejects noise of shape [4, 100]" in result.output and "100,1,1" in result.output


@pytest.mark.parametrize(("module", "weights", "given", "says"), [
    ("dcgan.py:Generator", "netG_epoch_24.pth", "100",
     "this generator's forward takes [100, 1, 1] (its first layer, ConvTranspose2d(100, ...)); pass --latent-shape "
     "100,1,1"),
    ("dcgan.py:Generator", "netG_epoch_24.pth", "64,1,1", "takes [100, 1, 1] (its first layer, ConvTranspose2d("),
    ("mnist_gan.py:Generator", "generator.pth", "16,1,1",
     "this generator's forward takes [16] (its first layer, Linear(16, ...)); pass --latent-shape 16"),
    ("mnist_gan.py:Generator", "generator.pth", "100", "takes [16] (its first layer, Linear(16, ...))"),
    # conditional: Embedding first, then a Linear that takes noise and labels' embedding together: no shape found
    ("others.py:CondGenerator", "cond.pth", "9", "pass the noise shape its forward takes (--latent-shape 100, or"),
])
def test_a_wrong_latent_shape_names_the_one_the_forward_takes(gens, tmp_path, module, weights, given, says):
    root, _ = gens
    extra = ["--init-args", '{"ngpu": 1}'] if "dcgan" in module else ["--num-classes", "3"] if "Cond" in module else []
    result = _export(["--module", root / module, "--weights", root / weights, "--latent-shape", given, *extra,
                      "--out", tmp_path / "out"], False)
    assert f"rejects noise of shape [4, {given.replace(',', ', ')}]" in result.output and says in result.output


def test_a_traced_generator_with_a_wrong_latent_shape_names_the_one_it_takes(gens, tmp_path):
    """A traced module keeps no in_channels: its first layer's weight tells ([in, out, k, k] for a ConvTranspose)."""
    with torch.no_grad(), pytest.warns(FutureWarning):  # torch.jit is deprecated; users still have such files
        torch.jit.save(torch.jit.trace(gens[1]["dcgan"], torch.randn(2, 100, 1, 1)), tmp_path / "netG.ts")
    result = _export(["--torchscript", tmp_path / "netG.ts", "--latent-shape", "64,1,1", "--out", tmp_path / "o"],
                     False)
    assert "this generator's forward takes [100, 1, 1] (its first layer, ConvTranspose2d(100, ...)); pass " \
           "--latent-shape 100,1,1" in result.output


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # BatchNorm's batch-size check, traced in training mode
def test_traced_in_training_mode_is_batch_dependent(gens, tmp_path):
    root, models = gens
    G = _import(root / "dcgan.py").Generator(1)
    G.load_state_dict(models["dcgan"].state_dict())
    with torch.no_grad(), pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.trace(G.train(), torch.randn(2, 100, 1, 1)), tmp_path / "train.ts")
    result = _export(["--torchscript", tmp_path / "train.ts", "--latent-shape", "100,1,1", "--out", tmp_path], False)
    assert "depends on the rest of the batch" in result.output and "call model.eval() before saving" in result.output


@pytest.mark.parametrize("args, says", [
    (["runs/x", "--module", "g.py:G", "--weights", "g.pth", "--latent-shape", "8", "--out", "o"], "two sources"),
    (["--module", "g.py:G", "--latent-shape", "8", "--out", "o"], "--module needs --weights"),
    (["--weights", "g.pth", "--latent-shape", "8", "--out", "o"], "--weights needs --module"),
    (["--module", "g.py:G", "--weights", "g.pth", "--out", "o"], "needs --latent-shape"),
    (["--module", "g.py:G", "--weights", "g.pth", "--latent-shape", "8"], "pass --out DIR"),
    (["--latent-shape", "8"], "--latent-shape describes a generator of your own"),
    (["--torchscript", "g.ts", "--weights", "g.pth", "--latent-shape", "8", "--out", "o"], "without --weights"),
    (["--torchscript", "g.ts", "--latent-shape", "8", "--out", "o", "--trust-pickle"], "--trust-pickle applies"),
])
def test_cli_combinations(args, says):
    assert says in _export(args, expect_ok=False).output


# ---------------------------------------------------------------- ganforge.usercode


@pytest.mark.parametrize("key", ["netG", "generator", "G", "gen", "state_dict", "model", "generator_state_dict"])
def test_load_weights_finds_nested_state_dicts(tmp_path, key):
    state = {"fc.weight": torch.ones(2, 3)}
    torch.save({key: state, "optimizerG": {"state": {}, "param_groups": []}, "epoch": 3}, tmp_path / "ckpt.pth")
    got, note = usercode.load_weights(tmp_path / "ckpt.pth")
    assert list(got) == ["fc.weight"] and note == f"state_dict under {key!r}"


def test_load_weights_strips_wrappers(tmp_path):
    torch.save({"_orig_mod.module.fc.weight": torch.ones(1)}, tmp_path / "w.pth")  # torch.compile over DDP
    got, note = usercode.load_weights(tmp_path / "w.pth")
    assert list(got) == ["fc.weight"]
    assert note == "a state_dict, '_orig_mod.' prefix removed, 'module.' prefix removed"


def test_load_weights_refusals(tmp_path):
    torch.save({"netD": {"w": torch.ones(1)}, "epoch": 3}, tmp_path / "d.pth")
    with pytest.raises(ConfigError, match=r"without a generator state_dict under any of g_ema, .*netG"):
        usercode.load_weights(tmp_path / "d.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "d.pth").read_bytes()[:200])
    with pytest.raises(ConfigError, match="is not a readable weights file"):
        usercode.load_weights(tmp_path / "cut.pth")
    with pytest.raises(ConfigError, match="does not exist"):
        usercode.load_weights(tmp_path / "none.pth")
    (tmp_path / "notes.pth").write_text("epoch 24: G 0.7, D 0.6\n")  # torch's own error: KeyError: 101
    with pytest.raises(ConfigError, match=r"notes.pth is not torch weights \(it is a text file\): pass the file torch.save"):
        usercode.load_weights(tmp_path / "notes.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty.pth is not torch weights \(it is empty\)"):
        usercode.load_weights(tmp_path / "empty.pth")
    (tmp_path / "w.npy").write_bytes(b"\x93NUMPY\x01\x00" + bytes(40))
    with pytest.raises(ConfigError, match=r"w.npy is not torch weights \(its first bytes are not torch.save's\)"):
        usercode.load_weights(tmp_path / "w.npy")


def test_load_into_takes_the_generator_under_a_prefix():
    G = torch.nn.Sequential(torch.nn.Linear(2, 3))
    state = {f"generator.{k}": v + 1 for k, v in G.state_dict().items()} | {"discriminator.w": torch.ones(1)}
    assert usercode.load_into(G, state, "lightning.ckpt") == "weights under 'generator.'"
    assert torch.equal(G[0].bias, state["generator.0.bias"])


def test_load_class_syntax_error(tmp_path):
    (tmp_path / "bad.py").write_text("class G(:\n")
    with pytest.raises(ConfigError, match=r"syntax error in bad.py line 1"):
        usercode.load_class(f"{tmp_path / 'bad.py'}:G")
    with pytest.raises(ConfigError, match="should be PATH.py:Class"):
        usercode.load_class("dcgan.py")


def test_load_class_by_module_name(gens, monkeypatch):
    root, _ = gens
    monkeypatch.syspath_prepend(str(root))
    assert usercode.load_class("others:CondGenerator").__name__ == "CondGenerator"
    G = usercode.build_module("mnist_gan:Generator", {"hidden_size": 8})
    assert G.model[0].out_features == 8


def test_spec_from_module_notes_samples_beyond_the_value_range(gens):
    from ganforge.export.spec import UserSource, spec_from_module

    root, _ = gens
    source = UserSource((16,), module=f"{root / 'mnist_gan.py'}:Generator", weights=root / "generator.pth",
                        kind="image", value_range=(0.0, 1.0))
    spec = spec_from_module(source)
    assert spec.info.value_range == (0.0, 1.0) and spec.info.sample_shape == (1, 28, 28)
    assert any("beyond the value range [0, 1]" in note for note in spec.notes)
    assert spec.metadata()[SOURCE_LATENT_SHAPE] == "[16]"
    with pytest.raises(ConfigError, match="--module PATH.py:Class with --weights"):
        UserSource((16,), module="g.py:G", program=root / "netG.ts")
