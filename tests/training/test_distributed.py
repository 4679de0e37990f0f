"""Data-parallel training: real 2-process gloo jobs under torchrun on CPU, one a loss family
(BCE: sine; Wasserstein + gradient penalty: wgan-gp), and what they leave behind."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from ganforge.errors import ConfigError, DeviceError
from ganforge.training import checkpoint, train
from ganforge.training.data import Batches
from ganforge.training.distributed import weights_digest
from tests.conftest import tiny_sets

TORCHRUN_TIMEOUT = 240  # a hung collective fails the test instead of hanging CI


def torchrun(args, cwd, nproc=2):
    """``torchrun --standalone --nproc_per_node=N -m ganforge.training ARGS``: (stdout, stderr)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ganforge.training", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=TORCHRUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()  # torchrun passes SIGTERM on to its workers, which it started in their own sessions
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {TORCHRUN_TIMEOUT}s:\n{err[-4000:]}")
    assert proc.returncode == 0, err[-4000:]
    return out, err


def _sets(variant, data):
    return [a for kv in tiny_sets(variant, data) for a in ("--set", kv)]


def _models_of(state):
    """The checkpoint's G and D, rebuilt: the digest a rank would compute of them."""
    from ganforge.training.config import apply
    from ganforge.training.variants import get_variant

    v = get_variant(state["variant"])
    cfg = apply(v.config_cls(), state["config"])
    G, D = v.generator(cfg), v.discriminator(cfg)
    G.load_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    G_ema = None
    if "generator_ema" in state:
        G_ema = v.generator(cfg)
        G_ema.load_state_dict(state["generator_ema"])
    return G, D, G_ema


@pytest.fixture(scope="module")
def sine_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-sine")
    out, err = torchrun(["sine", "--epochs", "2", "--device", "cpu", "--runs-dir", "runs", *_sets("sine", None),
                         "--set", "checkpoint_every=2"], root)
    return root, out, err


def _check_job(root, out, variant, epochs, steps):
    runs = root / "runs"
    names = {p.name for p in runs.iterdir()}
    assert "latest" in names and len(names) == 2  # one run folder, made by rank 0 alone
    run = (runs / "latest").resolve()
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["epoch"] == epochs and state["step"] == steps and state["world_size"] == 2
    # both processes held bit-identical G, D (and EMA G), buffers included, and they are the ones saved
    assert len(state["rank_digests"]) == 2 and len(set(state["rank_digests"])) == 1
    assert state["rank_digests"][0] == weights_digest(*_models_of(state))
    assert out.count("trained") == 1 and f"trained {epochs} epochs of {variant} on 2 processes" in out  # rank 0 reports
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert "(2 processes" in (run / "train.log").read_text()
    return run, state


def test_two_processes_bce(sine_job):
    root, out, err = sine_job
    # 96 rows: 48 a process, 2 batches of 32 (32 + 16) a process and epoch
    run, state = _check_job(root, out, "sine", epochs=2, steps=4)
    assert [r["epoch"] for r in state["history"]] == [1, 2] and len(list((run / "samples").iterdir())) == 2


def test_two_processes_wasserstein_gp(tmp_path, fake_data):
    """The gradient penalty's create_graph backward through DDP, with bf16 autocast and EMA."""
    out, err = torchrun(["wgan-gp", "--epochs", "2", "--device", "cpu", "--runs-dir", "runs", "--amp", "bf16",
                         "--ema", "0.9", *_sets("wgan-gp", fake_data)], tmp_path)
    # 12 images: 6 a process, batches of 4 (4 + 2): 2 critic steps a process and epoch
    run, state = _check_job(tmp_path, out, "wgan-gp", epochs=2, steps=4)
    assert "generator_ema" in state
    one = train(resume=run, epochs=3, runs_dir=tmp_path / "runs", progress=False, device="cpu")  # in one process
    assert one.epochs == 3 and one.world_size == 1


def test_checkpoint_of_two_processes_resumes_in_one(sine_job, tmp_path):
    run = shutil.copytree(_first_run(sine_job[0]).parent.parent, tmp_path / "runs" / "copy")  # keep the job's own
    result = train(resume=run, epochs=3, runs_dir=tmp_path / "runs", progress=False, device="cpu")
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["epoch"] == 3 and "rank_digests" not in state and len(state["history"]) == 3
    assert json.loads((result.run_dir / "config.json").read_text())["world_size"] == 1


def test_resume_under_torchrun_is_exact(sine_job, tmp_path):
    """1 epoch, then --resume to 2 under torchrun: the same weights as the 2-epoch job."""
    args = ["--device", "cpu", "--runs-dir", "runs"]
    torchrun(["sine", "--epochs", "1", *args, *_sets("sine", None), "--set", "checkpoint_every=2"], tmp_path)
    torchrun(["--resume", "--epochs", "2", *args], tmp_path)
    resumed = checkpoint.load(tmp_path / "runs" / "latest" / "checkpoints" / "last.pt")
    straight = checkpoint.load(_first_run(sine_job[0]))
    assert resumed["step"] == straight["step"] and resumed["rank_digests"] == straight["rank_digests"]
    assert [r["g"] for r in resumed["history"]] == [r["g"] for r in straight["history"]]


def _first_run(root):
    return next(p for p in (root / "runs").iterdir() if p.name != "latest") / "checkpoints" / "last.pt"


def test_shards_cover_each_epoch_once_and_evenly():
    data = torch.arange(10, dtype=torch.float32)[:, None]
    from torch.utils.data import TensorDataset

    for source in (data, TensorDataset(data)):  # in-memory slicing, and a DataLoader
        shards = [Batches(source, 2, torch.device("cpu"), shard=(r, 3), seed=5) for r in range(3)]
        assert [len(b) for b in shards] == [2, 2, 2]  # 10 padded to 12: 4 a rank, 2 batches each
        epoch1 = [torch.cat([x for _, _, x, _ in b.iterate(epoch=1)]).flatten().tolist() for b in shards]
        assert sorted(set(sum(epoch1, []))) == list(range(10)) and sum(map(len, epoch1)) == 12
        again = [torch.cat([x for _, _, x, _ in b.iterate(epoch=1)]).flatten().tolist() for b in shards]
        epoch2 = [torch.cat([x for _, _, x, _ in b.iterate(epoch=2)]).flatten().tolist() for b in shards]
        assert again == epoch1 and epoch2 != epoch1  # an epoch's order is fixed; the next one differs


def _torchrun_env(monkeypatch, world, local_world, master=True):
    for key, value in {"RANK": "0", "WORLD_SIZE": str(world), "LOCAL_RANK": "0",
                       "LOCAL_WORLD_SIZE": str(local_world)}.items():
        monkeypatch.setenv(key, value)
    if master:
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", "1")
    else:
        monkeypatch.delenv("MASTER_ADDR", raising=False)


def test_cuda_under_torchrun_needs_a_gpu_a_process(tmp_path, monkeypatch):
    _torchrun_env(monkeypatch, world=4, local_world=4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match=r"torchrun starts 4 processes on this machine but torch sees 2 CUDA "
                                          r"device\(s\); pass --nproc_per_node=2 \(one process a GPU\) or --device cpu"):
        train("sine", device="cuda", runs_dir=tmp_path)
    _torchrun_env(monkeypatch, world=2, local_world=2, master=False)
    with pytest.raises(ConfigError, match="WORLD_SIZE=2 is set but MASTER_ADDR is not; start distributed runs "
                                          "with torchrun"):
        train("sine", device="cpu", runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())
