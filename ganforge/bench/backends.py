"""What gan-bench can time. onnxruntime backends need no torch; the torch ones
import it when built, and are skipped with a note where it is not installed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError


@dataclass
class Backend:
    name: str
    load_s: float  # session / model load time
    run: Callable[[np.ndarray], object]  # one call on a batch of noise
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # settings the backend chose for itself (e.g. its micro-batch)


class Skipped(Exception):
    """A backend that cannot run here; the message says why."""


def bench_labels(n: int, num_classes: int | None) -> np.ndarray | None:
    """Labels a conditional generator is timed with (every class in turn); None otherwise."""
    return None if not num_classes else np.arange(n, dtype=np.int64) % num_classes


def onnxruntime_backend(model: Path, device: str, label: str | None = None, foreign: dict | None = None) -> Backend:
    """``foreign``: Generator arguments for a model without ganforge metadata."""
    from ganforge.inference import Generator

    t0 = time.perf_counter()
    try:
        gen = Generator(model, device=device, **(foreign or {}))
    except GanforgeError as exc:
        raise Skipped(str(exc)) from None
    load = time.perf_counter() - t0
    info = {}
    if gen.tune_micro_batch() is not None:  # measured afresh: the figures below are with it
        info = {"micro_batch": gen.micro_batch,
                "micro_batch_samples_per_s": {str(k): round(v) for k, v in gen.micro_batch_speeds.items()}}
    elif gen.fixed_batch:  # the graph's own batch: every run takes that many
        info = {"fixed_batch": gen.fixed_batch}
    classes = gen.info.num_classes
    run = gen if not classes else (lambda z: gen(z, bench_labels(len(z), classes)))
    return Backend(label or f"onnxruntime-{device}", load, run, info=info)


def _torch():
    try:
        import torch
    except ImportError:
        raise Skipped("torch is not installed (pip install 'ganforge[train]')") from None
    return torch


def torch_eager_backend(checkpoint_path: Path) -> Backend:
    torch = _torch()
    from ganforge.training import checkpoint

    t0 = time.perf_counter()
    try:
        G, _, _ = checkpoint.build_generator(checkpoint.load(checkpoint_path))
    except GanforgeError as exc:  # the checkpoint beside the model is not usable: time the rest
        raise Skipped(str(exc)) from None
    load = time.perf_counter() - t0

    classes = getattr(G, "num_classes", None)

    def run(z):
        with torch.inference_mode():
            if classes:
                return G(torch.from_numpy(z), torch.from_numpy(bench_labels(len(z), classes)))
            return G(torch.from_numpy(z))

    return Backend("torch-eager", load, run)


def torchscript_backend(path: Path) -> Backend:
    torch = _torch()
    import warnings

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        extra = {"ganforge.num_classes": ""}
        try:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
            classes = int(extra["ganforge.num_classes"]) if extra["ganforge.num_classes"] else None
        except Exception as exc:  # torch raises RuntimeError, ValueError and its own types for a bad file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise Skipped(f"{path} is not a loadable TorchScript generator ({first}); re-export it with "
                          "gan-export --format torchscript") from None
    load = time.perf_counter() - t0

    def run(z):
        with torch.inference_mode():
            if classes:
                return module(torch.from_numpy(z), torch.from_numpy(bench_labels(len(z), classes)))
            return module(torch.from_numpy(z))

    return Backend("torchscript", load, run)
