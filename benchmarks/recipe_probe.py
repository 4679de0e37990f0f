"""Score a training recipe while it trains: gan-eval's image metrics every few epochs.

Trains one variant with the given --set options and, every --every epochs, scores the
shipped generator (EMA when kept) in the evaluator's feature space against real images of
the training data: Fréchet distance, precision/recall (k=3), density/coverage (k=5), and
for conditional models label accuracy. Used to compare recipes (issue 15); each line it
prints is a JSON record, also appended to --log.

    python benchmarks/recipe_probe.py mnist-mlp --data /usr/share/datasets/fashion-mnist \\
        --epochs 20 --every 2 --set hidden_size=512 --label wide
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ganforge.evaluation.images import compare, label_accuracy, train_evaluator  # noqa: E402
from ganforge.training import Hook, train  # noqa: E402
from ganforge.training.datasets import ImageData  # noqa: E402

N = 2000


class Probe(Hook):
    def __init__(self, every: int, label: str, log: Path | None):
        self.every, self.label, self.log = every, label, log
        self.t0 = time.perf_counter()
        self.records: list[dict] = []

    def on_start(self, t):
        data = t.data
        if not isinstance(data, ImageData):
            raise SystemExit("the probe scores image variants")
        with torch.random.fork_rng():
            self.ev = train_evaluator(data, seed=0, steps=1500)
        rng = np.random.default_rng(0)
        pick = rng.choice(len(data), min(N, len(data)), replace=False)
        self.real = data.images[pick].numpy()
        self.real_labels = data.labels[pick].numpy()

    @torch.no_grad()
    def on_epoch_end(self, t, end):
        if end.epoch % self.every and end.epoch != t.cfg.epochs:
            return
        G = t.state.G_out
        was = G.training
        G.eval()
        g = torch.Generator().manual_seed(1)
        z = torch.randn(N, G.latent_dim, generator=g)
        labels = torch.arange(N) % G.num_classes if G.num_classes else None
        x = torch.cat([G(z[i:i + 500], labels[i:i + 500]) if labels is not None else G(z[i:i + 500])
                       for i in range(0, N, 500)]).float().numpy()
        G.train(was)
        scores = compare(self.ev, self.real, x, self.real_labels, seed=0)
        rec = {"label": self.label, "epoch": end.epoch, "train_s": round(time.perf_counter() - self.t0, 1),
               **{k: round(float(scores[k]), 4) for k in ("frechet_distance", "precision", "recall", "density",
                                                            "coverage")},
               "classes_covered": scores.get("classes_covered"), "d_real": round(end.row["d_real"], 4),
               "d_fake": round(end.row["d_fake"], 4), "g": round(end.row["g"], 4)}
        if labels is not None:
            acc = label_accuracy(self.ev, x, labels.numpy(), t.cfg.class_names)
            rec["label_accuracy"] = round(acc["accuracy"], 4)
            rec["worst_class_ratio"] = round(min(acc["per_class"][c] / acc["ceiling_per_class"][c]
                                                 for c in acc["per_class"]), 3)
        self.records.append(rec)
        print(json.dumps(rec), flush=True)
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps(rec) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant")
    parser.add_argument("--data", required=True)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--preset")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--label", default="")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the run folder here")
    args = parser.parse_args()
    probe = Probe(args.every, args.label or " ".join(args.sets), args.log)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(args.variant, data=args.data, epochs=args.epochs, sets=args.sets, preset=args.preset,
              runs_dir=args.keep or Path(tmp), progress=False, device="cpu", hooks=[probe])


if __name__ == "__main__":
    main()
