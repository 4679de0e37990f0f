"""Lean batch generation from an exported ONNX generator.

numpy + onnxruntime + pillow only: this package never imports torch (a test
proves it), so it runs where the training stack is not installed. onnxruntime
itself is imported when a model is opened, so ``import ganforge.inference``
stays cheap.

    from ganforge.inference import Generator
    images = Generator("runs/latest/export/generator.onnx").generate(64, seed=0)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from ganforge.inference.metadata import ModelInfo
from ganforge.inference.render import render_grid, save_batches, save_samples
from ganforge.inference.session import Generator

DEFAULT_MODEL = os.path.join("runs", "latest", "export", "generator.onnx")
TUNE_FROM_N = 10_000  # generate() measures the model's micro-batch first (once, cached) from this many samples

__all__ = ["DEFAULT_MODEL", "GenerateResult", "Generator", "ModelInfo", "generate", "render_grid", "save_samples"]


class GenerateResult(Sequence):
    """The files :func:`generate` wrote (a sequence of ``Path``; a folder's names are made
    on demand), and how it made them."""

    def __init__(self, paths: Sequence[Path], *, n: int, model: Path, device: str, providers: list[str],
                 seconds: float):
        self._paths = paths
        self.n = n  # samples generated
        self.model = model  # the ONNX file
        self.device = device  # "cpu" or "cuda": where onnxruntime really ran
        self.providers = providers  # what the session really got, e.g. ["CPUExecutionProvider"]
        self.seconds = seconds  # wall time: open the model, generate, write

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, i):
        return self._paths[i]

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)


def generate(model: str | os.PathLike[str] | None, n: int, out: str | os.PathLike[str], *, seed: int = 0,
             device: str = "auto", nrow: int | None = None, batch_size: int | None = None,
             latent_dim: int | None = None, value_range: tuple[float, float] | None = None,
             layout: str | None = None, progress=None) -> GenerateResult:
    """Sample ``n`` outputs of ``model`` (default :data:`DEFAULT_MODEL`) from ``seed`` and write them to ``out``.

    ``out``: ``*.png`` grid (``nrow`` columns), ``*.npy`` raw float32 array, or
    ``DIR/`` one PNG per sample; .npy and DIR/ stream batch by batch, so memory
    does not grow with ``n``; ``progress(done, n)`` follows them. Same arguments, same bytes. Arguments and the
    form of ``out`` are checked before the model runs; ``latent_dim``,
    ``value_range`` and ``layout`` are for generators without ganforge metadata.
    """
    from ganforge.errors import ModelFileError
    from ganforge.inference.render import out_form
    from ganforge.inference.session import check_count, check_seed

    start = time.perf_counter()
    n, seed = check_count(n), check_seed(seed)
    if batch_size is not None:
        check_count(batch_size, "batch size")
    if nrow is not None:
        check_count(nrow, "nrow")
    out_form(out)
    if model is None:
        model = DEFAULT_MODEL
        if not os.path.exists(model):
            raise ModelFileError(f"no model at {model}: train and export one first (gan-train, then gan-export), "
                                 "or pass --model FILE.onnx")
    gen = Generator(model, device=device, latent_dim=latent_dim, value_range=value_range, layout=layout)
    if n >= TUNE_FROM_N and batch_size is None and gen.micro_batch is None:
        gen.tune_micro_batch()  # about a second, once per model and machine (cached)
    paths = save_batches(gen.iter_batches(n, seed, batch_size), n, gen.info.sample_shape, out, kind=gen.info.kind,
                         nrow=nrow, value_range=gen.info.value_range, progress=progress)
    return GenerateResult(paths, n=n, model=gen.path, device=gen.device, providers=gen.providers,
                          seconds=time.perf_counter() - start)
