"""``sine``: the beginner sine GAN — an MLP GAN on synthetic sinusoids.

Source: shared/sources/sine-gan.md (GAN-SENOIDE-INICIANTE). Data is 1000 rows of
32 points, one random sinusoid a row; G maps a 4-d noise vector to a 32-point
curve, D scores a curve as real or fake; BCE loss.

Defaults differ from the source on purpose, and the source is kept as the
``source`` preset (``gan-train sine --preset source``). With the source's
Adam lr = 2e-5 the generator is still far from sine-like after 300 epochs: at
that rate 300 epochs x 32 steps move these tiny networks too little.
benchmarks/sine_lr_probe.py measures it (benchmarks/results/sine-lr-probe.md):
over 5 seeds, the median single-sinusoid fit R^2 of generated curves is
0.35-0.55 with the source's settings, 0.47-0.95 with lr 1e-3, and 0.95-0.97
with lr 3e-3 and Adam beta1 = 0.5, the defaults here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.training.config import TrainConfig
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
    log_every: int = 30  # print a summary every N epochs (source: DEBUG_STEPS = 30)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "sample_len", "n_rows")
        if self.data is not None or self.download:
            raise ConfigError("the sine variant uses embedded synthetic data; drop --data / data / --download")


# The source document's hyperparameters, kept selectable.
PRESETS = {"source": {"learning_rate": 2e-5, "beta1": 0.9, "beta2": 0.999, "epochs": 300, "batch_size": 32}}


class Generator(GeneratorBase):
    """z [B, latent_dim] -> x [B, sample_len] in [-1, 1]."""

    def __init__(self, latent_dim: int = 4, sample_len: int = 32):
        super().__init__(latent_dim, (sample_len,))
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 8),  # B x 8
            nn.ReLU(True),
            nn.Linear(8, 16),  # B x 16
            nn.ReLU(True),
            nn.Linear(16, sample_len),  # B x sample_len
            nn.Tanh(),
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """x [B, sample_len] -> probability real [B, 1]."""

    def __init__(self, sample_len: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(sample_len, 16),  # B x 16
            nn.LeakyReLU(0.2),
            nn.Linear(16, 8),  # B x 8
            nn.LeakyReLU(0.2),
            nn.Linear(8, 1),  # B x 1
            nn.Sigmoid(),
        )

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
    source="sine-gan.md",
    config_cls=SineConfig,
    generator=lambda cfg: Generator(cfg.latent_dim, cfg.sample_len),
    discriminator=lambda cfg: Discriminator(cfg.sample_len),
    loss="bce",
    kind="series",
    load_data=load_data,
    presets=PRESETS,
)
