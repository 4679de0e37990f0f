"""losses.png and progress.gif, the run's pictures beside the per-epoch samples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.fsutil import atomic_path
from ganforge.inference.render import render_grid

MAX_GIF_FRAMES = 120
GIF_FRAME_MS = 100


def plot_losses(
    path: Path,
    history: Sequence[dict[str, Any]],
    *,
    kind: str,
    real: np.ndarray,
    fake: np.ndarray,
    title: str = "",
) -> None:
    """Three loss curves per epoch (D on real, D on fake, G) and, as a 4th panel,
    real against generated samples of the last epoch: overlaid curves for series,
    two tiled grids for images."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = (("d_real", "D loss on real data"), ("d_fake", "D loss on generated data"), ("g", "G loss"))
    for ax, (key, label) in zip(axes.flat, panels):
        ax.plot(epochs, [row[key] for row in history], lw=1.2)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean loss")
        ax.grid(alpha=0.3)
    ax = axes.flat[3]
    if kind == "series":
        for i, row in enumerate(real):
            ax.plot(row, color="tab:blue", alpha=0.7, lw=1.5, label="real" if i == 0 else None)
        for i, row in enumerate(fake):
            ax.plot(row, color="tab:orange", alpha=0.9, lw=1.5, ls="--", label="generated" if i == 0 else None)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("point")
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    else:
        left, right = (np.asarray(render_grid(a, "image").convert("RGB")) for a in (real, fake))
        height = max(left.shape[0], right.shape[0])
        left, right = (np.pad(a, ((0, height - a.shape[0]), (0, 0), (0, 0)), constant_values=255) for a in (left, right))
        pair = np.concatenate([left, np.full((height, 8, 3), 255, np.uint8), right], axis=1)
        ax.imshow(pair)
        ax.axis("off")
    ax.set_title(f"real vs generated (epoch {epochs[-1] if epochs else 0})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def write_progress_gif(path: Path, frames: Sequence[Path]) -> int:
    """Animate the per-epoch fixed-noise sample images into ``path``.

    At most MAX_GIF_FRAMES frames are used, evenly spaced, always with the last.
    Returns the number of frames written (0: nothing to animate, nothing written).
    """
    from PIL import Image

    frames = list(frames)
    if not frames:
        return 0
    if len(frames) > MAX_GIF_FRAMES:
        idx = np.unique(np.linspace(0, len(frames) - 1, MAX_GIF_FRAMES).round().astype(int))
        frames = [frames[i] for i in idx]
    images = [Image.open(f).convert("RGB") for f in frames]
    durations = [GIF_FRAME_MS] * (len(images) - 1) + [GIF_FRAME_MS * 10]  # linger on the result
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return len(images)
