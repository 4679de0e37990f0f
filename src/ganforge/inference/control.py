"""Controllable generation: truncation and edits along named latent directions, applied to the
keyed noise of sample ``i`` of seed ``s`` before the model runs, so an edited or truncated sample
is as addressable as a plain one and differs from it only by the control.

- **Truncation** ``T``: every noise component beyond ``T`` in absolute value is redrawn from
  the standard normal cut to ``[-T, T]``, from the seed's own redraw stream
  (:func:`ganforge.inference.keyed.uniform`, by inverse CDF: one draw a component, no
  rejection loop); components within ``T`` keep their values, so a large ``T`` changes nothing
  and a small one keeps what it can of each sample. Less unusual samples, less diversity (the
  trade-off gan-eval's ``--truncation`` curve measures).
- **Edits**: ``shift`` is the sum of each edit's amount times its direction's recommended step
  times its unit vector (:mod:`~ganforge.inference.directions`), added to every (truncated)
  noise vector.

Torch-free: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.inference import keyed

MAX_TRUNCATION = 100.0  # beyond about 6 no standard normal component is cut at all
MAX_AMOUNT = 100.0  # an edit's amount, in its direction's steps
MAX_SWEEP_STEPS = 64  # columns of a sweep


def check_truncation(value) -> float | None:
    """``value`` as a truncation threshold (a number above 0, at most :data:`MAX_TRUNCATION`),
    None for none; else a one-line GanforgeError."""
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"--truncation must be a number above 0 (0.5 to 1 is usual), got {value!r}") from None
    if not (math.isfinite(t) and 0 < t <= MAX_TRUNCATION):
        raise GanforgeError(f"--truncation must be above 0 and at most {MAX_TRUNCATION:g} (0.5 to 1 is usual; 3 "
                            f"cuts almost nothing), got {value!r}")
    return t


def check_amount(value, what: str = "an edit's amount") -> float:
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"{what} must be a number (of the direction's steps, such as +2 or -1), got "
                            f"{value!r}") from None
    if not (math.isfinite(a) and abs(a) <= MAX_AMOUNT):
        raise GanforgeError(f"{what} must be a number from -{MAX_AMOUNT:g} to {MAX_AMOUNT:g} (of the direction's "
                            f"steps; 1 is its recommended step), got {value!r}")
    return a


def _phi(x: float) -> float:
    """The standard normal CDF at ``x``."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# Acklam's rational approximation of the normal quantile (relative error below 1.2e-9: far finer
# than float32's 6e-8), for p in (0, 1)
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_LOW = 0.02425


def ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile of ``p`` (float64, each in (0, 1))."""
    p = np.asarray(p, np.float64)
    out = np.empty_like(p)
    low, high = p < _LOW, p > 1 - _LOW
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / \
        (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    for mask, sign, tail in ((low, 1.0, p[low]), (high, -1.0, 1 - p[high])):
        q = np.sqrt(-2 * np.log(tail))
        out[mask] = sign * (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / \
            ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1)
    return out


def truncate(z: np.ndarray, threshold: float, seed: int, start: int) -> np.ndarray:
    """The noise ``z`` (``[n, dim]``, samples ``start:start + n`` of ``seed``) truncated at
    ``threshold``: each component beyond it redrawn from the normal cut to ``[-threshold, threshold]``
    by its own keyed uniform; the others as they are. A new array; ``z`` is not changed."""
    out = np.array(z, np.float32, copy=True)
    cut = np.abs(out) > threshold
    if not cut.any():
        return out
    u = keyed.uniform(seed, start, start + len(out), out.shape[1])[cut]
    low = _phi(-threshold)
    p = np.clip(low + u * (1.0 - 2.0 * low), np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0))
    out[cut] = np.clip(ndtri(p), -threshold, threshold).astype(np.float32)
    return out


@dataclass(frozen=True)
class Edit:
    """An edit as asked: ``name`` of a direction, ``amount`` in its steps (1: the recommended step)."""

    name: str
    amount: float = 1.0

    def text(self) -> str:
        return f"{self.name}={self.amount:+g}"


def parse_edit(text: str) -> Edit:
    """``NAME`` or ``NAME=AMOUNT`` (``sneaker``, ``pc1=-1``, ``pc0=+2.5``) as an :class:`Edit`."""
    text = str(text).strip()
    name, sep, amount = text.partition("=")
    name = name.strip()
    if not name:
        raise GanforgeError(f"--edit takes NAME or NAME=AMOUNT (such as sneaker, or pc1=-1), got {text!r}")
    return Edit(name, check_amount(amount.strip(), f"--edit {name}'s amount") if sep else 1.0)


def parse_sweep(text: str) -> tuple[str, float, float]:
    """``NAME`` (from -2 to +2 steps) or ``NAME=A:B`` as ``(name, first, last)``, in steps."""
    text = str(text).strip()
    name, sep, span = text.partition("=")
    name = name.strip()
    if not name:
        raise GanforgeError(f"--sweep takes NAME or NAME=A:B (such as pc0, or sneaker=-1:3), got {text!r}")
    if not sep:
        return name, -2.0, 2.0
    a, colon, b = span.partition(":")
    if not colon:
        raise GanforgeError(f"--sweep {name}= takes a span A:B of steps (such as -2:2), got {span!r}")
    first, last = check_amount(a.strip(), f"--sweep {name}'s start"), check_amount(b.strip(), f"--sweep {name}'s end")
    if first == last:
        raise GanforgeError(f"--sweep {name}={span} spans nothing: pass two different ends, such as -2:2")
    return name, first, last


@dataclass(frozen=True)
class Control:
    """What is done to the noise before the model runs: ``truncation`` (None: none) and
    ``shift`` (the edits' sum, ``[latent_dim]`` float32, or None), with the ``edits`` it came
    from (for manifests and messages)."""

    truncation: float | None = None
    shift: np.ndarray | None = field(default=None, compare=False)
    edits: tuple[Edit, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "truncation", check_truncation(self.truncation))
        if self.shift is not None:
            shift = np.asarray(self.shift, np.float32).reshape(-1)
            if not np.isfinite(shift).all():
                raise GanforgeError("an edit's shift of the noise is not finite: check the directions file")
            shift.setflags(write=False)
            object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "edits", tuple(self.edits))

    def __bool__(self) -> bool:
        return self.truncation is not None or self.shift is not None

    def apply(self, z: np.ndarray, seed: int, start: int) -> np.ndarray:
        """``z``, noise ``[n, dim]`` of samples ``start:start + n`` of ``seed``, truncated and shifted."""
        if self.truncation is not None:
            z = truncate(z, self.truncation, seed, start)
        if self.shift is not None:
            if self.shift.shape[0] != z.shape[1]:
                raise GanforgeError(f"the edits move {self.shift.shape[0]} noise values, the model takes "
                                    f"{z.shape[1]}: the directions are another model's")
            z = z + self.shift
        return z

    def manifest(self) -> dict:
        """How a folder's samples were controlled, for its manifest (exact: the shift's floats)."""
        return {"truncation": self.truncation, "edits": [[e.name, e.amount] for e in self.edits],
                "shift": None if self.shift is None else [float(v) for v in self.shift]}

    @classmethod
    def from_manifest(cls, data) -> Control:
        try:
            edits = tuple(Edit(str(name), check_amount(amount)) for name, amount in data.get("edits") or ())
            shift = data.get("shift")
            if shift is not None and not (isinstance(shift, list) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in shift)):
                raise ValueError("shift")
            return cls(data.get("truncation"), None if shift is None else np.asarray(shift, np.float32), edits)
        except (AttributeError, TypeError, ValueError):
            raise GanforgeError("the manifest's control (truncation, edits) is not one ganforge writes") from None

    def text(self) -> str:
        parts = [] if self.truncation is None else [f"truncation {self.truncation:g}"]
        if self.edits:
            parts.append("edits " + " ".join(e.text() for e in self.edits))
        return ", ".join(parts)


def sweep_amounts(first: float, last: float, steps: int) -> list[float]:
    """``steps`` amounts from ``first`` to ``last``, both ends included."""
    return [float(v) for v in np.linspace(first, last, steps)]


def names_text(names: Sequence[str], most: int = 12) -> str:
    from ganforge.errors import printable

    shown = ", ".join(printable(n) for n in names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")
