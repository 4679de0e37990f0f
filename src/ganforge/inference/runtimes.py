"""The runtimes a CPU generator can run on, and which precision each runs at.

onnxruntime (the ``cpu`` extra) is always there and opens in milliseconds; OpenVINO's CPU
runtime (the optional ``openvino`` extra) compiles the same ONNX file, is faster than
onnxruntime on some models and run sizes and slower on others, and is the one that runs
bf16 on CPUs that have it. Which is faster is measured per model, machine and run size
(:mod:`ganforge.inference.tuning`), not assumed. onnxruntime's own OpenVINO plugin
(``onnxruntime-ep-openvino``) is not among them: on the CPUs measured so far (AMD EPYC) it
registers but offers no device.

Nothing here imports openvino until a model asks for it, so the lean install stays lean.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ganforge import threads
from ganforge.errors import GanforgeError, MissingExtraError, ModelFileError, first_line
from ganforge.fsutil import destination_of
from ganforge.inference import siblings
from ganforge.limits import MEMORY_ENV, fmt_bytes, memory_budget

ONNXRUNTIME, OPENVINO = "onnxruntime", "openvino"
PROVIDERS = ("auto", ONNXRUNTIME, OPENVINO)  # --provider
PROVIDER_ENV = "GANFORGE_PROVIDER"  # the default of --provider (auto when unset)
PRECISIONS = ("fp32", "bf16", "int8")  # --precision of gan-infer, gan-bench and gan-eval
INT8_FILE = "generator.int8.onnx"  # what gan-export --precision int8 writes beside generator.onnx
_arena_bytes: int | None = None  # the cap of the CPU arena this process registered, once


def capped_arena(ort, options) -> None:
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


def out_of_arena(exc: BaseException) -> bool:
    """Whether a failed run is the capped arena refusing memory."""
    return "Available memory of" in str(exc)  # what the capped arena says


def run_failed(path: Path, batch: int, exc: BaseException, batch_option: str | None = None) -> str:
    """One line for a failed run; the memory cap's failures say how to raise it, and ``batch_option``
    (``--batch-size``), when the command has one, how to run smaller batches."""
    path = destination_of(path)  # gan-export checks a temporary: the message names the file it becomes
    if out_of_arena(exc):
        fix = ("check the model (one sample should not need that), or " if batch == 1 else
               f"use a smaller {batch_option}, or " if batch_option else "")
        return (f"running {path} on a batch of {batch} needs more than the {fmt_bytes(_arena_bytes or memory_budget())}"
                f" memory limit: {fix}raise the limit ({MEMORY_ENV}=4G) if the model really needs it")
    return f"running {path} on a batch of {batch} failed ({first_line(exc)})"


def default_provider() -> str:
    """``$GANFORGE_PROVIDER``, else auto; a wrong value is named with the right ones."""
    value = os.environ.get(PROVIDER_ENV, "").strip() or "auto"
    if value not in PROVIDERS:
        raise GanforgeError(f"{PROVIDER_ENV}={value!r} is not a provider; use one of: {', '.join(PROVIDERS)}")
    return value


def check_choice(provider: str | None, precision: str) -> str:
    """The provider to use (None: :func:`default_provider`), checked with the precision."""
    provider = default_provider() if provider is None else provider
    if provider not in PROVIDERS:
        raise GanforgeError(f"unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}")
    if precision not in PRECISIONS:
        raise GanforgeError(f"unknown precision {precision!r}; use one of: {', '.join(PRECISIONS)}")
    if precision == "bf16" and provider == ONNXRUNTIME:
        raise GanforgeError("--precision bf16 runs on OpenVINO (onnxruntime has no bf16 CPU kernels for these "
                            "models): use --provider auto or openvino, or --precision fp32")
    return provider


def model_at_precision(path: Path, precision: str) -> Path:
    """The file to open for ``precision``: int8 is a file of its own (gan-export --precision int8
    writes it beside generator.onnx), used only when it comes from ``path``'s checkpoint
    (:mod:`~ganforge.inference.siblings`); fp32 and bf16 read the fp32 file (bf16 is how OpenVINO
    computes, not a file)."""
    if precision != "int8" or path.name.endswith(".int8.onnx"):
        return path
    int8 = path.with_name(INT8_FILE) if path.name == "generator.onnx" else path.with_suffix(".int8.onnx")
    if not int8.is_file():
        raise ModelFileError(f"--precision int8 needs {int8}, which does not exist: write it with gan-export "
                             f"--precision int8 --out {path.parent} (or pass the int8 file as --model)")
    problem = siblings.mismatch(path, int8)  # another checkpoint's int8 file would serve its weights
    if problem is not None:
        raise ModelFileError(f"--precision int8 runs the int8 file of the model's own checkpoint, and {problem}: "
                             "export it again (gan-export RUN --precision int8), or pass it as --model to run it "
                             "as it is")
    return int8


@functools.lru_cache(maxsize=1)
def _openvino():
    """The openvino module, or None when the extra is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino


@functools.lru_cache(maxsize=1)
def _core():
    return _openvino().Core()


@functools.lru_cache(maxsize=1)
def openvino_version() -> str | None:
    """Which OpenVINO is installed (its package file and when it was written), None when it is not:
    without importing it, which takes a quarter of a second, or reading package metadata, which
    scans every installed distribution. Part of the plan's cache key."""
    import importlib.util

    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.origin:
        return None
    try:
        return f"{spec.origin}@{os.stat(spec.origin).st_mtime_ns}"
    except OSError:
        return None


def has_bf16() -> bool:
    """Whether OpenVINO is installed and this CPU computes bf16 (AVX512-BF16 or AMX)."""
    return _openvino() is not None and "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def missing_openvino(why: str) -> MissingExtraError:
    return MissingExtraError(why, "openvino", ImportError("No module named 'openvino'", name="openvino"))


def candidates(provider: str, precision: str) -> list[tuple[str, str]]:
    """(runtime, precision it computes at) pairs to choose between, in order of preference on a tie:
    onnxruntime first (it opens in milliseconds and runs under ganforge's memory cap). An
    explicit provider that cannot run here is an error; auto leaves out what is not installed."""
    ov = openvino_version() is not None  # installed: imported only when a run needs it
    if provider == OPENVINO and not ov:
        raise missing_openvino("--provider openvino")
    if precision == "bf16":
        if not ov:
            raise missing_openvino("--precision bf16 (OpenVINO's CPU runtime computes it)")
        if not has_bf16():
            raise GanforgeError("--precision bf16 needs a CPU with bf16 instructions (AVX512-BF16 or AMX), and "
                                "this one has none: use --precision fp32 (or int8 where exported)")
        # onnxruntime stays a candidate at fp32: where it is faster (small runs) it is also exact
        return [(OPENVINO, "bf16")] if provider == OPENVINO else [(ONNXRUNTIME, "fp32"), (OPENVINO, "bf16")]
    computes = "int8" if precision == "int8" else "fp32"
    if provider == ONNXRUNTIME:
        return [(ONNXRUNTIME, computes)]
    if provider == OPENVINO:
        return [(OPENVINO, computes)]
    return [(ONNXRUNTIME, computes)] + ([(OPENVINO, computes)] if ov else [])


class OpenVinoRunner:
    """The ONNX file compiled by OpenVINO for the CPU: ``runner(feed)`` is the named output."""

    def __init__(self, path: Path, output: str, precision: str, choice: threads.Choice | None = None):
        ov = _openvino()
        if ov is None:
            raise missing_openvino("OpenVINO runs")
        hint = {"bf16": "bf16"}.get(precision, "f32")  # int8 files run their QDQ parts in int8 under f32
        try:
            choice = choice or threads.for_model_file(path)
            config = {"INFERENCE_PRECISION_HINT": hint, **threads.openvino_config(choice)}
            self.compiled = _core().compile_model(str(path), "CPU", config)
        except Exception as exc:  # OpenVINO's own error types
            raise ModelFileError(f"OpenVINO cannot compile {path} ({first_line(exc, 160)}); use --provider "
                                 "onnxruntime") from None
        self.request = self.compiled.create_infer_request()
        self.output = output
        self.precision = precision
        self.path = destination_of(path)

    def __call__(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        from ganforge.inference import watchdog

        with watchdog.guard(self.request.cancel, f"OpenVINO running {self.path} on a batch of "
                                                f"{len(next(iter(feed.values())))}"):
            self.request.infer(dict(feed))
        # the request's tensor is overwritten by its next run: the caller keeps a copy
        return np.array(self.request.get_tensor(self.output).data, copy=True)
