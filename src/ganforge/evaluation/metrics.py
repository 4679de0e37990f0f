"""Sample-quality metrics on feature vectors (numpy only).

Each takes real and generated samples as ``[n, d]`` arrays. Every score comes
with a floor in practice: the same metric between two disjoint halves of the
real data (see ``evaluation.series`` / the gan-eval report).
"""

from __future__ import annotations

import numpy as np

METRIC_SAMPLES = 2000  # k-NN metrics are O(n^2): scored on at most this many per side (evaluation.images)


def _as2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel.

    ``bandwidth`` defaults to the median pairwise distance of the pooled samples
    (the median heuristic). About 0 for samples of one distribution; larger as
    the distributions part.
    """
    x, y = _as2d(x), _as2d(y)
    if bandwidth is None:
        pooled = np.concatenate([x, y])
        d = np.sqrt(_sq_dists(pooled, pooled))
        bandwidth = float(np.median(d[np.triu_indices(len(pooled), 1)])) or 1.0
    gamma = 1.0 / (2 * bandwidth**2)
    kxx, kyy, kxy = (np.exp(-gamma * _sq_dists(a, b)) for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``x`` and ``y`` (FID's formula):
    ``|mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2)``."""
    x, y = _as2d(x), _as2d(y)
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root = _sqrtm_psd(s_x)
    cross = _sqrtm_psd(root @ s_y @ root)
    value = ((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.trace(cross)
    return float(max(value, 0.0))  # rounding in the matrix square roots can dip just below 0


def _kth_neighbour_radius(a: np.ndarray, k: int) -> np.ndarray:
    d = np.sqrt(_sq_dists(a, a))
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019, arXiv:1904.06991):
    the share of generated samples inside the real k-NN manifold, and of real
    samples inside the generated one."""
    real, fake = _as2d(real), _as2d(fake)
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = np.sqrt(_sq_dists(fake, real))  # [fake, real]
    precision = float((d <= r_real[None, :]).any(1).mean())
    recall = float((d.T <= r_fake[None, :]).any(1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020, arXiv:2002.09797). Density is about 1
    for samples of the real distribution; coverage is the share of real samples
    whose k-NN ball holds a generated one."""
    real, fake = _as2d(real), _as2d(fake)
    r_real = _kth_neighbour_radius(real, k)
    inside = np.sqrt(_sq_dists(fake, real)) <= r_real[None, :]  # [fake, real]
    density = float(inside.sum() / (k * len(fake)))
    coverage = float(inside.any(0).mean())
    return density, coverage


def classifier_two_sample(real: np.ndarray, fake: np.ndarray, *, seed: int = 0, steps: int = 300,
                          features: int = 512) -> float:
    """Held-out accuracy of a real-vs-fake classifier, reported as ``|accuracy - 0.5|``:
    about 0 when it cannot tell the sets apart, 0.5 when it always can.

    The classifier is logistic regression on random Fourier features of an RBF
    kernel (bandwidth: the median pairwise distance), so it sees non-linear
    differences (smoothness, shape), not only shifted means. Trained on one half,
    scored on the other.
    """
    real, fake = _as2d(real), _as2d(fake)
    x = np.concatenate([real, fake])
    y = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    sample = x[: min(len(x), 500)]
    d = np.sqrt(_sq_dists(sample, sample))
    bandwidth = float(np.median(d[np.triu_indices(len(sample), 1)])) or 1.0
    w = rng.standard_normal((x.shape[1], features)) / bandwidth
    b = rng.uniform(0, 2 * np.pi, features)
    phi = np.sqrt(2.0 / features) * np.cos(x @ w + b)
    phi = np.concatenate([phi, np.ones((len(phi), 1))], axis=1)
    half = len(phi) // 2
    theta = np.zeros(phi.shape[1])
    for _ in range(steps):  # gradient descent on the L2-regularised logistic loss
        p = 1 / (1 + np.exp(-phi[:half] @ theta))
        theta -= 2.0 * (phi[:half].T @ (p - y[:half]) / half + 1e-4 * theta)
    accuracy = float(((phi[half:] @ theta > 0) == (y[half:] > 0.5)).mean())
    return abs(accuracy - 0.5)
