"""A direction toward each class of a labelled data set, for any generator, conditional or not
(InterFaceGAN's idea, a linear boundary in the latent space, fitted as Fisher's discriminant):
gan-eval's evaluator (a classifier trained on the real images, cached) labels the generator's
own samples, and for each class the direction is from the mean noise to the class's centroid,
the mean of the noise weighted by the evaluator's probability of the class. The noise is an
isotropic normal, so the within-class spread is close to the identity and this difference of
means is the discriminant's normal. (A ridge regression of each class's log-odds on the noise,
tried first, moved samples toward the look-alike classes instead: on a Fashion-MNIST mnist-mlp
27% of samples reached pullover along its direction, 93% along the centroid's.)

Its recommended step is measured, not assumed: on other noise, samples are moved along the
direction in steps of :data:`GRID` latent units, and the step is the first at which at least
:data:`CHOOSE_AT` of them are assigned the class (a margin over the :data:`TARGET_HIT` that
other noise must reach), else the step that assigns most. The curve (mean probability of the
class and share assigned, at each step) is kept in the file.

torch (the evaluator), through ganforge.evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ganforge.directions.principal import FIT_SEED, MEASURE_SEED, _samples
from ganforge.errors import GanforgeError
from ganforge.inference import keyed
from ganforge.inference.directions import Direction, slug

GRID = tuple(float(s) for s in np.arange(0.0, 8.01, 0.5))  # latent units tried along a class direction
TARGET_HIT = 0.8  # the share of moved samples assigned the class at the recommended step, on any noise
CHOOSE_AT = 0.85  # ... chosen where the measuring noise reaches this: other noise scatters around it


def probabilities(ev, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """The evaluator's class probabilities ``[n, classes]`` of ``images`` (in [-1, 1])."""
    import torch

    x = torch.as_tensor(images).float()
    with torch.no_grad():
        p = torch.cat([torch.softmax(ev.net(x[i : i + batch]), 1) for i in range(0, len(x), batch)]).numpy()
    if not np.isfinite(p).all():
        raise GanforgeError("the evaluator gives probabilities that are not finite: delete its cache (gan-eval's) "
                            "and run again")
    return p.astype(np.float64)


def evaluator_for(gen, data, *, seed: int = 0, steps: int = 1500, progress: Callable[[str], None] | None = None):
    """gan-eval's evaluator of ``data`` at the model's sample shape (trained once, then cached)."""
    from ganforge.evaluation import load_real_images
    from ganforge.evaluation.images import train_evaluator

    if gen.info.kind != "image":
        raise GanforgeError("class directions need an image model and labelled images: --data is for image models")
    real = load_real_images(data, gen.info.sample_shape)
    ev = train_evaluator(real, seed=seed, steps=steps, progress=progress)
    if ev.task != "classes":
        raise GanforgeError(f"{data} holds one class only: class directions need labelled images of two or more "
                            "classes (an IDX set with labels, or a folder of one sub-folder a class)")
    return ev


def _unit(gen, x: np.ndarray) -> np.ndarray:
    from ganforge.evaluation import to_unit_range

    return to_unit_range(x.reshape(len(x), *gen.info.sample_shape).astype(np.float32), gen.info.value_range)


def class_directions(gen, ev, *, n: int = 8192, measure_n: int = 500,
                     progress: Callable[[str], None] | None = None) -> list[Direction]:
    """A direction a class of the evaluator ``ev`` (:func:`evaluator_for`), named by the class
    (:func:`~ganforge.inference.directions.slug`), for the open generator ``gen``."""
    dim = gen.info.latent_dim
    z = keyed.noise(FIT_SEED, 0, n, dim).astype(np.float64)
    p = probabilities(ev, _unit(gen, _samples(gen, z.astype(np.float32))))
    zc = z - z.mean(axis=0)
    zm = keyed.noise(MEASURE_SEED, 0, measure_n, dim)
    found, names = [], set()
    for c, cls in enumerate(ev.classes):
        weight = p[:, c]
        if weight.sum() <= 0:
            continue
        w = weight @ zc / weight.sum()  # the class's centroid, from the mean noise
        norm = float(np.linalg.norm(w))
        if not np.isfinite(norm) or norm == 0:
            continue
        v = (w / norm).astype(np.float32)
        curve = []
        for s in GRID:
            q = probabilities(ev, _unit(gen, _samples(gen, zm + np.float32(s) * v)))
            curve.append((s, float(q[:, c].mean()), float((q.argmax(1) == c).mean()),
                          [float(m) for m in q.mean(axis=0)]))
        hits = [h for _, _, h, _ in curve]
        at = next((i for i, h in enumerate(hits) if h >= CHOOSE_AT), int(np.argmax(hits)))
        if at == 0:  # already there without a move: the first step that moves
            at = 1
        name = slug(cls)
        while name in names:
            name += "-"
        names.add(name)
        found.append(Direction(name, "class", v, curve[at][0], {
            "class": cls, "class_index": c, "assigned_at_step": round(curve[at][2], 4),
            "target_share": TARGET_HIT,
            "curve": [{"distance": s, "probability": round(m, 4), "assigned": round(h, 4)} for s, m, h, _ in curve],
            "probabilities_at_step": {k: round(m, 4) for k, m in zip(ev.classes, curve[at][3])},
            "probabilities_unmoved": {k: round(m, 4) for k, m in zip(ev.classes, curve[0][3])}}))
        if progress is not None:
            progress(f"  {cls}: {curve[at][2]:.0%} assigned at {curve[at][0]:g} latent units")
    return found
