"""GAN objectives, shared by every variant.

An objective turns discriminator/critic outputs into the two losses the loop
minimises and reports their parts per epoch (``d_real``, ``d_fake``, ``g``).

Under mixed precision (``--amp``) the loop calls them inside ``torch.autocast``:
D may run in bf16/fp16, but its outputs are cast to float32 before any loss
reduction, and the gradient penalties (WGAN-GP's, R1) take their input gradient and
norm in float32.
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
    """The original GAN objective, non-saturating for G, on D's logits.

    D minimises ``BCE(sigmoid(D(real)), 1) + BCE(sigmoid(D(fake)), 0)``, computed as
    ``softplus(-D(real)) + softplus(D(fake))`` (the same numbers, without a Sigmoid that
    saturates); G minimises ``BCE(sigmoid(D(fake)), 1) = softplus(-D(fake))``. With
    ``r1_weight`` > 0, D also minimises ``r1_weight / 2 * E ||grad_x D(x_real)||^2``
    (R1, Mescheder et al., 2018, arXiv:1801.04406): a zero-centred penalty that keeps D
    from growing steep around the real data, so G's gradients stay useful.
    """

    n_critic = 1  # discriminator steps per generator step

    def __init__(self, r1_weight: float = 0.0):
        self.r1_weight = r1_weight

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                           scaler: torch.amp.GradScaler | None = None) -> DiscriminatorLoss:
        if self.r1_weight:
            real = real.detach().float().requires_grad_(True)
        out_real = D(real).float()
        loss_real = F.softplus(-out_real).mean()
        loss_fake = F.softplus(D(fake).float()).mean()
        total = loss_real + loss_fake
        if self.r1_weight:
            total = total + self.r1_weight / 2 * r1_penalty(out_real, real, scaler)
        return DiscriminatorLoss(total, loss_real, loss_fake)

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-D(fake).float()).mean()

    def after_discriminator_step(self, D: nn.Module) -> None:
        """Hook after each D update (weight clipping uses it)."""


class HingeObjective(BCEObjective):
    """The hinge loss (Lim & Ye, 2017; Miyato et al., 2018): D minimises
    ``relu(1 - D(real)) + relu(1 + D(fake))``, G minimises ``-D(fake)``; R1 as for BCE."""

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                           scaler: torch.amp.GradScaler | None = None) -> DiscriminatorLoss:
        if self.r1_weight:
            real = real.detach().float().requires_grad_(True)
        out_real = D(real).float()
        loss_real = F.relu(1 - out_real).mean()
        loss_fake = F.relu(1 + D(fake).float()).mean()
        total = loss_real + loss_fake
        if self.r1_weight:
            total = total + self.r1_weight / 2 * r1_penalty(out_real, real, scaler)
        return DiscriminatorLoss(total, loss_real, loss_fake)

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return -D(fake).float().mean()


def _input_gradient(scores: torch.Tensor, x: torch.Tensor, scaler: torch.amp.GradScaler | None) -> torch.Tensor:
    """``d sum(scores) / d x`` in float32, with the graph kept (the penalty's own gradient must
    reach D). With an enabled GradScaler (fp16) the scores are scaled before ``autograd.grad``
    (small fp16 gradients would underflow otherwise) and the gradient unscaled right after, as
    in PyTorch's AMP notes ("Gradient penalty")."""
    scaled = scaler is not None and scaler.is_enabled()
    total = scores.float().sum()
    (grad,) = torch.autograd.grad(scaler.scale(total) if scaled else total, x, create_graph=True)
    with torch.autocast(x.device.type, enabled=False):
        grad = grad.float()
        return grad * (1.0 / scaler.get_scale()) if scaled else grad


def r1_penalty(scores: torch.Tensor, real: torch.Tensor, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` over the real batch ``real`` (which ``scores = D(real)`` came from)."""
    grad = _input_gradient(scores, real, scaler)
    with torch.autocast(real.device.type, enabled=False):
        return grad.flatten(1).pow(2).sum(1).mean()


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
    grad = _input_gradient(D(x_hat), x_hat, scaler)
    with torch.autocast(x_hat.device.type, enabled=False):
        norms = grad.flatten(1).norm(2, dim=1)
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


OBJECTIVES = {"bce": BCEObjective, "hinge": HingeObjective, "wasserstein": WassersteinObjective}
PENALTIES = ("gp", "clip")
DISCRIMINATOR_LOSSES = ("bce", "hinge")  # what `loss` may choose for a variant with a discriminator
# A config's ``loss`` that names an objective with its penalty (--loss wgan-gp of your own modules)
OBJECTIVE_OF = {"wgan-gp": "wasserstein"}


def objective_name(name: str, cfg: object) -> str:
    """The objective a run trains with: its config's ``loss`` when set, else the variant's."""
    loss = getattr(cfg, "loss", None)
    return OBJECTIVE_OF.get(loss, loss) or name


def make_objective(name: str, cfg: object):
    """Build the objective a variant names (or its config's ``loss``); knobs come from ``cfg``."""
    name = objective_name(name, cfg)
    if name == "wasserstein":
        return WassersteinObjective(n_critic=cfg.n_critic, penalty=getattr(cfg, "penalty", "gp"),
                                    gp_weight=cfg.gp_weight, clip_value=getattr(cfg, "clip_value", 0.01))
    return OBJECTIVES[name](r1_weight=cfg.r1_weight)
