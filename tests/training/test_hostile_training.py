"""Hostile inputs and faults on the training side: data that would take unbounded memory,
damaged or foreign checkpoints, sizes no run can use, a full disk, and ``runs/latest``
pointing where it should not. Each ends in one line (or a skipped file and a warning),
never in a traceback or gigabytes allocated."""

import errno
import shutil
import struct
import tracemalloc
import warnings
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganforge.errors import CheckpointError, ConfigError, DataError, GanforgeWarning
from ganforge.train_cli import main
from ganforge.training import checkpoint, train
from ganforge.training.config import resolve
from ganforge.training.datasets import MAX_IMAGE_PIXELS, first_image_size, load_folder, load_idx
from ganforge.training.run import RunDir, resolve_run
from ganforge.training.variants import get_variant
from tests.conftest import tiny_sets
from tests.fakedata import write_cifar, write_idx, write_images
from tests.hostile.files import gz as _gz
from tests.hostile.files import png as _png


def _invoke(args):
    """gan-train in this process: (exit code, output, the exception that ended it)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output, result.exception


def _one_line_error(code, output, exception):
    assert code != 0 and isinstance(exception, SystemExit), (exception, output)  # a click error, not a crash
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


# ---------------------------------------------------------------- 1. training data in bounded memory


def test_a_huge_image_is_skipped_unread_and_never_sets_the_size(tmp_path):
    """A 9000x9000 PNG of 250 KB made every image of the folder 9000x9000 (243 MB each)."""
    _png(tmp_path / "a-huge.png", 9000, 9000)
    write_images(tmp_path, n=3, size=(20, 18))
    assert first_image_size(tmp_path) == (18, 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_folder(tmp_path, image_size=first_image_size(tmp_path), channels=3)
    assert data.images.shape == (3, 3, 18, 20)
    messages = [str(w.message) for w in caught if issubclass(w.category, GanforgeWarning)]
    assert any("a-huge.png: 9000x9000" in m and f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels" in m for m in messages), \
        messages


def test_a_decompression_bomb_is_a_warning_not_a_traceback(tmp_path, fake_data):
    """20000x20000 is over PIL's own limit: its DecompressionBombError escaped first_image_size."""
    folder = tmp_path / "images"
    shutil.copytree(fake_data / "images", folder)
    _png(folder / "a-bomb.png", 20000, 20000, pixels=False)
    assert first_image_size(folder) == (18, 20)
    code, output, exc = _invoke(["wgan", "--data", folder, "--epochs", 1, "--runs-dir", tmp_path / "runs",
                                 *[a for s in tiny_sets("wgan", fake_data)[1:] for a in ("--set", s)]])
    assert code == 0, (exc, output)
    assert "warning: skipped 1 of 13 image files" in output and "a-bomb.png" in output


def test_an_image_size_beyond_the_limit_is_refused_before_decoding(tmp_path):
    _png(tmp_path / "a-large.png", 2000, 2000, pixels=False)  # 4 MP: a photo, yet no size to train at
    write_images(tmp_path, n=2, size=(20, 18))
    with pytest.raises(DataError, match="2000x2000, more than 1024 a side; set a smaller image_size"):
        load_folder(tmp_path, image_size=first_image_size(tmp_path), channels=3)


def test_an_idx_header_claiming_gigabytes_is_refused_unread(tmp_path):
    write_idx(tmp_path, n=4)
    _gz(tmp_path / "train-images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, 2_000_000, 28, 28), bytes(784 * 4))
    with pytest.raises(DataError, match=r"declares \[2000000, 28, 28\]: 1,568,000,000 bytes, more than"):
        load_idx(tmp_path)


def test_an_idx_gzip_that_inflates_past_its_header_is_read_with_a_bound(tmp_path):
    """A 100 KB gzip inflating to 100 MB behind a header of ten images: read 7,840 bytes and stop."""
    write_idx(tmp_path, n=10)
    _gz(tmp_path / "train-images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, 10, 28, 28), bytes(100 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="holds more data than its header declares"):
            load_idx(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


@pytest.mark.parametrize("gz", [True, False])
def test_a_short_idx_file_names_what_is_missing(tmp_path, gz):
    write_idx(tmp_path, n=10, gz=gz)
    header, data = struct.pack(">IIII", 0x803, 100, 28, 28), bytes(784 * 10)
    if gz:
        _gz(tmp_path / "train-images-idx3-ubyte.gz", header, data)
    else:
        (tmp_path / "train-images-idx3-ubyte").write_bytes(header + data)
    with pytest.raises(DataError, match="not a readable IDX file .*78,400 bytes"):
        load_idx(tmp_path)


# ---------------------------------------------------------------- 2. checkpoints and config sizes


def test_foreign_and_damaged_files_are_one_checkpoint_error(tmp_path, sine_run):
    good = Path(sine_run.checkpoint).read_bytes()
    files = {"text.pt": b"hello\n", "passwd.pt": b"root:x:0:0:root:/root:/bin/bash\n", "empty.pt": b"",
             "half.pt": good[: len(good) // 2], "tail.pt": good[len(good) // 2:]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=f"{name} is not a readable checkpoint"):
            checkpoint.load(tmp_path / name)


@pytest.mark.parametrize("change, fragment", [
    ({"epoch": "3"}, "its epoch should be an integer in 0..100,000, got '3'"),
    ({"epoch": -10**30}, "its epoch should be an integer"),
    ({"epoch": 10**9}, "its epoch should be an integer"),
    ({"step": -1}, "its step should be"),
    ({"variant": ["sine"]}, "its variant should be a variant name"),
    ({"generator": [1, 2]}, "its generator should be a state dict"),
    ({"discriminator": {"net.0.weight": 1}}, "its discriminator should be a state dict"),
    ({"opt_g": "adam"}, "its opt_g should be a dict"),
    ({"fixed_noise": torch.zeros(4)}, "its fixed_noise should be a float tensor"),
    ({"history": [{"epoch": 1}]}, "its history should be a list of rows"),
    ({"rng": {"torch": torch.zeros(3)}}, "its rng should be RNG states"),
    ({"partial": {"epoch": 1, "pos": "2", "world_size": 1}}, "its pos should be"),
    ({"config": {"n_rows": 10**10}}, "n_rows x sample_len is 320,000,000,000 values"),
    ({"config": {"g_hidden": [8192] * 8}}, "parameters .* more than the 200M"),
    ({"config": {"latent_dim": 10**6}}, "latent_dim must be at most 2,048"),
    ({"config": {"epochs": 10**12}}, "epochs must be at most 100,000"),
])
def test_checkpoint_parts_are_checked_before_use(tmp_path, sine_run, change, fragment):
    state = torch.load(sine_run.checkpoint, weights_only=True)
    if "config" in change:
        change = {"config": {**state["config"], **change["config"]}}
    torch.save({**state, **change}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=fragment):
        checkpoint.load(tmp_path / "last.pt")


def _copy_run(run_dir: Path, runs: Path) -> Path:
    copy = runs / Path(run_dir).name
    shutil.copytree(run_dir, copy)
    return copy


@pytest.mark.parametrize("damage, fragment", [
    (lambda s: s.update(epoch="2"), "its epoch should be an integer"),
    (lambda s: s.update(epoch=-10**30), "its epoch should be an integer"),
    (lambda s: s.update(fixed_noise=torch.zeros(3, 3)), "its sample grid noise is float32 [3, 3]"),
    (lambda s: next(iter(s["opt_g"]["state"].values())).update(exp_avg=torch.zeros(1)),
     "opt_g's exp_avg of parameter 0 is"),
    (lambda s: s.update(partial={"epoch": 4, "perm": torch.arange(10**6, 10**6 + 96), "pos": 1, "world_size": 1,
                                 "sums": {}}), "its epoch order is not an order of the 96"),
])
def test_resuming_a_damaged_checkpoint_is_one_line(tmp_path, sine_run, damage, fragment):
    run = _copy_run(sine_run.run_dir, tmp_path / "runs")
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    damage(state)
    torch.save(state, run / "checkpoints" / "last.pt")
    line = _one_line_error(*_invoke(["--resume", run, "--epochs", 5, "--runs-dir", tmp_path / "runs"]))
    assert fragment in line, line


@pytest.mark.parametrize("variant, item, fragment", [
    ("sine", "n_rows=10000000000", "n_rows x sample_len"),
    ("sine", "g_hidden=100000", "g_hidden must be at most 8,192"),
    ("sine", "epochs=100000000", "epochs must be at most 100,000"),
    ("sine", "batch_size=10000000", "batch_size must be at most 65,536"),
    ("sine", "sample_count=100000", "sample_count must be at most 256"),
    ("mnist-mlp", "hidden_size=1000000", "hidden_size must be at most 8,192"),
    ("dcgan", "latent_dim=1000000", "latent_dim must be at most 2,048"),
    ("wgan", "image_size=5000", "image_size must be at most 1,024"),
    ("wgan", "c_paddings=[100000,0,0,0]", "c_paddings must be at most 1,024"),
    ("wgan-gp", "image_size=2048", "image_size must be at most 1,024"),
])
def test_every_size_has_a_bound(variant, item, fragment):
    with pytest.raises(ConfigError, match=fragment):
        resolve(get_variant(variant), sets=[item])


@pytest.mark.parametrize("variant", ["sine", "mnist-mlp", "dcgan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("conditional", [False, True])
def test_counting_on_the_meta_device_matches_the_built_models(variant, conditional):
    from ganforge.training.variants import count_parameters

    if conditional and variant == "sine":
        return
    v = get_variant(variant)
    sizes = {"wgan": ["image_size=32", "channels=1"], "wgan-gp": ["image_size=32"]}.get(variant, [])  # else from data
    cfg = resolve(v, sets=sizes + (["conditional=true", "num_classes=3"] if conditional else []))
    g, d = count_parameters(v, cfg)
    assert (g, d) == (sum(p.numel() for p in v.generator(cfg).parameters()),
                      sum(p.numel() for p in v.discriminator(cfg).parameters()))


def test_a_model_too_large_is_refused_before_any_data_or_run(tmp_path, fake_data):
    code, output, exc = _invoke(["dcgan", "--data", fake_data / "cifar", "--set", "g_features=4096",
                                 "--runs-dir", tmp_path / "runs"])
    line = _one_line_error(code, output, exc)
    assert "parameters (G" in line and "more than the 200M ganforge trains" in line, line
    assert not (tmp_path / "runs").exists()


def test_a_config_file_too_large_is_refused(tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"epochs": 1, "_pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(ConfigError, match="larger than a config can be"):
        resolve(get_variant("sine"), config_file=big)


# ---------------------------------------------------------------- 3. a full disk


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: "
                 "file write failed"),
])
def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last(tmp_path, monkeypatch, sine_run, error):
    runs = tmp_path / "runs"
    run = _copy_run(sine_run.run_dir, runs)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    free = {"bytes": 10 << 30}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 << 30, 0, free["bytes"]))

    def full_disk(obj, f, *args, **kwargs):
        free["bytes"] = 20_000  # the disk filled up during the run
        f.write(b"PK\x03\x04 partial")
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    line = _one_line_error(*_invoke(["--resume", run, "--epochs", 5, "--runs-dir", runs]))
    assert f"cannot write {run / 'checkpoints' / 'last.pt'}: disk full (0.0 MB free on" in line, line
    assert "free space or pass --runs-dir on another disk" in line
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert not list((run / "checkpoints").glob(".*"))  # the temporary went with the failure


def test_a_full_disk_writing_samples_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    def full_disk(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    runs = tmp_path / "runs"
    line = _one_line_error(*_invoke(["sine", "--epochs", 1, "--runs-dir", runs,
                                     *[a for s in tiny_sets("sine") for a in ("--set", s)]]))
    assert line.startswith(f"Error: cannot write {runs}/sine-") and "/samples/epoch-0001.png: disk full (" in line, line
    assert "--runs-dir on another disk" in line


def test_a_disk_without_room_for_a_checkpoint_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 << 30, 0, 500_000))
    runs = tmp_path / "runs"
    line = _one_line_error(*_invoke(["sine", "--epochs", 1, "--runs-dir", runs,
                                     *[a for s in tiny_sets("sine") for a in ("--set", s)]]))
    assert f"not enough space for a checkpoint in {runs}" in line and "0.5 MB free" in line, line
    assert not runs.exists() or not any(runs.iterdir())


# ---------------------------------------------------------------- 4. runs/latest


@pytest.mark.parametrize("how", ["absolute symlink", "relative symlink", "pointer file", "absolute pointer"])
def test_latest_pointing_outside_the_runs_folder_is_refused(tmp_path, sine_run, how):
    elsewhere = _copy_run(sine_run.run_dir, tmp_path / "elsewhere")
    runs = tmp_path / "runs"
    runs.mkdir()
    latest = runs / "latest"
    target = {"absolute symlink": str(elsewhere), "relative symlink": f"../elsewhere/{elsewhere.name}",
              "pointer file": f"../elsewhere/{elsewhere.name}", "absolute pointer": str(elsewhere)}[how]
    if "symlink" in how:
        latest.symlink_to(target)
    else:
        latest.write_text(target + "\n")
    with pytest.raises(CheckpointError, match="points outside"):
        resolve_run(None, runs)


def test_latest_without_a_checkpoint_falls_back_to_the_newest_run_with_one(tmp_path, sine_run):
    runs = tmp_path / "runs"
    good = _copy_run(sine_run.run_dir, runs)
    killed = RunDir.create(runs, "sine")  # a run killed before its first epoch ended
    killed.mark_latest()
    with pytest.warns(GanforgeWarning, match=f"{killed.name}, which has no checkpoints/last.pt; using {good.name}"):
        assert resolve_run(None, runs) == good / "checkpoints" / "last.pt"
    code, output, exc = _invoke(["--resume", "--epochs", 4, "--runs-dir", runs])
    assert code == 0, (exc, output)
    assert f"using {good.name}" in output and checkpoint.load(good / "checkpoints" / "last.pt")["epoch"] == 4


def test_latest_without_any_checkpoint_says_so(tmp_path):
    runs = tmp_path / "runs"
    RunDir.create(runs, "sine").mark_latest()
    with pytest.raises(CheckpointError, match="no other run in .* has one"):
        resolve_run("latest", runs)


def test_the_checks_pass_what_training_writes(tmp_path):
    """A conditional image run with a moving average of G loads and resumes."""
    write_cifar(tmp_path / "cifar", per_batch=12)
    sets = [*tiny_sets("dcgan", tmp_path)[1:], "conditional=true"]
    result = train("dcgan", epochs=1, data=str(tmp_path / "cifar"), sets=sets, runs_dir=tmp_path / "runs", progress=False,
                   device="cpu")
    state = checkpoint.load(result.checkpoint)
    assert state["config"]["num_classes"] == 2
    resumed = train(resume=result.run_dir, epochs=2, runs_dir=tmp_path / "runs", progress=False, device="cpu")
    assert resumed.epochs == 2
