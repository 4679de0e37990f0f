"""Tiny data sets in the real on-disk formats, written by the tests themselves."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(folder: Path, n: int = 40, *, gz: bool = True, seed: int = 0, prefix: str = "train") -> Path:
    """MNIST-format images (n x 28 x 28 uint8) and labels, as the IDX files MNIST ships."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for i, label in enumerate(labels):  # a bright square whose place depends on the label
        r, c = 4 + 2 * (label % 5), 4 + 4 * (label // 5)
        images[i, r : r + 10, c : c + 10] = 200 + rng.integers(0, 55)
    files = {
        f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes(),
        f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x801, n) + labels.tobytes(),
    }
    for name, data in files.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)
    return folder


def write_cifar(root: Path, per_batch: int = 12, *, seed: int = 0, skip: tuple[str, ...] = ()) -> Path:
    """A CIFAR-10 python folder: root/cifar-10-batches-py/data_batch_1..5 + batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        name = f"data_batch_{i}"
        if name in skip:
            continue
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        labels[0] = 1  # every batch holds at least one automobile
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return root


def write_images(folder: Path, n: int = 10, *, size: tuple[int, int] = (40, 36), classes: tuple[str, ...] = (),
                 corrupt: int = 0, seed: int = 0) -> Path:
    """PNG files, flat or one subfolder per class, plus ``corrupt`` files that are not images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / classes[i % len(classes)] if classes else folder
        sub.mkdir(exist_ok=True)
        arr = rng.integers(0, 256, (size[1], size[0], 3)).astype(np.uint8)
        Image.fromarray(arr).save(sub / f"img{i:03d}.png")
    for i in range(corrupt):
        (folder / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    return folder
