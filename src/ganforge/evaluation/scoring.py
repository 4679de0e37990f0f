"""Scoring a generator during training (``gan-train --eval-every N``): one number,
lower is better, computed on the torch generator against the training data.

gan-train hands :func:`make_scorer` to training (``ganforge.training.hooks.Scorer``);
training itself never imports this package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ganforge.evaluation.metrics import frechet_distance, mmd_rbf
from ganforge.training.variants.base import GeneratorModel

SAMPLES = 1000
EVALUATOR_STEPS = 1500  # training steps of the image feature network (cached after the first run)


def make_scorer(kind: str, data: Any, seed: int = 0) -> tuple[str, Callable[[GeneratorModel], float]]:
    """(metric name, score(G)) for a variant's kind and its training data."""
    from ganforge.training.data import real_examples

    if kind == "series":
        real = real_examples(data, SAMPLES).numpy()

        def score_series(G: GeneratorModel) -> float:
            return mmd_rbf(real, _generate(G, len(real), seed))

        return "mmd", score_series
    from ganforge.evaluation.images import train_evaluator
    from ganforge.training.datasets import ImageData

    if not isinstance(data, ImageData):
        raise TypeError("image scoring needs in-memory ImageData")
    evaluator = train_evaluator(data, seed=seed, steps=EVALUATOR_STEPS)
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:SAMPLES]
    real_features = evaluator.embed(data.images[pick])

    def score_images(G: GeneratorModel) -> float:
        return frechet_distance(real_features, evaluator.embed(_generate(G, SAMPLES, seed)))

    return "frechet_distance", score_images


@torch.no_grad()
def _generate(G: GeneratorModel, n: int, seed: int) -> np.ndarray:
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.latent_dim, generator=rng).to(device)
    if G.num_classes:  # conditional: classes drawn uniformly
        labels = torch.randint(G.num_classes, (n,), generator=rng).to(device)
        out = torch.cat([G(z[i : i + 500], labels[i : i + 500]) for i in range(0, n, 500)])
    else:
        out = torch.cat([G(z[i : i + 500]) for i in range(0, n, 500)])
    out = out.float().cpu().numpy()
    G.train(was_training)
    return out
