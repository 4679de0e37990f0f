"""What gan-bench can time. onnxruntime backends need no torch; the torch ones
import it when built, and are skipped with a note where it is not installed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge import threads, zipcheck
from ganforge.errors import GanforgeError, first_line
from ganforge.inference import watchdog

# generator.ts proven before torch reads it (zipcheck): a damaged one is skipped with a note
TORCHSCRIPT = zipcheck.Reader("TorchScript file", "export it again", legacy="export it again")


@dataclass
class Backend:
    name: str
    load_s: float  # session / model load time
    run: Callable[[np.ndarray], object]  # one call on a batch of noise
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # settings the backend chose for itself (e.g. its micro-batch)


class Skipped(Exception):
    """A backend that cannot run here; the message says why."""


def threads_info(choice: threads.Choice) -> dict:
    """What a backend computes on, for the report: its threads and why."""
    return {"intra_op": choice.intra, "inter_op": choice.inter, "reason": choice.reason}


def torch_threads(torch, module) -> dict:
    """Set torch's threads for ``module`` as the onnxruntime sessions get theirs: chosen for its size
    (parameters x a run of :data:`~ganforge.threads.INFER_RUN` samples, as
    :func:`~ganforge.threads.for_model_file` counts an ONNX file's) within the same cores, so that
    every backend is timed on the same budget. torch's threads are the process's: the torch
    backends share them."""
    params = sum(p.numel() for p in module.parameters())
    choice = threads.apply_torch(torch, params * threads.INFER_RUN, f"{params:,} parameters",
                                 window=threads.INFER_WINDOW_S)
    return threads_info(choice)


def bench_labels(n: int, num_classes: int | None) -> np.ndarray | None:
    """Labels a conditional generator is timed with (every class in turn); None otherwise."""
    return None if not num_classes else np.arange(n, dtype=np.int64) % num_classes


def ganforge_backend(model: Path, device: str, label: str, foreign: dict | None = None, *, provider: str | None = None,
                     precision: str = "fp32") -> Backend:
    """The model as gan-infer opens it (``provider``/``precision``: its --provider and --precision), with
    its plan (runtime per run size, micro-batch) measured afresh: the figures below are with it.
    ``foreign``: Generator arguments for a model without ganforge metadata."""
    from ganforge.inference import Generator

    t0 = time.perf_counter()
    try:
        gen = Generator(model, device=device, provider=provider, precision=precision, **(foreign or {}))
        gen.batch_option = "--batch-sizes"
    except GanforgeError as exc:
        raise Skipped(str(exc)) from None
    load = time.perf_counter() - t0
    info: dict = {"precision": precision, "threads": threads_info(gen.threads)}
    if gen.tune_micro_batch() is not None:
        info |= {"micro_batch": gen.micro_batch, "plan": gen.plan.describe(), "routes": [list(r) for r in gen.plan.routes],
                 "micro_batch_samples_per_s": {str(k): round(v) for k, v in gen.micro_batch_speeds.items()},
                 "plan_samples_per_s": gen.plan.to_json()["samples_per_s"]}
    elif gen.fixed_batch:  # the graph's own batch: every run takes that many
        info["fixed_batch"] = gen.fixed_batch
    classes = gen.info.num_classes
    run = gen if not classes else (lambda z: gen(z, bench_labels(len(z), classes)))
    return Backend(label, load, run, info=info)


def _torch():
    try:
        import torch
    except ImportError:
        raise Skipped("torch is not installed (pip install 'ganforge[train]')") from None
    return torch


def torch_eager_backend(checkpoint_path: Path, *, compiled: bool = False) -> Backend:
    """G of the checkpoint in PyTorch; ``compiled``: through ``torch.compile`` (inductor), which
    compiles again for each batch size on its first call (the warm-up calls absorb it)."""
    torch = _torch()
    from ganforge.training import checkpoint

    t0 = time.perf_counter()
    try:
        G, _, _ = checkpoint.build_generator(checkpoint.load(checkpoint_path))
    except GanforgeError as exc:  # the checkpoint beside the model is not usable: time the rest
        raise Skipped(str(exc)) from None
    load = time.perf_counter() - t0
    info = {"threads": torch_threads(torch, G)}
    classes = getattr(G, "num_classes", None)
    if compiled:
        G = torch.compile(G, dynamic=False)

    def run(z):
        with torch.inference_mode():
            if classes:
                return G(torch.from_numpy(z), torch.from_numpy(bench_labels(len(z), classes)))
            return G(torch.from_numpy(z))

    return Backend("torch-compile" if compiled else "torch-eager", load, run, info=info)


def torchscript_backend(path: Path) -> Backend:
    torch = _torch()
    import warnings

    t0 = time.perf_counter()
    try:
        zipcheck.verify_file(path, TORCHSCRIPT)  # its CRCs: torch.jit.load checks none
    except GanforgeError as exc:
        raise Skipped(str(exc)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        extra = {"ganforge.num_classes": ""}
        try:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
            classes = int(extra["ganforge.num_classes"]) if extra["ganforge.num_classes"] else None
        except Exception as exc:  # torch raises RuntimeError, ValueError and its own types for a bad file
            raise Skipped(f"{path} is not a loadable TorchScript generator ({first_line(exc, 160)}); re-export it "
                          "with gan-export --format torchscript") from None
    load = time.perf_counter() - t0
    info = {"threads": torch_threads(torch, module)}

    def run(z):
        with torch.inference_mode():
            if classes:
                return module(torch.from_numpy(z), torch.from_numpy(bench_labels(len(z), classes)))
            return module(torch.from_numpy(z))

    return Backend("torchscript", load, run, info=info)


OPENVINO_HINTS = {"openvino-fp32": "f32", "openvino-default": None}  # None: OpenVINO's own (bf16 where the CPU has it)


def openvino_backend(model: Path, name: str) -> Backend:
    """The same ONNX file compiled by OpenVINO's CPU runtime (the ``openvino`` extra): a peer a
    user who wants speed would try. ``name``: a key of OPENVINO_HINTS, the precision it runs."""
    try:
        import openvino
    except ImportError:
        raise Skipped("openvino is not installed (pip install 'ganforge[openvino]')") from None
    hint = OPENVINO_HINTS[name]
    choice = threads.for_model_file(model)  # the onnxruntime sessions' budget
    config = {**({"INFERENCE_PRECISION_HINT": hint} if hint else {}), **threads.openvino_config(choice)}
    t0 = time.perf_counter()
    try:
        compiled = openvino.Core().compile_model(str(model), "CPU", config)
    except Exception as exc:  # OpenVINO's own error types
        raise Skipped(f"OpenVINO cannot compile {model.name} ({first_line(exc, 160)})") from None
    request = compiled.create_infer_request()
    load = time.perf_counter() - t0
    names = {port.get_any_name() for port in compiled.inputs}
    labelled = "labels" in names

    def run(z):
        feed = {"z": z, "labels": bench_labels(len(z), classes)} if labelled else {"z": z}
        with watchdog.guard(request.cancel, f"OpenVINO running {model.name} on a batch of {len(z)}"):
            request.infer(feed)
        return request.get_output_tensor(0).data

    classes = None
    if labelled:
        from ganforge.inference import Generator

        classes = Generator(model, device="cpu").info.num_classes
    hinted = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino Type: f32, bf16, f16
    precision = hinted.get_type_name() if hasattr(hinted, "get_type_name") else str(hinted)
    return Backend(name, load, run, info={"inference_precision": precision, "threads": threads_info(choice)})
