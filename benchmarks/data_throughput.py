"""Does data loading keep up? Batches per second of each image variant's loader alone, beside
training steps per second with its default recipe, on the same data.

    python benchmarks/data_throughput.py [--steps 60]

Writes benchmarks/results/data-throughput.md. A loader far faster than the steps it feeds
costs nothing; one near them would be the bottleneck.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from ganforge.training import Hook, get_variant, train  # noqa: E402
from ganforge.training.config import AUGMENTATIONS, augment_policy  # noqa: E402
from ganforge.training.augment import diff_augment  # noqa: E402
from ganforge.training.data import Batches  # noqa: E402
from ganforge.training.request import TrainRequest, new_config  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
CASES = {"mnist-mlp": FASHION, "dcgan": "folder", "wgan": FASHION, "wgan-gp": "folder"}


class StepClock(Hook):
    """Seconds of the first epoch's steps (the epoch row's own timing)."""

    def on_epoch_end(self, t, end):
        self.steps, self.seconds = end.row["step"], end.row["seconds"]


def loader_rate(variant: str, data: str, steps: int) -> tuple[float, float]:
    """Batches/s of the variant's loader alone, without and with DiffAugment (all three
    transforms: what ``--set augment=color,translation,cutout`` adds to every batch D sees)."""
    v = get_variant(variant)
    cfg = new_config(v, TrainRequest.make(variant, data=data))
    payload = v.load_data(cfg)
    batches = Batches(payload, cfg.batch_size, torch.device("cpu"), seed=0)
    policy = augment_policy(",".join(AUGMENTATIONS))
    rates = []
    for augmented in (False, True):
        n, t0 = 0, time.perf_counter()
        while n < steps:
            for batch in batches:
                if augmented:
                    diff_augment(batch, policy)
                n += 1
                if n == steps:
                    break
        rates.append(steps / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--folder", default=None, help="an image folder (default: Fashion-MNIST's first 10,000 "
                                                        "images written as PNG)")
    args = parser.parse_args()
    lines = ["# Data loading against training steps", "",
             "Batches per second of each variant's loader alone (data in memory as uint8, sliced and turned to "
             "float), and with DiffAugment's three transforms on each batch (`augment=color,translation,cutout`; "
             "D sees two augmented batches a step), beside training steps per second of its "
             "default recipe (one epoch's steps, timed by the loop). Written by "
             "`python benchmarks/data_throughput.py`.", "",
             "| variant | loader batches/s | with DiffAugment | training steps/s | loader share of a step |",
             "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = args.folder
        if folder is None:
            from quality import write_folder

            folder = str(write_folder(Path(tmp) / "png", 10000))
        for variant, data in CASES.items():
            data = folder if data == "folder" else data
            loader, augmented = loader_rate(variant, data, args.steps)
            clock = StepClock()
            train(variant, data=data, epochs=1, runs_dir=Path(tmp) / "runs", progress=False, device="cpu",
                  hooks=[clock])
            step_rate = clock.steps / clock.seconds
            lines.append(f"| {variant} | {loader:.0f} | {augmented:.0f} | {step_rate:.1f} | "
                         f"{step_rate / loader:.1%} |")
            print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "data-throughput.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
