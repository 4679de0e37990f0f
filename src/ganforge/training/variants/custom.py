"""``custom``: your own generator and discriminator, trained on ganforge's loop.

    gan-train --generator my.py:G --discriminator my.py:D --latent-shape 100,1,1 --data ./images

The two classes are imported by :mod:`ganforge.usercode` (``path/to/file.py:Name`` or
``package.module:Name``) and built with their keyword arguments (``--init-args``,
``--d-init-args``). Adapters make them what the loop, checkpoints and export rely on:
:class:`UserGenerator` honours GeneratorModel (``z [B, latent_dim]`` reshaped to your
``latent_shape``; ``sample_shape`` is the data's) and :class:`UserDiscriminator` gives one
score a sample. Their parameters are counted on the meta device (no memory) and both are
probed with two samples when built, so a module whose shapes do not fit the data stops in one
line before a run folder exists. The data are any image source (MNIST-format, CIFAR-10, a folder),
the loss bce, hinge or wgan-gp (Wasserstein with the gradient penalty of the wgan variants).

The config records the specs (a file by its absolute path) and the init args, so a resume or an
export rebuilds the modules: a checkpoint of such a run names code, and importing it runs that
code. It happens only to resume or export the run, with a one-line notice
(``checkpoint.import_recorded``); loading the checkpoint alone never imports anything.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError, GanforgeWarning, first_line
from ganforge.limits import MAX_TRAIN_IMAGE_SIDE, MAX_TRAIN_LATENT_DIM, MAX_TRAIN_WIDTH
from ganforge.training.config import TrainConfig
from ganforge.training.datasets import ImageData, load_images
from ganforge.training.variants.base import Variant
from ganforge.values import MAX_LATENT_AXES, square_size

# A spec is plain text naming a class, nothing else: a .py file (no control characters or
# colons in its path) or a dotted module, then the class (dotted for a nested one).
NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
FILE_SPEC = re.compile(rf"[^\x00-\x1f\x7f:]+\.py:{NAME}")
MODULE_SPEC = re.compile(rf"{NAME}:{NAME}")
MAX_SPEC_CHARS = 4096 + 256  # a path (Linux's PATH_MAX) and a class name
# Init args are a constructor's keyword arguments: a few numbers and names. The bounds keep a
# config (and a checkpoint) from carrying more, and the sizes they ask for within reach of the
# parameter count: an integer is a width, size or count (configs: 8192 wide, 1024 a side).
MAX_INIT_ARGS_CHARS = 16_384  # as JSON
MAX_INIT_ARGS_DEPTH = 8  # nested lists and objects
MAX_INIT_INT = 8 * MAX_TRAIN_WIDTH
PROBE_BATCH = 2  # samples a probe runs: two tell the batch dimension from a squeezed one
RANGE_SLACK = 1e-3  # how far past [-1, 1] a probe's output may go before the warning (rounding)
CHECK_SHAPES = "check --latent-shape and the data's size"
USAGE = "--generator FILE.py:G --discriminator FILE.py:D --latent-shape N (docs/training.md#your-own-architecture)"


@dataclass
class CustomConfig(TrainConfig):
    LOSSES: ClassVar[tuple[str, ...]] = ("bce", "hinge", "wgan-gp")

    generator: str | None = None  # your generator's class: path/to/file.py:Name or package.module:Name
    discriminator: str | None = None  # your discriminator's (or critic's) class, likewise
    init_args: dict[str, Any] | None = None  # keyword arguments of the generator's class (JSON)
    d_init_args: dict[str, Any] | None = None  # keyword arguments of the discriminator's class (JSON)
    latent_shape: list[int] | None = None  # the noise of one sample as G takes it: [100] or [100, 1, 1]
    loss: str | None = "bce"  # bce (non-saturating, on D's logits), hinge, or wgan-gp (a critic + gradient penalty)
    n_critic: int = 1  # critic steps per generator step with wgan-gp (the WGAN-GP paper: 5)
    gp_weight: float = 10.0  # lambda of the gradient penalty with wgan-gp
    image_size: list[int] | None = None  # [height, width] (one number: a square); None = the data's own
    channels: int | None = None  # 1 or 3; None = the data's own
    classes: list[str] | None = None  # CIFAR-10 classes when --data is CIFAR-10; None = all
    ema: float = 0.999  # samples and exports from the moving average of G, as in every variant
    sample_count: int = 64  # fixed-noise samples per epoch (an 8x8 grid)

    def __post_init__(self) -> None:
        self.image_size = square_size(self.image_size)  # one number: a square

    def validate(self) -> None:
        super().validate()
        if self.generator is None or self.discriminator is None or self.latent_shape is None:
            raise ConfigError(f"your own modules need {USAGE}")
        check_spec("generator", self.generator)
        check_spec("discriminator", self.discriminator)
        check_init_args("init_args", self.init_args)
        check_init_args("d_init_args", self.d_init_args)
        shape = self.latent_shape
        if not 1 <= len(shape) <= MAX_LATENT_AXES or min(shape) < 1 or math.prod(shape) > MAX_TRAIN_LATENT_DIM:
            raise ConfigError(f"--latent-shape {','.join(map(str, shape))}: give 1 to {MAX_LATENT_AXES} positive "
                              f"sizes of at most {MAX_TRAIN_LATENT_DIM} values in all, e.g. 100 or 100,1,1")
        self.require_positive("n_critic")
        if self.loss != "wgan-gp" and self.n_critic != 1:
            raise ConfigError(f"n_critic applies to --loss wgan-gp; with {self.loss or 'bce'} D and G take turns")
        if self.loss == "wgan-gp" and self.r1_weight:
            raise ConfigError("r1_weight applies to --loss bce or hinge; wgan-gp has its own penalty (gp_weight)")
        if not 0 <= self.gp_weight < float("inf"):
            raise ConfigError(f"gp_weight must be >= 0, got {self.gp_weight}")
        if self.minibatch_std:
            raise ConfigError("minibatch_std is a layer of ganforge's own discriminators; add one to yours "
                              "(ganforge.training.augment.MinibatchStd) instead")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(f"image_size must be [height, width] (or one number), got {self.image_size}")
        self.require_at_most(MAX_TRAIN_IMAGE_SIDE, "image_size")


def check_spec(key: str, spec: Any) -> None:
    """A plain ``file.py:Name`` or ``package.module:Name``, the only code a config may name."""
    if not isinstance(spec, str) or len(spec) > MAX_SPEC_CHARS or not (
            FILE_SPEC.fullmatch(spec) or MODULE_SPEC.fullmatch(spec)):
        raise ConfigError(f"{key} must name a class as path/to/file.py:Name or package.module:Name, got "
                          f"{str(spec)[:80]!r}")


def check_init_args(key: str, args: Any) -> None:
    """JSON-like keyword arguments within the bounds above."""
    if args is None:
        return
    _check_json(key, args, 0)
    if len(repr(args)) > MAX_INIT_ARGS_CHARS:
        raise ConfigError(f"{key} is longer than {MAX_INIT_ARGS_CHARS:,} characters; pass a class its sizes and "
                          "names, not data")


def _check_json(key: str, value: Any, depth: int) -> None:
    if depth > MAX_INIT_ARGS_DEPTH:
        raise ConfigError(f"{key} is nested more than {MAX_INIT_ARGS_DEPTH} deep")
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{key} must have names (strings) as keys")
        for v in value.values():
            _check_json(key, v, depth + 1)
    elif isinstance(value, (list, tuple, str)) and len(value) > MAX_INIT_ARGS_CHARS:
        raise ConfigError(f"{key} is longer than {MAX_INIT_ARGS_CHARS:,} characters; pass a class its sizes and "
                          "names, not data")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_json(key, v, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_INIT_INT:
            raise ConfigError(f"{key} holds {value}, more than {MAX_INIT_INT:,}: an argument of a module is a "
                              "width, size or count; pick a smaller one")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{key} holds {value}; numbers must be finite")
    elif value is not None and not isinstance(value, (str, bool)):
        raise ConfigError(f"{key} holds a {type(value).__name__}; use JSON values (numbers, strings, lists, objects)")


# ---------------------------------------------------------------- building the user's modules


def build(spec: str, args: dict[str, Any] | None, flag: str) -> nn.Module:
    """Your module. While parameters are counted (the meta device), a class whose constructor
    needs real tensors is built on the CPU instead (its init args are bounded). ``flag``: the
    option that named it, which its errors name."""
    from ganforge.usercode import Naming, build_module

    naming = Naming(flag, "--init-args" if flag == "--generator" else "--d-init-args", flag.removeprefix("--"))
    if not counting():
        return build_module(spec, args, naming)
    try:
        return build_module(spec, args, naming)
    except Exception:  # noqa: BLE001  (user code that needs values; a real mistake shows again on the CPU)
        with torch.device("cpu"):
            return build_module(spec, args, naming)


def check_classes(cfg: CustomConfig) -> tuple[int, int]:
    """Both classes import and take their init args (built on the meta device: the sizes they
    must fit come from the data, read later); their (G's, D's) parameter counts, which their init
    args alone decide."""
    G = build(cfg.generator, cfg.init_args, "--generator")
    D = build(cfg.discriminator, cfg.d_init_args, "--discriminator")
    return sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())


def counting() -> bool:
    """Built to be counted (count_parameters, on the meta device): no probe then, for a forward
    pass on meta tensors costs more than one of two real samples (torch's meta kernels load)."""
    return torch.get_default_device().type == "meta"


def _probe(net: nn.Module, spec: str, x: torch.Tensor, what: str,
           fix: Callable[[], str | None] = lambda: None) -> torch.Tensor:
    """``net(x)`` in eval mode without gradients: no statistics or RNG touched. ``fix``: the
    remedy when the forward fails, if one can be found (the noise shape G takes)."""
    training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(x)
    except Exception as exc:  # noqa: BLE001  (your forward, whatever it raises)
        raise ConfigError(f"{spec} fails on {what} {list(x.shape)} ({first_line(exc, typed=True)}); "
                          f"{fix() or CHECK_SHAPES}") from None
    finally:
        net.train(training)
    if not torch.is_tensor(out) or not out.is_floating_point():
        got = f"a {out.dtype} tensor" if torch.is_tensor(out) else f"a {type(out).__name__}"
        raise ConfigError(f"{spec} returns {got} for {what}; its forward must return one float tensor")
    return out


def probe_generator(net: nn.Module, spec: str, latent_shape: tuple[int, ...]) -> torch.Tensor:
    """G's output for a probe of seeded noise (not the run's RNG); when its forward rejects the
    noise, the error names the shape it takes if its first layer tells (``usercode.shapes``)."""
    from ganforge.usercode.shapes import takes_hint

    device = _device(net)
    z = torch.randn((PROBE_BATCH, *latent_shape), generator=torch.Generator().manual_seed(0)).to(device)
    run = lambda shape: net(torch.zeros(PROBE_BATCH, *shape, device=device))  # noqa: E731
    return _probe(net, spec, z, "noise", fix=lambda: takes_hint(net, tuple(latent_shape), run, MAX_TRAIN_LATENT_DIM))


def _device(net: nn.Module) -> torch.device:
    first = next(iter(net.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


class UserGenerator(nn.Module):
    """Your generator as a GeneratorModel: z [B, latent_dim] -> [B, *latent_shape] -> your G ->
    x [B, C, H, W] in [-1, 1] (C, H, W: the data's)."""

    keeps_layout = True  # no channels_last on CUDA: your code may .view() what it takes as NCHW

    def __init__(self, cfg: CustomConfig):
        super().__init__()
        self.latent_shape = tuple(cfg.latent_shape)
        self.latent_dim = math.prod(self.latent_shape)
        self.sample_shape = (cfg.channels, *cfg.image_size)
        self.num_classes = None  # not conditional
        self.class_embedding = None
        self.net = build(cfg.generator, cfg.init_args, "--generator")
        if not counting():
            self._check(cfg.generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], *self.latent_shape))  # B x latent_dim -> B x latent_shape

    def _check(self, spec: str) -> None:
        """One probe batch: its shape must be the data's, its values in [-1, 1] (a warning)."""
        shape = (PROBE_BATCH, *self.latent_shape)
        x = probe_generator(self.net, spec, self.latent_shape)
        if tuple(x.shape) != (PROBE_BATCH, *self.sample_shape):
            c, h, w = self.sample_shape
            resize = (" (or drop --set image_size and --set channels: the data then follow G)"
                      if x.dim() == 4 and x.shape[1] in (1, 3) else "")
            raise ConfigError(f"{spec} makes {list(x.shape)} from noise {list(shape)}, but the data are {c}x{h}x{w} "
                              f"images: make it output [B, {c}, {h}, {w}]{resize}")
        if float(x.abs().max()) > 1 + RANGE_SLACK:
            warnings.warn(GanforgeWarning(f"{spec} makes values up to {float(x.abs().max()):.3g}, outside the data's "
                                          "[-1, 1] (which exports promise): end it with nn.Tanh()"), stacklevel=2)


class UserDiscriminator(nn.Module):
    """Your discriminator (or critic): x [B, C, H, W] -> your D -> one score a sample [B, 1]."""

    keeps_layout = True  # (as UserGenerator's)

    def __init__(self, cfg: CustomConfig):
        super().__init__()
        self.net = build(cfg.discriminator, cfg.d_init_args, "--discriminator")
        if not counting():
            self._check(cfg.discriminator, (cfg.channels, *cfg.image_size), cfg.loss)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(x.shape[0], 1)  # [B], [B, 1] or [B, 1, 1, 1] -> B x 1

    def _check(self, spec: str, sample_shape: tuple[int, ...], loss: str | None) -> None:
        x = torch.zeros(PROBE_BATCH, *sample_shape, device=_device(self.net))
        out = _probe(self.net, spec, x, "images")
        if out.dim() == 0 or out.shape[0] != PROBE_BATCH or out.numel() != PROBE_BATCH:
            raise ConfigError(f"{spec} gives {list(out.shape)} for {PROBE_BATCH} images of "
                              f"{'x'.join(map(str, sample_shape))}; it must give one score a sample ([B], [B, 1] "
                              "or [B, 1, 1, 1])")
        leaves = [m for m in self.net.modules() if not list(m.children())]
        if leaves and isinstance(leaves[-1], nn.Sigmoid):
            warnings.warn(GanforgeWarning(f"{spec} ends with a Sigmoid, but --loss {loss or 'bce'} takes raw scores "
                                          "(logits; bce applies the sigmoid itself): remove it, or D learns slowly"),
                          stacklevel=2)


# ---------------------------------------------------------------- data and config


def load_data(cfg: CustomConfig) -> ImageData:
    """The data, at the channels and size of G's samples where the config sets neither (a probe of
    G: a 1-channel G loads a colour folder as grayscale, a 3-channel one a grayscale folder as RGB,
    and either resizes to its H x W); the data's source says so, for the log."""
    made = None if cfg.channels and cfg.image_size else generator_makes(cfg)
    channels = cfg.channels or (made[0] if made else None)
    size = cfg.image_size or (list(made[1:]) if made else None)
    data = load_images(cfg.data, what="your own modules (MNIST-format, CIFAR-10 or an image folder)",
                       size=tuple(size) if size else None, channels=channels, classes=cfg.classes)
    if made:
        data = replace(data, source=f"{data.source}; channels and size follow {cfg.generator}'s samples, "
                                    f"{'x'.join(map(str, made))}")
    return data


def generator_makes(cfg: CustomConfig) -> tuple[int, int, int] | None:
    """(C, H, W) of the images G makes, from one probe of it built on the CPU (its size was counted
    on the meta device first: check_config), or None when its output is no [B, C, H, W] image (C 1
    or 3), which UserGenerator then explains. A channel count or size the config sets that G does
    not make is refused here, before the data is read."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):  # the run's RNG is seeded later, but stays apart
        net = build(cfg.generator, cfg.init_args, "--generator")
        x = probe_generator(net, cfg.generator, tuple(cfg.latent_shape))
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        return None
    made = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
    if max(made[1:]) > MAX_TRAIN_IMAGE_SIDE:
        raise ConfigError(f"{cfg.generator} makes images of {made[1]}x{made[2]}, more than the {MAX_TRAIN_IMAGE_SIDE} "
                          "a side ganforge trains at; make smaller ones")
    for key, given, makes, what in (("channels", cfg.channels, made[0], f"{made[0]}-channel images"),
                                    ("image_size", cfg.image_size, list(made[1:]), f"images of {made[1]}x{made[2]}")):
        if given is not None and given != makes:
            shown = given if key == "channels" else ",".join(map(str, given))
            raise ConfigError(f"--set {key}={shown}, but {cfg.generator} makes {what} ({list(x.shape)} from noise "
                              f"{[PROBE_BATCH, *cfg.latent_shape]}): drop --set {key} (the data then follow G), or "
                              f"make G output that")
    return made


def configure(cfg: CustomConfig, data: ImageData) -> CustomConfig:
    """image_size and channels from the data; a file spec by its absolute path, so that resume and
    export find (and import) that very file from any folder."""
    cfg = replace(cfg, image_size=cfg.image_size or list(data.images.shape[2:]),
                  channels=cfg.channels or int(data.images.shape[1]),
                  generator=absolute(cfg.generator), discriminator=absolute(cfg.discriminator))
    cfg.validate()
    return cfg


def absolute(spec: str) -> str:
    where, _, name = spec.rpartition(":")
    return f"{os.path.abspath(os.path.expanduser(where))}:{name}" if FILE_SPEC.fullmatch(spec) else spec


def user_code(cfg: CustomConfig) -> dict[str, str]:
    """The code a run imports: option -> spec."""
    return {"--generator": cfg.generator, "--discriminator": cfg.discriminator}


VARIANT = Variant(
    name="custom",
    source="your own generator and discriminator classes (--generator FILE.py:G --discriminator FILE.py:D)",
    config_cls=CustomConfig,
    generator=UserGenerator,
    discriminator=UserDiscriminator,
    loss="bce",
    kind="image",
    load_data=load_data,
    configure=configure,
    user_code=user_code,
)
