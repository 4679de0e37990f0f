"""`make bench`: gan-bench for every registered variant at its default architecture.

Speed depends on the architecture, not on what the weights learned, so each
variant is trained for one epoch on small data written here (the tests' fake
IDX, CIFAR-10 and PNG writers), exported (ONNX fp32 and fp16, TorchScript) and
benchmarked on a short budget. Reports go to benchmarks/results/<variant>/, the
streaming (memory against --n) figures to benchmarks/results/streaming.md, and a
summary with the issue-6 targets to benchmarks/results/bench-summary.md.

    python benchmarks/run_all.py [--budget 0.5] [--variants sine dcgan] [--no-streaming]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.streaming import markdown as streaming_markdown  # noqa: E402
from benchmarks.streaming import measure_streaming  # noqa: E402
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
# gan-infer --n small and large, per output form: peak memory must not grow with n
STREAMING = {
    "mnist-mlp": [("npy", 1000), ("npy", 100_000), ("dir", 2000), ("dir", 20_000)],
    "wgan-gp": [("npy", 256), ("npy", 4096), ("dir", 256), ("dir", 2048)],
}
# The issue-6 targets, as the summary checks them
SPEEDUP = 1.3  # onnxruntime-cpu over torch-eager, samples/s, every batch size
PEAK = 0.70  # conv generators at batch >= 64, of the matrix-product peak measured in the same run
COLD_SPEEDUP, COLD_S = 5.0, 0.5  # gan-infer --n 64 against the torch process, and its wall time


def is_conv(model: Path) -> bool:
    """A convolutional generator (the peak-fraction target applies to these)."""
    import onnx

    return bool({n.op_type for n in onnx.load(str(model)).graph.node} & {"Conv", "ConvTranspose", "Col2Im"})


def summary_rows(name: str, report: dict, conv: bool) -> tuple[list[str], dict]:
    """Table rows of one variant, and its figures against the targets."""
    by = {b["name"]: {r["batch"]: r for r in b["results"]} for b in report["backends"]}
    ort, eager = by["onnxruntime-cpu"], by.get("torch-eager", {})
    cold = report.get("cold_start", {})
    rows = []
    for batch, r in ort.items():
        e = eager.get(batch)
        rows.append(f"| {name} | {batch} | {r['samples_per_s']:.0f} | {e['samples_per_s'] if e else 0:.0f} | "
                    + (f"{r['samples_per_s'] / e['samples_per_s']:.2f}x" if e else "-") + " | "
                    + (f"{100 * r['peak_fraction']:.1f}%" if r.get("peak_fraction") else "-") + " |")
    ratios = {b: r["samples_per_s"] / eager[b]["samples_per_s"] for b, r in ort.items() if b in eager}
    peaks = {b: r["peak_fraction"] for b, r in ort.items() if b >= 64 and r.get("peak_fraction")} if conv else {}
    figures = {
        "min_speedup": min(ratios.values()) if ratios else None,
        "min_speedup_batch": min(ratios, key=ratios.get) if ratios else None,
        "min_peak": min(peaks.values()) if peaks else None,
        "min_peak_batch": min(peaks, key=peaks.get) if peaks else None,
        "cold_s": cold.get("gan-infer_s"), "cold_speedup": cold.get("speedup"),
    }
    return rows, figures


def targets_table(figures: dict[str, dict]) -> list[str]:
    def mark(ok):
        return "met" if ok else "**not met**"

    lines = [f"| variant | ort/eager, worst batch (target >= {SPEEDUP}x) | % of peak at batch >= 64, worst "
             f"(target >= {PEAK:.0%}, conv only) | gan-infer cold start (target < {COLD_S} s, >= {COLD_SPEEDUP:g}x) |",
             "|---|---|---|---|"]
    for name, f in figures.items():
        speed = (f"{f['min_speedup']:.2f}x at {f['min_speedup_batch']}: {mark(f['min_speedup'] >= SPEEDUP)}"
                 if f["min_speedup"] is not None else "-")
        peak = (f"{100 * f['min_peak']:.0f}% at {f['min_peak_batch']}: {mark(f['min_peak'] >= PEAK)}"
                if f["min_peak"] is not None else "n/a (not a conv generator)")
        cold = (f"{f['cold_s']} s, {f['cold_speedup']}x: "
                f"{mark(f['cold_s'] < COLD_S and f['cold_speedup'] >= COLD_SPEEDUP)}" if f["cold_s"] else "-")
        lines.append(f"| {name} | {speed} | {peak} | {cold} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=sorted(VARIANTS))
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of timed calls per backend and batch size")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--no-streaming", action="store_true", help="skip the memory-against---n runs")
    args = parser.parse_args()
    missing = sorted(set(VARIANTS) - set(DATA))
    if missing:
        raise SystemExit(f"no benchmark data for variants {missing}: add them to DATA in {__file__}")
    out = Path(args.out)
    table = ["| variant | batch | onnxruntime-cpu | torch-eager | ratio | % of matmul peak (ort) |",
             "|---|---|---|---|---|---|"]
    figures: dict[str, dict] = {}
    streaming: dict[str, list[dict]] = {}
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
            model = run.run_dir / "export" / "generator.onnx"
            report = run_bench(model, budget_s=args.budget, out_dir=out / name)
            rows, figures[name] = summary_rows(name, report, is_conv(model))
            table += rows
            print("\n".join(rows), flush=True)
            if name in STREAMING and not args.no_streaming:
                print(f"streaming {name}:", flush=True)
                streaming[name] = measure_streaming(model, STREAMING[name])
    if streaming:
        (out / "streaming.json").write_text(json.dumps(streaming, indent=2) + "\n")
        (out / "streaming.md").write_text(streaming_markdown(streaming))
    summary = ["# gan-bench summary", "",
               "Default architectures; onnxruntime CPU (fp32) against PyTorch eager (fp32), p50 samples/s, the "
               "backends taking turns in one run per variant. Details: <variant>/bench.md; memory against --n: "
               "streaming.md; what was tried: speed-notes.md.", "", "## Targets", "", *targets_table(figures),
               "", "## Throughput", "", *table]
    (out / "bench-summary.md").write_text("\n".join(summary) + "\n")
    print(f"wrote {out}/bench-summary.md")


if __name__ == "__main__":
    main()
