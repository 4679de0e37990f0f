"""Metrics on cases with known answers: identical sets score ~0, disjoint ones large."""

import numpy as np
import pytest

from ganforge.evaluation.metrics import (classifier_two_sample, density_coverage, frechet_distance, mmd_rbf,
                                         precision_recall)

rng = np.random.default_rng(0)
A = rng.standard_normal((400, 5))
B = rng.standard_normal((400, 5))  # same distribution, other draws
FAR = rng.standard_normal((400, 5)) + 6.0  # disjoint


def test_frechet_matches_the_closed_form():
    # Gaussians with known moments: |mu|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) for diagonal S
    x = rng.standard_normal((20000, 3)) * np.array([1.0, 2.0, 3.0])
    y = rng.standard_normal((20000, 3)) * np.array([2.0, 2.0, 1.0]) + np.array([1.0, 0.0, 0.0])
    want = 1.0 + sum(a * a + b * b - 2 * a * b for a, b in ((1, 2), (2, 2), (3, 1)))
    assert frechet_distance(x, y) == pytest.approx(want, rel=0.05)
    assert frechet_distance(A, A) == pytest.approx(0.0, abs=1e-6)


def test_identical_near_zero_disjoint_large():
    assert abs(mmd_rbf(A, B)) < 0.01 and mmd_rbf(A, FAR) > 0.5
    assert frechet_distance(A, B) < 0.2 and frechet_distance(A, FAR) > 150
    assert classifier_two_sample(A, B) < 0.1 and classifier_two_sample(A, FAR) > 0.45


def test_precision_recall_density_coverage():
    p, r = precision_recall(A, B)
    assert p > 0.85 and r > 0.85
    assert precision_recall(A, FAR) == (0.0, 0.0)
    collapsed = np.repeat(A[:1], 400, axis=0) + 1e-3 * rng.standard_normal((400, 5))  # mode collapse
    p, r = precision_recall(A, collapsed)
    assert p > 0.9 and r < 0.1  # realistic but not diverse
    d, c = density_coverage(A, B)
    assert 0.8 < d < 1.2 and c > 0.9
    assert density_coverage(A, FAR) == (0.0, 0.0)
    assert density_coverage(A, collapsed)[1] < 0.05
