"""Weights loaded into a module exactly as the module holds them, or not at all.

``nn.Module.load_state_dict`` copies each tensor into the module's own, casting on the way: an
int64 or float64 weight in a checkpoint loads into a float32 layer without a word. Every place
that loads a state dict from a file (a checkpoint's G, G_ema and D on resume and export, a
user's ``--weights``, gan-eval's evaluator) calls :func:`load_exact` instead, which checks every
key, dtype and shape against the module first and names the first that does not fit::

    load_exact(G, state, "generator")
    # WeightsMisfit: its generator does not fit the model: net.0.weight is int64 [8, 4]; the model's is float32 [8, 4]

``widen=True`` (a user's weights only) admits the one conversion that loses nothing: half
precision (float16, bfloat16) into a float32 or float64 module.

torch; above the ground floor, below training, usercode and evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

EXACT_WIDENINGS = {(torch.float16, torch.float32), (torch.bfloat16, torch.float32), (torch.float16, torch.float64),
                   (torch.bfloat16, torch.float64), (torch.float32, torch.float64)}


class WeightsMisfit(ValueError):
    """A state dict that does not fit its module; ``misfit`` says how."""

    def __init__(self, message: str, misfit: Misfit):
        super().__init__(message)
        self.misfit = misfit


def _described(t: object) -> str:
    if not torch.is_tensor(t):
        return f"a {type(t).__name__}, not a tensor"
    return f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}"


@dataclass(frozen=True)
class Wrong:
    """One tensor of another dtype or shape than the module's: what the file has, what the module."""

    key: str
    got: object
    want: torch.Tensor

    @property
    def shape_differs(self) -> bool:
        return not torch.is_tensor(self.got) or self.got.shape != self.want.shape

    def __str__(self) -> str:
        return f"{self.key} is {_described(self.got)}; the model's is {_described(self.want)}"


@dataclass
class Misfit:
    """How a state dict differs from its module: keys missing and unexpected, and tensors of
    another dtype or shape (``"net.0.weight is int64 [8, 4]; the model's is float32 [8, 4]"``)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong: list[Wrong] = field(default_factory=list)
    widened: set[str] = field(default_factory=set)  # dtypes converted exactly (widen=True)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong)

    def describe(self, shown: Callable[[list[str]], str] = lambda keys: ", ".join(keys[:3])) -> str:
        parts = ([f"{len(self.missing)} keys missing ({shown(self.missing)})"] if self.missing else []) + (
            [f"{len(self.unexpected)} unexpected ({shown(self.unexpected)})"] if self.unexpected else [])
        if self.wrong:
            more = f" (and {len(self.wrong) - 1} more)" if len(self.wrong) > 1 else ""
            parts.append(f"{self.wrong[0]}{more}")
        return "; ".join(parts)


def misfit(module: nn.Module, state: Mapping[str, object], *, widen: bool = False,
           optional: Callable[[str], bool] = lambda key: False) -> Misfit:
    """How ``state`` differs from ``module``'s own state dict (keys for which ``optional`` holds may
    be missing: a BatchNorm counter old PyTorch versions did not save)."""
    own = module.state_dict()
    found = Misfit(missing=[k for k in own if k not in state and not optional(k)],
                   unexpected=[k for k in state if k not in own])
    for key, mine in own.items():
        if key not in state:
            continue
        theirs = state[key]
        if torch.is_tensor(theirs) and theirs.shape == mine.shape and theirs.dtype == mine.dtype:
            continue
        if torch.is_tensor(theirs) and theirs.shape == mine.shape and widen \
                and (theirs.dtype, mine.dtype) in EXACT_WIDENINGS:
            found.widened.add(str(theirs.dtype).removeprefix("torch."))
            continue
        found.wrong.append(Wrong(key, theirs, mine))
    return found


def load_exact(module: nn.Module, state: Mapping[str, object], what: str, *, widen: bool = False,
               optional: Callable[[str], bool] = lambda key: False) -> Misfit:
    """Load ``state`` into ``module`` when every key, dtype and shape fits (see :func:`misfit`);
    else raise WeightsMisfit ("its <what> does not fit the model: <key> is int64 [8, 4]; the model's is float32
    [8, 4]").
    Returns the (empty) misfit, whose ``widened`` names the dtypes converted exactly."""
    found = misfit(module, state, widen=widen, optional=optional)
    if found:
        raise WeightsMisfit(f"its {what} does not fit the model: {found.describe()}", found)
    module.load_state_dict(state, strict=not any(optional(k) for k in module.state_dict() if k not in state))
    return found
