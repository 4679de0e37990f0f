"""Evaluating generated series (the ``sine`` variant): how sinusoidal each curve is,
how its fitted parameters are distributed against the real ones, and two
distribution-level scores, each beside its real-vs-real floor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ganforge.evaluation.metrics import classifier_two_sample, mmd_rbf

FREQUENCIES = np.linspace(0.25, 3.0, 111)  # cycles over the curve's window
SINE_LIKE_R2 = 0.9


def fit_sinusoids(curves: np.ndarray) -> dict[str, np.ndarray]:
    """Best single sinusoid ``A*sin(2*pi*f*t + phi) + c`` per row of ``curves`` [n, L]
    (t = i/L), by least squares over a grid of frequencies: amplitude, frequency,
    phase, offset and the fit's R^2."""
    curves = np.asarray(curves, dtype=np.float64)
    n, length = curves.shape
    t = np.arange(length) / length
    centered = curves - curves.mean(1, keepdims=True)
    total = (centered**2).sum(1) + 1e-12
    best = {"r2": np.full(n, -np.inf), "frequency": np.zeros(n), "amplitude": np.zeros(n),
            "phase": np.zeros(n), "offset": np.zeros(n)}
    for f in FREQUENCIES:
        basis = np.stack([np.sin(2 * math.pi * f * t), np.cos(2 * math.pi * f * t), np.ones(length)], 1)
        coef, *_ = np.linalg.lstsq(basis, curves.T, rcond=None)  # [3, n]
        r2 = 1 - (((basis @ coef).T - curves) ** 2).sum(1) / total
        better = r2 > best["r2"]
        best["r2"][better] = r2[better]
        best["frequency"][better] = f
        best["amplitude"][better] = np.hypot(coef[0], coef[1])[better]
        best["phase"][better] = np.mod(np.arctan2(coef[1], coef[0]), 2 * math.pi)[better]
        best["offset"][better] = coef[2][better]
    return best


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two 1-D samples (quantile functions on a common grid)."""
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def compare(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> dict[str, Any]:
    fr, ff = fit_sinusoids(real), fit_sinusoids(fake)
    return {
        "r2_median": float(np.median(ff["r2"])),
        "sine_like_fraction": float((ff["r2"] >= SINE_LIKE_R2).mean()),
        "param_w1": {k: wasserstein_1d(fr[k], ff[k]) for k in ("amplitude", "frequency", "offset")},
        "mmd": mmd_rbf(real, fake),
        "classifier_gap": classifier_two_sample(real, fake, seed=seed),
    }


def evaluate_series(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Scores of ``fake`` against ``real``, and the same scores between two disjoint
    halves of ``real`` (the floor a perfect generator would reach)."""
    half = len(real) // 2
    return {"generated": compare(real[:half], fake[: len(fake)], seed),
            "floor": compare(real[:half], real[half:], seed),
            "n_real": int(len(real)), "n_generated": int(len(fake))}
