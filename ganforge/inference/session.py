"""An ONNX generator behind onnxruntime: open, check, sample.

onnxruntime is imported when a model is opened, not when this package is, so
``import ganforge.inference`` stays cheap.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganforge import threads
from ganforge.errors import DeviceError, GanforgeError, GanforgeWarning, MissingExtraError, ModelFileError
from ganforge.inference import runtimes, tuning
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, NUM_CLASSES, OUTPUT_NAME, PREFIX, ModelInfo
from ganforge.limits import (MAX_CLASSES, MAX_FIXED_BATCH, MAX_LATENT_DIM, MAX_SAMPLE_VALUES, MEMORY_ENV, check_memory,
                             fmt_bytes, memory_budget)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
MAX_BATCH = 1024  # samples per chunk when generating many ...
BATCH_BYTES = 4 << 20  # ... or fewer, so that one chunk's output stays near 4 MiB: big images, smaller chunks
_noted_fallback = False
_arena_bytes: int | None = None  # the cap of the CPU arena this process registered, once


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("ONNX inference", "cpu", exc) from None
    return onnxruntime


def _capped_arena(ort, options) -> None:
    """Make the session allocate CPU memory from one arena capped at the memory budget
    (ganforge.limits): a graph that expands to gigabytes fails its run in one line
    instead of taking the machine. onnxruntime registers such an arena once a process."""
    global _arena_bytes
    if _arena_bytes is None:
        budget = memory_budget()
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg(budget, -1, -1, -1))
        _arena_bytes = budget
    options.add_session_config_entry("session.use_env_allocators", "1")


def _note_fallback(reason: str) -> None:
    """Warn once a process that ``device="auto"`` wanted CUDA but runs on CPU."""
    global _noted_fallback
    if not _noted_fallback:
        _noted_fallback = True
        warnings.warn(GanforgeWarning(f"running on CPU: {reason}"), stacklevel=3)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def _run_failed(path: Path, batch: int, exc: BaseException) -> str:
    """One line for a failed onnxruntime run; the memory cap's failures say how to raise it."""
    text = str(exc)
    if "Available memory of" in text:  # what the capped arena says
        fix = "use a smaller --batch-size" if batch > 1 else "check the model (one sample should not need that)"
        return (f"running {path} on a batch of {batch} needs more than the {fmt_bytes(_arena_bytes or memory_budget())}"
                f" memory limit: {fix}, or raise the limit ({MEMORY_ENV}=4G) if the model really needs it")
    return f"running {path} on a batch of {batch} failed ({_first_line(exc)})"


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


def label_list(labels) -> list[str | int] | None:
    """``labels`` (names or indices) as a list, one alone a list of one; None stays None,
    an empty list is a GanforgeError."""
    if labels is None:
        return None
    labels = [labels] if isinstance(labels, (str, int, np.integer)) else list(labels)
    if not labels:
        raise GanforgeError("labels is empty: give class names or indices, or None for random classes")
    return labels


LAYOUTS = ("nchw", "nhwc", "series")
KNOWN_SHOWN = 20  # class names an unknown-label error lists before "... and N more"
# What a foreign model (no ganforge metadata) may take and give, by onnxruntime's type names
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
LABEL_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
OUTPUT_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.float64, np.uint8))
ASSUMED_RANGE = (-1.0, 1.0)  # a float output's range unless --value-range says: the tanh most generators end in
BYTE_RANGE = (0.0, 255.0)  # a uint8 output's: pixels
PROBE_SAMPLES = 8  # samples of seed 0 whose values the foreign-model note reports (they never decide the range)
BYTE_HINT = 1.5  # probe values never below 0 and above this look like [0, 255] pixels, not [-1, 1]
RANGE_SLACK = 0.01  # of the range: probe values this far past it are noted (a fast tanh overshoots 1 by an ulp)


def _check_range(value_range) -> tuple[float, float]:
    """``value_range`` as two finite floats LOW < HIGH, else a GanforgeError."""
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise GanforgeError(f"value range must be LOW,HIGH with LOW < HIGH, got {value_range!r}")
    return lo, hi


def shape_text(batch: int | None, dims: Sequence | None) -> str:
    """``[N,100,1,1]``: a batch (N when open) and the dimensions after it, as notes and errors show
    them (``?`` an open one, ``...`` when the graph does not say the rank)."""
    rest = ["..."] if dims is None else ["?" if not isinstance(d, int) else str(d) for d in dims]
    return "[" + ",".join(["N" if batch is None else str(batch), *rest]) + "]"


def resolve_latent_shape(dims: list | None, latent_dim: int | None, latent_shape: Sequence[int] | None,
                         where: str) -> tuple[int, ...]:
    """The latent input's shape after the batch: the graph's ``dims`` where they are numbers, and
    where they are not ``latent_shape`` (the whole shape) or ``latent_dim`` (the one open dimension).
    ``dims`` None: the graph does not say the rank. A flag the graph contradicts is an error;
    ``where`` names the input."""
    fixed = None if dims is None else [d if isinstance(d, int) else None for d in dims]
    if latent_shape is not None:
        latent_shape = tuple(latent_shape)
        if fixed is not None and (len(latent_shape) != len(fixed)
                                  or any(f is not None and f != d for f, d in zip(fixed, latent_shape))):
            raise ModelFileError(f"{where}: --latent-shape {','.join(map(str, latent_shape))} contradicts it; drop "
                                 "the flag, or give the shape after the batch that the graph takes")
        shape = latent_shape
    elif fixed is None:
        if latent_dim is None:
            raise ModelFileError(f"{where}: the graph does not say the latent's rank; pass --latent-shape "
                                 "(e.g. 100 or 100,1,1)")
        shape = (latent_dim,)
    else:
        open_dims = [i for i, d in enumerate(fixed) if d is None]
        rest = math.prod(d for d in fixed if d is not None)
        if len(open_dims) > 1:
            raise ModelFileError(f"{where}: {len(open_dims)} of the latent's dimensions are open in the graph; pass "
                                 "--latent-shape (e.g. 100,1,1)")
        if open_dims and latent_dim is None:
            raise ModelFileError(f"{where}: the latent size is not fixed in the graph; pass --latent-dim N"
                                 + (" (or --latent-shape)" if len(fixed) > 1 else ""))
        if open_dims and (rest < 1 or latent_dim % rest):
            raise ModelFileError(f"{where}: --latent-dim {latent_dim} does not fill it (its fixed dimensions hold "
                                 f"{rest}); pass --latent-shape")
        shape = tuple(latent_dim // rest if d is None else d for d in fixed)
    if not shape or min(shape) < 1:
        raise ModelFileError(f"{where}: a latent of shape {list(shape)} cannot take noise")
    values = math.prod(shape)
    if latent_dim is not None and values != latent_dim:
        raise ModelFileError(f"{where}: --latent-dim {latent_dim} contradicts it ({values} values); drop the flag or "
                             f"pass {values}")
    if values > MAX_LATENT_DIM:
        raise ModelFileError(f"{where}: a latent of {values} values is more than the {MAX_LATENT_DIM} ganforge serves")
    return shape


class Generator:
    """An ONNX generator: ``Generator("generator.onnx").generate(64, seed=0)``.

    A ganforge export carries everything in its metadata. A foreign generator
    (no ganforge metadata) is read from its graph and a probe run: one float input
    ``[batch, *latent_shape]`` (fed the flat noise, reshaped), perhaps an integer
    labels input ``[batch]`` or ``[batch, 1]`` (``num_classes`` required), a fixed
    batch run in chunks of that many, and the first output as NCHW or NHWC images
    (or ``[batch, L]`` series) in [-1, 1], or [0, 255] when uint8. ``latent_dim``,
    ``latent_shape``, ``value_range`` and ``layout`` override what is read or
    assumed; :attr:`foreign_note` says it in one line.
    """

    def __init__(self, model_path: str | os.PathLike[str], device: str = "auto", *, latent_dim: int | None = None,
                 value_range: tuple[float, float] | None = None, layout: str | None = None,
                 latent_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 provider: str | None = None, precision: str = "fp32"):
        provider = runtimes.check_choice(provider, precision)
        if layout is not None and layout not in LAYOUTS:
            raise GanforgeError(f"unknown layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
        if value_range is not None:
            value_range = _check_range(value_range)
        if device not in DEVICES:
            raise GanforgeError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
        if latent_shape is not None:
            latent_shape = tuple(check_count(d, "a latent shape dimension") for d in latent_shape) or None
        latent_dim = None if latent_dim is None else check_count(latent_dim, "latent_dim")
        num_classes = None if num_classes is None else check_count(num_classes, "num_classes")
        self.path = Path(model_path)
        if self.path.is_dir():
            raise ModelFileError(f"{self.path} is a folder; pass the .onnx file (e.g. {self.path / 'generator.onnx'})")
        if not self.path.is_file():
            raise ModelFileError(f"model file {self.path} does not exist")
        self.path = runtimes.model_at_precision(self.path, precision)
        self.precision = precision
        cpu_only = provider == runtimes.OPENVINO or precision == "bf16"  # OpenVINO runs here on the CPU
        if device == "cuda" and cpu_only:
            raise DeviceError(f"{'--provider openvino' if provider == runtimes.OPENVINO else '--precision bf16'} "
                              "runs on the CPU: use --device cpu (or auto)")
        if cpu_only:
            device = "cpu"
        ort = _ort()
        available = ort.get_available_providers()
        if device == "cuda" and CUDA not in available:
            raise DeviceError("--device cuda needs onnxruntime-gpu with CUDA: pip install 'ganforge[gpu]' "
                              "(instead of the cpu extra), or use --device cpu")
        want_cuda = device == "cuda" or (device == "auto" and CUDA in available)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; a fallback is reported by us, once
        _capped_arena(ort, options)
        threads.apply_ort(options, threads.for_model_file(self.path))
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
        # how runs go (CPU only; see tuning.py): which runtime takes a run of each size, and the
        # micro-batch (samples per run when a call asks for more; None: whole batches)
        self.candidates = runtimes.candidates(provider, precision) if self.device == "cpu" else [
            (runtimes.ONNXRUNTIME, "fp32")]
        self._runners: dict[str, object] = {runtimes.ONNXRUNTIME: self._run_session}
        self.used: set[str] = set()  # the runtimes runs went to
        # a small job (generate() below TUNE_FROM_N) keeps to onnxruntime on the auto provider at fp32/int8:
        # opening OpenVINO costs it more than it saves
        self.small_job = False
        self._spare = provider == "auto" and precision != "bf16"
        self.plan = tuning.Plan.single(runtimes.ONNXRUNTIME)  # until read from the cache, below
        self.plan_source: str | None = None  # "cache" or "measured": where the plan came from; None: not measured
        props = self.session.get_modelmeta().custom_metadata_map
        self.layout = "nchw"  # of the output: "nhwc" outputs are transposed to NCHW samples
        self.input_dtype = np.float32  # what z is fed as (a foreign model may take float16)
        self.fixed_batch: int | None = None  # the batch a graph fixes: it runs in chunks of exactly that many
        self.labels_name, self.labels_dtype = LABELS_NAME, np.int64  # a conditional model's labels input
        self.labels_tail: tuple[int, ...] = ()  # labels fed [batch, *labels_tail]: (1,) for [batch, 1]
        self.output_dtype = np.dtype(np.float32)  # what the graph gives; samples are float32 whatever it is
        self.foreign_note: str | None = None  # one line on how a foreign model is read; None for ganforge's
        if any(k.startswith(PREFIX) for k in props):
            self.info = ModelInfo.from_metadata(props, source=str(self.path))
            self.input_name, self.output_name = INPUT_NAME, OUTPUT_NAME
            self._check_ganforge_graph()
            self.latent_shape = (self.info.latent_dim,)  # what the graph takes after the batch
            if value_range is not None:
                self.info = replace(self.info, value_range=value_range)
        else:
            self.info = self._read_foreign(latent_dim, latent_shape, value_range, layout, num_classes)
        if device == "auto" and want_cuda and not got_cuda:
            _note_fallback("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN missing)")
        asked = ",".join(f"{name}:{p}" for name, p in self.candidates) + f"|openvino {runtimes.openvino_version()}"
        self._tuning_key = tuning.cache_key(self.path, self.providers, getattr(ort, "__version__", "?"), asked)
        tuned = self.device == "cpu" and not self.fixed_batch  # a fixed batch is the run size
        plan = tuning.cached(self._tuning_key, {name for name, _ in self.candidates}) if tuned else None
        # not measured yet: onnxruntime, unless the choice asked for another (a forced provider, bf16)
        self.plan = plan or tuning.Plan.single(self.candidates[-1][0] if provider != "auto" or precision == "bf16"
                                               else self.candidates[0][0])
        self.plan_source = "cache" if plan is not None else None
        self.micro_batch: int | None = plan.micro_batch if plan else None

    @property
    def measured(self) -> bool:
        """Whether the plan comes from a measurement (now or cached)."""
        return self.plan_source is not None

    @property
    def micro_batch_speeds(self) -> dict[int, float]:
        """samples/s of the micro-batch's runtime by run size, once measured."""
        return self.plan.speeds.get(self.plan.runtime(self.micro_batch or 1), {})

    def runtime_report(self) -> list[str]:
        """How the runtime was chosen, a line a fact (gan-infer -v, gan-bench's report)."""
        lines = [f"model: {self.path} ({self.precision}, {self.device})",
                 "candidates: " + ", ".join(f"{name} {p}" for name, p in self.candidates)]
        if self.device == "cpu" and self._spare and runtimes.OPENVINO not in dict(self.candidates):
            lines[-1] += " (OpenVINO is not installed: pip install 'ganforge[openvino]')"  # auto offers it when it is
        if self.device != "cpu":
            lines.append("plan: whole batches on the GPU (nothing to measure)")
        elif self.fixed_batch:
            lines.append(f"plan: runs of {self.fixed_batch}, the graph's fixed batch, on {self.plan.describe()}")
        elif self.plan_source is None:
            lines.append(f"plan: not measured yet: {self.plan.describe()} (measured on a job of "
                         f"{tuning.TUNE_FROM_N:,} samples or more, or by gan-bench, then cached)")
        else:
            where = ("measured now" if self.plan_source == "measured"
                     else f"read from {tuning.cache_dir() / tuning.CACHE_FILE}")
            lines.append(f"plan ({where}): {self.plan.describe()}")
            for name, sizes in self.plan.speeds.items():
                lines.append(f"  {name} samples/s by run size: "
                             + ", ".join(f"{k}: {v:.0f}" for k, v in sizes.items()))
        if self.small_job and self._spare and set(self.plan.runtimes) - set(self._runners):
            lines.append("this job is small: it kept to onnxruntime (opening another runtime costs more than it saves)")
        lines.append(f"ran on: {', '.join(sorted(self.used)) or 'nothing yet'}")
        return lines

    def runtime_text(self) -> str:
        """What runs it, in words: ``onnxruntime (CPUExecutionProvider)``, or the measured plan."""
        precision = {name: p for name, p in self.candidates}
        names = sorted(self.used or set(self.plan.runtimes))
        where = ", ".join(f"{n} {precision.get(n, 'fp32')}" if precision.get(n, "fp32") != "fp32" else n
                          for n in names)
        if self.measured and len(self.plan.runtimes) > 1:
            return f"{where} ({self.plan.describe()})"
        return f"{where} ({', '.join(self.providers)})" if names == [runtimes.ONNXRUNTIME] else where

    def _open(self, ort, options, providers: list[str]):
        # enable_fallback=0: onnxruntime would otherwise print its own "EP Error ... Falling back" banner
        return ort.InferenceSession(str(self.path), sess_options=options, providers=providers, enable_fallback=0)

    def _inputs_found(self) -> str:
        return ", ".join(f"{i.name} {i.type} {i.shape}" for i in self.session.get_inputs()) or "none"

    def _check_ganforge_graph(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names = sorted(i.name for i in inputs)
        classes = self.info.num_classes
        if classes is None and names == [LABELS_NAME, INPUT_NAME]:
            raise ModelFileError(f"{self.path} takes '{LABELS_NAME}' but its metadata has no {NUM_CLASSES}; "
                                 "re-export it with gan-export")
        if classes is not None and names == [INPUT_NAME]:
            raise ModelFileError(f"{self.path}: its metadata says {classes} classes but the graph has no input "
                                 f"'{LABELS_NAME}'; re-export it with gan-export")
        by_name = {i.name: i for i in inputs}
        z, labels = by_name.get(INPUT_NAME), by_name.get(LABELS_NAME)
        want = f"'{INPUT_NAME}' float [batch, {self.info.latent_dim}]"
        if classes is None:
            ok, want = len(inputs) == 1, f"one input {want}"
        else:
            ok = (len(inputs) == 2 and labels is not None and labels.type == "tensor(int64)"
                  and len(labels.shape) == 1)
            want = f"inputs {want} and '{LABELS_NAME}' int64 [batch] ({classes} classes in its metadata)"
        if not ok or z is None or z.type != "tensor(float)":
            raise ModelFileError(f"{self.path} is not a generator: expected {want}, "
                                 f"found inputs: {self._inputs_found()}")
        shape = z.shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != self.info.latent_dim):
            raise ModelFileError(f"{self.path}: input '{INPUT_NAME}' has shape {shape}, but its metadata says "
                                 f"latent_dim {self.info.latent_dim}")
        if isinstance(shape[0], int):  # an adopted graph whose batch was fixed (ganforge.export.adopt)
            if not 1 <= shape[0] <= MAX_FIXED_BATCH:
                raise ModelFileError(f"{self.path}: its graph fixes a batch of {shape[0]}; ganforge runs fixed batches "
                                     f"of 1 to {MAX_FIXED_BATCH}")
            self.fixed_batch = shape[0]
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
        declared = out.shape or []  # empty when the graph leaves the rank open: checked per run instead
        if declared and (len(declared) != 1 + rank or any(isinstance(d, int) and d != want_d
                                                          for d, want_d in zip(declared[1:], info.sample_shape))):
            raise ModelFileError(f"{self.path}: output '{OUTPUT_NAME}' has shape {out.shape}, but its metadata says "
                                 f"samples of shape {list(info.sample_shape)}")

    def _read_foreign(self, latent_dim: int | None, latent_shape: tuple[int, ...] | None, value_range,
                      layout: str | None, num_classes: int | None) -> ModelInfo:
        """What a generator without ganforge metadata must be, read from its graph and one probe run."""
        latent, labels = self._foreign_inputs()
        self.input_name, self.output_name = latent.name, self.session.get_outputs()[0].name
        self.input_dtype = FLOAT_TYPES[latent.type]
        self.fixed_batch = self._foreign_batch(latent, labels)
        dims = list(latent.shape[1:]) if latent.shape else None
        where = f"{self.path}: input '{latent.name}' {shape_text(self.fixed_batch, dims)}"
        self.latent_shape = resolve_latent_shape(dims, latent_dim, latent_shape, where)
        classes = self._foreign_labels(labels, num_classes)
        shape = self._probe_shape(classes is not None)
        if math.prod(shape) > MAX_SAMPLE_VALUES:
            raise ModelFileError(f"{self.path}: one sample of shape {list(shape)} holds {math.prod(shape):,} values, "
                                 f"more than the {MAX_SAMPLE_VALUES:,} ganforge serves")
        sample_shape, kind, self.layout = self._foreign_layout(shape, layout)
        if value_range is not None:
            rng, why = value_range, "--value-range"
        elif self.output_dtype == np.uint8:
            rng, why = BYTE_RANGE, "uint8 output"
        else:
            rng, why = ASSUMED_RANGE, None
        self.info = ModelInfo(latent_dim=math.prod(self.latent_shape), sample_shape=sample_shape, kind=kind,
                              value_range=rng, num_classes=classes,
                              class_names=None if classes is None else tuple(str(i) for i in range(classes)))
        self.foreign_note = self._describe_foreign(why, "" if why else self._range_hint())
        return self.info

    def _foreign_inputs(self):
        """The latent input (one float input, ``[batch, ...]``) and the labels input (an integer
        ``[batch]`` or ``[batch, 1]``, else None); any other inputs are refused, naming them."""
        inputs = self.session.get_inputs()
        floats = [i for i in inputs if i.type in FLOAT_TYPES and len(i.shape) != 1]
        ints = [i for i in inputs if i.type in LABEL_TYPES and (len(i.shape) <= 1 or (
            len(i.shape) == 2 and (i.shape[1] == 1 or not isinstance(i.shape[1], int))))]
        if len(floats) != 1 or len(ints) > 1 or len(inputs) != len(floats) + len(ints):
            raise ModelFileError(f"cannot use {self.path} as a generator: expected one float input [batch, *latent] "
                                 "and at most one integer input of labels [batch], found inputs: "
                                 f"{self._inputs_found()}")
        return floats[0], (ints[0] if ints else None)

    def _foreign_batch(self, latent, labels) -> int | None:
        """The batch the graph fixes (its inputs' first dimension a number), else None."""
        fixed = {i.shape[0] for i in (latent, labels) if i is not None and i.shape and isinstance(i.shape[0], int)}
        if len(fixed) > 1:
            raise ModelFileError(f"{self.path}: its inputs fix different batches ({self._inputs_found()})")
        batch = fixed.pop() if fixed else None
        if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
            raise ModelFileError(f"{self.path}: its graph fixes a batch of {batch}; ganforge runs fixed batches of 1 "
                                 f"to {MAX_FIXED_BATCH} (re-export it with a dynamic batch)")
        return batch

    def _foreign_labels(self, labels, num_classes: int | None) -> int | None:
        """The classes of a foreign model with a labels input (``num_classes``, which it needs)."""
        if labels is None:
            if num_classes is not None:
                raise GanforgeError(f"--num-classes {num_classes}, but {self.path} takes no labels (inputs: "
                                    f"{self._inputs_found()}); drop --num-classes")
            return None
        if num_classes is None:
            raise ModelFileError(f"{self.path} takes class labels (input '{labels.name}' {labels.type} "
                                 f"{labels.shape}): pass --num-classes K, the number of classes it was trained on")
        if not 1 <= num_classes <= MAX_CLASSES:
            raise GanforgeError(f"--num-classes must be 1 to {MAX_CLASSES:,}, got {num_classes}")
        self.labels_name, self.labels_dtype = labels.name, LABEL_TYPES[labels.type]
        self.labels_tail = (1,) if len(labels.shape) == 2 else ()
        return num_classes

    def _probe_shape(self, conditional: bool) -> tuple[int, ...]:
        """One run on zero noise (a batch of 1, or the graph's fixed batch): the shape of one sample."""
        batch, latent = self.fixed_batch or 1, math.prod(self.latent_shape)
        check_memory(f"the fixed batch of {batch} latents of {latent} values of {self.path}", batch * latent * 12,
                     "re-export it with a smaller or dynamic batch")
        z = np.zeros((batch, latent), np.float32)
        try:
            labels = np.zeros(batch, np.int64) if conditional else None
            out = self.session.run([self.output_name], self._feed(z, labels))[0]
        except Exception as exc:  # onnxruntime's own types
            if "Available memory of" in str(exc):  # the capped arena
                raise ModelFileError(_run_failed(self.path, batch, exc)) from None
            raise ModelFileError(f"{self.path}: running it on a {shape_text(batch, self.latent_shape)} input failed "
                                 f"({_first_line(exc, 160)}); check --latent-shape and --latent-dim") from None
        if out.ndim < 2 or len(out) != batch:
            raise ModelFileError(f"{self.path}: output '{self.output_name}' has shape {list(out.shape)} for a batch of "
                                 f"{batch}; a generator gives [batch, *sample]")
        if out.dtype not in OUTPUT_DTYPES:
            raise ModelFileError(f"{self.path}: output '{self.output_name}' is {out.dtype}; ganforge serves float or "
                                 "uint8 outputs")
        self.output_dtype = out.dtype
        return tuple(out.shape[1:])

    def _foreign_layout(self, shape: tuple[int, ...], layout: str | None) -> tuple[tuple[int, ...], str, str]:
        """``(sample_shape, kind, layout)`` of a foreign output whose samples have ``shape``: [L] is a
        series; [H, W, 1 or 3] NHWC when its first dimension is not 1 or 3; else NCHW."""
        if layout is None:
            nhwc = len(shape) == 3 and shape[2] in (1, 3) and shape[0] not in (1, 3)
            layout = "series" if len(shape) == 1 else "nhwc" if nhwc else "nchw"
        if layout == "series":
            if len(shape) != 1:
                raise ModelFileError(f"{self.path}: output '{self.output_name}' has sample shape {list(shape)}, "
                                     "not a series [L]; use --layout nchw or nhwc")
            return shape, "series", layout
        if len(shape) != 3:
            raise ModelFileError(f"{self.path}: output '{self.output_name}' has sample shape {list(shape)}; "
                                 "expected images [C, H, W] (--layout nchw) or [H, W, C] (--layout nhwc)")
        c, h, w = shape if layout == "nchw" else (shape[2], shape[0], shape[1])
        if c not in (1, 3):
            hint = " (channels last? try --layout nhwc)" if layout == "nchw" and shape[2] in (1, 3) else ""
            raise ModelFileError(f"{self.path}: {c} channels in output '{self.output_name}' "
                                 f"{list(shape)}; images need 1 or 3{hint}")
        return (c, h, w), "image", layout

    def _range_hint(self) -> str:
        """What :data:`PROBE_SAMPLES` samples of seed 0 suggest about an assumed value range, for the
        foreign-model note; "" when they fit it. It never decides the range: one probe is no proof."""
        n = max(1, min(PROBE_SAMPLES, BATCH_BYTES // (4 * math.prod(self.info.sample_shape))))
        x = self._run(self.sample_noise(n, 0), np.zeros(n, np.int64) if self.info.conditional else None)
        x = x[np.isfinite(x)]
        if not x.size:
            return ""
        lo, hi = float(x.min()), float(x.max())
        seen = f" ({n} probe samples span {lo:.3g} to {hi:.3g}"
        if lo >= 0 and hi > BYTE_HINT:
            return seen + "; if it is [0, 255], pass --value-range 0,255)"
        if lo >= 0 and hi <= 1:
            return seen + "; if it is [0, 1], pass --value-range 0,1)"
        low, high = self.info.value_range
        slack = RANGE_SLACK * (high - low)
        return seen + ", outside it; pass --value-range LOW,HIGH)" if lo < low - slack or hi > high + slack else ""

    def _describe_foreign(self, why: str | None, hint: str) -> str:
        """The one line the CLIs print about a foreign model: what was read, what was assumed."""
        info = self.info
        dtype = "" if self.input_dtype == np.float32 else f" {np.dtype(self.input_dtype).name}"
        parts = [f"latent {shape_text(self.fixed_batch, self.latent_shape)}{dtype}"]
        if self.fixed_batch:
            parts[0] += f" (fixed batch: runs of {self.fixed_batch})"
        if info.conditional:
            parts.append(f"labels {np.dtype(self.labels_dtype).name} {shape_text(self.fixed_batch, self.labels_tail)} "
                         f"({info.num_classes} classes)")
        c, *rest = info.sample_shape
        out = {"series": f"series of {c}", "nchw": "NCHW " + "x".join(map(str, info.sample_shape)),
               "nhwc": "NHWC " + "x".join(map(str, (*rest, c)))}[self.layout]
        parts.append(out + ("" if self.output_dtype == np.float32 else f" {self.output_dtype.name}"))
        lo, hi = info.value_range
        parts.append(f"range [{lo:g}, {hi:g}] ({why})" if why else f"assumed range [{lo:g}, {hi:g}]{hint}")
        return "foreign model: " + ", ".join(parts) + "; override with --latent-shape/--layout/--value-range"

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, {self.info.kind} {list(self.info.sample_shape)}, {self.device})"

    @property
    def default_batch(self) -> int:
        """Samples per chunk when generating many (each chunk then runs in :attr:`micro_batch`
        pieces): up to 1024, a power of two that keeps one chunk's output within 4 MiB, so
        memory stays small for big images (benchmarks/results/streaming.md)."""
        per_sample = 4 * math.prod(self.info.sample_shape)
        fits = max(1, BATCH_BYTES // per_sample)
        return min(MAX_BATCH, 1 << (fits.bit_length() - 1))

    def sample_noise(self, n: int, seed: int) -> np.ndarray:
        """Noise ``[n, latent_dim]`` float32: what ``generate(n, seed)`` feeds the model."""
        return np.random.default_rng(check_seed(seed)).standard_normal((check_count(n), self.info.latent_dim),
                                                                       dtype=np.float32)

    def _no_classes(self, what: str = "labels") -> str:
        return (f"{what} need a conditional model; {self.path} has no classes "
                "(export a run trained with --set conditional=true)")

    def known_labels(self) -> str:
        """``0=T-shirt/top, 1=Trouser, ...``: what an error about labels lists."""
        names = self.info.class_names or ()
        shown = ", ".join(f"{i}={name}" for i, name in enumerate(names[:KNOWN_SHOWN]))
        return shown + (f", ... and {len(names) - KNOWN_SHOWN} more" if len(names) > KNOWN_SHOWN else "")

    def parse_labels(self, values: Iterable[str | int]) -> list[int]:
        """Class indices of ``values``, each a class name (case-insensitive) or an index (3 or "3").

        A name is matched first, so a class named "3" wins over index 3. Anything
        else is a GanforgeError that lists the classes the model knows.
        """
        if not self.info.conditional:
            raise GanforgeError(self._no_classes())
        names = self.info.class_names or ()
        by_name = {}
        for i, name in enumerate(names):
            by_name.setdefault(name.casefold(), i)
        indices = []
        for value in values:
            text = value.strip() if isinstance(value, str) else None
            if text is not None and text.casefold() in by_name:
                index = by_name[text.casefold()]
            elif text is not None and text.isascii() and text.isdigit():
                index = int(text)
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                index = int(value)
            else:
                raise GanforgeError(f"unknown label {value!r}; this model knows: {self.known_labels()}")
            if not 0 <= index < len(names):
                raise GanforgeError(f"label {value!r} is out of range; this model knows: {self.known_labels()}")
            indices.append(index)
        return indices

    def sample_labels(self, n: int, seed: int) -> np.ndarray:
        """Labels ``[n]`` int64, uniform over the classes: what ``generate(n, seed)`` feeds a
        conditional model. Their stream is not the noise's, so ``generate(n, seed)`` gets
        the same noise whether the model is conditional or not."""
        if not self.info.conditional:
            raise GanforgeError(self._no_classes())
        return self._draw_labels(self._label_rng(check_seed(seed)), check_count(n))

    @staticmethod
    def _label_rng(seed: int) -> np.random.Generator:
        return np.random.default_rng([seed, 1])

    def _draw_labels(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.info.num_classes, size=n, dtype=np.int64)

    def _check_labels(self, labels, n: int) -> np.ndarray | None:
        """``labels`` as int64 ``[n]`` in range for a conditional model; None for an unconditional one."""
        if not self.info.conditional:
            if labels is not None:
                raise GanforgeError(self._no_classes())
            return None
        classes = self.info.num_classes
        if labels is None:
            raise GanforgeError(f"{self.path} is conditional: pass labels, class indices [batch] in [0, {classes})")
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise GanforgeError(f"labels must have shape [{n}] (one a sample), got {list(labels.shape)}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise GanforgeError(f"labels must be class indices (integers), got {labels.dtype}")
        bad = labels[(labels < 0) | (labels >= classes)]
        if bad.size:
            raise GanforgeError(f"label {bad[0]} is out of range: this model has {classes} classes, "
                                f"labels 0 to {classes - 1}")
        return np.ascontiguousarray(labels, dtype=np.int64)

    def _check_noise(self, z) -> np.ndarray:
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim:
            raise GanforgeError(f"z must have shape [batch, {self.info.latent_dim}], got {list(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise GanforgeError(f"z must be floating point, got {z.dtype}")
        return np.ascontiguousarray(z, dtype=np.float32)  # _feed casts it to what the graph takes

    def __call__(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Run the generator on noise ``z`` ``[batch, latent_dim]`` (and, for a conditional
        model, class indices ``labels`` ``[batch]``), in runs of at most :attr:`micro_batch`
        samples when one is set."""
        z = self._check_noise(z)
        return self._micro(z, self._check_labels(labels, len(z)))

    def _micro(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        step = self.micro_batch
        if not step or len(z) <= step:
            return self._run(z, labels)
        out = np.empty((len(z), *self.info.sample_shape), np.float32)  # each run's samples land in place
        for i in range(0, len(z), step):
            out[i : i + step] = self._run(z[i : i + step], None if labels is None else labels[i : i + step])
        return out

    def _feed(self, z: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
        """Flat noise ``[b, latent_dim]`` (and labels ``[b]``) as the graph takes them: reshaped to
        its latent shape, in its dtypes."""
        feed = {self.input_name: z.reshape(len(z), *self.latent_shape).astype(self.input_dtype, copy=False)}
        if labels is not None:
            feed[self.labels_name] = labels.reshape(len(labels), *self.labels_tail).astype(self.labels_dtype,
                                                                                           copy=False)
        return feed

    def _run(self, z: np.ndarray, labels: np.ndarray | None = None, runtime: str | None = None) -> np.ndarray:
        """One onnxruntime run on checked, contiguous noise (and labels, for a conditional model);
        a graph with a fixed batch runs chunks of exactly that many, the last one padded with zeros
        whose samples are dropped."""
        step = self.fixed_batch
        if step is None or len(z) == step:
            return self._run_once(z, labels, runtime)
        out = np.empty((len(z), *self.info.sample_shape), np.float32)
        for i in range(0, len(z), step):
            zc, lc = z[i : i + step], None if labels is None else labels[i : i + step]
            k = len(zc)
            if k < step:
                zc = np.concatenate([zc, np.zeros((step - k, *zc.shape[1:]), zc.dtype)])
                lc = None if lc is None else np.concatenate([lc, np.zeros(step - k, lc.dtype)])
            out[i : i + k] = self._run_once(zc, lc, runtime)[:k]
        return out

    def _runner(self, name: str):
        """The runtime ``name``'s run function, opened on first use (OpenVINO compiles the file then)."""
        runner = self._runners.get(name)
        if runner is None:
            precision = dict(self.candidates)[name]
            runner = self._runners[name] = runtimes.OpenVinoRunner(self.path, self.output_name, precision)
        return runner

    def _run_session(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output_name], feed)[0]

    def _run_once(self, z: np.ndarray, labels: np.ndarray | None, runtime: str | None = None) -> np.ndarray:
        name = runtime or self.plan.runtime(len(z))
        if runtime is None and self.small_job and self._spare and name not in self._runners:
            name = runtimes.ONNXRUNTIME
        runner = self._runner(name)
        try:
            out = runner(self._feed(z, labels))
        except Exception as exc:  # the runtimes' own types (out of memory, a kernel failing)
            raise GanforgeError(_run_failed(self.path, len(z), exc)) from None
        self.used.add(name)
        if self.layout == "nhwc" and out.ndim == 4:
            out = out.transpose(0, 3, 1, 2)
        if out.shape != (len(z), *self.info.sample_shape):
            raise ModelFileError(f"{self.path} returned shape {list(out.shape)} for a batch of {len(z)}; expected "
                                 f"{[len(z), *self.info.sample_shape]}")
        return np.asarray(out, dtype=np.float32)

    def tune_micro_batch(self, budget_s: float = 0.1) -> int | None:
        """Measure which runtime is fastest at each run size and the fastest run size on this
        machine (a second or two), use them, and cache them for this model file. On CUDA nothing
        is measured: runs take whole batches; nor for a graph with a fixed batch: its runs take
        that many. A runtime that cannot open this model is left out (onnxruntime always runs)."""
        if self.device != "cpu" or self.fixed_batch:
            return None
        runs = {}
        for name, _ in self.candidates:
            try:
                self._runner(name)
            except GanforgeError:
                if len(self.candidates) == 1:
                    raise
                continue  # e.g. OpenVINO cannot compile this graph: the others are measured
            runs[name] = functools.partial(self._run_noise, runtime=name)
        self.plan = tuning.tune(runs, self.info.latent_dim, budget_s=budget_s)
        self.used.clear()  # what tuning ran is not what the samples came from
        self.plan_source = "measured"
        self.micro_batch = self.plan.micro_batch
        tuning.store(self._tuning_key, self.plan)
        return self.micro_batch

    def iter_batches(self, n: int, seed: int = 0, batch_size: int | None = None,
                     labels: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Yield ``n`` samples in batches of ``batch_size`` samples a run (default: batches of
        :attr:`default_batch`, each run in :attr:`micro_batch` pieces).

        Noise is drawn from one stream, so the samples do not depend on
        ``batch_size``. A conditional model takes ``labels`` (class indices ``[n]``) or,
        when None, labels drawn as :meth:`sample_labels` draws them. Arguments are
        checked here, not at the first ``next()``.
        """
        n, seed = check_count(n), check_seed(seed)
        labels = None if labels is None else self._check_labels(labels, n)  # None: drawn below, if conditional
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        noise = np.random.default_rng(seed)
        label_rng = self._label_rng(seed) if labels is None and self.info.conditional else None

        def chunk(start: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
            z = noise.standard_normal((b, self.info.latent_dim), dtype=np.float32)
            if label_rng is not None:
                return z, self._draw_labels(label_rng, b)
            return z, None if labels is None else labels[start : start + b]

        return self._batches(n, chunk, batch_size)

    def run_batches(self, z: np.ndarray, labels: np.ndarray | None = None,
                    batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Like :meth:`iter_batches` on given noise ``z`` (and ``labels``) instead of a seed's."""
        z = self._check_noise(z)
        labels = self._check_labels(labels, len(z))
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        return self._batches(len(z), lambda start, b: (z[start : start + b],
                                                       None if labels is None else labels[start : start + b]),
                             batch_size)

    def per_class_batches(self, per_class: int, classes: list[int], seed: int,
                          batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Samples of a per-class grid, row after row: ``per_class`` noises (:meth:`sample_noise`),
        the same in every row, each row one of ``classes``. Streams: memory does not grow with
        the rows."""
        if not self.info.conditional:
            raise GanforgeError(self._no_classes("per-class grids"))
        noise = self.sample_noise(check_count(per_class, "per_class"), seed)
        row = np.asarray(classes, np.int64)

        def chunk(start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            index = np.arange(start, start + b)
            return noise[index % per_class], row[index // per_class]

        if batch_size is not None:
            batch_size = check_count(batch_size, "batch size")
        return self._batches(per_class * len(row), chunk, batch_size)

    def _run_noise(self, z: np.ndarray, labels: np.ndarray | None = None, runtime: str | None = None) -> np.ndarray:
        if labels is None and self.info.conditional:  # tuning times noise alone: any class runs alike
            labels = np.zeros(len(z), np.int64)
        return self._run(z.astype(np.float32, copy=False), labels, runtime)

    def _batches(self, n: int, chunk, batch_size: int | None) -> Iterator[np.ndarray]:
        """``chunk(start, b)`` gives the noise and labels of samples ``start:start + b``.
        No ``batch_size``: chunks sized for memory, each run in micro-batches; else exactly
        ``batch_size`` samples a run."""
        step, run = (self.default_batch, self._micro) if batch_size is None else (batch_size, self._run_noise)
        done = 0
        while done < n:
            b = min(step, n - done)
            z, labels = chunk(done, b)
            yield run(np.ascontiguousarray(z, dtype=np.float32), labels)
            done += b

    def generate(self, n: int, seed: int = 0, batch_size: int | None = None,
                 labels: np.ndarray | None = None) -> np.ndarray:
        """``n`` samples ``[n, *sample_shape]`` float32 from ``seed`` (and ``labels``, see
        :meth:`iter_batches`), whatever ``batch_size``."""
        batches = self.iter_batches(n, seed, batch_size, labels)
        out = np.empty((n, *self.info.sample_shape), np.float32)  # filled in place: no second copy
        done = 0
        for batch in batches:
            out[done : done + len(batch)] = batch
            done += len(batch)
        return out
