"""The objectives and their gradient penalties against values computed by hand."""

import math

import pytest
import torch
from torch import nn

from ganforge.training.losses import BCEObjective, HingeObjective, WassersteinObjective, gradient_penalty, r1_penalty


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
    """On logits: the same numbers as the source's Sigmoid followed by BCE."""
    D = nn.Sequential(nn.Flatten(), nn.Linear(2, 1))
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    loss = BCEObjective().discriminator_loss(D, real, fake)
    p_real, p_fake = torch.sigmoid(D(real)), torch.sigmoid(D(fake))
    torch.testing.assert_close(loss.real, -torch.log(p_real).mean())
    torch.testing.assert_close(loss.fake, -torch.log(1 - p_fake).mean())
    torch.testing.assert_close(BCEObjective().generator_loss(D, fake), -torch.log(p_fake).mean())
    # and it stays finite where the Sigmoid saturates (a logit of 200: probability 1.0 in float32)
    far = torch.full((3, 2), 100.0)
    assert torch.isfinite(BCEObjective().discriminator_loss(D, -far, far).total)


def test_hinge_matches_its_formula():
    D = Linear(torch.ones(1, 1, 1))  # D(x) = x
    real = torch.tensor([2.0, 0.5, -1.0]).view(3, 1, 1, 1)
    fake = torch.tensor([-2.0, 0.0, 1.0]).view(3, 1, 1, 1)
    loss = HingeObjective().discriminator_loss(D, real, fake)
    assert loss.real.item() == pytest.approx((0 + 0.5 + 2.0) / 3)  # relu(1 - D(real))
    assert loss.fake.item() == pytest.approx((0 + 1.0 + 2.0) / 3)  # relu(1 + D(fake))
    assert HingeObjective().generator_loss(D, fake).item() == pytest.approx(1 / 3)  # -D(fake)


def test_r1_is_the_squared_input_gradient_on_real_data():
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # ||grad_x D|| = 5 everywhere
    D = Linear(w)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    plain = BCEObjective().discriminator_loss(D, real, fake)
    with_r1 = BCEObjective(r1_weight=2.0).discriminator_loss(D, real, fake)
    assert (with_r1.total - plain.total).item() == pytest.approx(2.0 / 2 * 25.0, rel=1e-5)
    D.zero_grad()
    (with_r1.total - plain.total.detach()).backward()  # the penalty's own gradient reaches D's weights
    torch.testing.assert_close(D.w.grad - _grad_without_r1(w, real, fake), 2.0 / 2 * 2 * w, rtol=1e-4, atol=1e-5)
    x = real.clone().requires_grad_(True)
    assert torch.allclose(r1_penalty(Square()(x), x), (2 * real).flatten(1).pow(2).sum(1).mean())


def _grad_without_r1(w, real, fake):
    D = Linear(w)
    BCEObjective().discriminator_loss(D, real, fake).total.backward()
    return D.w.grad
