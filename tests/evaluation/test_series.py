import math

import numpy as np
import pytest

from ganforge.evaluation.series import evaluate_series, fit_sinusoids, wasserstein_1d


def test_fit_recovers_known_parameters():
    t = np.arange(32) / 32
    curves = np.stack([0.8 * np.sin(2 * math.pi * 1.25 * t + 0.5) + 0.1, -0.3 * np.sin(2 * math.pi * 0.5 * t)])
    fit = fit_sinusoids(curves)
    assert fit["r2"] == pytest.approx([1.0, 1.0], abs=1e-9)
    assert fit["frequency"] == pytest.approx([1.25, 0.5])
    assert fit["amplitude"] == pytest.approx([0.8, 0.3], abs=1e-6)
    assert fit["phase"][0] == pytest.approx(0.5, abs=1e-6) and fit["offset"][0] == pytest.approx(0.1, abs=1e-6)
    noise = np.random.default_rng(0).uniform(-1, 1, (50, 32))
    assert np.median(fit_sinusoids(noise)["r2"]) < 0.5


def test_wasserstein_1d():
    a = np.random.default_rng(0).standard_normal(5000)
    assert wasserstein_1d(a, a) == 0
    assert wasserstein_1d(a, a + 2.0) == pytest.approx(2.0, abs=1e-9)


def _sines(n, seed, amp=(0.4, 1.0)):
    rng = np.random.default_rng(seed)
    t = np.arange(32) / 32
    a, f, p = rng.uniform(*amp, (n, 1)), rng.uniform(0.5, 2.0, (n, 1)), rng.uniform(0, 2 * math.pi, (n, 1))
    return a * np.sin(2 * math.pi * f * t + p)


def test_evaluate_real_vs_real_is_the_floor_and_noise_is_far():
    real = _sines(600, 0)
    good = evaluate_series(real, _sines(300, 1))
    bad = evaluate_series(real, np.random.default_rng(2).uniform(-1, 1, (300, 32)))
    assert good["floor"]["sine_like_fraction"] == 1.0 and good["generated"]["sine_like_fraction"] == 1.0
    assert good["generated"]["mmd"] < 0.005 and bad["generated"]["mmd"] > 5 * good["generated"]["mmd"]
    assert bad["generated"]["sine_like_fraction"] < 0.05
    assert good["generated"]["classifier_gap"] < 0.1 and bad["generated"]["classifier_gap"] > 0.3
    wrong_amplitude = evaluate_series(real, _sines(300, 3, amp=(0.1, 0.2)))
    assert wrong_amplitude["generated"]["param_w1"]["amplitude"] > 0.4 > good["generated"]["param_w1"]["amplitude"]
