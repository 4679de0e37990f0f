"""A run is one frozen TrainRequest; a resume may change only what RESUMABLE declares."""

import dataclasses

import pytest
import torch
from click.testing import CliRunner

from ganforge.errors import ConfigError
from ganforge.train_cli import main
from ganforge.training import TrainRequest, train
from ganforge.training.request import RESUMABLE


def test_the_request_is_frozen_and_sorts_keywords_into_fields_and_config_keys():
    r = TrainRequest.make("sine", epochs=3, ema=0.99, seed=None, runs_dir="x", sets=["a=1"])
    assert (r.variant, r.runs_dir, r.sets) == ("sine", "x", ("a=1",))
    assert dict(r.options) == {"epochs": 3, "ema": 0.99}  # None: not given
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.device = "cuda"
    with pytest.raises(TypeError):
        r.options["epochs"] = 4


def test_an_unknown_keyword_is_an_unknown_config_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'epoch'.*valid keys: .*epochs"):
        train("sine", epoch=3, runs_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_resume_names_what_it_refuses_and_what_it_allows(sine_run):
    with pytest.raises(ConfigError, match=r"drop --seed, --set batch_size \(a resume may change only --device, "
                                          r"--epochs, --amp, --compile"):
        train(resume=sine_run.run_dir, sets=["batch_size=8"], seed=2, epochs=9)
    with pytest.raises(ConfigError, match="drop --ema"):
        train(resume=sine_run.run_dir, ema=0.9, epochs=9)
    assert {"epochs", "amp", "compile", "tensorboard", "eval_every", "checkpoint_every"} <= set(RESUMABLE)
    assert "ema" not in RESUMABLE and "batch_size" not in RESUMABLE and "seed" not in RESUMABLE


def test_resume_takes_the_options_that_change_nothing_it_computes(tmp_path):
    """--resume --tensorboard used to be refused with "drop --set" though no --set was given."""
    pytest.importorskip("torch.utils.tensorboard")
    runs = tmp_path / "runs"
    first = train("sine", epochs=2, sets=["n_rows=64", "sample_count=4"], runs_dir=runs, progress=False, device="cpu")
    result = CliRunner().invoke(main, ["--resume", str(first.run_dir), "--epochs", "4", "--tensorboard",
                                       "--checkpoint-every", "3", "--runs-dir", str(runs), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "trained 2 epochs (4 in all) of sine" in result.output  # this call's epochs, and the total
    assert list((first.run_dir / "tensorboard").iterdir())
    state = torch.load(first.checkpoint, weights_only=True)
    assert state["epoch"] == 4 and state["config"]["tensorboard"] and state["config"]["checkpoint_every"] == 3
    straight = train("sine", epochs=4, sets=["n_rows=64", "sample_count=4"], runs_dir=tmp_path / "b",
                     progress=False, device="cpu")
    other = torch.load(straight.checkpoint, weights_only=True)
    assert all(torch.equal(state["generator"][k], other["generator"][k]) for k in other["generator"])


def test_the_config_file_is_read_once_a_run(tmp_path, monkeypatch):
    """The variant, the runs folder (asked twice) and the config come from one reading of --config."""
    import json

    from ganforge.training import config, request

    reads, read = [], config.read_config_file

    def counted(path):
        reads.append(path)
        return read(path)

    monkeypatch.setattr(request, "read_config_file", counted)
    monkeypatch.setattr(config, "read_config_file", lambda path: pytest.fail(f"{path} read again by config"))
    (tmp_path / "c.json").write_text(json.dumps({"variant": "sine", "runs_dir": str(tmp_path / "runs"), "epochs": 1,
                                                 "n_rows": 64, "batch_size": 32, "sample_count": 4}))
    result = train(config_file=tmp_path / "c.json", progress=False, device="cpu")
    assert reads == [tmp_path / "c.json"] and result.run_dir.parent == tmp_path / "runs"
