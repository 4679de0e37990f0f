"""gan-train --generator on a folder of another colour or size than G makes: the data follow G's
probed output (channels and size) unless the config sets them, the log says so in a line, and a
set value that G does not make is one line before anything is read."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.train_cli import main

MODULES = '''
from torch import nn


class G(nn.Module):
    """z [B, nz, 1, 1] -> x [B, nc, 16, 16]"""

    def __init__(self, nz=8, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, 8, 4, 1, 0), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(8, nc, 4, 2, 1), nn.Tanh())  # 16x16

    def forward(self, z):
        return self.main(z)


class D(nn.Module):
    """x [B, nc, 16, 16] -> [B, 1, 1, 1]"""

    def __init__(self, nc=1):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(nc, 8, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 8x8
                                  nn.Conv2d(8, 1, 8, 1, 0))  # 1x1

    def forward(self, x):
        return self.main(x)
'''


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """my.py, and two folders of 20x20 PNGs (larger than G's 16x16): grayscale and colour."""
    root = tmp_path_factory.mktemp("shape")
    (root / "my.py").write_text(MODULES)
    rng = np.random.default_rng(0)
    for name, shape in (("gray", (20, 20)), ("color", (20, 20, 3))):
        (root / name).mkdir()
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _gan_train(root, runs, channels, folder, *extra):
    args = ["--generator", f"{root}/my.py:G", "--discriminator", f"{root}/my.py:D", "--latent-shape", "8,1,1",
            "--init-args", json.dumps({"nc": channels}), "--d-init-args", json.dumps({"nc": channels}),
            "--data", str(root / folder), "--epochs", "1", "--runs-dir", str(runs), "--device", "cpu",
            "--set", "batch_size=4", "--set", "sample_count=4", *extra]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(("channels", "folder", "loaded"), [
    (1, "gray", "1x20x20 there (the first), loaded as 1x16x16 (resized)"),
    (3, "gray", "1x20x20 there (the first), loaded as 3x16x16 (RGB, resized)"),  # gray copied to R, G and B
    (1, "color", "3x20x20 there (the first), loaded as 1x16x16 (grayscale, resized)"),
])
def test_the_data_follow_the_channels_and_size_g_makes(folders, tmp_path, channels, folder, loaded):
    result = _gan_train(folders, tmp_path / "runs", channels, folder)
    assert result.exit_code == 0, (result.exception, result.output)
    run = (tmp_path / "runs" / "latest").resolve()
    config = json.loads((run / "config.json").read_text())
    assert (config["channels"], config["image_size"]) == (channels, [16, 16])
    line = f"data: 8 images from {folders / folder}; {loaded}; channels and size follow {folders}/my.py:G's " \
           f"samples, {channels}x16x16"
    assert line in result.output  # the console, before the run
    assert any(logged.endswith(line) for logged in (run / "train.log").read_text().splitlines())
    grid = Image.open(run / "samples" / "epoch-0001.png")
    assert grid.mode == ("L" if channels == 1 else "RGB")  # the run's samples have G's channels


@pytest.mark.parametrize(("sets", "says"), [
    (("--set", "channels=3"), "--set channels=3, but {root}/my.py:G makes 1-channel images ([2, 1, 16, 16] from "
                              "noise [2, 8, 1, 1]): drop --set channels (the data then follow G), or make G output that"),
    (("--set", "image_size=8"), "--set image_size=8,8, but {root}/my.py:G makes images of 16x16"),
    (("--set", "image_size=8", "--set", "channels=1"), "{root}/my.py:G makes [2, 1, 16, 16] from noise [2, 8, 1, 1], "
                                                       "but the data are 1x8x8 images"),
])
def test_a_set_size_or_channel_count_g_does_not_make_is_one_line(folders, tmp_path, sets, says):
    result = _gan_train(folders, tmp_path / "runs", 1, "gray", *sets)
    assert result.exit_code == 1 and "Traceback" not in result.output, (result.exception, result.output)
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and says.replace("{root}", str(folders)) in errors[0], result.output
    assert not (tmp_path / "runs").exists()
