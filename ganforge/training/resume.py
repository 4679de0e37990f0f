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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ganforge.training.loop import Trainer


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
    run.remove_stale_temporaries()
    preset = None
    if run.config.exists():
        try:
            preset = read_config_file(run.config).get("preset")
        except ConfigError:
            pass
    return Saved(run, ckpt, checkpoint.load(ckpt), preset)


def restore(t: Trainer, saved: Saved) -> dict[str, Any] | None:
    """Load the checkpoint into the fresh state; returns its position inside an epoch, if any."""
    dist, device = t.rt.dist, t.rt.device
    try:
        t.state.load_state_dict(saved.state)
        ranks = saved.state.get("rng_ranks")
        if dist.enabled and ranks and len(ranks) == dist.world_size:
            set_rng_state(ranks[dist.rank], device)  # the same number of processes: each goes on with its stream
        elif dist.rank:
            torch.manual_seed(t.cfg.seed + dist.rank)  # another world size wrote it: a fresh stream of its own
        else:
            set_rng_state(saved.state["rng"], device)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot resume from {saved.path}: {str(exc)[:200]}") from None
    return saved.state.get("partial")


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
