"""Score sine recipes over seeds: gan-eval's series metrics of the shipped generator.

    python benchmarks/sine_probe.py --seeds 0 1 2 --epochs 300 --set minibatch_std=true

For each seed: train, then score 2000 generated curves against fresh rows of the same
distribution (the share of sine-like curves, median R^2, MMD, the classifier gap), and the
training seconds. Prints a JSON line per seed (and appends it to --log).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from ganforge.evaluation.series import compare  # noqa: E402
from ganforge.training import checkpoint, train  # noqa: E402
from ganforge.training.variants.sine import sine_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--preset")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--label", default="")
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            run = train("sine", epochs=args.epochs, seed=seed, sets=args.sets, preset=args.preset, runs_dir=tmp,
                        progress=False, device="cpu")
            seconds = time.perf_counter() - t0
            G, _, cfg = checkpoint.build_generator(checkpoint.load(run.checkpoint))
            with torch.no_grad():
                fake = G(torch.randn(2000, G.latent_dim, generator=torch.Generator().manual_seed(7))).numpy()
            real = sine_rows(2000, cfg.sample_len, 10_000 + seed).numpy()
            s = compare(real, fake)
        rec = {"label": args.label or " ".join(args.sets), "seed": seed, "epochs": cfg.epochs,
               "train_s": round(seconds, 1), "sine_like": round(s["sine_like_fraction"], 4),
               "r2_median": round(s["r2_median"], 4), "mmd": round(s["mmd"], 5),
               "classifier_gap": round(s["classifier_gap"], 4)}
        print(json.dumps(rec), flush=True)
        if args.log:
            with open(args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
