"""Why the sine variant's defaults differ from its source: measure sine-likeness by learning rate.

For each setting, train the sine GAN (300 epochs, the source's networks and batch
size), generate 256 curves from the final generator and fit each with the best
single sinusoid ``a*sin(2*pi*f*t) + b*cos(2*pi*f*t) + c`` (f scanned over 0.25-3
cycles). A curve counts as sine-like when that fit explains >= 90% of its
variance (R^2 >= 0.9). Real rows score R^2 = 1.

    python benchmarks/sine_lr_probe.py [--seeds 0 1] [--out benchmarks/results/sine-lr-probe.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from ganforge.evaluation.series import fit_sinusoids
from ganforge.training import train
from ganforge.training.checkpoint import build_generator, load
from ganforge.training.variants.sine import sine_rows

SETTINGS = {
    "source (Adam lr 2e-5, beta1 0.9)": ["learning_rate=2e-5", "beta1=0.9"],
    "lr 1e-3, beta1 0.5": ["learning_rate=1e-3", "beta1=0.5"],
    "lr 2e-3, beta1 0.5": ["learning_rate=2e-3", "beta1=0.5"],
    "lr 3e-3, beta1 0.5": ["learning_rate=3e-3", "beta1=0.5"],
    "lr 5e-3, beta1 0.5": ["learning_rate=5e-3", "beta1=0.5"],
}


def sine_r2(curves: np.ndarray) -> np.ndarray:
    """Best single-sinusoid R^2 of every row of ``curves`` [n, L]."""
    return fit_sinusoids(curves)["r2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--only", nargs="+", default=None, help="run only settings containing one of these strings")
    parser.add_argument("--out", default="benchmarks/results/sine-lr-probe.md")
    args = parser.parse_args()
    real = sine_r2(sine_rows(256, 32, seed=99).numpy())
    lines = [
        "# sine: sine-likeness by learning rate",
        "",
        f"{args.epochs} epochs, batch 32, source networks; 256 generated curves per run; "
        f"sine-like = best single-sinusoid fit R^2 >= 0.9. Real data: median R^2 {np.median(real):.3f}.",
        "",
        f"| setting | median R^2, seeds {' '.join(map(str, args.seeds))} | worst seed | sine-like (all seeds) | train s |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as runs:
        for name, sets in SETTINGS.items():
            if args.only and not any(o in name for o in args.only):
                continue
            per_seed = []
            for seed in args.seeds:
                t0 = time.perf_counter()
                result = train("sine", sets=sets, epochs=args.epochs, seed=seed, runs_dir=runs, progress=False, device="cpu")
                seconds = time.perf_counter() - t0
                G, _, _ = build_generator(load(result.checkpoint))
                with torch.no_grad():
                    curves = G(torch.randn(256, 4, generator=torch.Generator().manual_seed(1234))).numpy()
                r2 = sine_r2(curves)
                per_seed.append((np.median(r2), np.mean(r2 >= 0.9), seconds))
                print(f"{name} seed {seed}: median R^2 {per_seed[-1][0]:.3f}, sine-like {per_seed[-1][1]:.0%}", flush=True)
            med, frac, secs = (np.array(v) for v in zip(*per_seed))
            lines.append(f"| {name} | {' '.join(f'{m:.2f}' for m in med)} | {med.min():.2f} | "
                         f"{frac.mean():.0%} | {np.median(secs):.1f} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
