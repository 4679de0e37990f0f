"""Proof of learning: each variant trained on a fixed CPU budget on data this machine has,
exported, and scored by gan-eval against its real-vs-real floor and against the same
generator untrained (its initial weights).

Needs Fashion-MNIST (apt-get install dataset-fashion-mnist); the image-folder variants
train on its first images written as PNG files. Writes benchmarks/results/quality.md and
quality.json.

    python benchmarks/quality.py [--variants sine mnist-mlp] [--n 2000]
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
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ganforge.evaluation import evaluate  # noqa: E402
from ganforge.export import export  # noqa: E402
from ganforge.training import checkpoint, get_variant, train  # noqa: E402
from ganforge.training.datasets import load_idx  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
# variant -> (data kind, config overrides, epochs): each about 1-4 minutes on a 2-core CPU
PLAN = {
    "sine": (None, [], 300),
    "mnist-mlp": ("idx", [], 20),
    "wgan": ("idx", [], 2),
    "dcgan": ("folder", [], 5),
    "wgan-gp": ("folder", ["image_size=32"], 10),
}
HEADLINE = {"series": ("sine_like_fraction", "mmd"), "image": ("frechet_distance", "coverage")}


def write_folder(dest: Path, n: int) -> Path:
    data = load_idx(FASHION)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(data.images[i, 0].numpy()).save(dest / f"{i:05d}.png")
    return dest


def untrained_copy(run_dir: Path, dest: Path) -> Path:
    """A run folder whose checkpoint holds the generator's initial weights."""
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    variant = get_variant(state["variant"])
    _, _, cfg = checkpoint.build_generator(state)
    torch.manual_seed(cfg.seed)
    state["generator"] = variant.generator(cfg).state_dict()
    (dest / "checkpoints").mkdir(parents=True)
    checkpoint.save(dest / "checkpoints" / "last.pt", {k: v for k, v in state.items() if k != "format"})
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(PLAN))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if not FASHION.exists():
        raise SystemExit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = None
        for name in args.variants:
            kind, sets, epochs = PLAN[name]
            data = None
            if kind == "idx":
                data = str(FASHION)
            elif kind == "folder":
                folder = folder or write_folder(tmp / "fashion-png", 10000)
                data = str(folder)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = train(name, data=data, epochs=epochs, sets=sets, runs_dir=tmp / "runs", progress=False,
                            device="cpu")
            seconds = time.perf_counter() - t0
            export(run.run_dir, formats="onnx")
            before = untrained_copy(run.run_dir, tmp / f"untrained-{name}")
            export(before, formats="onnx")
            real = str(FASHION) if kind else None
            trained = evaluate(run.run_dir, data=real, n=args.n)
            initial = evaluate(before, data=real, n=args.n)
            results[name] = {"epochs": epochs, "train_seconds": round(seconds, 1), "data": data or "embedded",
                             "trained": trained["generated"], "untrained": initial["generated"],
                             "floor": trained["floor"], "evaluator": trained["evaluator"]}
            print(name, json.dumps({k: results[name][k] for k in ("epochs", "train_seconds")}), flush=True)
    lines = ["# Proof of learning", "",
             "Each variant trained on this machine's CPU for a fixed number of epochs, exported to ONNX and scored "
             f"by gan-eval ({args.n} generated samples) against the real-vs-real floor and against the same "
             "generator at its initial weights. Image variants are scored against Fashion-MNIST in the features "
             "of a network trained on it (accuracy below).", "",
             "| variant | data | epochs (train s) | score | untrained | trained | floor |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        kind = r["evaluator"]["kind"]
        for key in HEADLINE[kind] + (("precision", "recall") if kind == "image" else ("classifier_gap",)):
            lines.append(f"| {name} | {Path(r['data']).name} | {r['epochs']} ({r['train_seconds']}) | {key} | "
                         f"{r['untrained'][key]:.4f} | {r['trained'][key]:.4f} | {r['floor'][key]:.4f} |")
    evs = {r["evaluator"].get("fingerprint") for r in results.values() if r["evaluator"]["kind"] == "image"}
    accs = {r["evaluator"].get("accuracy") for r in results.values() if r["evaluator"]["kind"] == "image"}
    if evs:
        lines += ["", f"Image evaluator: fingerprint {', '.join(sorted(evs))}, held-out accuracy "
                      f"{', '.join(map(str, sorted(accs)))} (one per image shape)."]
    out = Path(args.out)
    (out / "quality.md").write_text("\n".join(lines) + "\n")
    (out / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'quality.md'}")


if __name__ == "__main__":
    main()
