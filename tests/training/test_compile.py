"""--compile: torch.compile where it works, eager with one warning where it does not, and
checkpoints of the plain modules either way."""

import os
import warnings

import pytest
import torch

from ganforge.errors import GanforgeWarning
from ganforge.training import accel, checkpoint, train
from tests.conftest import tiny_sets


def _train_collecting_warnings(variant, sets, tmp_path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(variant, epochs=1, sets=sets, compile=True, runs_dir=tmp_path, progress=False, device="cpu", **kw)
    ours = [str(w.message) for w in caught if issubclass(w.category, GanforgeWarning)]
    return run, ours, (run.run_dir / "train.log").read_text()


def _plain_checkpoint(run):
    state = torch.load(run.checkpoint, weights_only=True)
    for part in ("generator", "discriminator"):
        assert not any(k.startswith(("_orig_mod.", "module.")) for k in state[part]), list(state[part])[:3]
    checkpoint.build_generator(state)  # what gan-export does: loads strictly into a fresh generator
    return state


def test_compile_failure_falls_back_to_eager_with_one_warning(tmp_path, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler here\nsecond line")

    monkeypatch.setattr(torch, "compile", no_compiler)
    run, ours, log = _train_collecting_warnings("sine", tiny_sets("sine"), tmp_path)
    assert ours == ["--compile: torch.compile does not work for sine here (RuntimeError: no C++ compiler here); "
                    "training without it"]
    assert "compiled" not in log and run.epochs == 1
    _plain_checkpoint(run)


def test_compile_trains_and_checkpoints_plain_weights(tmp_path, monkeypatch):
    """Dynamo and AOTAutograd for real (the aot_eager backend skips only inductor's C++ build)."""
    monkeypatch.setattr(accel, "COMPILE_OPTIONS", {"backend": "aot_eager"})
    sets = tiny_sets("sine") + ["r1_weight=0"]  # (R1, like the gradient penalty, keeps D eager: below)
    run, ours, log = _train_collecting_warnings("sine", sets, tmp_path)
    assert ours == [] and "(compiled: G and D)" in log
    eager = train("sine", epochs=1, sets=sets, runs_dir=tmp_path / "eager", progress=False, device="cpu")
    a, b = _plain_checkpoint(run), torch.load(eager.checkpoint, weights_only=True)
    for k in b["generator"]:  # the same training, to float rounding
        torch.testing.assert_close(a["generator"][k], b["generator"][k], rtol=1e-4, atol=1e-5)


def test_gradient_penalty_keeps_the_critic_eager(tmp_path, fake_data, monkeypatch):
    """torch.compile cannot differentiate a compiled critic twice (the penalty's create_graph):
    G stays compiled, the critic falls back, and one warning says so."""
    monkeypatch.setattr(accel, "COMPILE_OPTIONS", {"backend": "aot_eager"})
    run, ours, log = _train_collecting_warnings("wgan-gp", tiny_sets("wgan-gp", fake_data), tmp_path)
    assert len(ours) == 1 and ours[0].startswith("--compile: torch.compile does not work for wgan-gp's D here (")
    assert ours[0].endswith("D trains eagerly, G compiled") and "(compiled: G)" in log
    _plain_checkpoint(run)


def test_r1_keeps_the_discriminator_eager(tmp_path, monkeypatch):
    """R1 differentiates D's input gradient too: the same fallback as the gradient penalty."""
    monkeypatch.setattr(accel, "COMPILE_OPTIONS", {"backend": "aot_eager"})
    run, ours, log = _train_collecting_warnings("sine", tiny_sets("sine") + ["r1_weight=1"], tmp_path)
    assert len(ours) == 1 and ours[0].startswith("--compile: torch.compile does not work for sine's D here (")
    assert "(compiled: G)" in log


@pytest.mark.skipif(not os.environ.get("GANFORGE_SLOW_TESTS"),
                    reason="inductor's first C++ build takes ~25 s here; GANFORGE_SLOW_TESTS=1 runs it")
def test_inductor_compiles_sine(tmp_path):
    run, ours, log = _train_collecting_warnings("sine", tiny_sets("sine") + ["r1_weight=0"], tmp_path)
    assert ours == [] and "(compiled: G and D)" in log
    _plain_checkpoint(run)
