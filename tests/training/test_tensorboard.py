import pytest
import torch

from ganforge.training import train


def test_tensorboard_events_hold_the_expected_tags(tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = train("sine", epochs=3, sets=["n_rows=96", "sample_count=4", "tensorboard=true"], runs_dir=tmp_path,
                progress=False, device="cpu")
    acc = ea.EventAccumulator(str(run.run_dir / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/d_real", "loss/d_fake", "loss/g", "time/epoch_seconds"} <= scalars
    assert "samples" in acc.Tags()["images"]
    g = [e.value for e in acc.Scalars("loss/g")]
    state = torch.load(run.checkpoint, weights_only=True)
    assert g == pytest.approx([r["g"] for r in state["history"]], rel=1e-6)  # the same figures as metrics.csv
    assert [e.step for e in acc.Scalars("loss/g")] == [1, 2, 3]


def test_deterministic_runs_repeat_bit_for_bit(tmp_path):
    sets = ["n_rows=96", "sample_count=4", "deterministic=true"]
    torch.use_deterministic_algorithms(False)
    a = train("sine", epochs=2, sets=sets, runs_dir=tmp_path / "a", progress=False, device="cpu")
    assert torch.are_deterministic_algorithms_enabled()  # the flag really reached torch
    b = train("sine", epochs=2, sets=sets, runs_dir=tmp_path / "b", progress=False, device="cpu")
    sa, sb = (torch.load(r.checkpoint, weights_only=True) for r in (a, b))
    assert all(torch.equal(sa["generator"][k], sb["generator"][k]) for k in sa["generator"])
    torch.use_deterministic_algorithms(False)  # leave the process as other tests expect it
