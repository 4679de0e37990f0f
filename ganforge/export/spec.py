"""What to export: a generator rebuilt from a checkpoint, and how it is checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

import ganforge
from ganforge.inference.metadata import ModelInfo
from ganforge.training import checkpoint

BATCH_SIZES = (1, 3, 64)  # odd sizes catch a batch size baked into a graph
FP32_ATOL = 1e-4  # absolute first: near Tanh's zero a relative error means nothing


@dataclass
class ExportSpec:
    generator: torch.nn.Module  # in eval mode, on CPU
    info: ModelInfo  # what goes into the artifact's metadata
    checkpoint: Path
    epoch: int
    atol: float = FP32_ATOL
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    config: dict = field(default_factory=dict)

    def example_input(self, batch: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + batch)
        return torch.randn(batch, self.info.latent_dim, generator=g)

    @torch.no_grad()
    def reference(self, z: torch.Tensor) -> torch.Tensor:
        """PyTorch eager output, the ground truth every artifact is compared with."""
        return self.generator(z)


def spec_from_checkpoint(path: str | Path) -> ExportSpec:
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
    return ExportSpec(generator=G, info=info, checkpoint=path, epoch=int(state["epoch"]), config=state["config"])
