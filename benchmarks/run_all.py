"""`make bench`: gan-bench for every registered variant at its default architecture.

Speed depends on the architecture, not on what the weights learned, so each
variant is trained for one epoch on small data written here (the tests' fake
IDX, CIFAR-10 and PNG writers), exported (ONNX fp32 and fp16, TorchScript) and
benchmarked on a short budget. Reports go to benchmarks/results/<variant>/ and a
summary to benchmarks/results/bench-summary.md.

    python benchmarks/run_all.py [--budget 0.5] [--variants sine dcgan]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganforge.bench import run_bench  # noqa: E402
from ganforge.export import export  # noqa: E402
from ganforge.training import VARIANTS, train  # noqa: E402
from tests.fakedata import write_cifar, write_idx, write_images  # noqa: E402

DATA = {
    "sine": lambda d: {},
    "mnist-mlp": lambda d: {"data": str(write_idx(d / "idx", n=64))},
    "dcgan": lambda d: {"data": str(write_cifar(d / "cifar", per_batch=16))},
    "wgan": lambda d: {"data": str(write_idx(d / "idx", n=64))},
    "wgan-gp": lambda d: {"data": str(write_images(d / "images", n=16, size=(64, 64)))},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=sorted(VARIANTS))
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of timed calls per backend and batch size")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    missing = sorted(set(VARIANTS) - set(DATA))
    if missing:
        raise SystemExit(f"no benchmark data for variants {missing}: add them to DATA in {__file__}")
    summary = ["# gan-bench summary", "", "Default architectures; onnxruntime CPU against PyTorch eager, "
               "p50 samples/s, measured in one run per variant. Details: <variant>/bench.md.", "",
               "| variant | batch | onnxruntime-cpu | torch-eager | ratio | % of matmul peak (ort) | cold start gan-infer / torch |",
               "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.variants:
            data = DATA[name](tmp / name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = train(name, epochs=1, sets=[f"{k}={v}" for k, v in data.items()] + ["batch_size=8"],
                            runs_dir=tmp / "runs", progress=False, device="cpu")
                export(run.run_dir, formats=["onnx", "torchscript"])
                export(run.run_dir, formats="onnx", precision="fp16")
            report = run_bench(run.run_dir / "export" / "generator.onnx", budget_s=args.budget,
                               out_dir=Path(args.out) / name)
            by = {b["name"]: {r["batch"]: r for r in b["results"]} for b in report["backends"]}
            cold = report.get("cold_start", {})
            for batch, ort in by["onnxruntime-cpu"].items():
                eager = by.get("torch-eager", {}).get(batch)
                ratio = f"{ort['samples_per_s'] / eager['samples_per_s']:.2f}x" if eager else "-"
                peak = f"{100 * ort['peak_fraction']:.1f}%" if ort.get("peak_fraction") else "-"
                summary.append(f"| {name} | {batch} | {ort['samples_per_s']:.0f} | "
                               f"{eager['samples_per_s'] if eager else 0:.0f} | {ratio} | {peak} | "
                               f"{cold.get('gan-infer_s', '-')} s / {cold.get('torch_s', '-')} s |")
            print("\n".join(summary[-len(by['onnxruntime-cpu']):]), flush=True)
    (Path(args.out) / "bench-summary.md").write_text("\n".join(summary) + "\n")
    print(f"wrote {args.out}/bench-summary.md")


if __name__ == "__main__":
    main()
