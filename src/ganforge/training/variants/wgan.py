"""``wgan``: a WGAN whose conv kernel sizes follow from the sizes each layer must map.

Source: shared/sources/adaptive-kernel-wgan.md (after deeplearning.ai's "GANs
for good" WGAN). Instead of fixed kernels, every block's kernel is computed from
its input and output sizes, per height and width, so one config fits any image
size, square or not, at any depth:

    generator (ConvTranspose2d): K = out - stride*(in - 1) + 2*padding
    critic    (Conv2d):          K = in + 2*padding - stride*(out - 1)

The planner picks the intermediate sizes (geometric from 1x1 to HxW) and the
strides (``floor(out/in)``, which keeps every K >= 1); strides and paddings can
also be given per layer, as the source planned. A plan that cannot work is
refused at config time with the size, the layer and what would work.

Loss: Wasserstein with gradient penalty (lambda = 10), weight clipping with
``--set penalty=clip``; the critic has no BatchNorm when the gradient penalty is used.
Networks from the course: z 64, hidden 64, batch 128. Its optimiser (Adam(2e-4, 0.5,
0.999), five critic steps a G step) is ``--preset source``; the default trains G at every
critic step with Adam(1e-3, 0, 0.99) and a moving average of G, which on Fashion-MNIST
reaches in 2 epochs what the course's recipe does not in 3 (benchmarks/results/recipes.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.limits import MAX_TRAIN_IMAGE_SIDE, MAX_TRAIN_LATENT_DIM, MAX_TRAIN_LAYERS, MAX_TRAIN_WIDTH
from ganforge.training.augment import MinibatchStd
from ganforge.training.conditional import discriminate, projection_for
from ganforge.training.config import LEVERS_OFF, TrainConfig
from ganforge.training.datasets import ImageData, load_images
from ganforge.training.losses import PENALTIES
from ganforge.training.variants.base import GeneratorBase, Variant
from ganforge.values import square_size


@dataclass
class WGANConfig(TrainConfig):
    SUPPORTS_CONDITIONAL: ClassVar[bool] = True

    latent_dim: int = 64  # noise size (z_dim in the course)
    hidden_dim: int = 64  # base width: G's last hidden block and the critic's first
    n_layers: int = 4  # generator blocks (depth); any number the image size allows
    critic_layers: int | None = None  # critic blocks; None = n_layers
    image_size: list[int] | None = None  # [height, width]; None = the data's own size
    channels: int | None = None  # 1 or 3; None = the data's own
    g_strides: list[int] | None = None  # per generator layer; None = planned
    g_paddings: list[int] | None = None  # per generator layer; None = 0
    c_strides: list[int] | None = None  # per critic layer; None = planned
    c_paddings: list[int] | None = None  # per critic layer; None = 0
    penalty: str = "gp"  # gp (gradient penalty) or clip (weight clipping, the original WGAN)
    gp_weight: float = 10.0  # lambda of the gradient penalty
    clip_value: float = 0.01  # weight clipping bound with penalty=clip
    n_critic: int = 1  # critic steps per generator step (course: 5; one G step a critic step learns 3x faster here)
    classes: list[str] | None = None  # CIFAR-10 classes when --data is CIFAR-10; None = all
    epochs: int = 4  # passes over the data (course: 20); about 7 minutes of Fashion-MNIST on a 2-core CPU
    batch_size: int = 128  # course value
    learning_rate: float = 1e-3  # course: 2e-4
    beta1: float = 0.0  # course: 0.5 (no momentum: with the penalty it trains steadily at 1e-3)
    beta2: float = 0.99  # course: 0.999
    ema: float = 0.999  # samples and exports from the moving average of G (course: the raw G)
    class_embedding_std: float = 0.1  # conditional: small class offsets at first (at 1.0 a conv G
    #                                   collapses inside each class; recipes.md)
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def __post_init__(self) -> None:
        self.image_size = square_size(self.image_size)  # one number: a square

    def validate(self) -> None:
        super().validate()
        self.require_positive("latent_dim", "hidden_dim", "n_layers", "n_critic", "critic_layers")
        self.require_at_most(MAX_TRAIN_LATENT_DIM, "latent_dim")
        self.require_at_most(MAX_TRAIN_WIDTH, "hidden_dim")
        self.require_at_most(MAX_TRAIN_LAYERS, "n_layers", "critic_layers")
        # a stride or padding beyond the image's side only makes kernels (and weights) huge
        self.require_at_most(MAX_TRAIN_IMAGE_SIDE, "image_size", "g_strides", "g_paddings", "c_strides", "c_paddings")
        if self.penalty not in PENALTIES:
            raise ConfigError(f"penalty must be one of {', '.join(PENALTIES)}, got {self.penalty!r}")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.image_size is not None:
            if len(self.image_size) != 2 or min(self.image_size) < 1 or max(self.image_size) < 2:
                raise ConfigError(f"image_size must be [height, width] with a side >= 2, got {self.image_size}")
            plan(self)  # refuse an impossible plan now, not mid-training


# ---------------------------------------------------------------- the size planner


@dataclass(frozen=True)
class Block:
    in_size: tuple[int, int]  # (H, W) into the block
    out_size: tuple[int, int]  # (H, W) out of it
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def _sizes(target: int, n: int, strict: bool) -> list[int]:
    """n+1 sizes from 1 to target, roughly geometric; strictly increasing if ``strict``."""
    sizes = [1] + [max(1, round(target ** (i / n))) for i in range(1, n)] + [target]
    for i in range(1, n + 1):  # keep the order: non-decreasing, or strictly increasing
        sizes[i] = max(sizes[i], sizes[i - 1] + (1 if strict else 0))
    for i in range(n - 1, 0, -1):  # and never overshoot the target
        sizes[i] = min(sizes[i], sizes[i + 1] - (1 if strict else 0))
    return sizes


def _suggest(height: int, width: int) -> int:
    return max(1, min(max(height, width) - 1, round(math.log2(max(height, width)))))


def _per_layer(values: list[int] | None, n: int, name: str, default: int | None) -> list[int | None]:
    if values is None:
        return [default] * n
    if len(values) != n:
        raise ConfigError(f"{name} has {len(values)} values but there are {n} layers; give one per layer")
    if any(v < (0 if "padding" in name else 1) for v in values):
        raise ConfigError(f"{name} must hold {'non-negative' if 'padding' in name else 'positive'} integers, got {values}")
    return list(values)


def _plan(size: tuple[int, int], n: int, strides, paddings, *, critic: bool) -> list[Block]:
    """Blocks between a 1x1 map and ``size`` in ``n`` layers: up for the generator
    (transposed convolutions), down for the critic (the generator's sizes reversed)."""
    role, depth_key, prefix, verb = (("critic", "critic_layers", "c", "shrink") if critic
                                     else ("generator", "n_layers", "g", "grow"))
    height, width = size
    longest = max(height, width)
    if n > longest - 1:
        raise ConfigError(f"cannot plan {n} {role} layers for {height}x{width} images: each layer must {verb} "
                          f"the longer side ({longest}) by a pixel or more, so at most {longest - 1}; "
                          f"try {depth_key}={_suggest(height, width)}")
    hs = _sizes(height, n, strict=height == longest)
    ws = _sizes(width, n, strict=width == longest and height != longest)
    if critic:
        hs, ws = hs[::-1], ws[::-1]
    strides = _per_layer(strides, n, f"{prefix}_strides", None)
    paddings = _per_layer(paddings, n, f"{prefix}_paddings", 0)
    blocks = []
    for i in range(n):
        ins, outs, p = (hs[i], ws[i]), (hs[i + 1], ws[i + 1]), paddings[i]
        if critic:  # Conv2d: K = in + 2p - stride*(out - 1); stride floor(in/out) keeps K >= 1
            st = tuple(strides[i] or (1 if b == 1 else max(1, a // b)) for a, b in zip(ins, outs))
            k = tuple(a + 2 * p - s * (b - 1) for a, b, s in zip(ins, outs, st))
            ok = min(k) >= 1
        else:  # ConvTranspose2d: K = out - stride*(in - 1) + 2p; stride floor(out/in) keeps K >= 1
            st = tuple(strides[i] or (1 if a == 1 else max(1, b // a)) for a, b in zip(ins, outs))
            k = tuple(b - s * (a - 1) + 2 * p for a, b, s in zip(ins, outs, st))
            ok = min(k) >= 1 and p <= min(k) - 1  # ConvTranspose2d needs padding < kernel
        if not ok:
            raise ConfigError(
                f"{role} layer {i + 1} of {n} cannot map {ins[0]}x{ins[1]} to {outs[0]}x{outs[1]} with stride "
                f"{strides[i]} and padding {p} (kernel would be {k[0]}x{k[1]}; it must be >= 1"
                f"{'' if critic else ' and > padding'}): use a smaller stride or more padding, or leave "
                f"{prefix}_strides unset to let the planner choose")
        blocks.append(Block(ins, outs, k, st, (p, p)))
    return blocks


def plan_generator(size: tuple[int, int], n: int, strides=None, paddings=None) -> list[Block]:
    """Blocks mapping a 1x1 noise map to ``size`` in ``n`` transposed convolutions."""
    return _plan(size, n, strides, paddings, critic=False)


def plan_critic(size: tuple[int, int], n: int, strides=None, paddings=None) -> list[Block]:
    """Blocks reducing ``size`` to a 1x1 score map in ``n`` convolutions."""
    return _plan(size, n, strides, paddings, critic=True)


def plan(cfg: WGANConfig) -> tuple[list[Block], list[Block]]:
    size = tuple(cfg.image_size)
    return (plan_generator(size, cfg.n_layers, cfg.g_strides, cfg.g_paddings),
            plan_critic(size, cfg.critic_layers or cfg.n_layers, cfg.c_strides, cfg.c_paddings))


def _width(hidden: int, steps_from_image: int) -> int:
    """Channels double away from the image side, capped at 8x hidden."""
    return hidden * min(8, 2 ** max(0, steps_from_image))


# ---------------------------------------------------------------- models


class Generator(GeneratorBase):
    """z [B, latent_dim] (+ labels [B] when conditional) -> x [B, channels, H, W] in [-1, 1], through the
    planned blocks."""

    def __init__(self, latent_dim: int, channels: int, blocks: list[Block], hidden_dim: int = 64,
                 num_classes: int | None = None, class_std: float = 1.0):
        super().__init__(latent_dim, (channels, *blocks[-1].out_size), num_classes, class_std)
        layers: list[nn.Module] = []
        in_ch = latent_dim
        for i, b in enumerate(blocks):
            last = i == len(blocks) - 1
            out_ch = channels if last else _width(hidden_dim, len(blocks) - 2 - i)
            # state size: in_ch x b.in_size -> out_ch x b.out_size
            layers.append(nn.ConvTranspose2d(in_ch, out_ch, b.kernel, b.stride, b.padding))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out_ch), nn.ReLU(True)]
            in_ch = out_ch
        self.net = nn.Sequential(*layers)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Critic(nn.Module):
    """x [B, channels, H, W] (+ labels [B] when conditional) -> score [B, 1], any real value. No BatchNorm
    with the gradient penalty."""

    def __init__(self, channels: int, blocks: list[Block], hidden_dim: int = 64, batchnorm: bool = False,
                 num_classes: int | None = None, minibatch_std: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for i, b in enumerate(blocks):
            last = i == len(blocks) - 1
            out_ch = 1 if last else _width(hidden_dim, i)
            if last and minibatch_std and i > 0:  # (in_ch + 1) x b.in_size: + the batch's spread
                layers.append(MinibatchStd())
                in_ch += 1
            # state size: in_ch x b.in_size -> out_ch x b.out_size
            layers.append(nn.Conv2d(in_ch, out_ch, b.kernel, b.stride, b.padding))
            if not last:
                layers += ([nn.BatchNorm2d(out_ch)] if batchnorm and i > 0 else []) + [nn.LeakyReLU(0.2, inplace=True)]
            in_ch = out_ch
        self.net = nn.Sequential(*layers)
        self.projection = projection_for(self.net, num_classes)  # + <embed(y), mean last-block features>

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminate(self.net, self.projection, x, labels).flatten(1)  # B x 1


def build_generator(cfg: WGANConfig) -> Generator:
    g_blocks, _ = plan(cfg)
    return Generator(cfg.latent_dim, cfg.channels, g_blocks, cfg.hidden_dim, cfg.num_classes, cfg.class_embedding_std)


def build_critic(cfg: WGANConfig) -> Critic:
    _, c_blocks = plan(cfg)
    return Critic(cfg.channels, c_blocks, cfg.hidden_dim, batchnorm=cfg.penalty == "clip", num_classes=cfg.num_classes,
                  minibatch_std=cfg.minibatch_std)


# ---------------------------------------------------------------- data


def load_data(cfg: WGANConfig) -> ImageData:
    """Any image source the project reads, at its own size unless image_size says otherwise."""
    return load_images(cfg.data, what="wgan (MNIST-format, CIFAR-10 or an image folder)",
                       size=tuple(cfg.image_size) if cfg.image_size else None, channels=cfg.channels,
                       classes=cfg.classes)


def configure(cfg: WGANConfig, data: ImageData) -> WGANConfig:
    """Fill image_size and channels from the data, then check the plan."""
    from dataclasses import replace

    cfg = replace(cfg, image_size=cfg.image_size or list(data.images.shape[2:]),
                  channels=cfg.channels or int(data.images.shape[1]))
    cfg.validate()
    return cfg


# The source document's recipe, kept one flag away: gan-train wgan --preset source
PRESETS = {"source": {**LEVERS_OFF, "n_critic": 5, "epochs": 20, "learning_rate": 2e-4, "beta1": 0.5,
                      "beta2": 0.999}}


VARIANT = Variant(
    name="wgan",
    source="a WGAN whose kernel sizes are computed from the sizes wanted",  # docs/variants.md#wgan
    config_cls=WGANConfig,
    generator=build_generator,
    discriminator=build_critic,
    loss="wasserstein",
    kind="image",
    load_data=load_data,
    presets=PRESETS,
    configure=configure,
)
