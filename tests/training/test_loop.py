import csv
import json

import pytest
import torch
from PIL import Image

from ganforge.errors import CheckpointError, ConfigError, DeviceError
from ganforge.training import checkpoint, train
from ganforge.training.loop import TrainingDiverged
from tests.conftest import tiny_sets


def test_run_directory_layout(sine_run):
    run = sine_run.run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["variant"] == "sine" and config["epochs"] == 3 and config["n_rows"] == 96
    assert {"seed", "learning_rate", "latent_dim", "data", "device"} <= set(config)
    assert (run / "checkpoints" / "last.pt").is_file()
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "step", "d_real", "d_fake", "g", "diversity", "seconds", "eval"}
    assert all(r["eval"] == "" for r in rows)  # --eval-every is off by default
    assert all(float(r[k]) > 0 for r in rows for k in ("d_real", "d_fake", "g"))
    assert int(rows[-1]["step"]) == 3 * 3  # 96 rows / 32 per batch
    samples = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["epoch-0001.png", "epoch-0002.png", "epoch-0003.png"]
    assert Image.open(run / "losses.png").size[0] > 500
    gif = Image.open(run / "progress.gif")
    assert gif.n_frames == 3
    log = (run / "train.log").read_text()
    assert "epoch 1/3" in log and "epoch 3/3" in log
    latest = run.parent / "latest"
    assert latest.is_symlink() and latest.resolve() == run.resolve()


def test_checkpoint_is_weights_only_and_complete(sine_run):
    state = torch.load(sine_run.checkpoint, weights_only=True)
    assert state["variant"] == "sine" and state["epoch"] == 3
    assert {"generator", "discriminator", "opt_g", "opt_d", "rng", "fixed_noise", "history", "config"} <= set(state)
    G, variant, cfg = checkpoint.build_generator(state)
    assert cfg.n_rows == 96 and not G.training


def _params(ckpt):
    state = torch.load(ckpt, weights_only=True)
    return {**{f"G.{k}": v for k, v in state["generator"].items()}, **{f"D.{k}": v for k, v in state["discriminator"].items()}}, state


def test_resume_gives_identical_weights(tmp_path):
    sets = ["n_rows=128", "sample_count=4"]
    full = train("sine", epochs=10, sets=sets, runs_dir=tmp_path / "a", progress=False, device="cpu")
    half = train("sine", epochs=5, sets=sets, runs_dir=tmp_path / "b", progress=False, device="cpu")
    resumed = train(resume=half.run_dir, epochs=10, runs_dir=tmp_path / "b", progress=False, device="cpu")
    assert resumed.run_dir == half.run_dir and resumed.epochs == 10
    a, state_a = _params(full.checkpoint)
    b, state_b = _params(resumed.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert state_a["step"] == state_b["step"]
    assert [r["g"] for r in state_a["history"]] == [r["g"] for r in state_b["history"]]
    assert len(list((resumed.run_dir / "samples").glob("*.png"))) == 10
    rows = list(csv.DictReader((resumed.run_dir / "metrics.csv").open()))
    assert len(rows) == 10
    # A different seed really changes the result (the comparison above can fail).
    other = train("sine", epochs=1, sets=sets, seed=1, runs_dir=tmp_path / "c", progress=False, device="cpu")
    assert not torch.equal(_params(other.checkpoint)[0]["G.net.0.weight"], _params(half.checkpoint)[0]["G.net.0.weight"])


def test_resume_keeps_config_and_needs_more_epochs(sine_run, tmp_path):
    with pytest.raises(ConfigError, match="drop --set"):
        train(resume=sine_run.run_dir, sets=["batch_size=8"], epochs=9)
    with pytest.raises(ConfigError, match="already trained 3 of 3"):
        train(resume=sine_run.run_dir)
    with pytest.raises(CheckpointError, match="no runs in"):
        train(resume="latest", runs_dir=tmp_path / "empty")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    run = train("sine", epochs=1, sets=tiny_sets("sine"), runs_dir=tmp_path, progress=False, device="cpu")
    before = run.checkpoint.read_bytes()
    from ganforge.training import losses

    monkeypatch.setattr(losses.BCEObjective, "generator_loss", lambda self, D, fake: D(fake).mean() * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"(loss (g|d_real|d_fake) became nan|weights became non-finite) in epoch 2 .*still holds epoch 1"):
        train(resume=run.run_dir, epochs=2, runs_dir=tmp_path, progress=False, device="cpu")
    assert run.checkpoint.read_bytes() == before


def test_bad_input_leaves_no_run(tmp_path):
    with pytest.raises(ConfigError, match="embedded synthetic data"):
        train("sine", data=str(tmp_path), runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError, match="unknown variant"):
        train("nope", runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
def test_cuda_without_cuda_is_an_error(tmp_path):
    with pytest.raises(DeviceError, match="no CUDA"):
        train("sine", device="cuda", runs_dir=tmp_path)


def test_corrupt_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        checkpoint.load(bad)
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        checkpoint.load(bad)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_never_runs_code(tmp_path, capsys):
    bad = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": _Evil()}, bad)
    with pytest.raises(CheckpointError):
        checkpoint.load(bad)
    assert "pwned" not in capsys.readouterr().out
