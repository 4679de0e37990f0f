import json

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.export import export
from ganforge.inference import Generator
from ganforge.training import checkpoint, train
from ganforge.training.loop import ema_update


def test_ema_update_formula():
    G_ema, G = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        G_ema.weight.fill_(0.0)
        G.weight.fill_(1.0)
    ema_update(G_ema, G, 0.9)
    torch.testing.assert_close(G_ema.weight, torch.full((1, 2), 0.1))
    bn_ema, bn = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    bn.running_mean.fill_(5.0)
    ema_update(bn_ema, bn, 0.9)
    assert torch.equal(bn_ema.running_mean, bn.running_mean)  # buffers are copied


def test_ema_is_kept_resumed_and_exported(tmp_path):
    sets = ["n_rows=96", "sample_count=4", "ema=0.9"]
    run = train("sine", epochs=2, sets=sets, runs_dir=tmp_path, progress=False, device="cpu")
    run = train(resume=run.run_dir, epochs=3, runs_dir=tmp_path, progress=False, device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    raw, ema = state["generator"], state["generator_ema"]
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    result = export(run.run_dir, formats="onnx")
    assert json.loads(result.report.read_text())["weights"] == "ema"
    G, _, _ = checkpoint.build_generator(state)
    gen = Generator(result.artifacts["onnx"], device="cpu")
    z = gen.sample_noise(8, 0)
    with torch.no_grad():
        np.testing.assert_allclose(gen(z), G(torch.from_numpy(z)).numpy(), atol=1e-5)
    # the export holds the EMA weights, not the raw ones
    assert torch.equal(G.state_dict()["net.0.weight"], ema["net.0.weight"])


def test_ema_decay_is_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"ema is a decay in \[0, 1\)"):
        train("sine", sets=["ema=1.5"], runs_dir=tmp_path)
