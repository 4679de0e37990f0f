"""What makes a resume exact: everything a checkpoint holds beyond the state's own weights (the
random streams of every process, where inside an epoch it was written, that epoch's running
sums) and how a new process picks all of it up again.

On CPU a run resumed from any checkpoint, at an epoch's end or between two steps, ends with
the weights of one never interrupted (tests check it with Ctrl-C, SIGKILL and --eval-every).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.errors import CheckpointError, ConfigError, GanforgeWarning
from ganforge.training import checkpoint
from ganforge.training.config import read_config_file, to_dict
from ganforge.training.distributed import weights_digest
from ganforge.training.request import TrainRequest
from ganforge.training.run import RunDir, resolve_run, run_of_checkpoint
from ganforge.training.state import rng_state, set_rng_state
from ganforge.training.sums import EpochSums
from ganforge.training.trainer import Trainer


@dataclass
class Saved:
    run: RunDir
    path: Path  # its checkpoint
    state: dict[str, Any]  # what the checkpoint holds
    preset: str | None  # the preset the run was started with


def load_saved(request: TrainRequest) -> Saved:
    ckpt = resolve_run(request.resume, request.runs_folder())
    run = run_of_checkpoint(ckpt)
    if run is None:
        raise CheckpointError(f"{ckpt} is not inside a run folder (<run>/checkpoints/last.pt); resume needs its run")
    run.check_inside()  # a link into another run: training would overwrite that one
    run.remove_stale_temporaries()
    preset = None
    if run.config.exists():
        try:
            preset = read_config_file(run.config).get("preset")
        except ConfigError:
            pass
    return Saved(run, ckpt, checkpoint.load(ckpt), preset)


def restore(t: Trainer, saved: Saved) -> dict[str, Any] | None:
    """Load the checkpoint into the fresh state; returns its position inside an epoch, if any.

    ``checkpoint.load`` checked the types of what the file holds; here it must also fit this
    run: the sample grid's noise, the optimizers' moments, the position inside an epoch."""
    dist, device = t.rt.dist, t.rt.device
    try:
        _check_fits(t, saved.state)
        for opt, key in ((t.state.opt_g, "opt_g"), (t.state.opt_d, "opt_d")):
            _check_saved_moments(opt, saved.state[key], key)
        hyper = [_hyperparameters(opt) for opt in (t.state.opt_g, t.state.opt_d)]
        t.state.load_state_dict(saved.state)
        for opt, groups, key in zip((t.state.opt_g, t.state.opt_d), hyper, ("opt_g", "opt_d")):
            _check_moments(opt, key)
            for group, fresh in zip(opt.param_groups, groups):  # hyperparameters are the config's (the same
                group.update(fresh)                              # as a sound file's): a damaged file's would fail mid-step
        ranks = saved.state.get("rng_ranks")
        if dist.enabled and ranks and len(ranks) == dist.world_size:
            set_rng_state(ranks[dist.rank], device)  # the same number of processes: each goes on with its stream
        elif dist.rank:
            torch.manual_seed(t.cfg.seed + dist.rank)  # another world size wrote it: a fresh stream of its own
        else:
            set_rng_state(saved.state["rng"], device)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"cannot resume from {saved.path}: {str(exc)[:200]}") from None
    return saved.state.get("partial")


def _check_fits(t: Trainer, state: dict[str, Any]) -> None:
    """Raises ValueError when a part of ``state`` has another shape than this run's."""
    noise, fresh_noise = state["fixed_noise"], t.state.fixed_noise
    if noise.shape != fresh_noise.shape or noise.dtype != fresh_noise.dtype:
        raise ValueError(f"its sample grid noise is {_described(noise)}, this config's {_described(fresh_noise)}")
    at = state.get("partial")
    if at is None:
        return
    if at["pos"] > len(t.batches):
        raise ValueError(f"it stopped after batch {at['pos']} of an epoch, but the data make {len(t.batches)}")
    data, perm = t.batches.tensor, at.get("perm")
    if perm is not None and isinstance(data, torch.Tensor) and (
            len(perm) != len(data) or not torch.equal(perm.sort().values, torch.arange(len(data)))):
        raise ValueError(f"its epoch order is not an order of the {len(data)} training samples")
    fresh = EpochSums(torch.device("cpu")).saved()
    dist = t.rt.dist
    if dist.enabled and at["world_size"] == dist.world_size and len(at.get("sums_ranks") or []) != dist.world_size:
        raise ValueError(f"its running sums are not those of {dist.world_size} processes")
    for sums in [at["sums"], *(at.get("sums_ranks") or [])]:
        odd = [k for k, v in sums.items() if k not in fresh or torch.is_tensor(v) != torch.is_tensor(fresh[k])]
        if odd:
            raise ValueError(f"its running sums hold an unknown or mistyped {odd[0]!r}")


def _hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def _described(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}"


def _check_saved_moments(optimizer: torch.optim.Optimizer, saved: dict[str, Any], key: str) -> None:
    """Every moment the file holds for a parameter has its dtype and shape: torch's loader would cast
    an int64 or float64 one to the parameter's dtype without a word."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for group in saved["param_groups"] for i in group["params"]]
    if len(ids) != len(params):
        raise ValueError(f"its {key} holds the state of {len(ids)} parameters, the model has {len(params)}")
    for i, p in zip(ids, params):
        for name, value in saved["state"].get(i, {}).items():
            if torch.is_tensor(value) and value.dim() and (value.shape != p.shape or value.dtype != p.dtype):
                raise ValueError(f"its {key}'s {name} of parameter {i} is {_described(value)}; the parameter is "
                                 f"{_described(p)}")


def _check_moments(optimizer: torch.optim.Optimizer, key: str) -> None:
    """Every moment the optimizer loaded has its parameter's shape (else the first step fails)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if not torch.is_tensor(value) or (value.dim() and value.shape != p.shape):
                    raise ValueError(f"{key}'s {name} does not fit its parameter {list(p.shape)}")


def pick_up(t: Trainer, epoch: int, sums: EpochSums) -> tuple[torch.Tensor | None, int]:
    """An interrupted epoch resumes with its own order, its batches done and its running sums."""
    at, t.resume_at = t.resume_at, None
    if at is None or at["epoch"] != epoch:
        return None, 0
    dist = t.rt.dist
    if at.get("world_size", 1) != dist.world_size:
        t.log.warning(f"epoch {epoch} was interrupted in a run of {at.get('world_size', 1)} process(es); "
                      f"with {dist.world_size} its batches differ, so it starts again from its first")
        return None, 0
    sums.restore(at["sums_ranks"][dist.rank] if dist.enabled else at["sums"])
    return at["perm"], at["pos"]  # (a shard's perm follows from the epoch: None here)


def position(t: Trainer, epoch: int, perm: torch.Tensor, done: int, sums: EpochSums) -> dict[str, Any]:
    """Where a checkpoint stands inside an epoch: its order (under torchrun a shard's order
    follows from the epoch, so none is saved), the batches done and the running sums (every
    rank's, so that a resumed job adds them up in the same order)."""
    dist, saved = t.rt.dist, sums.saved()
    ranks = dist.gather(saved) if dist.enabled else None
    return {"epoch": epoch, "perm": None if dist.enabled else perm, "pos": done, "world_size": dist.world_size,
            "sums": saved, **({"sums_ranks": ranks} if ranks else {})}


def payload(t: Trainer, position: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a resume needs. Under torchrun every rank calls it at the same step (ranks give
    each other their buffers, RNG states and weight digests here); rank 0 writes it. The weights
    are the plain modules' (no ``module.`` or ``_orig_mod.`` prefixes), so a checkpoint of N
    processes resumes in one and the other way round."""
    state, dist = t.state, t.rt.dist
    dist.sync_buffers(state.G, state.D, state.G_ema)
    rng = rng_state(t.rt.device)
    ranks = dist.gather({"rng": rng, "digest": weights_digest(state.G, state.D, state.G_ema)}) if dist.enabled \
        else None
    if ranks and len({r["digest"] for r in ranks}) > 1 and dist.is_main:
        warnings.warn(f"the {len(ranks)} processes hold different weights at step {state.step}; "
                      f"the checkpoint has rank 0's. This is a bug: please report it", GanforgeWarning)
    return {
        "variant": t.variant.name,
        "config": to_dict(t.cfg),
        **state.state_dict(),
        "rng": rng,
        "ganforge_version": ganforge.__version__,
        **({"partial": position} if position is not None else {}),
        **({"world_size": dist.world_size, "rng_ranks": [r["rng"] for r in ranks],
            "rank_digests": [r["digest"] for r in ranks]} if ranks else {}),
    }
