"""How the shared loop uses the hardware: device, mixed precision, memory format, torch.compile.

Everything here is a no-op or a plain choice on CPU; the CUDA-only parts (cuDNN autotuning,
channels_last, bf16 by default) switch on only when the device is CUDA.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.errors import DeviceError, GanforgeWarning, first_line
from ganforge.training.config import AMP_CHOICES

GRAD_SCALER_INIT = 2.0**16  # GradScaler's first scale (torch's default); fp16 only
COMPILE_OPTIONS: dict = {}  # keyword arguments of torch.compile (backend, mode)


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for, but torch sees no CUDA device here; use --device cpu or auto")
        return torch.device("cuda")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """``--deterministic``: deterministic algorithms and no cuDNN autotuning. Otherwise, on CUDA,
    cuDNN picks the fastest convolution algorithms for the shapes it meets (``cudnn.benchmark``)."""
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


@dataclass(frozen=True)
class Precision:
    """The autocast dtype of forward passes (None: float32) and whether fp16 needs a gradient scaler.

    Weights, optimizer states and checkpoints stay float32 whatever the precision.
    """

    name: str  # "bf16", "fp16" or "fp32"
    device_type: str  # "cpu" or "cuda"
    dtype: torch.dtype | None = None

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """fp16 gradients can underflow: losses are scaled up before backward and the gradients
        unscaled before the optimizer step, which is skipped when they overflowed. A disabled
        scaler (bf16, fp32) passes everything through."""
        return torch.amp.GradScaler(self.device_type, init_scale=GRAD_SCALER_INIT, enabled=self.name == "fp16")


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """``auto``: bf16 on a CUDA device that has it natively, float32 elsewhere; ``bf16`` and
    ``fp16`` autocast on any device (CPU included); ``off``: float32."""
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and _cuda_bf16() else "off"
    if amp == "off":
        return Precision("fp32", device.type)
    if amp == "bf16":
        if device.type == "cuda" and not _cuda_bf16():
            raise DeviceError("--amp bf16: this GPU has no native bfloat16; use --amp fp16 or --amp off")
        return Precision("bf16", device.type, torch.bfloat16)
    if amp == "fp16":
        return Precision("fp16", device.type, torch.float16)
    raise DeviceError(f"unknown --amp {amp!r}; use {', '.join(AMP_CHOICES)}")


def _cuda_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch: no emulation argument
        return torch.cuda.is_bf16_supported()


def has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules())


def use_channels_last(device: torch.device, *modules: nn.Module) -> bool:
    """channels_last (NHWC) pays off for convolutions on CUDA (tensor cores); on CPU it is left off,
    and so it is for a module whose class sets ``keeps_layout`` (the user's own, whose code may
    ``.view()`` a conv output as if it were NCHW, which fails on an NHWC one)."""
    return device.type == "cuda" and any(has_conv(m) for m in modules) and \
        not any(getattr(type(m), "keeps_layout", False) for m in modules)


def compile_or_eager(modules: dict[str, nn.Module], probe, what: str) -> tuple[dict[str, nn.Module], list[str]]:
    """``torch.compile`` the modules and run ``probe(modules)`` (a training step's forward and
    backward), where compilation really happens. If that fails, try again with the last module
    left eager (the gradient penalty's double backward, for one, does not compile: G still can),
    and so on down to none. One warning says what trains eagerly and why; torch.compile is an
    optimisation, never a reason to stop.

    Returns (the modules to train with, the names of those compiled).
    """
    names = list(modules)
    error = None
    for n in range(len(names), 0, -1):
        try:
            compiled = {k: torch.compile(m, **COMPILE_OPTIONS) if k in names[:n] else m for k, m in modules.items()}
            probe(compiled)
        except Exception as exc:  # dynamo, inductor and autograd raise many types; all mean "not here"
            error = error or exc
            continue
        if n < len(names):
            _warn_eager(what, names[n:], names[:n], error)
        return compiled, names[:n]
    _warn_eager(what, names, [], error)
    return modules, []


def _warn_eager(what: str, eager: list[str], compiled: list[str], error: Exception) -> None:
    where = f"{what}'s {' and '.join(eager)}" if compiled else what
    rest = f"{' and '.join(eager)} trains eagerly, {' and '.join(compiled)} compiled" if compiled else \
        "training without it"
    warnings.warn(f"--compile: torch.compile does not work for {where} here ({first_line(error, 160, typed=True)}); "
                  f"{rest}", GanforgeWarning, stacklevel=3)
