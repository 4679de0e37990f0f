"""An ONNX generator behind onnxruntime: open, check, sample.

onnxruntime is imported when a model is opened, not when this package is, so
``import ganforge.inference`` stays cheap.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganforge.errors import DeviceError, GanforgeError, GanforgeWarning, MissingExtraError, ModelFileError
from ganforge.inference import tuning
from ganforge.inference.metadata import INPUT_NAME, OUTPUT_NAME, PREFIX, ModelInfo

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
MAX_BATCH = 256  # samples per chunk when generating many ...
BATCH_BYTES = 4 << 20  # ... or fewer, so that one chunk's output stays near 4 MiB: big images, smaller chunks
_noted_fallback = False


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("ONNX inference", "cpu", exc) from None
    return onnxruntime


def _note_fallback(reason: str) -> None:
    """Warn once a process that ``device="auto"`` wanted CUDA but runs on CPU."""
    global _noted_fallback
    if not _noted_fallback:
        _noted_fallback = True
        warnings.warn(GanforgeWarning(f"running on CPU: {reason}"), stacklevel=3)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def check_count(n, what: str = "n", minimum: int = 1) -> int:
    """``n`` as an int >= ``minimum``, else a GanforgeError."""
    try:
        n = operator.index(n)
    except TypeError:
        raise GanforgeError(f"{what} must be a whole number, got {n!r}") from None
    if n < minimum:
        raise GanforgeError(f"{what} must be >= {minimum}, got {n}")
    return n


def check_seed(seed) -> int:
    """``seed`` as an int >= 0 (what ``np.random.default_rng`` accepts), else a GanforgeError."""
    return check_count(seed, "seed", minimum=0)


LAYOUTS = ("nchw", "nhwc", "series")


class Generator:
    """An ONNX generator: ``Generator("generator.onnx").generate(64, seed=0)``.

    A ganforge export carries everything in its metadata. A foreign generator
    (no ganforge metadata) is read from its graph: one float input ``[batch,
    latent]``, the first output taken as NCHW images in [-1, 1] (or ``[batch, L]``
    as series); ``latent_dim``, ``value_range`` and ``layout`` override what is
    read or assumed.
    """

    def __init__(self, model_path: str | os.PathLike[str], device: str = "auto", *, latent_dim: int | None = None,
                 value_range: tuple[float, float] | None = None, layout: str | None = None):
        if layout is not None and layout not in LAYOUTS:
            raise GanforgeError(f"unknown layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
        if value_range is not None and not value_range[0] < value_range[1]:
            raise GanforgeError(f"value range must be LOW,HIGH with LOW < HIGH, got {value_range}")
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
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; a fallback is reported by us, once
        try:
            self.session = self._open(ort, options, [CUDA, CPU] if want_cuda else [CPU])
        except Exception as exc:  # onnxruntime raises its own exception types
            if not want_cuda:
                raise ModelFileError(f"{self.path} is not a loadable ONNX model ({_first_line(exc)})") from None
            # CUDA failed to start, or the file is bad: CPU alone tells which
            try:
                self.session = self._open(ort, options, [CPU])
            except Exception as cpu_exc:
                raise ModelFileError(f"{self.path} is not a loadable ONNX model ({_first_line(cpu_exc)})") from None
            if device == "cuda":
                raise DeviceError(f"the CUDA provider is installed but could not start ({_first_line(exc, 160)}); "
                                  "check the CUDA/cuDNN libraries onnxruntime-gpu needs, or use --device cpu") from None
        self.providers: list[str] = self.session.get_providers()
        got_cuda = CUDA in self.providers
        if device == "cuda" and not got_cuda:
            raise DeviceError("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN "
                              "libraries missing); use --device cpu")
        self.device = "cuda" if got_cuda else "cpu"
        props = self.session.get_modelmeta().custom_metadata_map
        self.layout = "nchw"
        self.input_dtype = np.float32  # what z is fed as (a foreign model may take float16)
        if any(k.startswith(PREFIX) for k in props):
            self.info = ModelInfo.from_metadata(props, source=str(self.path))
            self.input_name, self.output_name = INPUT_NAME, OUTPUT_NAME
            self._check_ganforge_graph()
            if value_range is not None:
                self.info = replace(self.info, value_range=tuple(value_range))
        else:
            self.info = self._read_foreign(latent_dim, value_range, layout)
        if device == "auto" and want_cuda and not got_cuda:
            _note_fallback("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN missing)")
        # samples per onnxruntime run when a call asks for more (CPU only; see tuning.py); None: whole batches
        self._tuning_key = tuning.cache_key(self.path, self.providers, getattr(ort, "__version__", "?"))
        self.micro_batch: int | None = tuning.cached(self._tuning_key) if self.device == "cpu" else None
        self.micro_batch_speeds: dict[int, float] = {}  # samples/s per candidate, once tune_micro_batch() ran

    def _open(self, ort, options, providers: list[str]):
        # enable_fallback=0: onnxruntime would otherwise print its own "EP Error ... Falling back" banner
        return ort.InferenceSession(str(self.path), sess_options=options, providers=providers, enable_fallback=0)

    def _inputs_found(self) -> str:
        return ", ".join(f"{i.name} {i.type} {i.shape}" for i in self.session.get_inputs()) or "none"

    def _check_ganforge_graph(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(float)":
            raise ModelFileError(f"{self.path} is not a generator: expected one input '{INPUT_NAME}' float "
                                 f"[batch, {self.info.latent_dim}], found inputs: {self._inputs_found()}")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != self.info.latent_dim):
            raise ModelFileError(f"{self.path}: input '{INPUT_NAME}' has shape {shape}, but its metadata says "
                                 f"latent_dim {self.info.latent_dim}")
        out = next((o for o in outputs if o.name == OUTPUT_NAME), None)
        if out is None:
            names = ", ".join(o.name for o in outputs)
            raise ModelFileError(f"{self.path} is not a generator: no output '{OUTPUT_NAME}' (outputs: {names})")
        info = self.info
        rank = {"image": 3, "series": 1}[info.kind]
        if len(info.sample_shape) != rank or (info.kind == "image" and info.sample_shape[0] not in (1, 3)):
            want = "[C, H, W] with C 1 or 3" if info.kind == "image" else "[length]"
            raise ModelFileError(f"{self.path} has inconsistent ganforge metadata: kind {info.kind} needs sample_shape "
                                 f"{want}, got {list(info.sample_shape)}; re-export it with gan-export")
        lo, hi = info.value_range
        if not lo < hi:
            raise ModelFileError(f"{self.path} has invalid ganforge metadata: value_range {[lo, hi]} is empty; "
                                 "re-export it with gan-export")
        declared = out.shape or []  # empty when the graph leaves the rank open: checked per run instead
        if declared and (len(declared) != 1 + rank or any(isinstance(d, int) and d != want_d
                                                          for d, want_d in zip(declared[1:], info.sample_shape))):
            raise ModelFileError(f"{self.path}: output '{OUTPUT_NAME}' has shape {out.shape}, but its metadata says "
                                 f"samples of shape {list(info.sample_shape)}")

    def _read_foreign(self, latent_dim: int | None, value_range, layout: str | None) -> ModelInfo:
        """What a generator without ganforge metadata must be, read from its graph."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type not in ("tensor(float)", "tensor(float16)") or len(inputs[0].shape) != 2:
            raise ModelFileError(f"cannot use {self.path} as a generator: expected one float input [batch, latent], "
                                 f"found inputs: {self._inputs_found()}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        graph_latent = inputs[0].shape[1] if isinstance(inputs[0].shape[1], int) else None
        if latent_dim is None and graph_latent is None:
            raise ModelFileError(f"{self.path}: the latent size of input '{self.input_name}' is not fixed in the "
                                 f"graph ({inputs[0].shape}); pass --latent-dim N")
        if latent_dim is not None and graph_latent is not None and latent_dim != graph_latent:
            raise ModelFileError(f"{self.path}: --latent-dim {latent_dim} but input '{self.input_name}' takes "
                                 f"{graph_latent}")
        latent = latent_dim or graph_latent
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        probe = np.zeros((1, latent), self.input_dtype)
        try:
            shape = self.session.run([self.output_name], {self.input_name: probe})[0].shape[1:]
        except Exception as exc:  # onnxruntime's own types
            raise ModelFileError(f"{self.path}: running it on a [1, {latent}] input failed "
                                 f"({str(exc).splitlines()[0][:160]}); check --latent-dim") from None
        if layout is None:
            layout = "series" if len(shape) == 1 else "nchw"
        if layout == "series":
            if len(shape) != 1:
                raise ModelFileError(f"{self.path}: output '{self.output_name}' has sample shape {list(shape)}, "
                                     "not a series [L]; use --layout nchw or nhwc")
            sample_shape, kind = tuple(shape), "series"
        else:
            if len(shape) != 3:
                raise ModelFileError(f"{self.path}: output '{self.output_name}' has sample shape {list(shape)}; "
                                     "expected images [C, H, W] (--layout nchw) or [H, W, C] (--layout nhwc)")
            c, h, w = shape if layout == "nchw" else (shape[2], shape[0], shape[1])
            if c not in (1, 3):
                hint = " (channels last? try --layout nhwc)" if layout == "nchw" and shape[2] in (1, 3) else ""
                raise ModelFileError(f"{self.path}: {c} channels in output '{self.output_name}' "
                                     f"{list(shape)}; images need 1 or 3{hint}")
            sample_shape, kind = (c, h, w), "image"
        self.layout = layout
        return ModelInfo(latent_dim=latent, sample_shape=sample_shape, kind=kind,
                         value_range=tuple(value_range) if value_range else (-1.0, 1.0))

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, {self.info.kind} {list(self.info.sample_shape)}, {self.device})"

    @property
    def default_batch(self) -> int:
        """Samples per chunk when generating many (each chunk then runs in :attr:`micro_batch`
        pieces): up to 256, a power of two that keeps one chunk's output within 4 MiB, so
        memory stays small for big images (benchmarks/results/streaming.md)."""
        per_sample = 4 * math.prod(self.info.sample_shape)
        fits = max(1, BATCH_BYTES // per_sample)
        return min(MAX_BATCH, 1 << (fits.bit_length() - 1))

    def sample_noise(self, n: int, seed: int) -> np.ndarray:
        """Noise ``[n, latent_dim]`` float32: what ``generate(n, seed)`` feeds the model."""
        return np.random.default_rng(check_seed(seed)).standard_normal((check_count(n), self.info.latent_dim),
                                                                       dtype=np.float32)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Run the generator on noise ``z`` ``[batch, latent_dim]``, in runs of at most
        :attr:`micro_batch` samples when one is set."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim:
            raise GanforgeError(f"z must have shape [batch, {self.info.latent_dim}], got {list(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise GanforgeError(f"z must be floating point, got {z.dtype}")
        z = np.ascontiguousarray(z, dtype=self.input_dtype)
        step = self.micro_batch
        if not step or len(z) <= step:
            return self._run(z)
        out = np.empty((len(z), *self.info.sample_shape), np.float32)  # each run's samples land in place
        for i in range(0, len(z), step):
            out[i : i + step] = self._run(z[i : i + step])
        return out

    def _run(self, z: np.ndarray) -> np.ndarray:
        """One onnxruntime run on checked, contiguous noise."""
        try:
            out = self.session.run([self.output_name], {self.input_name: z})[0]
        except Exception as exc:  # onnxruntime's own types (out of memory, a kernel failing)
            raise GanforgeError(f"running {self.path} on a batch of {len(z)} failed ({_first_line(exc)})") from None
        if self.layout == "nhwc":
            out = out.transpose(0, 3, 1, 2)
        if out.shape != (len(z), *self.info.sample_shape):
            raise ModelFileError(f"{self.path} returned shape {list(out.shape)} for a batch of {len(z)}; expected "
                                 f"{[len(z), *self.info.sample_shape]}")
        return np.asarray(out, dtype=np.float32)

    def tune_micro_batch(self, budget_s: float = 0.1) -> int | None:
        """Measure the fastest run size on this machine (about a second), use it, and cache it
        for this model file. On CUDA nothing is measured: runs take whole batches."""
        if self.device != "cpu":
            return None
        self.micro_batch, self.micro_batch_speeds = tuning.tune(self._run_noise, self.info.latent_dim,
                                                                         budget_s=budget_s)
        tuning.store(self._tuning_key, self.micro_batch, self.micro_batch_speeds)
        return self.micro_batch

    def iter_batches(self, n: int, seed: int = 0, batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``n`` samples in batches of ``batch_size`` samples a run (default: batches of
        :attr:`default_batch`, each run in :attr:`micro_batch` pieces).

        Noise is drawn from one stream, so the samples do not depend on
        ``batch_size``. Arguments are checked here, not at the first ``next()``.
        """
        n, seed = check_count(n), check_seed(seed)
        if batch_size is None:  # chunks sized for memory, each run in micro-batches
            return self._batches(n, np.random.default_rng(seed), self.default_batch, self)
        batch_size = check_count(batch_size, "batch size")  # exactly this many samples per run
        return self._batches(n, np.random.default_rng(seed), batch_size, self._run_noise)

    def _run_noise(self, z: np.ndarray) -> np.ndarray:
        return self._run(z.astype(self.input_dtype, copy=False))

    def _batches(self, n: int, rng: np.random.Generator, batch_size: int, run) -> Iterator[np.ndarray]:
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            yield run(rng.standard_normal((b, self.info.latent_dim), dtype=np.float32))
            done += b

    def generate(self, n: int, seed: int = 0, batch_size: int | None = None) -> np.ndarray:
        """``n`` samples ``[n, *sample_shape]`` float32 from ``seed``, whatever ``batch_size``."""
        batches = self.iter_batches(n, seed, batch_size)
        out = np.empty((n, *self.info.sample_shape), np.float32)  # filled in place: no second copy
        done = 0
        for batch in batches:
            out[done : done + len(batch)] = batch
            done += len(batch)
        return out
