"""What to export: a generator rebuilt from a checkpoint, or a user's own generator
(:class:`UserSource`), described by an :class:`ExportSpec` (model, shapes, tolerances, metadata).
How it is checked is :mod:`ganforge.export.validate`'s, which imports this module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

import ganforge
from ganforge.errors import ConfigError, GanforgeError
from ganforge.inference.metadata import PREFIX, ModelInfo
from ganforge.training import checkpoint
from ganforge.values import check_value_range

BATCH_SIZES = (1, 3, 64, 257)  # odd sizes catch a batch size baked into a graph
# Absolute tolerances against PyTorch eager fp32, per precision: absolute first,
# since near Tanh's zero a relative error means nothing.
ATOL = {"fp32": 1e-4, "fp16": 1e-2, "int8": 1.0}  # a key for every one of formats.PRECISIONS
# int8 rounds every weight to 256 levels: each value is off by a little (a trained Fashion-MNIST
# wgan: 0.012 on average over 512 samples, 1.5 of 255 grey levels; 0.020 for one sample) and a
# few by much more (0.56 at most; benchmarks/results/int8-static.md). So int8 is held to its
# mean, and its max only has to stay inside half the [-1, 1] range; what it costs in quality,
# gan-eval --precision int8 measures
MEAN_ATOL = {"int8": 0.04}
# A user's generator: the latent shape its forward takes (JSON list, e.g. [100, 1, 1]); the graph
# still takes z [batch, latent_dim] and reshapes it inside. ModelInfo.from_metadata ignores it.
SOURCE_LATENT_SHAPE = PREFIX + "source_latent_shape"


@dataclass
class ExportSpec:
    generator: torch.nn.Module  # in eval mode, on CPU
    info: ModelInfo  # what goes into the artifact's metadata
    checkpoint: Path  # the file the weights came from (a user's weights, TorchScript or .pt2 file)
    epoch: int | None  # None for a user's generator
    precision: str = "fp32"  # fp32, fp16 or int8 (ONNX only)
    weights: str = "generator"  # "generator" or "ema": which weights of the checkpoint were exported
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    config: dict = field(default_factory=dict)
    extra_metadata: dict[str, str] = field(default_factory=dict)  # ganforge.* keys beside ModelInfo's
    source: dict = field(default_factory=dict)  # a user's generator: module, init args, weights note (export.json)
    # a user's generator: how much a sample alone and in a batch differ, measured by spec_from_module
    # (validate.generator_checks reports it in every artifact's list); None for a checkpoint's
    batch_diff: float | None = None
    notes: list[str] = field(default_factory=list)  # what the user should know (export.json, gan-export's stderr)
    embedding_required: bool = True  # a conditional ganforge generator walks classes through its embedding

    @property
    def atol(self) -> float:
        return ATOL[self.precision]

    @property
    def mean_atol(self) -> float | None:
        return MEAN_ATOL.get(self.precision)

    def metadata(self) -> dict[str, str]:
        """Every metadata key an artifact carries: ModelInfo's and the extra ones."""
        return {**self.info.to_metadata(), **self.extra_metadata}

    def example_inputs(self, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(z,)``, or ``(z, labels)`` with random labels for a conditional generator."""
        g = torch.Generator().manual_seed(seed + batch)
        z = torch.randn(batch, self.info.latent_dim, generator=g)
        if not self.info.conditional:
            return (z,)
        return z, torch.randint(self.info.num_classes, (batch,), generator=g)

    def dynamic_shapes(self, batch) -> tuple[dict[int, object], ...]:
        """torch.export's dynamic shapes: dimension 0 of every input is the batch."""
        return tuple({0: batch} for _ in self.example_inputs(1))


@torch.no_grad()
def count_flops(G: torch.nn.Module, latent_dim: int, num_classes: int | None = None) -> int:
    """Floating-point operations (multiply and add counted apart) of one sample through G's
    Linear and (transposed) convolution layers, the work that dominates a generator."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        x = inputs[0]
        if isinstance(module, torch.nn.Linear):
            total += 2 * module.in_features * module.out_features * (x.numel() // x.shape[-1] // x.shape[0])
        elif isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += 2 * output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            total += 2 * x[0].numel() * (module.out_channels // module.groups) * kh * kw

    kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in G.modules() if isinstance(m, kinds)]
    try:
        G.eval()(*((torch.zeros(1, latent_dim),) if not num_classes else
                   (torch.zeros(1, latent_dim), torch.zeros(1, dtype=torch.int64))))
    finally:
        for h in handles:
            h.remove()
    return total


def spec_from_checkpoint(path: str | Path, precision: str = "fp32") -> ExportSpec:
    path = Path(path)
    state = checkpoint.load(path)
    G, variant, cfg = checkpoint.build_generator(state)
    num_classes = G.num_classes  # (G honours GeneratorModel: checkpoint.build_generator checked it)
    embedding = G.class_embedding.weight.detach().float() if G.class_embedding is not None else None
    info = ModelInfo(
        latent_dim=int(G.latent_dim),
        sample_shape=tuple(int(d) for d in G.sample_shape),
        kind=variant.kind,
        variant=variant.name,
        version=ganforge.__version__,
        source_checkpoint_sha256=checkpoint.sha256(path),
        flops_per_sample=count_flops(G, int(G.latent_dim), num_classes),
        num_classes=num_classes,
        class_names=tuple(cfg.class_names or range(num_classes)) if num_classes else None,
        class_embedding=tuple(tuple(row) for row in embedding.tolist()) if embedding is not None else None,
    )
    return ExportSpec(generator=G, info=info, checkpoint=path, epoch=int(state["epoch"]), precision=precision,
                      weights="ema" if "generator_ema" in state else "generator", config=state["config"])


@dataclass(frozen=True)
class UserSource:
    """A user's own generator to export: a class (``--module``) and its weights, or a saved
    program (TorchScript or ``.pt2``) that needs no class."""

    latent_shape: tuple[int, ...]  # what the user's forward takes: (100,) or (100, 1, 1)
    module: str | None = None  # PATH.py:Class or package.module:Class
    weights: Path | None = None  # a state_dict, or a checkpoint dict holding one
    init_args: dict | None = field(default=None, hash=False)  # the class's keyword arguments
    program: Path | None = None  # a TorchScript (.ts) or torch.export (.pt2) file, instead of module + weights
    program_kind: str | None = None  # "torchscript" or "exported": what the program was said to be
    num_classes: int | None = None  # conditional: the user's forward takes (z, labels)
    kind: str | None = None  # "image" or "series"; None: from the output's shape
    value_range: tuple[float, float] = (-1.0, 1.0)  # the range of the user's output, recorded as is
    trust_pickle: bool = False  # unpickle a whole saved module (runs code)

    def __post_init__(self) -> None:
        pair = self.module is not None and self.weights is not None
        alone = self.program is not None and self.module is None and self.weights is None
        if pair == alone:
            raise ConfigError("a generator of your own is --module PATH.py:Class with --weights G.pth, or a "
                              "--torchscript / --exported file alone")
        try:
            check_value_range(self.value_range)
        except GanforgeError:
            lo, hi = self.value_range
            raise ConfigError(f"--value-range {lo},{hi}: give LOW,HIGH with LOW < HIGH, e.g. 0,1") from None

    @property
    def file(self) -> Path:
        """The file that holds the weights."""
        return Path(self.program if self.program is not None else self.weights)


def spec_from_module(source: UserSource, precision: str = "fp32") -> ExportSpec:
    """The ExportSpec of a user's generator, behind :class:`ganforge.usercode.UserGenerator`: built,
    loaded, probed, and checked to be in eval mode and independent of its batch."""
    from ganforge import usercode

    record: dict = {}
    if source.program is not None:
        net, note = usercode.load_program(source.program, source.program_kind)
        record["program"] = str(source.program)
    else:
        state, note = usercode.load_weights(source.weights, trust_pickle=source.trust_pickle)  # no code runs
        net = usercode.build_module(source.module, source.init_args)
        fit = usercode.load_into(net, state, source.weights)
        note = f"{note}, {fit}" if fit else note
        record.update(module=source.module, init_args=dict(source.init_args or {}), weights=str(source.weights))
        net = net.float()  # export takes float32 noise and gives float32 samples
    G = usercode.UserGenerator(net, source.latent_shape, num_classes=source.num_classes, kind=source.kind).eval()
    training = [n.removeprefix("net.") if n != "net" else "the module itself"
                for n, m in G.net.named_modules(prefix="net") if m.training]
    if training:
        raise ConfigError(f"model.eval() does not reach every module: {', '.join(training[:4])} stay in training mode; "
                          "the class must not keep them training (an overridden train() or eval())")
    diff = usercode.check_batch_independent(G, ATOL["fp32"])
    plain = note in ("a state_dict", usercode.PROGRAM_NOTES.get(source.program_kind))  # nothing worth a line
    notes = ([] if plain else [f"{source.file.name}: {note}"]) + _range_note(G, source.value_range) + _kind_note(
        G, source.kind)
    num_classes = source.num_classes
    flops = count_flops(G, G.latent_dim, num_classes)
    info = ModelInfo(
        latent_dim=G.latent_dim,
        sample_shape=tuple(G.sample_shape),
        kind=G.kind,
        value_range=tuple(float(v) for v in source.value_range),
        version=ganforge.__version__,
        source_checkpoint_sha256=checkpoint.sha256(source.file),
        flops_per_sample=flops or None,  # None: a saved program's layers cannot be counted
        num_classes=num_classes,
        class_names=tuple(str(i) for i in range(num_classes)) if num_classes else None,
    )
    record.update(weights_note=note, latent_shape=list(G.latent_shape), value_range=list(info.value_range))
    if num_classes:
        record["num_classes"] = num_classes
    return ExportSpec(generator=G, info=info, checkpoint=source.file, epoch=None, precision=precision,
                      extra_metadata={SOURCE_LATENT_SHAPE: json.dumps(list(G.latent_shape))}, source=record,
                      batch_diff=diff, notes=notes, embedding_required=False)


@torch.no_grad()
def _range_note(G: torch.nn.Module, value_range: tuple[float, float]) -> list[str]:
    """A note when the probe's samples leave ``value_range``: gan-infer clips them to it."""
    x = G(*G.example(64, seed=2))
    lo, hi, (want_lo, want_hi) = float(x.min()), float(x.max()), value_range
    slack = 1e-3 * (want_hi - want_lo)  # rounding at Tanh's ends is not worth a note
    if lo >= want_lo - slack and hi <= want_hi + slack:
        return []
    return [(f"the generator's samples span [{lo:.3g}, {hi:.3g}], beyond the value range [{want_lo:g}, "
             f"{want_hi:g}] that gan-infer renders (it clips the rest); pass the range it produces with "
             "--value-range LOW,HIGH")]


def _kind_note(G: torch.nn.Module, kind: str | None) -> list[str]:
    """A note when a flat output is exported as a series although it would make a square image."""
    from ganforge.usercode import square_image

    if kind is not None or G.kind != "series":
        return []
    view = square_image(G.sample_shape[0])
    if view is None or G.sample_shape[0] < 64:  # short rows are series; 28x28 = 784 values is an image
        return []
    return [(f"the generator returns [B, {G.sample_shape[0]}], exported as a series; if those are "
             f"{'x'.join(map(str, view))} images, pass --kind image")]
