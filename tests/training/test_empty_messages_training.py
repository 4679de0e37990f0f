"""A foreign exception with an empty message (``raise RuntimeError()``) still ends in one line that
names its type, on every path of training that quotes a foreign error's first line: the loop's
divergence, a checkpoint torch cannot read, a failed write, the user's module failing its probe,
torch.compile failing. (``str(exc).splitlines()[0]`` raised IndexError on such an exception.)"""

import warnings

import pytest
import torch
from torch import nn

from ganforge.errors import CheckpointError, ConfigError, GanforgeWarning
from ganforge.training import checkpoint, loop, train
from ganforge.training.loop import TrainingDiverged
from ganforge.training.run import write_error
from ganforge.training.variants import custom
from tests.conftest import tiny_sets


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_a_step_failing_without_a_message_once_weights_went_nan(tmp_path, monkeypatch):
    def nan_then_fail(t, real, labels, sums):
        with torch.no_grad():
            next(t.state.G.parameters()).fill_(float("nan"))
        raise RuntimeError()

    monkeypatch.setattr(loop, "_train_step", nan_then_fail)
    with pytest.raises(TrainingDiverged) as caught:
        train("sine", epochs=1, sets=tiny_sets("sine"), runs_dir=tmp_path, progress=False, device="cpu")
    assert "weights became non-finite in epoch 1 (step 0: RuntimeError); " in _one_line(caught.value)


def test_a_checkpoint_torch_fails_on_without_a_message(sine_run, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(checkpoint.torch, "load", fails)
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(sine_run.checkpoint)
    assert _one_line(caught.value) == f"{sine_run.checkpoint} is not a readable checkpoint (RuntimeError); is the " \
                                      "file complete?"


def test_a_write_failing_without_a_message(tmp_path):
    error = write_error(tmp_path / "metrics.csv", RuntimeError())
    assert _one_line(error).startswith(f"cannot write {tmp_path / 'metrics.csv'}: RuntimeError (")


class _Silent(nn.Module):
    def forward(self, x):
        raise RuntimeError()


def test_the_users_module_failing_its_probe_without_a_message():
    with pytest.raises(ConfigError) as caught:
        custom._probe(_Silent(), "my.py:G", torch.zeros(2, 4), "noise")
    assert _one_line(caught.value) == "my.py:G fails on noise [2, 4] (RuntimeError); check --latent-shape and the " \
                                      "data's size"


def test_torch_compile_failing_without_a_message(tmp_path, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(torch, "compile", fails)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train("sine", epochs=1, sets=tiny_sets("sine"), compile=True, runs_dir=tmp_path, progress=False, device="cpu")
    ours = [str(w.message) for w in caught if issubclass(w.category, GanforgeWarning)]
    assert ours == ["--compile: torch.compile does not work for sine here (RuntimeError); training without it"]
