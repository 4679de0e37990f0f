"""A foreign exception with an empty message (``raise RuntimeError()``) still ends in one line that
names its type on every inference and usercode path that quotes a foreign error: onnxruntime
refusing a file, a run failing, a foreign model's probe, the user's module or weights failing to
load. (``str(exc).splitlines()[0]`` raised IndexError on such an exception.)"""

from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import ConfigError, GanforgeError, ModelFileError
from ganforge.inference import Generator, session

DATA = Path(__file__).resolve().parents[1] / "data"


def _fails(*args, **kwargs):
    raise RuntimeError()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "IndexError" not in text
    return text


def test_a_file_onnxruntime_refuses_without_a_message(monkeypatch):
    monkeypatch.setattr(session, "_inference_session", _fails)
    with pytest.raises(ModelFileError) as caught:
        Generator(DATA / "tiny-image.onnx", device="cpu")
    assert "is not a loadable ONNX model (RuntimeError)" in _one_line(caught.value)


def test_a_run_failing_without_a_message(monkeypatch):
    gen = Generator(DATA / "tiny-image.onnx", device="cpu")
    monkeypatch.setattr(gen, "_run_session", _fails)
    monkeypatch.setattr(gen, "_runner", lambda name: _fails)
    with pytest.raises(GanforgeError) as caught:
        gen(np.zeros((2, gen.info.latent_dim), np.float32))
    assert "on a batch of 2 failed (RuntimeError)" in _one_line(caught.value)


def test_a_foreign_probe_failing_without_a_message(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", _fails)
    with pytest.raises(ModelFileError) as caught:
        Generator(DATA / "no-metadata.onnx", device="cpu")
    assert "input failed (RuntimeError); check --latent-shape" in _one_line(caught.value)


def test_the_users_weights_failing_to_load_without_a_message(tmp_path, monkeypatch):
    import torch

    from ganforge.usercode import load_weights

    weights = tmp_path / "G.pth"
    torch.save({"w": torch.zeros(2)}, weights)
    monkeypatch.setattr(torch, "load", _fails)
    with pytest.raises(ConfigError) as caught:
        load_weights(weights)
    assert f"{weights} is not a readable weights file (RuntimeError); is the file" in _one_line(caught.value)


def test_the_users_module_failing_at_import_without_a_message(tmp_path):
    from ganforge.usercode import load_class

    (tmp_path / "mine.py").write_text("raise RuntimeError()\nclass G: pass\n")
    with pytest.raises(ConfigError) as caught:
        load_class(f"{tmp_path / 'mine.py'}:G")
    assert "importing mine.py raised RuntimeError" in _one_line(caught.value)
