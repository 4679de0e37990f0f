"""What to export: a generator rebuilt from a checkpoint, and how it is checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.inference.metadata import ModelInfo
from ganforge.training import checkpoint

BATCH_SIZES = (1, 3, 64, 257)  # odd sizes catch a batch size baked into a graph
# Absolute tolerances against PyTorch eager fp32, per precision: absolute first,
# since near Tanh's zero a relative error means nothing.
ATOL = {"fp32": 1e-4, "fp16": 1e-2, "int8": 5e-2}  # a key for every one of formats.PRECISIONS


@dataclass
class ExportSpec:
    generator: torch.nn.Module  # in eval mode, on CPU
    info: ModelInfo  # what goes into the artifact's metadata
    checkpoint: Path
    epoch: int
    precision: str = "fp32"  # fp32, fp16 or int8 (ONNX only)
    weights: str = "generator"  # "generator" or "ema": which weights of the checkpoint were exported
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    config: dict = field(default_factory=dict)

    @property
    def atol(self) -> float:
        return ATOL[self.precision]

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
    def reference(self, *inputs: torch.Tensor) -> torch.Tensor:
        """PyTorch eager output, the ground truth every artifact is compared with."""
        return self.generator(*inputs)

    def extra_files_check(self, extra: dict) -> object:
        """The ``metadata`` check of a torch artifact: its extra files (read back as
        bytes or str) must hold exactly the ganforge metadata."""
        from ganforge.export.validate import Check

        read = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
        ok = read == self.info.to_metadata()
        return Check("metadata", ok, "ganforge metadata in extra files" if ok else "extra files differ")

    def parity_checks(self, run) -> list:
        """Shape and max-abs parity of ``run(z)`` or ``run(z, labels)`` (an artifact's output,
        array or tensor) against eager, at every checked batch size."""
        from ganforge.export.validate import parity

        checks = []
        for b in self.batch_sizes:
            inputs = self.example_inputs(b)
            with torch.no_grad():
                got = run(*inputs)
            got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
            checks.append(parity(b, got, self.reference(*inputs).numpy(), self.atol))
        return checks

    def class_embedding_check(self, run) -> list:
        """A conditional artifact's class walk works through its metadata: ``run(z + E[b] - E[a], a)``
        with E from the metadata must equal eager ``G(z, b)`` (what gan-infer's class walks rely on)."""
        from ganforge.export.validate import Check, parity

        if not self.info.conditional:
            return []
        if self.info.class_embedding is None:
            return [Check("class_embedding", False, "conditional model without a class embedding in its metadata")]
        z, b = self.example_inputs(64, seed=1)
        a = (b + 1) % self.info.num_classes
        E = torch.tensor(self.info.class_embedding, dtype=torch.float32)
        with torch.no_grad():
            got = run(z + E[b] - E[a], a)
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        check = parity(64, got, self.reference(z, b).numpy(), self.atol)
        check.name = "class_embedding"
        return [check]


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
