"""A peer that fails with an empty exception message is skipped with a line naming the exception's
type (``errors.first_line``), not an IndexError."""

from pathlib import Path

import pytest

from ganforge.bench import backends as B

DATA = Path(__file__).resolve().parents[1] / "data"


def _raise_empty(*args, **kwargs):
    raise RuntimeError()


def test_a_torchscript_file_that_fails_to_load_silently_is_skipped(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.jit, "load", _raise_empty)
    with pytest.raises(B.Skipped, match=r"is not a loadable TorchScript generator \(RuntimeError\); re-export it"):
        B.torchscript_backend(tmp_path / "generator.ts")


def test_openvino_failing_to_compile_silently_is_skipped(monkeypatch):
    openvino = pytest.importorskip("openvino")

    class Core:
        compile_model = staticmethod(_raise_empty)

    monkeypatch.setattr(openvino, "Core", Core)
    with pytest.raises(B.Skipped, match=r"^OpenVINO cannot compile tiny-image.onnx \(RuntimeError\)$"):
        B.openvino_backend(DATA / "tiny-image.onnx", "openvino-fp32")
