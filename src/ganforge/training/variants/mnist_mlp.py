"""``mnist-mlp``: a fully connected GAN on MNIST-format 28x28 digits (or clothing).

Source: shared/sources/mnist-mlp-gan.md (model / train / inference blocks). Both
networks are MLPs: G maps noise through two ``hidden_size`` layers to 784 pixels
with Tanh, D maps 784 pixels through two ``hidden_size`` layers to one Sigmoid
probability (its logit here: the Sigmoid is inside the BCE loss); BCE; Adam. The config
keeps the source's knob names (``latent_size``, ``hidden_size``, ``num_epochs``,
``learning_rate``) and its networks (64, 256, batch 100).

The recipe is not the source's: trained as the source does (Adam 2e-4, beta1 0.5), G
collapses onto a few shapes on Fashion-MNIST (recall near 0 after 10 epochs). An R1 penalty
on D (gamma 1), Adam(1e-3, 0, 0.99) and a moving average of G reach gan-eval's targets in
minutes (benchmarks/results/quality.md has the figures, recipes.md what was tried). The
source's recipe is ``--preset source``.

The source's inference block (load ``generator.pth``, show images) is
``gan-export`` + ``gan-infer`` here, and every epoch leaves a sample grid in
``samples/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.limits import MAX_TRAIN_LATENT_DIM, MAX_TRAIN_WIDTH
from ganforge.training.augment import MinibatchStd
from ganforge.training.conditional import discriminate, projection_for
from ganforge.training.config import LEVERS_OFF, TrainConfig
from ganforge.training.datasets import TORCHVISION_MNIST, ImageData, load_folder, load_idx
from ganforge.training.variants.base import GeneratorBase, Variant

IMAGE_SHAPE = (1, 28, 28)


@dataclass
class MnistMLPConfig(TrainConfig):
    ALIASES: ClassVar[dict[str, str]] = {"num_epochs": "epochs"}
    SUPPORTS_CONDITIONAL: ClassVar[bool] = True

    latent_size: int = 64  # noise vector size
    hidden_size: int = 256  # width of both hidden layers, in G and in D
    epochs: int = 30  # num_epochs in the source (50 there); about 3.5 minutes of a 2-core CPU
    batch_size: int = 100  # images per step
    learning_rate: float = 1e-3  # Adam, G and D (source: 2e-4, which R1 lets us raise)
    beta1: float = 0.0  # Adam beta1 (source: 0.5): no momentum, as with R1 in StyleGAN2
    beta2: float = 0.99  # Adam beta2 (source: 0.999)
    r1_weight: float = 1.0  # R1 on real images (source: none): keeps D smooth, the cure for collapse here
    ema: float = 0.999  # samples and exports from the moving average of G (source: the raw G)
    dataset: str = "mnist"  # with a torchvision root or --download: mnist or fashion-mnist
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_size", "hidden_size")
        self.require_at_most(MAX_TRAIN_LATENT_DIM, "latent_size")
        self.require_at_most(MAX_TRAIN_WIDTH, "hidden_size")
        if self.dataset not in TORCHVISION_MNIST:
            raise ConfigError(f"dataset must be one of {', '.join(TORCHVISION_MNIST)}, got {self.dataset!r}")


class Generator(GeneratorBase):
    """z [B, latent_size] (+ labels [B] when conditional) -> x [B, 1, 28, 28] in [-1, 1]."""

    def __init__(self, latent_size: int = 64, hidden_size: int = 256, num_classes: int | None = None,
                 class_std: float = 1.0):
        super().__init__(latent_size, IMAGE_SHAPE, num_classes, class_std)
        self.net = nn.Sequential(
            nn.Linear(latent_size, hidden_size),  # B x hidden
            nn.ReLU(True),
            nn.Linear(hidden_size, hidden_size),  # B x hidden
            nn.ReLU(True),
            nn.Linear(hidden_size, 28 * 28),  # B x 784
            nn.Tanh(),
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(1, IMAGE_SHAPE)  # B x 1 x 28 x 28


class Discriminator(nn.Module):
    """x [B, 1, 28, 28] (+ labels [B] when conditional) -> logit of real [B, 1] (the source's
    Sigmoid is in the BCE loss)."""

    def __init__(self, hidden_size: int = 256, num_classes: int | None = None, minibatch_std: bool = False):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # B x 784
            nn.Linear(28 * 28, hidden_size),  # B x hidden
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, hidden_size),  # B x hidden
            nn.LeakyReLU(0.2),
            *([MinibatchStd()] if minibatch_std else []),  # B x (hidden + 1): + the batch's spread
            nn.Linear(hidden_size + minibatch_std, 1),  # B x 1
        )
        self.projection = projection_for(self.net, num_classes)  # + <embed(y), hidden features>

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminate(self.net, self.projection, x, labels)


# The source document's recipe, kept one flag away: gan-train mnist-mlp --preset source
PRESETS = {"source": {**LEVERS_OFF, "epochs": 50, "learning_rate": 2e-4, "beta1": 0.5, "beta2": 0.999}}


def load_data(cfg: MnistMLPConfig) -> ImageData:
    """MNIST-format IDX files (a folder or a torchvision root); any image folder also works."""
    from ganforge.training.datasets import check_path, detect

    if cfg.download:
        return load_idx(cfg.data or "data", dataset=cfg.dataset, download=True)
    root = check_path(cfg.data, "mnist-mlp (MNIST-format data)")
    if detect(root) == "folder":
        return load_folder(root, image_size=28, channels=1)
    data = load_idx(root, dataset=cfg.dataset)
    if tuple(data.images.shape[1:]) != IMAGE_SHAPE:  # IDX files of another size: brought to the model's, as a folder's
        from ganforge.training.datasets import fit_images

        data = fit_images(data, IMAGE_SHAPE[1:], IMAGE_SHAPE[0])
    return data


VARIANT = Variant(
    name="mnist-mlp",
    source="an MLP GAN on MNIST, in model/train/inference blocks",  # docs/variants.md#mnist-mlp
    config_cls=MnistMLPConfig,
    generator=lambda cfg: Generator(cfg.latent_size, cfg.hidden_size, cfg.num_classes, cfg.class_embedding_std),
    discriminator=lambda cfg: Discriminator(cfg.hidden_size, cfg.num_classes, cfg.minibatch_std),
    loss="bce",
    kind="image",
    load_data=load_data,
    presets=PRESETS,
)
