"""Principal directions of a generator's latent space, from its own samples (GANSpace's recipe,
on the output): sample ``n`` noise vectors, run the model, take the principal components of the
samples (pixels, or a series' values), and regress the noise on each sample's coordinates along
them; the regression's direction for component ``k`` is the latent direction whose movement the
component's coordinate follows. It needs only the model's input and output, so it works for any
generator, ganforge's, a user's module exported, or a foreign ONNX file with a known latent.

A candidate whose direction is close to one kept before it (cosine at least :data:`MAX_COSINE`)
is dropped as a duplicate and the next component taken. Each direction's recommended step is
the latent distance that moves its component's coordinate by one standard deviation of the
samples', measured on other noise (the model is not linear: the regression alone understates
it), and what an edit of one step changes is measured there too (the mean absolute change of a
sample value).

Torch-free: numpy and the inference package.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.inference import keyed
from ganforge.inference.directions import Direction
from ganforge.limits import check_memory

FIT_SEED = 7_000_000  # the noise fitted is its own, apart from the seeds users ask for
MEASURE_SEED = 7_000_001
MAX_COSINE = 0.5  # a direction this close to one kept is a duplicate
MAX_CANDIDATES = 64  # components looked at, at most, for K directions
PROBE = 1.0  # latent units moved to measure a direction's slope
MIN_STEP, MAX_STEP = 0.25, 8.0  # a recommended step, in latent units (a noise vector's length is about sqrt(dim))


def _samples(gen, z: np.ndarray, batch: int = 1024) -> np.ndarray:
    labels = None
    if gen.info.conditional:  # a conditional model's directions are found over all its classes
        labels = np.arange(len(z), dtype=np.int64) % gen.info.num_classes
    out = np.concatenate([gen(z[i : i + batch], None if labels is None else labels[i : i + batch])
                          for i in range(0, len(z), batch)])
    if not np.isfinite(out).all():
        raise GanforgeError(f"{gen.path} gives samples that are not finite: no directions can be found from them")
    return out.reshape(len(z), -1).astype(np.float64)


def principal_directions(gen, k: int = 5, n: int = 4096, measure_n: int = 256) -> list[Direction]:
    """The first ``k`` principal directions (named ``pc0``, ``pc1``, ...) of the open generator
    ``gen`` (:class:`~ganforge.inference.Generator`), fitted on ``n`` samples."""
    dim, size = gen.info.latent_dim, int(np.prod(gen.info.sample_shape))
    if n < 2 * dim:
        raise GanforgeError(f"principal directions of a {dim}-value latent need at least {2 * dim} samples, got {n}")
    check_memory(f"principal directions from {n:,} samples of {size:,} values", 3 * 8 * n * size,
                 "pass a smaller --samples")
    z = keyed.noise(FIT_SEED, 0, n, dim)
    x = _samples(gen, z)
    centre = x.mean(axis=0)
    x -= centre
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    del x
    coords = u[:, :MAX_CANDIDATES] * s[:MAX_CANDIDATES]  # each sample's coordinate along each component
    sd = coords.std(axis=0)
    explained = s[:MAX_CANDIDATES] ** 2 / float((s**2).sum())
    zc = z.astype(np.float64) - z.mean(axis=0)
    found: list[Direction] = []
    kept: list[np.ndarray] = []
    for j in range(coords.shape[1]):
        if len(found) == k:
            break
        c = coords[:, j]
        if sd[j] <= 0:
            break
        w = zc.T @ c / float(c @ c)  # latent units per unit of the coordinate (least squares, one component)
        norm = float(np.linalg.norm(w))
        if not np.isfinite(norm) or norm == 0:
            continue
        v = w / norm
        if any(abs(float(v @ other)) >= MAX_COSINE for other in kept):
            continue  # a duplicate of a direction kept before
        fitted = zc @ v
        r = float(np.corrcoef(fitted, c)[0, 1]) if fitted.std() > 0 else 0.0
        found.append(Direction(f"pc{len(found)}", "principal", v.astype(np.float32), 1.0,
                               {"component": j, "explained_variance": round(float(explained[j]), 5),
                                "correlation": round(r, 4)}))
        kept.append(v)
    if len(found) < k:
        raise GanforgeError(f"found {len(found)} distinct principal directions of the {k} asked: the model's samples "
                            f"vary along fewer; pass a smaller --k")
    zm = keyed.noise(MEASURE_SEED, 0, measure_n, dim)
    base = _samples(gen, zm)
    out = []
    for d in found:
        axis = vt[d.measured["component"]]
        moved = _samples(gen, zm + PROBE * d.vector)
        slope = float(((moved - base) @ axis).mean()) / PROBE  # the coordinate's change per latent unit
        if not np.isfinite(slope) or abs(slope) < 1e-12:
            continue
        vector = d.vector if slope > 0 else -d.vector  # a positive edit raises the coordinate
        step = float(np.clip(sd[d.measured["component"]] / abs(slope), MIN_STEP, MAX_STEP))
        moved = _samples(gen, zm + step * vector)
        d.measured["value_change_per_step"] = round(float(np.abs(moved - base).mean()), 5)
        out.append(Direction(d.name, d.kind, vector, round(step, 4), d.measured))
    return out
