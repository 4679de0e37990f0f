"""gan-train and gan-export against hostile files, arguments and faults (issue 16): each ends
in one line, a non-zero exit, bounded memory, and nothing valid overwritten."""

from __future__ import annotations

import shutil
import struct

import pytest
import torch

from tests.conftest import tiny_sets
from tests.hostile import files
from tests.hostile.harness import assert_ok, assert_refused, run_cli, snapshot

SINE = ["sine", *[a for s in tiny_sets("sine") for a in ("--set", s)]]


@pytest.fixture(scope="module")
def sine_copy(sine_run, tmp_path_factory):
    """A copy of the session's sine run, in a runs folder of its own, exported once; tests that
    change it make their own copy."""
    runs = tmp_path_factory.mktemp("hostile") / "runs"
    shutil.copytree(sine_run.run_dir, runs / sine_run.run_dir.name)
    (runs / "latest").symlink_to(sine_run.run_dir.name)
    assert_ok(run_cli("gan-export", str(runs / "latest"), cwd=runs), cli="gan-export")
    return runs / sine_run.run_dir.name


def _own_copy(run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / run.name)
    (runs / "latest").symlink_to(run.name)
    return runs / run.name


def _altered(src, dest, change):
    state = torch.load(src, weights_only=True)
    change(state)
    torch.save(state, dest)
    return dest


def _flipped(src, dest):
    """One byte flipped inside the record of G's first weight (torch loads it without a word)."""
    if src != dest:
        shutil.copy(src, dest)
    return files.flip_byte(dest, "data/0")


def _bomb(src, dest):
    """4 MB: the first storage record replaced by deflate that inflates to 3.98 GiB."""
    packed, size = files.deflated_zeros()
    return files.rezip(src, dest, {"data/0": (8, packed, size, 0)})


def _int64_weight(state):
    """G's first weight as int64, in the raw G (what --resume loads first) and its moving average (what
    gan-export reads)."""
    for part in ("generator", "generator_ema"):
        key = next(k for k, v in state[part].items() if v.dim() == 2)
        state[part][key] = (state[part][key] * 100).long()


def _long_history(state):
    row = state["history"][0]
    state["history"] = [dict(row, epoch=i + 1) for i in range(100_001)]  # 9 MB of pickle, 1.7M values to build


@pytest.mark.parametrize("make, pattern", [
    (lambda ck, d: (d / "cut.pt").write_bytes(ck.read_bytes()[:1500]) and d / "cut.pt", "is not a readable checkpoint"),
    (lambda ck, d: files.text_file(d / "text.pt"), "is not a readable checkpoint"),
    (lambda ck, d: "/etc/passwd", "is not a readable checkpoint"),
    (lambda ck, d: _altered(ck, d / "s.pt", lambda s: s.update(epoch="3")), "epoch should be an integer"),
    (lambda ck, d: _altered(ck, d / "e.pt", lambda s: s.update(epoch=int(-1e30))), "epoch should be an integer"),
    (lambda ck, d: _altered(ck, d / "n.pt", lambda s: s["config"].update(n_rows=10**10)), "n_rows x sample_len"),
    (lambda ck, d: _altered(ck, d / "w.pt", lambda s: s["config"].update(g_hidden=[10**6])), "g_hidden must be at most"),
    (lambda ck, d: _altered(ck, d / "g.pt", lambda s: s.update(generator=[1, 2])), "generator should be a state dict"),
    (lambda ck, d: _flipped(ck, d / "f.pt"), r"checkpoint .*f.pt is damaged: record data/0 fails its CRC; restore it"),
    (lambda ck, d: _bomb(ck, d / "b.pt"), r"b.pt declares records of more than 4,273,741,824 bytes once unpacked"),
    (lambda ck, d: _altered(ck, d / "i.pt", _int64_weight),
     r"checkpoint generator_ema does not fit the sine generator: .* is int64 \[\d+, \d+\]; the model's is float32"),
    (lambda ck, d: _altered(ck, d / "h.pt", _long_history), "h.pt holds a list or dict of more than 100,000 items"),
    (lambda ck, d: torch.save({}, d / "l.pt", _use_new_zipfile_serialization=False) or d / "l.pt",
     "l.pt is in torch's legacy format"),
])
def test_export_of_a_hostile_checkpoint(make, pattern, sine_copy, tmp_path):
    before = snapshot(sine_copy)
    bad = make(sine_copy / "checkpoints" / "last.pt", tmp_path)
    assert_refused(run_cli("gan-export", str(bad), "--out", str(sine_copy / "export"), cwd=tmp_path), pattern,
                   cli="gan-export")
    assert snapshot(sine_copy) == before  # the good export beside it is untouched


def test_resume_from_an_endless_checkpoint(sine_copy, tmp_path):
    ckpt = _own_copy(sine_copy, tmp_path) / "checkpoints" / "last.pt"
    _altered(ckpt, ckpt, lambda s: s.update(epoch=-10**30))
    assert_refused(run_cli("gan-train", "--resume", "--runs-dir", "runs", cwd=tmp_path), "epoch should be an integer",
                   cli="gan-train")


@pytest.mark.parametrize("damage, pattern", [
    (lambda ck: _flipped(ck, ck), r"checkpoint .*last.pt is damaged: record data/0 fails its CRC"),
    (lambda ck: _altered(ck, ck, _int64_weight), r"cannot resume from .*last.pt: its generator does not fit the "
                                                 r"model: .* is int64"),
])
def test_resume_from_a_damaged_checkpoint(damage, pattern, sine_copy, tmp_path):
    ckpt = _own_copy(sine_copy, tmp_path) / "checkpoints" / "last.pt"
    damage(ckpt)
    before = snapshot(ckpt.parent.parent)
    assert_refused(run_cli("gan-train", "--resume", "--epochs", "5", "--runs-dir", "runs", cwd=tmp_path), pattern,
                   cli="gan-train")
    assert snapshot(ckpt.parent.parent) == before  # nothing trained, nothing written


def test_latest_pointing_outside_the_runs_folder(sine_copy, tmp_path):
    runs = _own_copy(sine_copy, tmp_path).parent
    (runs / "latest").unlink()
    (runs / "latest").symlink_to("/etc")
    assert_refused(run_cli("gan-export", "--runs-dir", str(runs), cwd=tmp_path), "points outside", cli="gan-export")


def test_latest_without_a_checkpoint_falls_back(sine_copy, tmp_path):
    sine_copy = _own_copy(sine_copy, tmp_path)
    runs = sine_copy.parent
    (runs / "sine-killed").mkdir()
    (runs / "latest").unlink()
    (runs / "latest").symlink_to("sine-killed")
    result = run_cli("gan-export", "--runs-dir", str(runs), "--out", "e", cwd=tmp_path)
    assert_ok(result, cli="gan-export")
    assert f"using {sine_copy.name}, the newest run with a checkpoint" in result.stderr


@pytest.mark.parametrize("args, pattern", [
    (["--seed", "99999999999999999999999"], "seed must be between 0 and"),
    (["--set", "n_rows=10000000000"], "n_rows x sample_len is 320,000,000,000 values"),
    (["--set", "batch_size=1" + "0" * 30], "batch_size must be at most 65,536"),
    (["--epochs", "100000000"], "epochs must be at most 100,000"),
])
def test_train_arguments(args, pattern, tmp_path):
    assert_refused(run_cli("gan-train", *SINE, *args, "--runs-dir", "runs", cwd=tmp_path), pattern, cli="gan-train")
    assert not (tmp_path / "runs").exists()


def test_a_config_file_with_absurd_sizes(tmp_path):
    (tmp_path / "c.json").write_text('{"n_rows": 1e10}')
    assert_refused(run_cli("gan-train", "sine", "--config", "c.json", cwd=tmp_path), "n_rows", cli="gan-train")


@pytest.mark.parametrize("side", [9000, 20000])  # 20000x20000 is past PIL's own bomb limit
def test_a_folder_of_huge_images(side, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    files.png(folder / "huge.png", side, side)
    result = run_cli("gan-train", "wgan-gp", "--data", str(folder), "--runs-dir", "runs", cwd=tmp_path)
    size = "over 179 megapixels" if side > 13000 else f"{side}x{side}"
    assert_refused(result, f"could be used .*larger than 67 megapixels, the limit .*huge.png: {size}", cli="gan-train")


def test_a_gzip_idx_that_inflates_to_a_gigabyte(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    zeros = bytes(1 << 20)
    files.gz(folder / "train-images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, 60000, 28, 28),
             *[zeros] * 1024)  # declares 47 MB, inflates to 1 GB
    files.gz(folder / "train-labels-idx1-ubyte.gz", struct.pack(">II", 0x801, 60000), bytes(60000))
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_size < 2 << 20
    assert_refused(run_cli("gan-train", "mnist-mlp", "--data", str(folder), "--runs-dir", "runs", cwd=tmp_path),
                   "holds more data than its header declares", cli="gan-train")


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one(tmp_path):
    assert_ok(run_cli("gan-train", *SINE, "--epochs", "1", "--runs-dir", "runs", cwd=tmp_path), cli="gan-train")
    run = (tmp_path / "runs" / "latest").resolve()
    before = snapshot(run / "checkpoints")
    size = (run / "checkpoints" / "last.pt").stat().st_size
    result = run_cli("gan-train", "--resume", "--epochs", "3", "--runs-dir", "runs", cwd=tmp_path,
                     file_size=size // 2)  # any file past half a checkpoint fails, as on a full disk
    assert_refused(result, r"cannot write .*last.pt: File too large", cli="gan-train")
    assert snapshot(run / "checkpoints") == before  # the last checkpoint whole, no temporary beside it
    assert_ok(run_cli("gan-train", "--resume", "--epochs", "2", "--runs-dir", "runs", cwd=tmp_path), cli="gan-train")


USER_G = """import torch


class G(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 12)

    def forward(self, z):
        return torch.tanh(self.fc(z))
"""


@pytest.mark.parametrize("damage, pattern", [
    (lambda w, d: _flipped(w, d / "f.pth"), r"weights file .*f.pth is damaged: record data/0 fails its CRC; copy it"),
    (lambda w, d: _bomb(w, d / "b.pth"), r"b.pth declares records of more than 4,273,741,824 bytes once unpacked"),
    (lambda w, d: torch.save({"fc.weight": torch.ones(12, 4, dtype=torch.int64), "fc.bias": torch.ones(12)},
                             d / "i.pth") or d / "i.pth", r"do not fit G: fc.weight is int64 \[12, 4\]; the model's"),
])
def test_export_of_damaged_user_weights(damage, pattern, tmp_path):
    (tmp_path / "mine.py").write_text(USER_G)
    weights = tmp_path / "G.pth"
    torch.save({"fc.weight": torch.randn(12, 4), "fc.bias": torch.randn(12)}, weights)
    bad = damage(weights, tmp_path)
    result = run_cli("gan-export", "--module", f"{tmp_path / 'mine.py'}:G", "--weights", str(bad), "--latent-shape",
                     "4", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_refused(result, pattern, cli="gan-export")
    assert not (tmp_path / "out").exists()
