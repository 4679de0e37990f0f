"""What to export: a generator rebuilt from a checkpoint, and how it is checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

import ganforge
from ganforge.inference.metadata import ModelInfo
from ganforge.training import checkpoint

BATCH_SIZES = (1, 3, 64, 257)  # odd sizes catch a batch size baked into a graph
# Absolute tolerances against PyTorch eager fp32, per precision: absolute first,
# since near Tanh's zero a relative error means nothing.
ATOL = {"fp32": 1e-4, "fp16": 1e-2, "int8": 5e-2}
PRECISIONS = tuple(ATOL)


@dataclass
class ExportSpec:
    generator: torch.nn.Module  # in eval mode, on CPU
    info: ModelInfo  # what goes into the artifact's metadata
    checkpoint: Path
    epoch: int
    precision: str = "fp32"  # fp32, fp16 or int8 (ONNX only)
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    config: dict = field(default_factory=dict)

    @property
    def atol(self) -> float:
        return ATOL[self.precision]

    def example_input(self, batch: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + batch)
        return torch.randn(batch, self.info.latent_dim, generator=g)

    @torch.no_grad()
    def reference(self, z: torch.Tensor) -> torch.Tensor:
        """PyTorch eager output, the ground truth every artifact is compared with."""
        return self.generator(z)


def spec_from_checkpoint(path: str | Path, precision: str = "fp32") -> ExportSpec:
    path = Path(path)
    state = checkpoint.load(path)
    G, variant, cfg = checkpoint.build_generator(state)
    info = ModelInfo(
        latent_dim=int(G.latent_dim),
        sample_shape=tuple(int(d) for d in G.sample_shape),
        kind=variant.kind,
        variant=variant.name,
        version=ganforge.__version__,
        source_checkpoint_sha256=checkpoint.sha256(path),
    )
    return ExportSpec(generator=G, info=info, checkpoint=path, epoch=int(state["epoch"]), precision=precision,
                      config=state["config"])
