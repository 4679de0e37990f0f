"""How this process trains the state's modules: on which device, in which precision, wrapped how.

Rebuilt at every start and never checkpointed: the wrappers (torch.compile, DDP) call the
very modules :class:`~ganforge.training.state.TrainState` holds, so a checkpoint has plain
weights and a run resumes under any wrapping.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.training.accel import Precision, compile_or_eager
from ganforge.training.augment import diff_augment
from ganforge.training.data import real_examples
from ganforge.training.distributed import Dist
from ganforge.training.state import TrainState, rng_state, set_rng_state


@dataclass
class Runtime:
    device: torch.device
    dist: Dist  # this process's place in a torchrun job (size 1 without one)
    precision: Precision  # autocast dtype (--amp)
    channels_last: bool  # NHWC batches (conv variants on CUDA)
    G: nn.Module | None = None  # what a training step calls for G: compiled and/or in DDP
    D: nn.Module | None = None  # D for the D/critic update, likewise
    D_for_G: nn.Module | None = None  # D in G's loss: compiled maybe, never DDP (G's gradient only passes
    #                                   through it; D's own gradients there are dropped, not worth an all-reduce)
    compiled: list[str] = field(default_factory=list)  # what torch.compile runs ("G", "D")
    augment: tuple[str, ...] = ()  # DiffAugment before every D call (augment=...)

    def discriminators(self, labels: torch.Tensor | None):
        """D as the D/critic update calls it, and as G's update does: with the batch's labels
        bound when conditional, behind the augmentation when asked for."""
        return tuple(augmented(conditioned(D, labels), self.augment) for D in (self.D, self.D_for_G))

    def wrap(self, state: TrainState, cfg: Any, objective, data: Any, variant: str) -> None:
        """The modules steps call: compiled when asked and it works, in DDP under torchrun."""
        G, D = state.G, state.D
        if cfg.compile:
            real = real_examples(data, cfg.batch_size).to(self.device)
            if self.channels_last and real.dim() == 4:
                real = real.contiguous(memory_format=torch.channels_last)
            modules, self.compiled = compile_or_eager(
                {"G": G, "D": D}, lambda m: self._probe(state, cfg, objective, m["G"], m["D"], real), variant)
            G, D = modules["G"], modules["D"]
        self.G, self.D, self.D_for_G = self.dist.wrap(G, self.device), self.dist.wrap(D, self.device), D

    def _probe(self, state: TrainState, cfg: Any, objective, G, D, real: torch.Tensor) -> None:
        """One D step's and one G step's forward and backward through ``G`` and ``D`` (where
        torch.compile really compiles), changing nothing: weights, buffers, gradients and RNG
        are put back as they were."""
        saved = copy.deepcopy((state.G.state_dict(), state.D.state_dict()))
        rng = rng_state(self.device)
        try:
            labels = torch.randint(cfg.num_classes, (len(real),), device=real.device) if cfg.num_classes else None
            G, D = conditioned(G, labels), augmented(conditioned(D, labels), self.augment)
            with self.precision.autocast():
                fake = G(torch.randn(len(real), state.G.latent_dim, device=real.device))
                d = objective.discriminator_loss(D, real, fake.detach())
            d.total.backward()
            with self.precision.autocast():
                g = objective.generator_loss(D, fake)
            g.backward()
        finally:
            state.G.load_state_dict(saved[0])
            state.D.load_state_dict(saved[1])
            for p in (*state.G.parameters(), *state.D.parameters()):
                p.grad = None
            set_rng_state(rng, self.device)

    def describe(self, cfg: Any) -> list[str]:
        """What is special about how this run trains, for its first log line."""
        how = []
        if self.dist.enabled:
            how.append(f"{self.dist.world_size} processes")
        if self.precision.dtype is not None:
            how.append(f"{self.precision.name} autocast")
        if self.compiled:
            how.append(f"compiled: {' and '.join(self.compiled)}")
        if cfg.num_classes:
            how.append(f"conditional on {cfg.num_classes} classes")
        return how


def augmented(D, policy: tuple[str, ...]):
    """``D`` seeing every input through DiffAugment's ``policy`` (differentiably), or ``D`` itself."""
    if not policy:
        return D
    return lambda x: D(diff_augment(x, policy))


def conditioned(module, labels: torch.Tensor | None):
    """``module`` with ``labels`` bound (a conditional G or D), else ``module`` itself: the
    objectives call ``D(x)`` and need not know of classes."""
    return module if labels is None else functools.partial(module, labels=labels)
