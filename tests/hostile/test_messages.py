"""What reaches a terminal (issue 29): outside strings (class names, file names) are printed
printable, so that a one-line message stays one line and cannot rewrite the screen; and the
messages that misled say what is wrong."""

from __future__ import annotations

import os

import pytest

from tests.hostile.harness import assert_refused, run_cli

EVIL = ("evil\x1b[2J\x1b[31mred", "two\nlines", "sur\ud800rogate")


@pytest.fixture
def evil_model(tmp_path):
    from tests.data.make_tiny_models import MODELS, build
    from tests.hostile.files import save

    return save(build(**{**MODELS["tiny-cond.onnx"], "classes": EVIL}), tmp_path / "evil.onnx")


def _one_clean_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "\x1b" not in text, text
    return lines[0]


def test_class_names_are_printed_printable(evil_model, tmp_path):
    result = run_cli("gan-infer", "--model", str(evil_model), "--n", "3", "--label", "0", "--label", "1", "--label", "2",
                     "--out", "g.png", cwd=tmp_path)
    assert result.returncode == 0, result.output
    line = _one_clean_line(result.stdout)
    assert r"labels evil\x1b[2J\x1b[31mred, two\nlines, sur\ud800rogate" in line and (tmp_path / "g.png").is_file()


def test_an_error_listing_class_names_is_one_line(evil_model, tmp_path):
    result = run_cli("gan-infer", "--model", str(evil_model), "--n", "3", "--label", "nope", "--out", "g.png",
                     cwd=tmp_path)
    line = assert_refused(result, r"unknown label 'nope'; this model knows: 0=evil\\x1b\[2J.*1=two\\nlines")
    assert _one_clean_line(result.stderr) == line and not (tmp_path / "g.png").exists()


def test_a_file_name_with_a_newline_stays_on_its_line(tmp_path):
    result = run_cli("gan-infer", "--model", str(tmp_path / "a\nb\x1b[2J.onnx"), "--out", "g.png", cwd=tmp_path)
    assert_refused(result, r"model file .*a\\nb\\x1b\[2J.onnx does not exist")
    _one_clean_line(result.stderr)


@pytest.mark.parametrize("cli, args", [
    ("gan-infer", ["--model", "{special}", "--out", "g.png"]),
    ("gan-bench", ["--model", "{special}"]),
    ("gan-eval", ["{special}"]),
    ("gan-train", ["sine", "--config", "{special}"]),  # a pipe used to block the read for ever
])
@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_device_or_a_pipe_is_not_said_to_be_missing(cli, args, special, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    args = [a.format(special=special) for a in args]
    line = assert_refused(run_cli(cli, *args, cwd=tmp_path, timeout=60), "is a device, a pipe or a socket, not a file",
                          cli=cli)
    assert "does not exist" not in line


GENERATOR = """
import torch.nn as nn
class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(8, 16)
    def forward(self, z):
        return self.l(z).tanh()
"""


def test_nan_weights_are_named_not_blamed_on_the_batch(tmp_path):
    import sys

    import torch

    (tmp_path / "g.py").write_text(GENERATOR)
    sys.path.insert(0, str(tmp_path))
    try:
        import g
        state = g.G().state_dict()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("g", None)
    state["l.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    line = assert_refused(run_cli("gan-export", "--module", "g.py:G", "--weights", "nan.pth", "--latent-shape", "8",
                                  "--out", "o", cwd=tmp_path), r"samples hold NaN or infinite values .*1 weight value"
                                                               r"\(s\) are NaN or infinite \(in net.l.weight\)",
                          cli="gan-export")
    assert "rest of the batch" not in line and not (tmp_path / "o").exists()


def test_text_after_a_pickles_first_byte_is_not_a_pickled_object(tmp_path):
    (tmp_path / "g.py").write_text(GENERATOR)
    (tmp_path / "text.pth").write_bytes(b"\x80" + b"root:x:0:0:root:/root:/bin/bash\n" * 20)
    line = assert_refused(run_cli("gan-export", "--module", "g.py:G", "--weights", "text.pth", "--latent-shape", "8",
                                  "--out", "o", cwd=tmp_path), r"text.pth is not torch weights", cli="gan-export")
    assert "pickled Python object" not in line and "--trust-pickle" not in line


def test_exports_memory_error_names_no_batch_size_it_lacks(tmp_path):
    """A generator whose batch of 257 (one of gan-export's checks) needs more than the memory limit."""
    wide = ["sine", *[a for s in ("sample_len=65536", "n_rows=32", "batch_size=32", "sample_count=2", "g_hidden=[8]",
                                  "d_hidden=[8]") for a in ("--set", s)], "--epochs", "1", "--runs-dir", "runs"]
    assert run_cli("gan-train", *wide, cwd=tmp_path).returncode == 0
    line = assert_refused(run_cli("gan-export", "--runs-dir", "runs", "--out", "e", cwd=tmp_path,
                                  env={"GANFORGE_MAX_MEMORY": "64M"}),
                          r"e/generator.onnx on a batch of 257 needs more than the 64.0 MiB memory limit: raise the limit",
                          cli="gan-export")
    assert "--batch-size" not in line and ".ganforge-tmp-" not in line
