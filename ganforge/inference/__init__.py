"""Lean batch generation from an exported ONNX generator.

numpy + onnxruntime + pillow only: this package never imports torch (a test
proves it), so it runs where the training stack is not installed.

    from ganforge.inference import Generator
    images = Generator("runs/latest/export/generator.onnx").generate(64, seed=0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ganforge.inference.metadata import ModelInfo
from ganforge.inference.render import render_grid, save_samples
from ganforge.inference.session import Generator

DEFAULT_MODEL = os.path.join("runs", "latest", "export", "generator.onnx")

__all__ = ["DEFAULT_MODEL", "GenerateResult", "Generator", "ModelInfo", "generate", "render_grid", "save_samples"]


@dataclass
class GenerateResult:
    paths: list[Path]  # files written
    n: int  # samples generated
    device: str  # "cpu" or "cuda": where onnxruntime really ran
    model: Path


def generate(model: str | os.PathLike[str] | None, n: int, out: str | os.PathLike[str], *, seed: int = 0,
             device: str = "auto", nrow: int | None = None, batch_size: int | None = None,
             latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
             layout: str | None = None) -> GenerateResult:
    """Sample ``n`` outputs of ``model`` from ``seed`` and write them to ``out``."""
    from ganforge.errors import GanforgeError, ModelFileError

    if n < 1:
        raise GanforgeError(f"n must be >= 1, got {n}")
    if model is None:
        model = DEFAULT_MODEL
        if not os.path.exists(model):
            raise ModelFileError(f"no model at {model}: train and export one first (gan-train, then gan-export), "
                                 "or pass --model FILE.onnx")
    gen = Generator(model, device=device, latent_dim=latent_dim, value_range=value_range, layout=layout)
    samples = gen.generate(n, seed=seed, batch_size=batch_size)
    paths = save_samples(samples, out, kind=gen.info.kind, nrow=nrow, value_range=gen.info.value_range)
    return GenerateResult(paths, n, gen.device, gen.path)
