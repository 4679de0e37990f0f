"""Evaluating generated images without downloaded weights.

A small CNN is trained on the real data itself: on its class labels when it has
two or more classes, else on predicting which of four rotations (two for
non-square images) was applied. Its penultimate layer is the feature space for
the Fréchet distance, precision/recall and density/coverage. The evaluator is
cached by a fingerprint of the data (and the image shape), with its held-out
accuracy, so scores are comparable exactly when fingerprint and accuracy match.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge import zipcheck
from ganforge.errors import GanforgeError, first_line
from ganforge.evaluation.metrics import METRIC_SAMPLES, density_coverage, frechet_distance, precision_recall
from ganforge.fsutil import atomic_path, cache_dir, inside
from ganforge.progress import Meter
from ganforge.statedict import load_exact
from ganforge.training.datasets import ImageData, to_float

FEATURES = 128
CACHE = cache_dir() / "evaluators"
# How a cached evaluator is proven before torch reads it (zipcheck): a cache is untrusted input
CACHED = zipcheck.Reader("evaluator cache", "delete it: gan-eval trains a new one", error=GanforgeError,
                         legacy="delete it: gan-eval trains a new one",
                         foreign="{path} is not a readable evaluator cache ({reason}); delete it: gan-eval trains a "
                                 "new one", incomplete="delete it: gan-eval trains a new one")


class FeatureNet(nn.Module):
    """x [B, C, H, W] in [-1, 1] -> logits [B, classes]; ``features`` gives the 128-d embedding."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2, ceil_mode=True),  # 32 x H/2 x W/2
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2, ceil_mode=True),  # 64 x H/4 x W/4
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # 1024
            nn.Linear(64 * 16, FEATURES), nn.ReLU(True),  # 128: the feature space
        )
        self.head = nn.Linear(FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class Evaluator:
    net: FeatureNet
    task: str  # "classes" or "rotation"
    classes: list[str]
    accuracy: float  # held-out accuracy on its own task
    fingerprint: str
    n_train: int
    class_accuracy: list[float] | None = None  # held-out accuracy per class (task "classes")

    def identity(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "task": self.task, "accuracy": round(self.accuracy, 4),
                "n_train": self.n_train, "features": FEATURES}

    @torch.no_grad()
    def embed(self, images: np.ndarray | torch.Tensor, batch: int = 512) -> np.ndarray:
        x = torch.as_tensor(images)
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        return torch.cat([self.net.features(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, batch: int = 512) -> np.ndarray:
        x = torch.as_tensor(images)
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        return torch.cat([self.net(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)]).numpy()


def fingerprint(data: ImageData) -> str:
    h = hashlib.sha256()
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.images.numpy().tobytes())
    h.update(data.labels.numpy().tobytes())
    return h.hexdigest()[:16]


def _rotations(x: torch.Tensor, square: bool) -> tuple[torch.Tensor, torch.Tensor]:
    turns = (0, 1, 2, 3) if square else (0, 2)
    xs = [torch.rot90(x, k, dims=(2, 3)) for k in turns]
    ys = [torch.full((len(x),), i, dtype=torch.int64) for i in range(len(turns))]
    return torch.cat(xs), torch.cat(ys)


def train_evaluator(data: ImageData, *, seed: int = 0, steps: int = 1500, batch: int = 128,
                    cache: bool = True, progress: Callable[[str], None] | None = None) -> Evaluator:
    """Train (or load from the cache) the feature network for ``data``. Training takes minutes on
    a CPU for a large data set: ``progress`` is told when it starts, then every tenth of it."""
    fp = fingerprint(data)
    path = CACHE / f"{fp}-{steps}.pt"
    if cache:  # a link that leaves the cache folder is neither loaded nor written through
        inside(CACHE, path, what="the cache folder", fix="remove the link")
    channels, h, w = data.images.shape[1:]
    n_classes = int(data.labels.max()) + 1 if len(data.labels) else 1
    task = "classes" if n_classes >= 2 else "rotation"
    classes = data.classes if task == "classes" else (["0", "90", "180", "270"] if h == w else ["0", "180"])
    if cache and path.exists():
        return _cached(path, channels, len(classes), fp)
    with torch.random.fork_rng(devices=[]):  # its own stream: the caller's (a training run's) is left as it was
        torch.manual_seed(seed)  # the same network from the same data, whoever asks and whenever
        evaluator = _fit_evaluator(data, task, classes, fp, seed=seed, steps=steps, batch=batch, progress=progress)
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({"net": evaluator.net.state_dict(), "task": task, "classes": classes,
                        "accuracy": evaluator.accuracy, "class_accuracy": evaluator.class_accuracy,
                        "n_train": evaluator.n_train}, tmp)
    return evaluator


def _cached(path: Path, channels: int, n_classes: int, fp: str) -> Evaluator:
    """The evaluator cached in ``path``, proven first (its CRCs and sizes: torch checks neither) and
    its network's weights loaded exactly (every key, dtype and shape). A cache is untrusted input:
    anything wrong with it is one line that says to delete it."""
    again = "delete it: gan-eval trains a new one"
    with zipcheck.opened(path, CACHED) as f:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (torch raises UnpicklingError, RuntimeError, KeyError, ...)
            raise GanforgeError(f"{path} is not a readable evaluator cache ({first_line(exc)}); {again}") from None
    with torch.random.fork_rng(devices=[]):  # the throwaway initial weights: not from the caller's stream
        net = FeatureNet(channels, n_classes)
    try:
        load_exact(net, state["net"], "network")
        if not all(bool(torch.isfinite(p).all()) for p in net.state_dict().values() if p.is_floating_point()):
            raise GanforgeError(f"evaluator cache {path} holds weights that are not finite; {again}")
        return Evaluator(net.eval(), state["task"], [str(c) for c in state["classes"]], float(state["accuracy"]),
                         fp, int(state["n_train"]), state.get("class_accuracy"))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise GanforgeError(f"evaluator cache {path} does not fit these data ({first_line(exc)}); {again}") from None


def _fit_evaluator(data: ImageData, task: str, classes: list[str], fp: str, *, seed: int, steps: int,
                   batch: int, progress: Callable[[str], None] | None = None) -> Evaluator:
    channels, h, w = data.images.shape[1:]
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g)
    held = max(1, len(data) // 10)
    test_idx, train_idx = order[:held], order[held:]
    net = FeatureNet(channels, len(classes))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    if progress:
        progress(f"training the evaluator's feature network on {len(train_idx):,} real images ({steps} steps; "
                 f"once for these data, then cached in {CACHE})")
    start, tenth = time.perf_counter(), max(1, steps // 10)
    meter = Meter(steps, what="  evaluator", write=progress) if progress else None  # between tenths 30 s apart
    for step in range(steps):
        if meter is not None and step:
            meter.step(batch)
        if progress and step and step % tenth == 0:
            spent = time.perf_counter() - start
            progress(f"  evaluator {100 * step // steps}% ({step}/{steps} steps, {spent:.0f} s, about "
                     f"{spent * (steps - step) / step:.0f} s left)")
            if meter is not None:
                meter.last = meter._now()  # a tenth's line is a line: the meter speaks only if a tenth takes 30 s
        idx = train_idx[torch.randint(len(train_idx), (min(batch, len(train_idx)),), generator=g)]
        x, y = to_float(data.images[idx]), data.labels[idx]
        if task == "rotation":
            x, y = _rotations(x, h == w)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():  # in batches: the held-out tenth of 60,000 images at once took 2 GB of activations
        hits, ys = [], []
        for part in test_idx.split(512):
            x, y = to_float(data.images[part]), data.labels[part]
            if task == "rotation":
                x, y = _rotations(x, h == w)
            hits.append(net(x).argmax(1) == y)
            ys.append(y)
        hit, y = torch.cat(hits), torch.cat(ys)
        accuracy = float(hit.float().mean())
        class_accuracy = ([float(hit[y == i].float().mean()) if (y == i).any() else float("nan")
                           for i in range(len(classes))] if task == "classes" else None)
    return Evaluator(net, task, classes, accuracy, fp, len(train_idx), class_accuracy)


def _subsample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)]


def compare(ev: Evaluator, real: np.ndarray, fake: np.ndarray, real_labels: np.ndarray | None, seed: int = 0
            ) -> dict[str, Any]:
    fr, ff = ev.embed(real), ev.embed(fake)
    for features, what in ((fr, "real images"), (ff, "generated samples")):
        if not np.isfinite(features).all():
            raise GanforgeError(f"the evaluator's features of the {what} are not finite (its weights, or the "
                                f"images): delete its cache (in {CACHE}) and run again")
    sr, sf = _subsample(fr, METRIC_SAMPLES, seed), _subsample(ff, METRIC_SAMPLES, seed + 1)
    precision, recall = precision_recall(sr, sf)
    density, coverage = density_coverage(sr, sf)
    out = {"frechet_distance": frechet_distance(fr, ff), "precision": precision, "recall": recall,
           "density": density, "coverage": coverage}
    if ev.task == "classes":
        k = len(ev.classes)
        hist = np.bincount(ev.predict(fake), minlength=k) / len(fake)
        ref = np.bincount(real_labels, minlength=k) / len(real_labels) if real_labels is not None else \
            np.bincount(ev.predict(real), minlength=k) / len(real)
        out["class_histogram"] = {c: round(float(p), 4) for c, p in zip(ev.classes, hist)}
        out["classes_covered"] = int((hist >= 0.01).sum())
        out["class_tv_distance"] = float(0.5 * np.abs(hist - ref).sum())
    return out


def label_accuracy(ev: Evaluator, fake: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """How often the evaluator's classifier sees the class a conditional generator was asked
    for: overall and per class. Its own held-out accuracy on real images (overall and per
    class) is the ceiling: a generator of perfect samples of each class would score about that."""
    predicted = ev.predict(fake)
    hit = predicted == labels
    per_class = {name: round(float(hit[labels == i].mean()), 4) for i, name in enumerate(class_names)
                 if (labels == i).any()}
    out = {"accuracy": float(hit.mean()), "per_class": per_class, "ceiling": round(ev.accuracy, 4),
           "n": int(len(labels))}
    if ev.class_accuracy is not None and len(ev.class_accuracy) == len(class_names):
        out["ceiling_per_class"] = {name: round(a, 4) for name, a in zip(class_names, ev.class_accuracy)}
    return out


def evaluate_images(ev: Evaluator, real: ImageData, fake: np.ndarray, seed: int = 0,
                    fake_labels: np.ndarray | None = None) -> dict[str, Any]:
    """Scores of ``fake`` against half the real images, and of the other half (the floor).
    With ``fake_labels`` (a conditional model's), also precision and recall within each class."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(order) // 2
    a, b = order[:half], order[half:2 * half]
    images, labels = real.images.numpy(), real.labels.numpy()
    out = {"generated": compare(ev, images[a], fake, labels[a], seed),
           "floor": compare(ev, images[a], images[b], labels[a], seed),
           "n_real": int(2 * half), "n_generated": int(len(fake))}
    if fake_labels is not None:
        out["per_class"] = per_class(ev, (images[a], labels[a]), (images[b], labels[b]), (fake, fake_labels),
                                     real.classes, seed)
    return out


def per_class(ev: Evaluator, real, other, fake, classes: list[str], seed: int = 0) -> dict[str, dict[str, float]]:
    """Precision and recall (k=3) of each class's generated samples against that class's real
    images, beside the same between two halves of the real images (the floor): a conditional
    model that collapses inside a class has a low recall there, whatever its label accuracy."""
    out = {}
    for i, name in enumerate(classes):
        r, o, f = real[0][real[1] == i], other[0][other[1] == i], fake[0][fake[1] == i]
        if min(len(r), len(o), len(f)) < 5:  # k-NN radii need a few samples
            continue
        fr, fo, ff = (_subsample(ev.embed(x), METRIC_SAMPLES, seed + j) for j, x in enumerate((r, o, f)))
        precision, recall = precision_recall(fr, ff)
        floor_precision, floor_recall = precision_recall(fr, fo)
        out[name] = {"precision": round(precision, 4), "recall": round(recall, 4),
                     "floor_precision": round(floor_precision, 4), "floor_recall": round(floor_recall, 4),
                     "n_generated": int(len(f))}
    return out
