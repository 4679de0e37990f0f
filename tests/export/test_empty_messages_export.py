"""A foreign failure whose exception has an empty message is still one line, naming its type:
every place that reports such a failure goes through ``errors.first_line`` (once, some of them
indexed ``str(exc).splitlines()[0]`` and raised IndexError instead)."""

import warnings

import onnx
import pytest

from ganforge.errors import GanforgeError, ModelFileError
from ganforge.export import export, onnx_format
from ganforge.export.adopt import adopt_onnx
from ganforge.export.formats import CallCache
from ganforge.export.spec import spec_from_checkpoint
from ganforge.export.validate import Check, torch_artifact_checks
from tests.data.foreign_models import write_all


def _raise_empty(*args, **kwargs):
    raise RuntimeError()


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("foreign"))


def test_a_torch_artifact_that_fails_to_load_silently_is_a_failed_check(sine_run):
    spec = spec_from_checkpoint(sine_run.checkpoint)
    assert torch_artifact_checks(spec, "torch.jit.load", _raise_empty) == [Check("torch.jit.load", False,
                                                                                 "RuntimeError")]


def test_an_onnx_checker_failure_without_a_message_is_a_failed_check(sine_run, sine_export, monkeypatch):
    spec = spec_from_checkpoint(sine_run.checkpoint)
    monkeypatch.setattr(onnx.checker, "check_model", _raise_empty)
    checks = onnx_format.check_file(spec, sine_export.artifacts["onnx"], CallCache(), "generator.onnx")
    assert checks == [Check("onnx.checker", False, "RuntimeError")]


def test_a_conversion_failure_without_a_message_names_its_type(sine_run, monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_format.Onnx, "convert", _raise_empty)
    with pytest.raises(GanforgeError) as raised:
        export(sine_run.run_dir, formats="onnx", out_dir=tmp_path)
    assert str(raised.value) == "onnx conversion failed: RuntimeError"

    def wordy(*args, **kwargs):
        raise RuntimeError("the exporter gave up\nits traceback")

    monkeypatch.setattr(onnx_format.Onnx, "convert", wordy)
    with pytest.raises(GanforgeError) as raised:  # with a message: the wording it always had
        export(sine_run.run_dir, formats="onnx", out_dir=tmp_path)
    assert str(raised.value) == "onnx conversion failed: RuntimeError: the exporter gave up"


def test_a_warning_without_a_message_is_a_note_naming_its_type(sine_run, monkeypatch, tmp_path):
    convert = onnx_format.Onnx.convert

    def warns(self, *args):
        warnings.warn(UserWarning())
        warnings.warn("first\nsecond", RuntimeWarning)
        return convert(self, *args)

    monkeypatch.setattr(onnx_format.Onnx, "convert", warns)
    result = export(sine_run.run_dir, formats="onnx", out_dir=tmp_path)
    assert result.notes == ["UserWarning", "RuntimeWarning: first"]


def test_adopting_a_file_onnx_cannot_read_without_a_message(foreign, monkeypatch, tmp_path):
    monkeypatch.setattr(onnx, "load", _raise_empty)
    with pytest.raises(ModelFileError, match=r"could not be read with onnx \(RuntimeError\)$"):
        adopt_onnx(foreign["dcgan.onnx"], tmp_path / "generator.onnx")


def test_adopting_a_copy_the_checker_rejects_without_a_message(foreign, monkeypatch, tmp_path):
    monkeypatch.setattr(onnx.checker, "check_model", _raise_empty)
    with pytest.raises(ModelFileError, match=r"fails onnx.checker \(RuntimeError\); nothing was written$"):
        adopt_onnx(foreign["dcgan.onnx"], tmp_path / "generator.onnx")
    assert not (tmp_path / "generator.onnx").exists()
