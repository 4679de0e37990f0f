"""One run in progress, :class:`Trainer`, and what runs around it: a :class:`Hook` is handed the
Trainer, and an :class:`EpochEnd` after each epoch.

The loop (``loop.py``) builds the Trainer and trains it; the hooks (``hooks.py``) and the exact
resume (``resume.py``) read it. It lives apart from all three so that none imports another
for its type.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganforge.training.data import Batches
    from ganforge.training.run import RunDir
    from ganforge.training.runtime import Runtime
    from ganforge.training.state import TrainState
    from ganforge.training.stop import StopRequest
    from ganforge.training.variants import Variant


@dataclass
class Trainer:
    """One run in progress: what the loop and its hooks work on."""

    variant: Variant
    cfg: Any
    run: RunDir
    data: Any  # what the variant's load_data gave
    batches: Batches
    state: TrainState  # what checkpoints hold
    rt: Runtime  # how this process runs it
    objective: Any  # the variant's losses (losses.py)
    hooks: list[Hook]
    progress: bool = False  # a progress bar per epoch
    resume_at: dict[str, Any] | None = None  # where inside an interrupted epoch to pick up
    log: logging.Logger | None = None  # opened by hooks.running
    stop: StopRequest | None = None
    fixed: tuple[int, Any] | None = None  # (step, the fixed noise's samples): hooks.fixed_samples computes them once
    saved: str | None = None  # what last.pt holds, in words ("the end of epoch 2"); None: not written yet


@dataclass
class EpochEnd:
    epoch: int
    row: dict[str, Any]  # the epoch's figures (a row of metrics.csv); a hook may add to it ("eval")
    checkpoint: dict[str, Any]  # what last.pt gets for this epoch (best.pt too, when it is the best)


class Hook:
    """Override what you need; every method does nothing by default."""

    def on_start(self, t: Trainer) -> None:
        """Before the first epoch of this call (a new run or a resume)."""

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        """After each epoch, before the loop writes last.pt."""

    def on_end(self, t: Trainer) -> None:
        """After the last epoch, or after an interrupt wrote its checkpoint (not after an error)."""

    def close(self) -> None:
        """Always, last: release what ``on_start`` took."""
