"""A checkpoint's weights are checked against the model, never cast (issue 29): a G weight stored as
int64 or float64, or of another shape, an optimizer moment of another dtype, the sample grid's noise
in float64: each is one line on resume and on export naming the key, its dtype and shape and the
model's. Before, ``load_state_dict`` cast them silently and the run went on with other weights."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.errors import CheckpointError, ConfigError
from ganforge.statedict import WeightsMisfit, load_exact, misfit
from ganforge.training import train


@pytest.fixture
def run_copy(sine_run, tmp_path) -> Path:
    run = tmp_path / "runs" / sine_run.run_dir.name
    shutil.copytree(sine_run.run_dir, run)
    return run


def _alter(run: Path, change) -> tuple[str, torch.Tensor]:
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    out = change(state)
    torch.save(state, path)
    return out


def _first_weight(state, part="generator", to=None, shape=None):
    key, value = next((k, v) for k, v in state[part].items() if v.dim() == 2)
    state[part][key] = value.to(to) if to is not None else torch.zeros(shape)
    return key, value


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64])
def test_resume_refuses_a_generator_weight_of_another_dtype(run_copy, tmp_path, dtype):
    key, value = _alter(run_copy, lambda s: _first_weight(s, to=dtype))
    name = str(dtype).removeprefix("torch.")
    shape = list(value.shape)
    with pytest.raises(CheckpointError) as caught:
        train(resume=run_copy, epochs=4, runs_dir=tmp_path / "runs", progress=False, device="cpu")
    assert str(caught.value) == (f"cannot resume from {run_copy / 'checkpoints' / 'last.pt'}: its generator does not "
                                 f"fit the model: {key} is {name} {shape}; the model's is float32 {shape}")


def test_resume_refuses_a_discriminator_weight_of_another_shape(run_copy, tmp_path):
    key, value = _alter(run_copy, lambda s: _first_weight(s, "discriminator", shape=(3, 3)))
    with pytest.raises(CheckpointError, match=re.escape(f"its discriminator does not fit the model: {key} is float32 "
                                                        f"[3, 3]; the model's is float32 {list(value.shape)}")):
        train(resume=run_copy, epochs=4, runs_dir=tmp_path / "runs", progress=False, device="cpu")


def test_resume_refuses_an_optimizer_moment_of_another_dtype(run_copy, tmp_path):
    def change(state):
        moments = state["opt_g"]["state"][0]
        moments["exp_avg"] = moments["exp_avg"].double()

    _alter(run_copy, change)
    with pytest.raises(CheckpointError, match=r"its opt_g's exp_avg of parameter 0 is float64 \[.*\]; the parameter "
                                              r"is float32"):
        train(resume=run_copy, epochs=4, runs_dir=tmp_path / "runs", progress=False, device="cpu")


def test_resume_refuses_float64_grid_noise(run_copy, tmp_path):
    _alter(run_copy, lambda s: s.update(fixed_noise=s["fixed_noise"].double()))
    with pytest.raises(CheckpointError, match=r"its sample grid noise is float64 \[\d+, \d+\], this config's float32"):
        train(resume=run_copy, epochs=4, runs_dir=tmp_path / "runs", progress=False, device="cpu")


def test_export_refuses_an_int64_generator_weight(run_copy, tmp_path):
    from ganforge.export import export

    key, value = _alter(run_copy, lambda s: _first_weight(s, "generator_ema", to=torch.int64))  # what export reads
    with pytest.raises(CheckpointError, match=rf"checkpoint generator_ema does not fit the sine generator: {key} is "
                                              rf"int64 \[\d+, \d+\]; the model's is float32"):
        export(run_copy / "checkpoints" / "last.pt", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_users_weights_are_not_cast_but_half_precision_widens(tmp_path):
    from ganforge.usercode import load_into

    G = torch.nn.Sequential(torch.nn.Linear(2, 3))
    with pytest.raises(ConfigError, match=r"do not fit Sequential: 0.weight is int64 \[3, 2\]; the model's is "
                                          r"float32 \[3, 2\]"):
        load_into(G, {"0.weight": torch.ones(3, 2, dtype=torch.int64), "0.bias": torch.ones(3)}, "G.pth")
    half = {"0.weight": torch.full((3, 2), 0.5, dtype=torch.float16), "0.bias": torch.ones(3, dtype=torch.bfloat16)}
    assert load_into(G, half, "G.pth") == "bfloat16 and float16 weights widened exactly"
    assert torch.equal(G[0].weight, torch.full((3, 2), 0.5))


def test_the_helper_names_every_kind_of_misfit():
    module = torch.nn.Linear(2, 3)
    good = {k: v.clone() for k, v in module.state_dict().items()}
    assert not misfit(module, good)
    found = misfit(module, {"weight": torch.ones(3, 2, dtype=torch.int64), "extra": torch.ones(1)})
    assert (found.missing, found.unexpected, [str(w) for w in found.wrong]) == (
        ["bias"], ["extra"], ["weight is int64 [3, 2]; the model's is float32 [3, 2]"])
    before = module.weight.detach().clone()
    with pytest.raises(WeightsMisfit, match=r"its G does not fit the model: weight is float16 \[3, 2\]"):
        load_exact(module, {**good, "weight": good["weight"].half()}, "G")  # widening is for a user's weights only
    assert torch.equal(module.weight, before)  # nothing loaded
