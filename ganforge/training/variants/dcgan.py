"""``dcgan``: a DCGAN on CIFAR-10 cars (32x32 RGB).

Source: shared/sources/dcgan-cifar10-cars.md (TheJoyOfGan): CIFAR-10 filtered
to automobiles, a sample image after every epoch. Architecture and optimiser
follow the DCGAN paper (Radford et al., 2015, arXiv:1511.06434) and
pytorch/examples ``dcgan``: transposed convolutions + BatchNorm + ReLU in G with
a Tanh output, strided convolutions + BatchNorm + LeakyReLU(0.2) in D with a
Sigmoid, weights from N(0, 0.02), Adam(2e-4, 0.5, 0.999), BCE.

Data: CIFAR-10 (``--data`` = a folder with ``cifar-10-batches-py``, or
``--download``), filtered by ``classes``; or any image folder, resized and
center-cropped to 32x32, so it trains offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ganforge.training.conditional import discriminate, projection_for
from ganforge.training.config import TrainConfig
from ganforge.training.datasets import ImageData, check_path, detect, load_cifar, load_folder, parse_classes
from ganforge.training.variants.base import GeneratorBase, Variant

IMAGE_SIZE = 32


@dataclass
class DCGANConfig(TrainConfig):
    SUPPORTS_CONDITIONAL: ClassVar[bool] = True

    latent_dim: int = 100  # noise size (nz in pytorch/examples)
    g_features: int = 64  # G width: channels before the last layer (ngf)
    d_features: int = 64  # D width: channels after the first layer (ndf)
    classes: list[str] = field(default_factory=lambda: ["automobile"])  # CIFAR-10 classes (names or 0-9)
    epochs: int = 25  # pytorch/examples' default
    batch_size: int = 128  # DCGAN paper
    learning_rate: float = 2e-4  # DCGAN paper
    beta1: float = 0.5  # DCGAN paper
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "g_features", "d_features")
        parse_classes(self.classes)


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(GeneratorBase):
    """z [B, latent_dim] (+ labels [B] when conditional) -> x [B, 3, 32, 32] in [-1, 1]."""

    def __init__(self, latent_dim: int = 100, features: int = 64, channels: int = 3, num_classes: int | None = None):
        super().__init__(latent_dim, (channels, IMAGE_SIZE, IMAGE_SIZE), num_classes)
        f = features
        self.net = nn.Sequential(
            # input: latent_dim x 1 x 1
            nn.ConvTranspose2d(latent_dim, f * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(f * 4),
            nn.ReLU(True),
            # state size: (f*4) x 4 x 4
            nn.ConvTranspose2d(f * 4, f * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(f * 2),
            nn.ReLU(True),
            # state size: (f*2) x 8 x 8
            nn.ConvTranspose2d(f * 2, f, 4, 2, 1, bias=False),
            nn.BatchNorm2d(f),
            nn.ReLU(True),
            # state size: f x 16 x 16
            nn.ConvTranspose2d(f, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
            # output: channels x 32 x 32
        )
        self.apply(init_weights)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """x [B, 3, 32, 32] (+ labels [B] when conditional) -> probability real [B, 1]."""

    def __init__(self, features: int = 64, channels: int = 3, num_classes: int | None = None):
        super().__init__()
        f = features
        self.net = nn.Sequential(
            # input: channels x 32 x 32
            nn.Conv2d(channels, f, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: f x 16 x 16
            nn.Conv2d(f, f * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(f * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (f*2) x 8 x 8
            nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(f * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (f*4) x 4 x 4
            nn.Conv2d(f * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
            # output: 1 x 1 x 1
        )
        self.apply(init_weights)
        self.projection = projection_for(self.net, num_classes)  # + <embed(y), mean (f*4) features> before Sigmoid

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminate(self.net, self.projection, x, labels).flatten(1)  # B x 1


def load_data(cfg: DCGANConfig) -> ImageData:
    """CIFAR-10 filtered to ``classes``, or any folder of images at 32x32."""
    if cfg.download:
        return load_cifar(cfg.data or "data", classes=cfg.classes, download=True)
    root = check_path(cfg.data, "dcgan (CIFAR-10 or an image folder)")
    if detect(root) == "cifar":
        return load_cifar(root, classes=cfg.classes)
    return load_folder(root, image_size=IMAGE_SIZE, channels=3)


VARIANT = Variant(
    name="dcgan",
    source="dcgan-cifar10-cars.md",
    config_cls=DCGANConfig,
    generator=lambda cfg: Generator(cfg.latent_dim, cfg.g_features, num_classes=cfg.num_classes),
    discriminator=lambda cfg: Discriminator(cfg.d_features, num_classes=cfg.num_classes),
    loss="bce",
    kind="image",
    load_data=load_data,
)
