"""Lean batch generation from an exported ONNX generator.

numpy + onnxruntime + pillow only: this package never imports torch (a test proves it), so it
runs where the training stack is not installed; onnxruntime is imported when a model is opened.

    from ganforge.inference import Generator
    images = Generator("runs/latest/export/generator.onnx").generate(64, seed=0)

:func:`generate` and :func:`generate_walk` (a walk between two seeds, and two classes of a
conditional model) and :func:`generate_sweep` (samples along a named latent direction) build a
request (:mod:`.request`) and run it (:mod:`.generation`). ``truncation=`` and ``edits=`` control
the noise (:mod:`.control`; the directions: :mod:`.directions`, made by gan-directions).
"""

from __future__ import annotations

from ganforge.inference import tuning
from ganforge.inference.control import Control, Edit
from ganforge.inference.generation import (EXPORTED, GenerateResult, default_model, generate, generate_sweep,
                                           generate_walk)
from ganforge.inference.metadata import ModelInfo
from ganforge.inference.render import render_grid, save_batches, save_samples
from ganforge.inference.request import GenerationRequest, SweepRequest, WalkRequest
from ganforge.inference.session import Generator
from ganforge.inference.walk import interpolate

TUNE_FROM_N = tuning.TUNE_FROM_N  # generate() measures the plan first (once, cached) from this many samples

__all__ = ["EXPORTED", "Control", "Edit", "GenerateResult", "GenerationRequest", "Generator", "ModelInfo",
           "SweepRequest", "TUNE_FROM_N", "WalkRequest", "default_model", "generate", "generate_sweep", "generate_walk",
           "interpolate", "render_grid", "save_batches", "save_samples"]
