"""An ONNX generator behind onnxruntime: open, check, sample.

onnxruntime is imported when a model is opened, not when this package is, so
``import ganforge.inference`` stays cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ganforge.errors import DeviceError, GanforgeError, MissingExtraError, ModelFileError
from ganforge.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_BATCH = 256  # samples per session run when generating many
_noted_fallback = False


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("ONNX inference", "cpu", exc) from None
    return onnxruntime


def _note_fallback(reason: str) -> None:
    global _noted_fallback
    if not _noted_fallback:
        print(f"note: running on CPU ({reason})", file=sys.stderr)
        _noted_fallback = True


class Generator:
    """A ganforge ONNX generator: ``Generator("generator.onnx").generate(64, seed=0)``."""

    def __init__(self, model_path: str | os.PathLike[str], device: str = "auto"):
        if device not in DEVICES:
            raise GanforgeError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
        self.path = Path(model_path)
        if self.path.is_dir():
            raise ModelFileError(f"{self.path} is a folder; pass the .onnx file (e.g. {self.path / 'generator.onnx'})")
        if not self.path.is_file():
            raise ModelFileError(f"model file {self.path} does not exist")
        ort = _ort()
        available = ort.get_available_providers()
        if device == "cuda" and CUDA not in available:
            raise DeviceError("--device cuda needs onnxruntime-gpu with CUDA: pip install 'ganforge[gpu]' "
                              "(instead of the cpu extra), or use --device cpu")
        want_cuda = device == "cuda" or (device == "auto" and CUDA in available)
        providers = [CUDA, CPU] if want_cuda else [CPU]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; a fallback is reported by us, once
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path} is not a loadable ONNX model ({first[:200]})") from None
        self.providers: list[str] = self.session.get_providers()
        got_cuda = CUDA in self.providers
        if device == "cuda" and not got_cuda:
            raise DeviceError("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN "
                              "libraries missing); use --device cpu")
        if device == "auto" and want_cuda and not got_cuda:
            _note_fallback("the CUDA provider is installed but could not start")
        self.device = "cuda" if got_cuda else "cpu"
        props = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_metadata(props, source=str(self.path))
        self._check_graph()

    def _check_graph(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs) or "none"
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(float)":
            raise ModelFileError(f"{self.path} is not a generator: expected one input '{INPUT_NAME}' float "
                                 f"[batch, {self.info.latent_dim}], found inputs: {found}")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != self.info.latent_dim):
            raise ModelFileError(f"{self.path}: input '{INPUT_NAME}' has shape {shape}, but its metadata says "
                                 f"latent_dim {self.info.latent_dim}")
        if not any(o.name == OUTPUT_NAME for o in outputs):
            names = ", ".join(o.name for o in outputs)
            raise ModelFileError(f"{self.path} is not a generator: no output '{OUTPUT_NAME}' (outputs: {names})")

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, {self.info.kind} {list(self.info.sample_shape)}, {self.device})"

    def sample_noise(self, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, self.info.latent_dim), dtype=np.float32)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Run the generator on noise ``z`` ``[batch, latent_dim]``."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim:
            raise GanforgeError(f"z must have shape [batch, {self.info.latent_dim}], got {list(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise GanforgeError(f"z must be floating point, got {z.dtype}")
        z = np.ascontiguousarray(z, dtype=np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: z})[0]

    def iter_batches(self, n: int, seed: int = 0, batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``n`` samples in batches; noise is drawn from one stream, so the samples
        do not depend on ``batch_size``."""
        if n < 1:
            raise GanforgeError(f"n must be >= 1, got {n}")
        batch_size = batch_size or DEFAULT_BATCH
        if batch_size < 1:
            raise GanforgeError(f"batch size must be >= 1, got {batch_size}")
        rng = np.random.default_rng(seed)
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            yield self(rng.standard_normal((b, self.info.latent_dim), dtype=np.float32))
            done += b

    def generate(self, n: int, seed: int = 0, batch_size: int | None = None) -> np.ndarray:
        """``n`` samples ``[n, *sample_shape]`` from ``seed``."""
        return np.concatenate(list(self.iter_batches(n, seed, batch_size)), axis=0)
