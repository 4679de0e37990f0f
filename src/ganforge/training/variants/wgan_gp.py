"""``wgan-gp``: WGAN-GP on a folder of your own images.

Source: shared/sources/wgan-gp-image-folder.md: images in ``dataset/<any name>/``
(the ImageFolder layout; a flat folder works too), parameters and paths in a
``parameters.json`` (``gan-train wgan-gp --config parameters.json``; see
examples/wgan-gp/parameters.json), a log file and a sample image per epoch.

The model follows the WGAN-GP paper's code (Gulrajani et al., 2017,
arXiv:1704.00028): a DCGAN-like generator (ConvTranspose2d + BatchNorm + ReLU,
Tanh), a critic without BatchNorm (layer normalisation or none), gradient penalty
lambda = 10. Its optimiser (n_critic = 5, Adam(1e-4, 0.5, 0.9)) is ``--preset source``; the
default trains G at every critic step with Adam(1e-3, 0, 0.99) and a moving average of G,
several times faster to varied samples on a CPU (benchmarks/results/recipes.md). Images are converted
to RGB, resized (shorter side) and center-cropped to ``image_size`` (by default the
size 4 * 2^k nearest the images' own, at most 64: the source's 64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.limits import MAX_TRAIN_IMAGE_SIDE, MAX_TRAIN_LATENT_DIM, MAX_TRAIN_WIDTH
from ganforge.training.augment import MinibatchStd
from ganforge.training.conditional import discriminate, projection_for
from ganforge.training.config import LEVERS_OFF, TrainConfig
from ganforge.training.datasets import ImageData, load_folder
from ganforge.training.variants.base import GeneratorBase, Variant

NORMS = ("layernorm", "none")


@dataclass
class WGANGPConfig(TrainConfig):
    SUPPORTS_CONDITIONAL: ClassVar[bool] = True  # classes = the folder's subfolders

    data: str | None = "dataset"  # the image folder (the source's "dataset/")
    image_size: int | None = None  # 4 * 2^k (8, 16, ..., 64, 128, ...); None: the images' own size, up to 64
    latent_dim: int = 128  # noise size (the paper's code)
    g_features: int = 64  # G width before the last layer
    d_features: int = 64  # critic width after the first layer
    critic_norm: str = "layernorm"  # layernorm or none: never BatchNorm with a gradient penalty
    n_critic: int = 1  # critic steps per generator step (the paper's code: 5)
    gp_weight: float = 10.0  # lambda of the gradient penalty
    epochs: int = 12  # passes over the folder (the source: 50); about 8 minutes of 10,000 images at 32x32
    batch_size: int = 64  # the paper's code
    learning_rate: float = 1e-3  # the paper's code: 1e-4
    beta1: float = 0.0  # the paper's code: 0.5
    beta2: float = 0.99  # the paper's code: 0.9
    ema: float = 0.999  # samples and exports from the moving average of G (the source: the raw G)
    class_embedding_std: float = 0.1  # conditional: small class offsets at first (at 1.0 a conv G
    #                                   collapses inside each class; recipes.md)
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "g_features", "d_features", "n_critic")
        self.require_at_most(MAX_TRAIN_LATENT_DIM, "latent_dim")
        self.require_at_most(MAX_TRAIN_WIDTH, "g_features", "d_features")
        self.require_at_most(MAX_TRAIN_IMAGE_SIDE, "image_size")
        if self.image_size is not None and n_upsamplings(self.image_size) is None:
            near = sorted((4 * 2**k for k in range(1, 9)), key=lambda s: abs(s - self.image_size))[:2]
            raise ConfigError(f"image_size must be 4 * 2^k (8, 16, 32, 64, 128, ...), got {self.image_size}; "
                              f"try {' or '.join(map(str, sorted(near)))}")
        if self.critic_norm not in NORMS:
            raise ConfigError(f"critic_norm must be one of {', '.join(NORMS)}, got {self.critic_norm!r}")


def n_upsamplings(image_size: int) -> int | None:
    """How many x2 steps from 4x4 to image_size, or None if it is not 4 * 2^k with k >= 1."""
    k, size = 0, 4
    while size < image_size:
        size, k = size * 2, k + 1
    return k if size == image_size and k >= 1 else None


class Generator(GeneratorBase):
    """z [B, latent_dim] (+ labels [B] when conditional) -> x [B, 3, S, S] in [-1, 1]: 4x4, then doubling to S."""

    def __init__(self, latent_dim: int = 128, image_size: int = 64, features: int = 64, channels: int = 3,
                 num_classes: int | None = None, class_std: float = 1.0):
        super().__init__(latent_dim, (channels, image_size, image_size), num_classes, class_std)
        k = n_upsamplings(image_size)
        width = features * 2 ** (k - 1)
        layers: list[nn.Module] = [
            # input: latent_dim x 1 x 1 -> width x 4 x 4
            nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        size = 4
        for _ in range(k - 1):
            # state size: width x size x size -> width/2 x 2size x 2size
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width, size = width // 2, size * 2
        # state size: features x S/2 x S/2 -> channels x S x S
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Critic(nn.Module):
    """x [B, 3, S, S] (+ labels [B] when conditional) -> score [B, 1], any real value; no BatchNorm
    (the penalty is per sample)."""

    def __init__(self, image_size: int = 64, features: int = 64, channels: int = 3, norm: str = "layernorm",
                 num_classes: int | None = None, minibatch_std: bool = False):
        super().__init__()
        k = n_upsamplings(image_size)
        layers: list[nn.Module] = [
            # input: channels x S x S -> features x S/2 x S/2
            nn.Conv2d(channels, features, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = features
        for _ in range(k - 1):
            # state size: width x s x s -> 2width x s/2 x s/2
            layers.append(nn.Conv2d(width, width * 2, 4, 2, 1))
            if norm == "layernorm":  # normalises each sample over (C, H, W): LayerNorm, per-channel affine
                layers.append(nn.GroupNorm(1, width * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width *= 2
        if minibatch_std:  # (width + 1) x 4 x 4: + the batch's spread
            layers.append(MinibatchStd())
        # state size: width x 4 x 4 -> 1 x 1 x 1
        layers.append(nn.Conv2d(width + minibatch_std, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.projection = projection_for(self.net, num_classes)  # + <embed(y), mean 4x4 features>

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminate(self.net, self.projection, x, labels).flatten(1)  # B x 1


AUTO_MAX = 64  # image_size=None: no larger than this (the source's size; larger costs 4x a step per doubling)


def auto_image_size(shorter_side: int) -> int:
    """The size 4 * 2^k nearest an image's shorter side (ties upward), at most AUTO_MAX: a
    28-pixel image trains at 32, not 64, which would only upscale it at four times the cost."""
    sizes = [4 * 2**k for k in range(1, 9) if 4 * 2**k <= AUTO_MAX]
    return min(sizes, key=lambda s: (abs(s - shorter_side), -s))


def load_data(cfg: WGANGPConfig) -> ImageData:
    size = cfg.image_size
    if size is None:
        from ganforge.training.datasets import check_path, first_image_size

        size = auto_image_size(min(first_image_size(check_path(cfg.data, "wgan-gp (an image folder)"))))
    return load_folder(cfg.data, image_size=size, channels=3)


def configure(cfg: WGANGPConfig, data: ImageData) -> WGANGPConfig:
    """image_size from the data when it was left to them."""
    from dataclasses import replace

    return replace(cfg, image_size=int(data.images.shape[-1]))


# The source document's recipe, kept one flag away: gan-train wgan-gp --preset source
PRESETS = {"source": {**LEVERS_OFF, "image_size": 64, "n_critic": 5, "epochs": 50, "learning_rate": 1e-4,
                      "beta1": 0.5, "beta2": 0.9}}


VARIANT = Variant(
    name="wgan-gp",
    source="a WGAN-GP trained on a folder of your own images",  # docs/variants.md#wgan-gp
    config_cls=WGANGPConfig,
    generator=lambda cfg: Generator(cfg.latent_dim, cfg.image_size, cfg.g_features, num_classes=cfg.num_classes,
                                        class_std=cfg.class_embedding_std),
    discriminator=lambda cfg: Critic(cfg.image_size, cfg.d_features, norm=cfg.critic_norm, num_classes=cfg.num_classes,
                                     minibatch_std=cfg.minibatch_std),
    loss="wasserstein",
    kind="image",
    load_data=load_data,
    presets=PRESETS,
    configure=configure,
)
