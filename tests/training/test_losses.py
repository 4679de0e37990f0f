"""The Wasserstein objective and the gradient penalty against values computed by hand."""

import math

import pytest
import torch
from torch import nn

from ganforge.training.losses import BCEObjective, WassersteinObjective, gradient_penalty


class Linear(nn.Module):
    """D(x) = <w, x> + b over all non-batch dims: its input gradient is w for every x."""

    def __init__(self, w: torch.Tensor, b: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True) + self.b


class Square(nn.Module):
    """D(x) = sum(x^2): its input gradient is 2x."""

    def forward(self, x):
        return (x**2).flatten(1).sum(1, keepdim=True)


def test_gp_of_a_linear_critic_is_exact():
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # norm 5 over (C, H, W)
    D = Linear(w)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)
    # create_graph=True: d GP / d w = 2 (||w|| - 1) w / ||w||, through the input gradient
    gp.backward()
    torch.testing.assert_close(D.w.grad, 2 * (5.0 - 1.0) * w / 5.0)


def test_gp_uses_per_sample_norm_over_all_dims_on_interpolates():
    real = torch.tensor([[[[1.0, 2.0]], [[0.0, 2.0]]], [[[0.0, 0.0]], [[0.0, 0.0]]]])  # 2 x 2 x 1 x 2
    fake = torch.zeros_like(real)
    eps = torch.tensor([0.5, 0.25])
    gp = gradient_penalty(Square(), real, fake, eps=eps)
    # x_hat = eps*real; grad = 2*x_hat; norm per sample over C, H, W
    n0 = math.sqrt(sum((2 * 0.5 * v) ** 2 for v in (1.0, 2.0, 0.0, 2.0)))  # = 3
    n1 = 0.0
    assert gp.item() == pytest.approx(((n0 - 1) ** 2 + (n1 - 1) ** 2) / 2)


def test_critic_and_generator_signs():
    D = Linear(torch.ones(1, 1, 1), b=0.0)  # D(x) = x
    real, fake = torch.full((4, 1, 1, 1), 2.0), torch.full((4, 1, 1, 1), -1.0)
    no_gp = WassersteinObjective(penalty="clip").discriminator_loss(D, real, fake)
    assert no_gp.total.item() == pytest.approx(-1.0 - 2.0)  # D(fake) - D(real)
    assert (no_gp.real.item(), no_gp.fake.item()) == (pytest.approx(-2.0), pytest.approx(-1.0))
    with_gp = WassersteinObjective(penalty="gp", gp_weight=10).discriminator_loss(D, real, fake)
    assert with_gp.total.item() == pytest.approx(-3.0 + 10 * (1.0 - 1.0) ** 2)
    assert WassersteinObjective().generator_loss(D, fake).item() == pytest.approx(1.0)  # -D(fake)


def test_clipping_clamps_critic_weights():
    D = Linear(torch.tensor([[[0.5, -0.3]]]), b=2.0)
    WassersteinObjective(penalty="clip", clip_value=0.01).after_discriminator_step(D)
    assert D.w.abs().max().item() == pytest.approx(0.01) and D.b.item() == pytest.approx(0.01)
    D2 = Linear(torch.tensor([[[0.5]]]))
    WassersteinObjective(penalty="gp").after_discriminator_step(D2)
    assert D2.w.item() == 0.5


def test_bce_matches_its_formula():
    D = nn.Sequential(nn.Flatten(), nn.Linear(2, 1), nn.Sigmoid())
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    loss = BCEObjective().discriminator_loss(D, real, fake)
    want_real = -torch.log(D(real)).mean()
    want_fake = -torch.log(1 - D(fake)).mean()
    torch.testing.assert_close(loss.real, want_real)
    torch.testing.assert_close(loss.fake, want_fake)
    torch.testing.assert_close(BCEObjective().generator_loss(D, fake), -torch.log(D(fake)).mean())
