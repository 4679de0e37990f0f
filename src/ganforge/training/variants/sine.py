"""``sine``: the beginner sine GAN — an MLP GAN on synthetic sinusoids.

Source: shared/sources/sine-gan.md (GAN-SENOIDE-INICIANTE). Data is 1000 rows of
32 points, one random sinusoid a row; G maps a 4-d noise vector to a 32-point
curve, D scores a curve as real or fake; BCE loss.

Defaults differ from the source on purpose, and the source is kept as the
``source`` preset (``gan-train sine --preset source``). With the source's
Adam lr = 2e-5 the generator is still far from sine-like after 300 epochs: at
that rate 300 epochs x 32 steps move these tiny networks too little
(benchmarks/sine_lr_probe.py, benchmarks/results/sine-lr-probe.md: lr 3e-3 with
Adam beta1 = 0.5 is the fastest that learns). With that alone, 86-95% of the curves of
three seeds were sine-like and their fitted parameters were off; wider hidden layers (32,
64 in G), R1 on D, rates halving every 100 epochs and a moving average of G make 98-99% of
them sine-like with the real data's spread (MMD near its floor; benchmarks/results/recipes.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.limits import (MAX_TRAIN_LATENT_DIM, MAX_TRAIN_LAYERS, MAX_TRAIN_SERIES_LEN, MAX_TRAIN_SERIES_VALUES,
                             MAX_TRAIN_WIDTH)
from ganforge.training.augment import MinibatchStd
from ganforge.training.config import LEVERS_OFF, TrainConfig
from ganforge.training.variants.base import GeneratorBase, Variant


@dataclass
class SineConfig(TrainConfig):
    latent_dim: int = 4  # noise size (source: SPACE_DIM = 4)
    sample_len: int = 32  # points per curve (source: X_DIM = 32)
    n_rows: int = 1000  # rows of synthetic data (source: 1000)
    batch_size: int = 32  # source: BATCH_SIZE = 32
    epochs: int = 300  # source: EPOCHS = 300
    learning_rate: float = 3e-3  # source: 2e-5, too slow to learn in 300 epochs (see module doc)
    beta1: float = 0.5  # Adam beta1; source used Adam's default 0.9
    lr_half_life: float = 100.0  # both rates halve every 100 epochs (source: constant)
    log_every: int = 30  # print a summary every N epochs (source: DEBUG_STEPS = 30)
    g_hidden: list[int] = field(default_factory=lambda: [32, 64])  # G's hidden widths (source: 8, 16)
    d_hidden: list[int] = field(default_factory=lambda: [64, 32])  # D's hidden widths (source: 16, 8)
    r1_weight: float = 1.0  # R1 on real curves (source: none): the distribution, not only the shape, matches
    ema: float = 0.999  # samples and exports from the moving average of G (source: the raw G)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "sample_len", "n_rows")
        self.require_at_most(MAX_TRAIN_LATENT_DIM, "latent_dim")
        self.require_at_most(MAX_TRAIN_SERIES_LEN, "sample_len")
        self.require_at_most(MAX_TRAIN_WIDTH, "g_hidden", "d_hidden")
        if self.n_rows * self.sample_len > MAX_TRAIN_SERIES_VALUES:  # the data are made at once, in float32
            raise ConfigError(f"n_rows x sample_len is {self.n_rows * self.sample_len:,} values, more than "
                              f"{MAX_TRAIN_SERIES_VALUES:,}; lower n_rows")
        for name in ("g_hidden", "d_hidden"):
            if not getattr(self, name) or min(getattr(self, name)) < 1 or len(getattr(self, name)) > MAX_TRAIN_LAYERS:
                raise ConfigError(f"{name} lists the hidden layers' widths, 1 to {MAX_TRAIN_LAYERS} of them, each >= 1, "
                                  f"got {getattr(self, name)}")
        if self.data is not None or self.download:
            raise ConfigError("the sine variant uses embedded synthetic data; drop --data / data / --download")


# The source document's hyperparameters, kept selectable.
PRESETS = {"source": {**LEVERS_OFF, "learning_rate": 2e-5, "beta1": 0.9, "beta2": 0.999, "epochs": 300,
                      "batch_size": 32, "g_hidden": [8, 16], "d_hidden": [16, 8]}}


class Generator(GeneratorBase):
    """z [B, latent_dim] -> x [B, sample_len] in [-1, 1]; hidden widths 8, 16 in the source."""

    def __init__(self, latent_dim: int = 4, sample_len: int = 32, hidden: tuple[int, ...] = (8, 16)):
        super().__init__(latent_dim, (sample_len,))
        layers: list[nn.Module] = []
        for n_in, n_out in zip((latent_dim, *hidden), hidden):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(True)]  # B x n_out
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], sample_len), nn.Tanh())  # B x sample_len

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """x [B, sample_len] -> logit of real [B, 1] (the source's Sigmoid is in the BCE loss); hidden
    widths 16, 8 in the source."""

    def __init__(self, sample_len: int = 32, minibatch_std: bool = False, hidden: tuple[int, ...] = (16, 8)):
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in zip((sample_len, *hidden), hidden):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]  # B x n_out
        if minibatch_std:
            layers.append(MinibatchStd())  # B x (last + 1): + the batch's spread
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1] + minibatch_std, 1))  # B x 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sine_rows(n_rows: int, sample_len: int, seed: int) -> torch.Tensor:
    """``n_rows`` random sinusoids of ``sample_len`` points, all within [-1, 1].

    Each row is ``A * sin(2*pi*f*t + phi)`` on ``t`` in [0, 1) with amplitude A in
    [0.4, 1], frequency f in [0.5, 2] cycles and phase phi in [0, 2*pi). Drawn
    from its own generator, so the data depend on ``seed`` only.
    """
    g = torch.Generator().manual_seed(seed)
    amplitude = torch.empty(n_rows, 1).uniform_(0.4, 1.0, generator=g)
    frequency = torch.empty(n_rows, 1).uniform_(0.5, 2.0, generator=g)
    phase = torch.empty(n_rows, 1).uniform_(0.0, 2 * math.pi, generator=g)
    t = torch.arange(sample_len, dtype=torch.float32) / sample_len
    return amplitude * torch.sin(2 * math.pi * frequency * t + phase)


def load_data(cfg: SineConfig) -> torch.Tensor:
    return sine_rows(cfg.n_rows, cfg.sample_len, cfg.seed)


VARIANT = Variant(
    name="sine",
    source="a beginner's GAN on synthetic sine curves",  # docs/variants.md#sine
    config_cls=SineConfig,
    generator=lambda cfg: Generator(cfg.latent_dim, cfg.sample_len, tuple(cfg.g_hidden)),
    discriminator=lambda cfg: Discriminator(cfg.sample_len, cfg.minibatch_std, tuple(cfg.d_hidden)),
    loss="bce",
    kind="series",
    load_data=load_data,
    presets=PRESETS,
)
