import math

import torch
from torch import nn

from ganforge.training.variants.sine import Discriminator, Generator, sine_rows


def test_data_is_1000_rows_of_32_sinusoids_in_range():
    data = sine_rows(1000, 32, seed=0)
    assert data.shape == (1000, 32) and data.dtype == torch.float32
    assert data.abs().max() <= 1.0
    assert torch.equal(data, sine_rows(1000, 32, seed=0))
    assert not torch.equal(data, sine_rows(1000, 32, seed=1))


def test_each_row_is_one_sinusoid():
    data = sine_rows(50, 32, seed=3).double()
    t = torch.arange(32, dtype=torch.float64) / 32
    for row in data:
        # A single sinusoid of frequency f is fitted exactly by a*sin + b*cos at that f:
        # scan f and keep the best least-squares residual.
        best = math.inf
        for f in torch.linspace(0.5, 2.0, 301):
            basis = torch.stack([torch.sin(2 * math.pi * f * t), torch.cos(2 * math.pi * f * t)], 1)
            coef = torch.linalg.lstsq(basis, row.unsqueeze(1)).solution
            best = min(best, float((basis @ coef - row.unsqueeze(1)).abs().max()))
        assert best < 0.02


def _layers(module):
    return [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None),
             getattr(m, "negative_slope", None)) for m in module.modules() if not isinstance(m, (nn.Sequential,)) and m is not module]


def test_generator_is_the_source_network():
    assert _layers(Generator(4, 32)) == [
        ("Linear", 4, 8, None), ("ReLU", None, None, None), ("Linear", 8, 16, None), ("ReLU", None, None, None),
        ("Linear", 16, 32, None), ("Tanh", None, None, None)]


def test_discriminator_is_the_source_network():
    """The source's layers; its final Sigmoid is computed inside the BCE loss (on logits)."""
    assert _layers(Discriminator(32)) == [
        ("Linear", 32, 16, None), ("LeakyReLU", None, None, 0.2), ("Linear", 16, 8, None),
        ("LeakyReLU", None, None, 0.2), ("Linear", 8, 1, None)]
    with_std = _layers(Discriminator(32, minibatch_std=True))
    assert with_std[4:] == [("MinibatchStd", None, None, None), ("Linear", 9, 1, None)]


def test_shapes_and_ranges():
    G, D = Generator(4, 32), Discriminator(32)
    x = G(torch.randn(5, 4))
    assert x.shape == (5, 32) and x.abs().max() <= 1
    assert D(x).shape == (5, 1)
