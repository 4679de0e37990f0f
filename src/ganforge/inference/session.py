"""An ONNX generator behind onnxruntime: open the session (CUDA when asked and working, else
the CPU), and run it.

What the graph takes and gives is read beside: a ganforge export against its metadata
(:func:`ganforge.inference.metadata.check_graph`), any other generator from its graph
(:mod:`ganforge.inference.foreign`); labels are in :mod:`ganforge.inference.labels`, batching in
:mod:`ganforge.inference.batches`, the runtime plan and its report in
:mod:`ganforge.inference.tuning`. onnxruntime is imported when a model is opened, not when this
package is, so ``import ganforge.inference`` stays cheap.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganforge import threads
from ganforge.errors import DeviceError, GanforgeError, GanforgeWarning, MissingExtraError, ModelFileError, first_line
from ganforge.fsutil import not_a_file
from ganforge.inference import foreign, labels as labelling, runtimes, tuning, watchdog
from ganforge.inference.batches import Batching
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME, PREFIX, ModelInfo, check_graph
from ganforge.values import check_count, check_seed, check_start, check_value_range

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
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


def _checked_options(layout, value_range, device, latent_shape, latent_dim, num_classes):
    """The Generator's options checked (before any file is touched): ``value_range``,
    ``latent_shape``, ``latent_dim`` and ``num_classes`` in their checked forms."""
    if layout is not None and layout not in foreign.LAYOUTS:
        raise GanforgeError(f"unknown layout {layout!r}; use one of: {', '.join(foreign.LAYOUTS)}")
    if value_range is not None:
        value_range = check_value_range(value_range)
    if device not in DEVICES:
        raise GanforgeError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
    if latent_shape is not None:
        latent_shape = tuple(check_count(d, "a latent shape dimension") for d in latent_shape) or None
    latent_dim = None if latent_dim is None else check_count(latent_dim, "latent_dim")
    num_classes = None if num_classes is None else check_count(num_classes, "num_classes")
    return value_range, latent_shape, latent_dim, num_classes


def _model_file(model_path, precision: str) -> Path:
    """The file to open: ``model_path`` (an existing file, not a folder) at ``precision``."""
    path = Path(model_path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder; pass the .onnx file (e.g. {path / 'generator.onnx'})")
    problem = not_a_file(path)
    if problem is not None:
        raise ModelFileError(f"model file {path} {problem}" + ("" if problem == "does not exist" else
                                                               ": pass the .onnx file"))
    return runtimes.model_at_precision(path, precision)


def _device_for(device: str, provider: str, precision: str) -> str:
    """``device``, or "cpu" where the provider or precision runs on the CPU alone (OpenVINO here)."""
    cpu_only = provider == runtimes.OPENVINO or precision == "bf16"
    if device == "cuda" and cpu_only:
        raise DeviceError(f"{'--provider openvino' if provider == runtimes.OPENVINO else '--precision bf16'} "
                          "runs on the CPU: use --device cpu (or auto)")
    return "cpu" if cpu_only else device


def _inference_session(ort, path: Path, options, providers: list[str]):
    # enable_fallback=0: onnxruntime would otherwise print its own "EP Error ... Falling back" banner
    return ort.InferenceSession(str(path), sess_options=options, providers=providers, enable_fallback=0)


def open_session(path: Path, device: str, choice: threads.Choice | None = None):
    """``(onnxruntime, session, want_cuda)`` for ``path`` on ``device`` ("auto", "cpu" or "cuda"), on
    ``choice``'s threads (None: chosen for the file): auto takes CUDA where onnxruntime has it and falls
    back to the CPU when it cannot start;
    "cuda" that cannot start is a DeviceError saying why, a file onnxruntime cannot load a
    ModelFileError."""
    ort = _ort()
    available = ort.get_available_providers()
    if device == "cuda" and CUDA not in available:
        raise DeviceError("--device cuda needs onnxruntime-gpu with CUDA: pip install 'ganforge[gpu]' "
                          "(instead of the cpu extra), or use --device cpu")
    want_cuda = device == "cuda" or (device == "auto" and CUDA in available)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; a fallback is reported by us, once
    runtimes.capped_arena(ort, options)
    threads.apply_ort(options, choice or threads.for_model_file(path))
    try:
        session = _inference_session(ort, path, options, [CUDA, CPU] if want_cuda else [CPU])
    except Exception as exc:  # onnxruntime raises its own exception types
        if not want_cuda:
            raise ModelFileError(f"{path} is not a loadable ONNX model ({first_line(exc)})") from None
        # CUDA failed to start, or the file is bad: CPU alone tells which
        try:
            session = _inference_session(ort, path, options, [CPU])
        except Exception as cpu_exc:
            raise ModelFileError(f"{path} is not a loadable ONNX model ({first_line(cpu_exc)})") from None
        if device == "cuda":
            raise DeviceError(f"the CUDA provider is installed but could not start ({first_line(exc, 160)}); "
                              "check the CUDA/cuDNN libraries onnxruntime-gpu needs, or use --device cpu") from None
    if device == "cuda" and CUDA not in session.get_providers():
        raise DeviceError("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN "
                          "libraries missing); use --device cpu")
    return ort, session, want_cuda


class Generator(Batching):
    """An ONNX generator: ``Generator("generator.onnx").generate(64, seed=0)``.

    A ganforge export carries everything in its metadata. A foreign generator
    (no ganforge metadata) is read from its graph and a probe run
    (:mod:`ganforge.inference.foreign`): ``latent_dim``, ``latent_shape``, ``value_range``
    and ``layout`` override what is read or assumed, ``num_classes`` is needed for one that
    takes labels; :attr:`foreign_note` says it in one line. ``provider`` and ``precision``:
    what runs it on the CPU (:mod:`ganforge.inference.runtimes`). ``sessions``: this is one of that
    many sessions computing side by side (gan-serve --workers), which split the cores between them;
    :attr:`threads` is what it got.
    """

    # the option that makes its batches smaller, which a run over the memory limit names (gan-infer's;
    # a command without one sets None, and the message says to raise the limit)
    batch_option: str | None = "--batch-size"

    def __init__(self, model_path: str | os.PathLike[str], device: str = "auto", *, latent_dim: int | None = None,
                 value_range: tuple[float, float] | None = None, layout: str | None = None,
                 latent_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 provider: str | None = None, precision: str = "fp32", sessions: int = 1):
        provider = runtimes.check_choice(provider, precision)
        value_range, latent_shape, latent_dim, num_classes = _checked_options(
            layout, value_range, device, latent_shape, latent_dim, num_classes)
        self.path = _model_file(model_path, precision)
        self.precision = precision
        device = _device_for(device, provider, precision)
        self.threads = threads.for_model_file(self.path, parts=sessions)  # its runtimes' threads
        ort, self.session, want_cuda = open_session(self.path, device, self.threads)
        self._run_options = ort.RunOptions  # a run's own, so the time limit can stop it (watchdog)
        self.providers: list[str] = self.session.get_providers()
        self.device = "cuda" if CUDA in self.providers else "cpu"
        self._start_runs(provider, precision)
        self._wire(latent_dim, latent_shape, value_range, layout, num_classes)
        if device == "auto" and want_cuda and self.device != "cuda":
            _note_fallback("the CUDA provider is installed but could not start (no GPU, or CUDA/cuDNN missing)")
        self._read_plan(ort, provider, precision)

    def _start_runs(self, provider: str, precision: str) -> None:
        """Where runs go (CPU only; see tuning.py): the candidate runtimes, each opened on first use,
        and onnxruntime's plan until :meth:`_read_plan`."""
        self.candidates = runtimes.candidates(provider, precision) if self.device == "cpu" else [
            (runtimes.ONNXRUNTIME, "fp32")]
        self._runners: dict[str, object] = {runtimes.ONNXRUNTIME: self._run_session}
        self._proven: set[int] = set()  # run sizes onnxruntime ran within the memory budget
        self.used: set[str] = set()  # the runtimes runs went to
        # a small job (below TUNE_FROM_N samples: its runs are passed small_job=True) keeps to onnxruntime on
        # the auto provider at fp32/int8: opening OpenVINO costs it more than it saves
        self._spare = provider == "auto" and precision != "bf16"
        self.plan = tuning.Plan.single(runtimes.ONNXRUNTIME)  # until read from the cache (_read_plan)
        self.plan_source: str | None = None  # "cache" or "measured": where the plan came from; None: not measured

    def _wire(self, latent_dim, latent_shape, value_range, layout, num_classes) -> None:
        """How the graph is fed and read, and :attr:`info`: from ganforge metadata, checked against
        the graph, else read from a foreign graph."""
        try:
            props = self.session.get_modelmeta().custom_metadata_map
        except UnicodeDecodeError:  # onnxruntime hands the values over as str: bytes that are not UTF-8 fail
            raise ModelFileError(f"{self.path} has metadata that is not UTF-8 text: re-export it with gan-export "
                                 "(or fix the file's metadata_props)") from None
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
            self.fixed_batch = check_graph(self.path, self.info, self.session.get_inputs(), self.session.get_outputs())
            self.latent_shape = (self.info.latent_dim,)  # what the graph takes after the batch
            if value_range is not None:
                self.info = replace(self.info, value_range=value_range)
        else:
            self.info, self.foreign_note = foreign.read(self, latent_dim, latent_shape, value_range, layout,
                                                        num_classes)

    def _read_plan(self, ort, provider: str, precision: str) -> None:
        """The plan cached for this model, machine and choice, if any; else the one asked for."""
        asked = ",".join(f"{name}:{p}" for name, p in self.candidates) + f"|openvino {runtimes.openvino_version()}"
        self._tuning_key = tuning.cache_key(self.path, self.providers, getattr(ort, "__version__", "?"), asked)
        tuned = self.device == "cpu" and not self.fixed_batch  # a fixed batch is the run size
        plan = tuning.cached(self._tuning_key, {name for name, _ in self.candidates}) if tuned else None
        # not measured yet: onnxruntime, unless the choice asked for another (a forced provider, bf16)
        self.plan = plan or tuning.Plan.single(self.candidates[-1][0] if provider != "auto" or precision == "bf16"
                                               else self.candidates[0][0])
        self.plan_source = "cache" if plan is not None else None
        # the micro-batch: samples per run when a call asks for more; None: whole batches
        self.micro_batch: int | None = plan.micro_batch if plan else None

    @property
    def measured(self) -> bool:
        """Whether the plan comes from a measurement (now or cached)."""
        return self.plan_source is not None

    @property
    def micro_batch_speeds(self) -> dict[int, float]:
        """samples/s of the micro-batch's runtime by run size, once measured."""
        return self.plan.speeds.get(self.plan.runtime(self.micro_batch or 1), {})

    def runtime_report(self, small_job: bool = False) -> list[str]:
        """How the runtime was chosen, a line a fact (gan-infer -v, gan-bench's report); ``small_job``:
        the job just run was small (:func:`ganforge.inference.tuning.report`)."""
        return tuning.report(self, small_job)

    def runtime_text(self) -> str:
        """What runs it, in words: ``onnxruntime (CPUExecutionProvider)``, or the measured plan."""
        return tuning.runtime_text(self)

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, {self.info.kind} {list(self.info.sample_shape)}, {self.device})"

    # --- labels (ganforge.inference.labels) ---------------------------------------------------------

    def _no_classes(self, what: str = "labels") -> str:
        return labelling.no_classes(self.path, what)

    def known_labels(self) -> str:
        """``0=T-shirt/top, 1=Trouser, ...``: what an error about labels lists."""
        return labelling.known_labels(self.info)

    def parse_labels(self, values: Iterable[str | int]) -> list[int]:
        """Class indices of ``values``, each a class name (case-insensitive; matched first, so a
        class named "3" wins over index 3) or an index; else a GanforgeError listing the classes."""
        return labelling.parse_labels(self.info, self.path, values)

    def sample_labels(self, n: int, seed: int, start: int = 0) -> np.ndarray:
        """Labels ``[n]`` int64 of samples ``start:start + n`` of ``seed``, uniform over the classes:
        what ``generate(n, seed)`` feeds a conditional model (a stream apart from the noise's)."""
        if not self.info.conditional:
            raise GanforgeError(self._no_classes())
        n, start = check_count(n), check_start(start)
        return labelling.draw_labels(self.info, check_seed(seed), start, start + n)

    def _check_labels(self, labels, n: int) -> np.ndarray | None:
        """``labels`` as int64 ``[n]`` in range for a conditional model; None for an unconditional one."""
        return labelling.check_labels(self.info, self.path, labels, n)

    # --- runs ---------------------------------------------------------------------------------------

    def _check_noise(self, z) -> np.ndarray:
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim:
            raise GanforgeError(f"z must have shape [batch, {self.info.latent_dim}], got {list(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise GanforgeError(f"z must be floating point, got {z.dtype}")
        return np.ascontiguousarray(z, dtype=np.float32)  # _feed casts it to what the graph takes

    def __call__(self, z: np.ndarray, labels: np.ndarray | None = None, *, small_job: bool = False) -> np.ndarray:
        """Run the generator on noise ``z`` ``[batch, latent_dim]`` (and, for a conditional
        model, class indices ``labels`` ``[batch]``), in runs of at most :attr:`micro_batch`
        samples when one is set. ``small_job``: part of a job below TUNE_FROM_N samples, which
        keeps to onnxruntime rather than open another runtime."""
        z = self._check_noise(z)
        return self._micro(z, self._check_labels(labels, len(z)), small_job=small_job)

    def _micro(self, z: np.ndarray, labels: np.ndarray | None, small_job: bool = False) -> np.ndarray:
        step = self.micro_batch
        if not step or len(z) <= step:
            return self._run(z, labels, small_job=small_job)
        out = np.empty((len(z), *self.info.sample_shape), np.float32)  # each run's samples land in place
        for i in range(0, len(z), step):
            out[i : i + step] = self._run(z[i : i + step], None if labels is None else labels[i : i + step],
                                          small_job=small_job)
        return out

    def _feed(self, z: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
        """Flat noise ``[b, latent_dim]`` (and labels ``[b]``) as the graph takes them: reshaped to
        its latent shape, in its dtypes."""
        feed = {self.input_name: z.reshape(len(z), *self.latent_shape).astype(self.input_dtype, copy=False)}
        if labels is not None:
            feed[self.labels_name] = labels.reshape(len(labels), *self.labels_tail).astype(self.labels_dtype,
                                                                                           copy=False)
        return feed

    def _route(self, size: int, small_job: bool) -> str:
        """The runtime a run of ``size`` samples goes to: the plan's; a small job's keeps to
        onnxruntime unless the plan's runtime is open already."""
        name = self.plan.runtime(size)
        if small_job and self._spare and name not in self._runners:
            return runtimes.ONNXRUNTIME
        return name

    def _run(self, z: np.ndarray, labels: np.ndarray | None = None, runtime: str | None = None,
             small_job: bool = False) -> np.ndarray:
        """One run on checked, contiguous noise (and labels, for a conditional model) on ``runtime``
        (default: :meth:`_route`'s); a graph with a fixed batch runs chunks of exactly that many,
        the last one padded with zeros whose samples are dropped."""
        step = self.fixed_batch
        name = runtime or self._route(step or len(z), small_job)
        if step is None or len(z) == step:
            return self._run_once(z, labels, name)
        out = np.empty((len(z), *self.info.sample_shape), np.float32)
        for i in range(0, len(z), step):
            zc, lc = z[i : i + step], None if labels is None else labels[i : i + step]
            k = len(zc)
            if k < step:
                zc = np.concatenate([zc, np.zeros((step - k, *zc.shape[1:]), zc.dtype)])
                lc = None if lc is None else np.concatenate([lc, np.zeros(step - k, lc.dtype)])
            out[i : i + k] = self._run_once(zc, lc, name)[:k]
        return out

    def _runner(self, name: str):
        """The runtime ``name``'s run function, opened on first use (OpenVINO compiles the file then)."""
        runner = self._runners.get(name)
        if runner is None:
            precision = dict(self.candidates)[name]
            runner = self._runners[name] = runtimes.OpenVinoRunner(self.path, self.output_name, precision,
                                                                           self.threads)
        return runner

    def _run_session(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        options = self._run_options()  # the watchdog stops the run through it
        with watchdog.guard(functools.partial(setattr, options, "terminate", True),
                            f"running {self.path} on a batch of {len(next(iter(feed.values())))}"):
            return self.session.run([self.output_name], feed, options)[0]

    def _run_once(self, z: np.ndarray, labels: np.ndarray | None, name: str) -> np.ndarray:
        runner = self._runner(name)
        try:
            feed = self._feed(z, labels)
            if name != runtimes.ONNXRUNTIME and len(z) not in self._proven:  # OpenVINO's memory is not capped:
                self._run_session(feed)  # a size goes to it once the capped onnxruntime ran it (no route bypasses)
                self._proven.add(len(z))
            out = runner(feed)
            if name == runtimes.ONNXRUNTIME:
                self._proven.add(len(z))
        except GanforgeError:  # the time limit's, or its setting's
            raise
        except Exception as exc:  # the runtimes' own types (out of memory, a kernel failing)
            raise GanforgeError(runtimes.run_failed(self.path, len(z), exc, self.batch_option)) from None
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

    def _run_noise(self, z: np.ndarray, labels: np.ndarray | None = None, runtime: str | None = None,
                   small_job: bool = False) -> np.ndarray:
        if labels is None and self.info.conditional:  # tuning times noise alone: any class runs alike
            labels = np.zeros(len(z), np.int64)
        return self._run(z.astype(np.float32, copy=False), labels, runtime, small_job)

