"""GAN objectives, shared by every variant.

An objective turns discriminator/critic outputs into the two losses the loop
minimises and reports their parts per epoch (``d_real``, ``d_fake``, ``g``).

Under mixed precision (``--amp``) the loop calls them inside ``torch.autocast``:
D may run in bf16/fp16, but its outputs are cast to float32 before any loss
reduction, BCE runs with autocast off (CUDA autocast refuses it in half precision),
and the gradient penalty takes its input gradient and norm in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiscriminatorLoss:
    total: torch.Tensor  # what the discriminator/critic step minimises
    real: torch.Tensor  # its part on real samples (reported as d_real)
    fake: torch.Tensor  # its part on generated samples (reported as d_fake)


class BCEObjective:
    """The original GAN objective with a sigmoid discriminator (non-saturating G loss).

    D minimises ``BCE(D(real), 1) + BCE(D(fake), 0)``; G minimises ``BCE(D(fake), 1)``.
    """

    n_critic = 1  # discriminator steps per generator step

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                           scaler: torch.amp.GradScaler | None = None) -> DiscriminatorLoss:
        loss_real = _bce(D(real), 1.0)
        loss_fake = _bce(D(fake), 0.0)
        return DiscriminatorLoss(loss_real + loss_fake, loss_real, loss_fake)

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return _bce(D(fake), 1.0)

    def after_discriminator_step(self, D: nn.Module) -> None:
        """Hook after each D update (weight clipping uses it)."""


def _bce(p: torch.Tensor, target: float) -> torch.Tensor:
    """BCE of probabilities against a constant label, in float32 and outside autocast."""
    p = p.float()
    with torch.autocast(p.device.type, enabled=False):
        return F.binary_cross_entropy(p, torch.full_like(p, target))


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al., 2017, arXiv:1704.00028):
    ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on ``x_hat = eps*real + (1-eps)*fake``,
    ``eps ~ U[0, 1]`` per sample, the norm taken per sample over all non-batch
    dimensions. ``create_graph=True`` so the penalty's own gradient reaches D.

    Under autocast, D runs in its lower precision on a float32 ``x_hat``, so the input
    gradient comes back float32; the norm is taken in float32 with autocast off. With an
    enabled GradScaler (fp16) the scores are scaled before ``autograd.grad`` (small fp16
    gradients would underflow otherwise) and the gradient is unscaled right after, as in
    PyTorch's AMP notes ("Gradient penalty"): the penalty is the same as without AMP, to
    within fp16/bf16 rounding, and an overflow shows up as inf for the scaler to skip.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=torch.float32)
    eps = eps.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    scores = D(x_hat).float().sum()
    scaled = scaler is not None and scaler.is_enabled()
    (grad,) = torch.autograd.grad(scaler.scale(scores) if scaled else scores, x_hat, create_graph=True)
    with torch.autocast(x_hat.device.type, enabled=False):
        if scaled:
            grad = grad * (1.0 / scaler.get_scale())
        norms = grad.float().flatten(1).norm(2, dim=1)
        return ((norms - 1) ** 2).mean()


class WassersteinObjective:
    """Wasserstein loss with a critic that outputs any real value.

    The critic minimises ``D(fake) - D(real) + gp_weight * GP`` (``penalty="gp"``)
    or the same without GP while its weights are clipped to ``[-clip_value,
    clip_value]`` after every step (``penalty="clip"``, the original WGAN).
    G minimises ``-D(fake)``. Reported: d_real = ``-mean D(real)``, d_fake =
    ``mean D(fake)`` (their sum is the critic's loss without the penalty).
    """

    def __init__(self, n_critic: int = 5, penalty: str = "gp", gp_weight: float = 10.0, clip_value: float = 0.01):
        self.n_critic = n_critic
        self.penalty = penalty
        self.gp_weight = gp_weight
        self.clip_value = clip_value

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                           scaler: torch.amp.GradScaler | None = None) -> DiscriminatorLoss:
        loss_real = -D(real).float().mean()
        loss_fake = D(fake).float().mean()
        total = loss_fake + loss_real
        if self.penalty == "gp":
            total = total + self.gp_weight * gradient_penalty(D, real, fake, scaler=scaler)
        return DiscriminatorLoss(total, loss_real, loss_fake)

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return -D(fake).float().mean()

    @torch.no_grad()
    def after_discriminator_step(self, D: nn.Module) -> None:
        if self.penalty == "clip":
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


OBJECTIVES = {"bce": BCEObjective, "wasserstein": WassersteinObjective}
PENALTIES = ("gp", "clip")


def make_objective(name: str, cfg: object):
    """Build the objective a variant names; Wasserstein knobs come from ``cfg``."""
    if name == "wasserstein":
        return WassersteinObjective(n_critic=cfg.n_critic, penalty=getattr(cfg, "penalty", "gp"),
                                    gp_weight=cfg.gp_weight, clip_value=getattr(cfg, "clip_value", 0.01))
    return OBJECTIVES[name]()
