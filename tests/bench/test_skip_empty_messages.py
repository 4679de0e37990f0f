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
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "generator.ts"))  # whole: its CRCs pass
    monkeypatch.setattr(torch.jit, "load", _raise_empty)
    with pytest.raises(B.Skipped, match=r"is not a loadable TorchScript generator \(RuntimeError\); re-export it"):
        B.torchscript_backend(tmp_path / "generator.ts")


def test_a_damaged_torchscript_file_is_skipped_unloaded(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    from tests.hostile.files import flip_byte

    path = tmp_path / "generator.ts"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    flip_byte(path, "data/0")
    monkeypatch.setattr(torch.jit, "load", _raise_empty)  # never reached
    with pytest.raises(B.Skipped, match=r"TorchScript file .* is damaged: record data/0 fails its CRC; export it "
                                        r"again"):
        B.torchscript_backend(path)


def test_openvino_failing_to_compile_silently_is_skipped(monkeypatch):
    openvino = pytest.importorskip("openvino")

    class Core:
        compile_model = staticmethod(_raise_empty)

    monkeypatch.setattr(openvino, "Core", Core)
    with pytest.raises(B.Skipped, match=r"^OpenVINO cannot compile tiny-image.onnx \(RuntimeError\)$"):
        B.openvino_backend(DATA / "tiny-image.onnx", "openvino-fp32")
