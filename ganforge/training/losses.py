"""GAN objectives, shared by every variant.

An objective turns discriminator outputs into the two losses the loop minimises,
and names the per-epoch figures it reports (``d_real``, ``d_fake``, ``g``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiscriminatorLoss:
    total: torch.Tensor  # what the discriminator step minimises
    real: torch.Tensor  # its part on real samples (reported as d_real)
    fake: torch.Tensor  # its part on generated samples (reported as d_fake)


class BCEObjective:
    """The original GAN objective with a sigmoid discriminator (non-saturating G loss).

    D minimises ``BCE(D(real), 1) + BCE(D(fake), 0)``; G minimises ``BCE(D(fake), 1)``.
    """

    n_critic = 1  # discriminator steps per generator step

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> DiscriminatorLoss:
        p_real = D(real)
        p_fake = D(fake)
        loss_real = F.binary_cross_entropy(p_real, torch.ones_like(p_real))
        loss_fake = F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))
        return DiscriminatorLoss(loss_real + loss_fake, loss_real, loss_fake)

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        p_fake = D(fake)
        return F.binary_cross_entropy(p_fake, torch.ones_like(p_fake))


OBJECTIVES = {"bce": BCEObjective}


def make_objective(name: str, cfg: object):
    """Build the objective a variant names; ``cfg`` carries its knobs (e.g. n_critic)."""
    return OBJECTIVES[name]()
