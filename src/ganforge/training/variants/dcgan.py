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

The default recipe keeps the architecture and changes how it trains: half the width,
no BatchNorm in D, an R1 penalty (gamma 1), Adam(1e-3, 0, 0.99), batch 64 and a moving
average of G. On a 10,000-image folder the paper's recipe still gives grey blobs after
5 epochs; this one has varied, recognisable samples in 2 (benchmarks/results/quality.md,
recipes.md). The paper's recipe is ``--preset source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.limits import MAX_TRAIN_LATENT_DIM, MAX_TRAIN_WIDTH
from ganforge.training.augment import MinibatchStd
from ganforge.training.conditional import discriminate, projection_for
from ganforge.training.config import LEVERS_OFF, TrainConfig
from ganforge.training.datasets import ImageData, check_path, detect, load_cifar, load_folder, parse_classes
from ganforge.training.variants.base import GeneratorBase, Variant

IMAGE_SIZE = 32


@dataclass
class DCGANConfig(TrainConfig):
    SUPPORTS_CONDITIONAL: ClassVar[bool] = True

    latent_dim: int = 100  # noise size (nz in pytorch/examples)
    g_features: int = 32  # G width: channels before the last layer (ngf; DCGAN: 64, a quarter of the speed)
    d_features: int = 32  # D width: channels after the first layer (ndf; DCGAN: 64)
    g_norm: str = "batch"  # G's normalisation: batch (DCGAN), pixel (each sample on its own) or none
    d_batchnorm: bool = False  # BatchNorm in D, as DCGAN has (then a batch's samples score one another; R1
    #                            wants each sample's score to depend on that sample alone)
    classes: list[str] = field(default_factory=lambda: ["automobile"])  # CIFAR-10 classes (names or 0-9)
    epochs: int = 25  # pytorch/examples' default
    batch_size: int = 64  # DCGAN paper: 128 (more, cheaper steps learn faster on a CPU)
    learning_rate: float = 1e-3  # DCGAN paper: 2e-4, which R1 lets us raise
    beta1: float = 0.0  # DCGAN paper: 0.5 (no momentum, as with R1 in StyleGAN2)
    beta2: float = 0.99  # DCGAN paper: 0.999
    r1_weight: float = 1.0  # R1 on real images (DCGAN: none)
    ema: float = 0.999  # samples and exports from the moving average of G (DCGAN: the raw G)
    class_embedding_std: float = 0.1  # conditional: small class offsets at first (at 1.0, as large as the
    #                                   noise, this conv G collapses inside each class; recipes.md)
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "g_features", "d_features")
        self.require_at_most(MAX_TRAIN_LATENT_DIM, "latent_dim")
        self.require_at_most(MAX_TRAIN_WIDTH, "g_features", "d_features")
        parse_classes(self.classes)
        if self.g_norm not in G_NORMS:
            raise ConfigError(f"g_norm must be one of {', '.join(G_NORMS)}, got {self.g_norm!r}")


G_NORMS = ("batch", "pixel", "none")


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit mean square (Karras et al. 2018, section 4.2):
    a normalisation of every sample on its own, where BatchNorm mixes the samples of a batch
    (and, in a conditional G, its classes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


def g_norm(kind: str, channels: int) -> list[nn.Module]:
    return {"batch": [nn.BatchNorm2d(channels)], "pixel": [PixelNorm()], "none": []}[kind]


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(GeneratorBase):
    """z [B, latent_dim] (+ labels [B] when conditional) -> x [B, 3, 32, 32] in [-1, 1]."""

    def __init__(self, latent_dim: int = 100, features: int = 64, channels: int = 3, num_classes: int | None = None,
                 norm: str = "batch", class_std: float = 1.0):
        super().__init__(latent_dim, (channels, IMAGE_SIZE, IMAGE_SIZE), num_classes, class_std)
        f = features

        def block(c_in: int, c_out: int, *conv: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(c_in, c_out, *conv, bias=norm != "batch"), *g_norm(norm, c_out), nn.ReLU(True)]

        self.net = nn.Sequential(
            # input: latent_dim x 1 x 1
            *block(latent_dim, f * 4, 4, 1, 0),
            # state size: (f*4) x 4 x 4
            *block(f * 4, f * 2, 4, 2, 1),
            # state size: (f*2) x 8 x 8
            *block(f * 2, f, 4, 2, 1),
            # state size: f x 16 x 16
            nn.ConvTranspose2d(f, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
            # output: channels x 32 x 32
        )
        self.apply(init_weights)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """x [B, 3, 32, 32] (+ labels [B] when conditional) -> logit of real [B, 1] (the source's
    Sigmoid is in the BCE loss)."""

    def __init__(self, features: int = 64, channels: int = 3, num_classes: int | None = None,
                 minibatch_std: bool = False, batchnorm: bool = True):
        super().__init__()
        f = features

        def norm(c: int) -> list[nn.Module]:  # no BatchNorm: each sample's score depends on itself alone
            return [nn.BatchNorm2d(c)] if batchnorm else []

        self.net = nn.Sequential(
            # input: channels x 32 x 32
            nn.Conv2d(channels, f, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: f x 16 x 16
            nn.Conv2d(f, f * 2, 4, 2, 1, bias=not batchnorm),
            *norm(f * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (f*2) x 8 x 8
            nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=not batchnorm),
            *norm(f * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (f*4) x 4 x 4
            *([MinibatchStd()] if minibatch_std else []),  # (f*4 + 1) x 4 x 4: + the batch's spread
            nn.Conv2d(f * 4 + minibatch_std, 1, 4, 1, 0, bias=False),
            # output: 1 x 1 x 1
        )
        self.apply(init_weights)
        self.projection = projection_for(self.net, num_classes)  # + <embed(y), mean (f*4) features>

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


# The source document's recipe, kept one flag away: gan-train dcgan --preset source
PRESETS = {"source": {**LEVERS_OFF, "g_features": 64, "d_features": 64, "d_batchnorm": True, "batch_size": 128,
                      "learning_rate": 2e-4, "beta1": 0.5, "beta2": 0.999}}


VARIANT = Variant(
    name="dcgan",
    source="TheJoyOfGan: a DCGAN on CIFAR-10's cars",  # docs/variants.md#dcgan
    config_cls=DCGANConfig,
    generator=lambda cfg: Generator(cfg.latent_dim, cfg.g_features, num_classes=cfg.num_classes, norm=cfg.g_norm,
                                    class_std=cfg.class_embedding_std),
    discriminator=lambda cfg: Discriminator(cfg.d_features, num_classes=cfg.num_classes,
                                            minibatch_std=cfg.minibatch_std, batchnorm=cfg.d_batchnorm),
    loss="bce",
    kind="image",
    load_data=load_data,
    presets=PRESETS,
)
