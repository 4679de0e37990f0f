"""An epoch's running sums, and the row of figures they become (metrics.csv, train.log).

The sums stay on the training device (no per-step synchronisation); a checkpoint written
inside an epoch saves them, so a resumed epoch reports the figures of one never interrupted.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ganforge.training.distributed import Dist


class EpochSums:
    """Losses summed over an epoch's updates, the update counts, and under fp16 the losses
    that overflowed and the steps the gradient scaler skipped."""

    def __init__(self, device: torch.device):
        loss, count = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.int64)
        self.values: dict[str, Any] = {"d_real": loss, "d_fake": loss.clone(), "g": loss.clone(), "n_d": 0, "n_g": 0,
                                       "overflowed_d": count, "overflowed_g": count.clone(), "skipped": 0}

    def add(self, which: str, fp16: bool, **losses: torch.Tensor) -> None:
        """One update's losses. Under fp16 a forward pass can overflow now and then; that loss is
        left out of the means (``overflowed_*``) and the gradient scaler skips the step (its
        gradients are not finite either), so only a real divergence stops the run. (A gradient
        penalty that overflows under a too-large scale is the scaler's business: not a forward loss.)"""
        v = self.values
        if fp16:
            ok = torch.stack([torch.isfinite(x.detach()) for x in losses.values()]).all()
            v[f"overflowed_{which}"] += ~ok
            losses = {k: torch.where(ok, x.detach(), 0.0) for k, x in losses.items()}
        for key, value in losses.items():
            v[key] += value.detach()
        v[f"n_{which}"] += 1

    def skipped_step(self) -> None:
        self.values["skipped"] += 1

    def saved(self) -> dict[str, Any]:
        """For a checkpoint: plain CPU values."""
        return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in self.values.items()}

    def restore(self, saved: dict[str, Any]) -> None:
        device = self.values["d_real"].device
        self.values.update({k: v.to(device) if torch.is_tensor(v) else v for k, v in saved.items()})

    def figures(self, dist: Dist, epoch: int, step: int, seconds: float) -> tuple[dict[str, Any], str | None]:
        """The epoch's row over the whole job (the same on every rank: mean losses, the last
        step, its seconds, the steps fp16 skipped) and why it means divergence, or None.

        A loss is NaN when its network took no counted update. G taking no update at all (an
        epoch of fewer batches than n_critic) is not divergence: its loss is simply absent."""
        sums = dist.sum(self.values)
        n_d = sums["n_d"] - int(sums["overflowed_d"])
        n_g = sums["n_g"] - int(sums["overflowed_g"])
        row = {
            "epoch": epoch,
            "step": step,
            "d_real": (sums["d_real"] / n_d).item() if n_d else math.nan,
            "d_fake": (sums["d_fake"] / n_d).item() if n_d else math.nan,
            "g": (sums["g"] / n_g).item() if n_g else math.nan,
            "seconds": seconds,
            "g_steps": sums["n_g"] // dist.world_size,  # G updates this epoch (0: fewer batches than n_critic)
        }
        if sums["skipped"]:
            row["skipped"] = sums["skipped"] // dist.world_size  # every rank skips the same steps: counted W times
        if not n_d or (sums["n_g"] and not n_g):
            return row, f"every fp16 {'G' if n_d else 'D'} loss of epoch {epoch} overflowed; try --amp bf16 or off"
        checked = ("d_real", "d_fake", "g") if sums["n_g"] else ("d_real", "d_fake")
        bad = [k for k in checked if not math.isfinite(row[k])]
        if bad:
            return row, f"loss {bad[0]} became {row[bad[0]]} in epoch {epoch} (step {step})"
        return row, None
