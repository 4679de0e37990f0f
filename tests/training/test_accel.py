"""Mixed precision (--amp), the gradient penalty under autocast, the fp16 gradient scaler in
checkpoints, and the CUDA-only knobs (cuDNN autotuning, channels_last) on a CPU machine."""

import io
import json
import math

import pytest
import torch
from click.testing import CliRunner

from ganforge.errors import ConfigError, DeviceError
from ganforge.training import accel, train
from ganforge.train_cli import main
from ganforge.training.losses import gradient_penalty
from ganforge.training.variants import dcgan, wgan_gp
from tests.conftest import tiny_sets


def test_amp_choices_and_bad_values(tmp_path, monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert accel.resolve_precision("auto", cpu).name == "fp32"  # autocast is opt-in on CPU
    assert accel.resolve_precision("bf16", cpu).dtype == torch.bfloat16
    assert accel.resolve_precision("fp16", cpu).grad_scaler().is_enabled()
    assert not accel.resolve_precision("bf16", cpu).grad_scaler().is_enabled()
    monkeypatch.setattr(accel, "_cuda_bf16", lambda: True)
    assert accel.resolve_precision("auto", cuda).name == "bf16"
    monkeypatch.setattr(accel, "_cuda_bf16", lambda: False)  # e.g. a V100
    assert accel.resolve_precision("auto", cuda).name == "fp32"
    with pytest.raises(DeviceError, match="no native bfloat16; use --amp fp16 or --amp off"):
        accel.resolve_precision("bf16", cuda)
    with pytest.raises(ConfigError, match="amp must be one of auto, bf16, fp16, off, got 'fp8'"):
        train("sine", sets=["amp=fp8"], runs_dir=tmp_path)
    result = CliRunner().invoke(main, ["sine", "--amp", "fp8", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Invalid value for '--amp'" in result.output
    assert not any(tmp_path.iterdir())


def _critic_and_batch():
    torch.manual_seed(0)
    return wgan_gp.Critic(16, 8), torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16), torch.rand(8)


def _gp_and_grads(C, real, fake, eps, dtype=None, scaler=None):
    C.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        gp = gradient_penalty(C, real, fake, eps=eps, scaler=scaler)
    (scaler.scale(gp) if scaler is not None else gp).backward()
    unscale = 1.0 / scaler.get_scale() if scaler is not None else 1.0
    return gp.item(), torch.cat([p.grad.flatten() * unscale for p in C.parameters() if p.grad is not None])


@pytest.mark.parametrize("dtype, scale, tol", [(torch.bfloat16, None, 1e-2), (torch.float16, None, 1e-3),
                                               (torch.float16, 1024.0, 1e-3), (None, 2.0**16, 1e-6)])
def test_gradient_penalty_under_amp_matches_float32(dtype, scale, tol):
    C, real, fake, eps = _critic_and_batch()
    want, want_grads = _gp_and_grads(C, real, fake, eps)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale) if scale else None
    got, grads = _gp_and_grads(C, real, fake, eps, dtype, scaler)
    assert got == pytest.approx(want, rel=tol)  # unscaled: a forgotten 1/scale would be ~scale^2 off
    assert ((grads - want_grads).norm() / want_grads.norm()).item() < 2 * tol  # and its gradient reaches D alike


@pytest.mark.parametrize("variant, amp", [("sine", "bf16"), ("wgan-gp", "bf16"), ("sine", "fp16")])
def test_amp_on_cpu_trains_finite(variant, amp, tmp_path, fake_data):
    run = train(variant, epochs=2, sets=tiny_sets(variant, fake_data), amp=amp, runs_dir=tmp_path, progress=False,
                device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    assert all(math.isfinite(r[k]) for r in state["history"] for k in ("d_real", "d_fake", "g"))
    for part in ("generator", "discriminator"):  # weights stay float32; only the forward passes are lower precision
        assert all(v.dtype in (torch.float32, torch.int64) and torch.isfinite(v).all() for v in state[part].values())
    assert json.loads((run.run_dir / "config.json").read_text())["precision"] == amp
    assert f"({amp} autocast)" in (run.run_dir / "train.log").read_text()
    assert ("scalers" in state) == (amp == "fp16")


def test_fp16_overflow_is_skipped_and_the_scaler_resumes_exactly(tmp_path, fake_data, monkeypatch):
    """A scale far too large makes the first fp16 gradients (and the gradient penalty) overflow:
    the scaler skips those steps and backs off, the non-finite check does not stop the run, and
    a resumed run goes on from the scale reached, ending where an uninterrupted one does."""
    monkeypatch.setattr(accel, "GRAD_SCALER_INIT", 2.0**40)
    sets = tiny_sets("wgan-gp", fake_data)
    straight = train("wgan-gp", epochs=3, sets=sets, amp="fp16", runs_dir=tmp_path / "a", progress=False,
                     device="cpu")
    half = train("wgan-gp", epochs=1, sets=sets, amp="fp16", runs_dir=tmp_path / "b", progress=False, device="cpu")
    first = torch.load(half.checkpoint, weights_only=True)
    assert first["history"][0]["skipped"] == 3 + 1  # all 3 critic steps and the one G step of epoch 1
    assert math.isfinite(first["history"][0]["d_real"])
    assert first["scalers"]["d"]["scale"] == 2.0**37 and first["scalers"]["g"]["scale"] == 2.0**39  # backed off, saved
    resumed = train(resume=half.run_dir, epochs=3, runs_dir=tmp_path / "b", progress=False, device="cpu")
    a, b = (torch.load(r.checkpoint, weights_only=True) for r in (straight, resumed))
    assert a["scalers"] == b["scalers"] and a["scalers"]["d"]["scale"] < 2.0**37
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part


def test_fp16_stops_when_every_loss_overflows(tmp_path, monkeypatch):
    from ganforge.training import losses
    from ganforge.training.loop import TrainingDiverged

    inf = lambda self, D, fake: D(fake).float().mean() * float("inf")  # noqa: E731  (a forward overflow)
    monkeypatch.setattr(losses.BCEObjective, "generator_loss", inf)
    with pytest.raises(TrainingDiverged, match="every fp16 G loss of epoch 1 overflowed; try --amp bf16 or off"):
        train("sine", epochs=1, sets=["n_rows=64", "sample_count=4"], amp="fp16", runs_dir=tmp_path, progress=False,
              device="cpu")


def test_cudnn_autotuning_only_on_cuda_and_never_deterministic(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    accel.configure_backends(torch.device("cpu"), deterministic=False)
    assert torch.backends.cudnn.benchmark is False
    accel.configure_backends(torch.device("cuda"), deterministic=False)
    assert torch.backends.cudnn.benchmark is True
    try:
        accel.configure_backends(torch.device("cuda"), deterministic=True)
        assert torch.backends.cudnn.benchmark is False and torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_channels_last_is_for_conv_models_on_cuda_and_keeps_weights_portable():
    cfg = dcgan.DCGANConfig(latent_dim=8, g_features=4, d_features=4)
    G, D = dcgan.VARIANT.generator(cfg), dcgan.VARIANT.discriminator(cfg)
    assert accel.use_channels_last(torch.device("cuda"), G, D)
    assert not accel.use_channels_last(torch.device("cpu"), G, D)
    from ganforge.training.variants import sine

    assert not accel.use_channels_last(torch.device("cuda"), sine.Generator())
    z = torch.randn(3, 8)
    G.eval(), D.eval()
    x_want = G(z)
    want = D(x_want)
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)  # what _build does on CUDA
    x = G(z)
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, x_want)
    torch.testing.assert_close(D(x), want)
    buf = io.BytesIO()  # a checkpoint of the NHWC weights loads into the plain model gan-export and resume build
    torch.save(G.state_dict(), buf)
    buf.seek(0)
    fresh = dcgan.VARIANT.generator(cfg)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh.eval()(z), x_want)
