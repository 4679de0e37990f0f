"""The levers of the training recipes (issue 15): each reaches the model, is checkpointed and
resumes exactly; the health warnings fire on runs made to go wrong."""

import csv
import dataclasses

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.training import augment, losses, train
from ganforge.training.augment import MinibatchStd, diff_augment
from ganforge.training.config import LEVERS_OFF, augment_policy, resolve
from ganforge.training.state import ema_decay
from ganforge.training.variants import VARIANTS, sine
from tests.conftest import tiny_sets


def test_minibatch_std_adds_the_batch_spread_as_a_feature():
    x = torch.tensor([[0.0, 2.0], [2.0, 4.0]])  # per-feature std 1 and 1
    out = MinibatchStd()(x)
    assert out.shape == (2, 3) and torch.allclose(out[:, 2], torch.ones(2))
    images = torch.randn(4, 3, 5, 5)
    assert MinibatchStd()(images).shape == (4, 4, 5, 5)
    same = MinibatchStd()(torch.ones(4, 3, 5, 5))
    assert same[:, 3].abs().max() < 1e-3  # a batch of copies has no spread: what a collapsed G shows D


def test_diff_augment_changes_images_differentiably_and_from_the_rng():
    x = torch.rand(8, 1, 16, 16, requires_grad=True)
    torch.manual_seed(0)
    a = diff_augment(x, ("color", "translation", "cutout"))
    torch.manual_seed(0)
    b = diff_augment(x, ("color", "translation", "cutout"))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G's gradient passes through it
    cut = diff_augment(torch.ones(64, 1, 16, 16), ("cutout",))
    zeroed = (cut == 0).flatten(1).sum(1)
    assert zeroed.max() == 64 and zeroed.min() > 0  # a square of half the side, clipped at the edges
    assert augment_policy("cutout, translation") == ("translation", "cutout")
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        augment_policy("flip")


def test_ema_warms_up_to_its_decay():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 100) == pytest.approx(101 / 110)
    assert ema_decay(0.999, 100_000) == 0.999


def test_knobs_reach_the_run(tmp_path, fake_data, monkeypatch):
    calls = []
    real_augment = augment.diff_augment
    monkeypatch.setattr("ganforge.training.runtime.diff_augment", lambda x, p: calls.append(p) or real_augment(x, p))
    sets = tiny_sets("dcgan", fake_data) + ["minibatch_std=true", "learning_rate_d=4e-4", "loss=hinge",
                                            "r1_weight=2", "augment=translation,cutout", "ema=0.99"]
    run = train("dcgan", epochs=1, sets=sets, runs_dir=tmp_path, progress=False, device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["opt_d"]["param_groups"][0]["lr"] == 4e-4 and state["opt_g"]["param_groups"][0]["lr"] == 1e-3
    assert any(isinstance(v, torch.Tensor) for k, v in state["generator_ema"].items())
    assert state["config"]["loss"] == "hinge" and state["config"]["r1_weight"] == 2
    # D's last conv takes the spread as an extra channel, and D saw augmented inputs at every call
    last = [v for k, v in state["discriminator"].items() if k.startswith("net.") and k.endswith("weight")][-1]
    assert last.shape[1] == 4 * 4 + 1
    assert calls and all(p == ("translation", "cutout") for p in calls)
    assert len(calls) == 3 * state["step"]  # every step: D on real, D on fake, and G's loss through D


@pytest.mark.parametrize("name", ["hinge", "bce"])
def test_objectives_come_from_the_loss_knob(name):
    from ganforge.training.config import TrainConfig

    cfg = TrainConfig(loss=name, r1_weight=3.0)
    objective = losses.make_objective("bce", cfg)
    assert type(objective) is {"hinge": losses.HingeObjective, "bce": losses.BCEObjective}[name]
    assert objective.r1_weight == 3.0


def test_knobs_are_refused_where_they_do_not_apply(tmp_path, fake_data):
    with pytest.raises(ConfigError, match="wgan-gp trains a critic with the Wasserstein loss.*loss applies to sine"):
        train("wgan-gp", sets=["loss=hinge"], runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="r1_weight applies to"):
        train("wgan", data=str(fake_data / "idx"), sets=["r1_weight=1"], runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="augment applies to images; sine makes series"):
        train("sine", sets=["augment=cutout"], runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="loss must be bce or hinge"):
        train("sine", sets=["loss=wasserstein"], runs_dir=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["mnist-mlp", "wgan-gp"])
def test_every_knob_on_resumes_exactly(name, tmp_path, fake_data):
    knobs = ["minibatch_std=true", "augment=color,translation,cutout", "ema=0.99", "learning_rate_d=3e-4"]
    if name == "mnist-mlp":
        knobs += ["loss=hinge", "r1_weight=5"]
    sets = tiny_sets(name, fake_data) + knobs
    straight = train(name, epochs=3, sets=sets, runs_dir=tmp_path / "a", progress=False, device="cpu")
    half = train(name, epochs=1, sets=sets, runs_dir=tmp_path / "b", progress=False, device="cpu")
    resumed = train(resume=half.run_dir, epochs=3, runs_dir=tmp_path / "b", progress=False, device="cpu")
    a, b = (torch.load(r.checkpoint, weights_only=True) for r in (straight, resumed))
    for part in ("generator", "generator_ema", "discriminator"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert [r["diversity"] for r in a["history"]] == [r["diversity"] for r in b["history"]]


def _warnings(run):
    return [line for line in (run.run_dir / "train.log").read_text().splitlines() if "warning:" in line]


def test_a_collapsed_generator_is_told_by_its_diversity(tmp_path, monkeypatch):
    healthy = train("sine", epochs=4, runs_dir=tmp_path / "a", progress=False, device="cpu")  # 32 steps an epoch
    assert not _warnings(healthy)
    rows = list(csv.DictReader((healthy.run_dir / "metrics.csv").open()))
    assert float(rows[-1]["diversity"]) > 0.5  # (an untrained G is not very varied either: hence PATIENCE)
    # G made to collapse: every noise vector gives the same curve
    monkeypatch.setattr(sine.Generator, "decode", lambda self, z: self.net(z * 0))
    collapsed = train("sine", epochs=4, runs_dir=tmp_path / "b", progress=False, device="cpu")
    rows = list(csv.DictReader((collapsed.run_dir / "metrics.csv").open()))
    assert all(float(r["diversity"]) < 1e-3 for r in rows)
    (warning,) = [w for w in _warnings(collapsed) if "mode collapse" in w]
    assert "for 3 epochs" in warning and "minibatch_std=true" in warning


def test_a_discriminator_that_wins_outright_is_told(tmp_path, monkeypatch):
    # G made useless (a flat line whatever it learns): D separates it from sinusoids at once
    monkeypatch.setattr(sine.Generator, "decode", lambda self, z: self.net(z) * 0)
    run = train("sine", epochs=8, preset="source", sets=["learning_rate=0.01", "beta1=0.5"], runs_dir=tmp_path,
                progress=False, device="cpu")
    (warning,) = [w for w in _warnings(run) if "won outright" in w]
    assert "r1_weight" in warning


def test_an_epoch_without_a_g_step_says_so(tmp_path, fake_data):
    sets = tiny_sets("wgan-gp", fake_data) + ["batch_size=8", "n_critic=5"]  # 12 images: 2 batches an epoch
    run = train("wgan-gp", epochs=2, sets=sets, runs_dir=tmp_path, progress=False, device="cpu")
    log = (run.run_dir / "train.log").read_text()
    assert "G took no step: an epoch has 2 batch(es) and G steps once every n_critic=5" in log
    assert "G nan" not in log and "G -" in log


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_source_preset_is_the_source_recipe_with_every_lever_off(name):
    v = VARIANTS[name]
    assert "source" in v.presets, f"{name} has no source preset"
    cfg = resolve(v, preset="source")
    assert {k: getattr(cfg, k) for k in LEVERS_OFF} == LEVERS_OFF
    default = resolve(v)
    changed = {k for k in dataclasses.asdict(default) if getattr(default, k) != getattr(cfg, k)}
    assert changed <= set(v.presets["source"])  # a default that differs from the source is in the preset


def test_wgan_gp_takes_the_images_size_by_default(tmp_path, fake_data):
    from ganforge.training.variants.wgan_gp import auto_image_size

    assert [auto_image_size(s) for s in (8, 20, 28, 48, 500)] == [8, 16, 32, 64, 64]
    sets = [s for s in tiny_sets("wgan-gp", fake_data) if not s.startswith("image_size")]
    run = train("wgan-gp", epochs=1, sets=sets, runs_dir=tmp_path, progress=False, device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["config"]["image_size"] == 16  # the fake images are 20x18
    assert resolve(VARIANTS["wgan-gp"], preset="source").image_size == 64


def test_learning_rates_halve_every_half_life_and_resume_exactly(tmp_path):
    sets = ["n_rows=64", "sample_count=4", "lr_half_life=2", "learning_rate_d=4e-3"]
    run = train("sine", epochs=3, sets=sets, runs_dir=tmp_path / "a", progress=False, device="cpu")
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(3e-3 * 0.5)  # epoch 3: one half-life in
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(4e-3 * 0.5)
    half = train("sine", epochs=1, sets=sets, runs_dir=tmp_path / "b", progress=False, device="cpu")
    resumed = train(resume=half.run_dir, epochs=3, runs_dir=tmp_path / "b", progress=False, device="cpu")
    other = torch.load(resumed.checkpoint, weights_only=True)
    assert all(torch.equal(state["generator"][k], other["generator"][k]) for k in state["generator"])


@pytest.mark.parametrize("name, sets, check", [
    ("dcgan", ["g_norm=pixel", "d_batchnorm=true"],
     lambda s: not any("running_mean" in k for k in s["generator"]) and any("running_mean" in k for k in s["discriminator"])),
    ("dcgan", ["g_norm=none"], lambda s: not any("running_mean" in k for k in s["generator"])),
    ("sine", ["g_hidden=12,6,5", "d_hidden=7"],
     lambda s: [tuple(v.shape) for k, v in s["generator"].items() if k.endswith("weight")] == [(12, 4), (6, 12), (5, 6),
                                                                                               (32, 5)]
     and [tuple(v.shape) for k, v in s["discriminator"].items() if k.endswith("weight")] == [(7, 32), (1, 7)]),
])
def test_architecture_knobs_reach_the_model_and_resume_exactly(name, sets, check, tmp_path, fake_data):
    sets = tiny_sets(name, fake_data) + sets
    straight = train(name, epochs=2, sets=sets, runs_dir=tmp_path / "a", progress=False, device="cpu")
    half = train(name, epochs=1, sets=sets, runs_dir=tmp_path / "b", progress=False, device="cpu")
    resumed = train(resume=half.run_dir, epochs=2, runs_dir=tmp_path / "b", progress=False, device="cpu")
    a, b = (torch.load(r.checkpoint, weights_only=True) for r in (straight, resumed))
    assert check(a)
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part


@pytest.mark.parametrize("name", ["dcgan", "mnist-mlp", "wgan", "wgan-gp"])
def test_class_embedding_std_sizes_the_class_offsets(name, tmp_path, fake_data):
    v = VARIANTS[name]
    spread = {}
    for std in (0.1, 1.0):
        sets = [*tiny_sets(name, fake_data), "conditional=true", f"class_embedding_std={std}"]
        cfg = dataclasses.replace(resolve(v, sets=sets), num_classes=10, class_names=[str(i) for i in range(10)])
        if v.configure:  # sizes from the data
            cfg = v.configure(cfg, v.load_data(cfg))
        torch.manual_seed(0)
        spread[std] = v.generator(cfg).class_embedding.weight.detach().std().item()
    assert spread[0.1] == pytest.approx(0.1, rel=0.25) and spread[1.0] == pytest.approx(1.0, rel=0.25)
    with pytest.raises(ConfigError, match="class_embedding_std must be >= 0"):
        resolve(v, sets=["class_embedding_std=-1"])
