"""`make bench`: gan-bench for every registered variant at its default architecture.

Speed depends on the architecture, not on what the weights learned, so each
variant is trained for one epoch on small data written here (the tests' fake
IDX, CIFAR-10 and PNG writers), exported (ONNX fp32, fp16 and int8, TorchScript) and
benchmarked on a short budget. Reports go to benchmarks/results/<variant>/, the
streaming (memory against --n) figures to benchmarks/results/streaming.md, and a
summary with the targets (ganforge against the fastest fp32 peer, its reduced precisions
against OpenVINO's own, cold start) to benchmarks/results/bench-summary.md.

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
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # the package, and tests/ and benchmarks/ as modules

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
# The targets, as the summary checks them
PEER_SPEEDUP = 1.1  # ganforge fp32 over the fastest fp32 peer (OpenVINO fp32, torch.compile, TorchScript, eager)
REDUCED_SPEEDUP = 1.0  # ganforge's best reduced precision over OpenVINO at its own precision
COLD_SPEEDUP, COLD_S = 5.0, 0.5  # gan-infer --n 64 against the torch process, and its wall time


def summary_rows(name: str, report: dict) -> tuple[list[str], dict]:
    """Table rows of one variant, and its figures against the targets."""
    by = {b["name"]: {r["batch"]: r["samples_per_s"] for r in b["results"]} for b in report["backends"]}
    peers = {r["batch"]: r for r in report.get("vs_best_peer", [])}
    reduced: dict[int, tuple[str, float]] = {}  # batch -> the faster reduced precision and its ratio
    for r in report.get("reduced_vs_peer", []):
        if r["batch"] not in reduced or r["ratio"] > reduced[r["batch"]][1]:
            reduced[r["batch"]] = (r["backend"], r["ratio"])
    eager = by.get("torch-eager", {})
    rows = []
    for batch, ours in by["ganforge"].items():
        p = peers.get(batch)
        red = reduced.get(batch)
        rows.append(f"| {name} | {batch} | {ours:.0f} | "
                    + (f"{p['peer']} {p['peer_samples_per_s']} | {p['ratio']:.2f}x" if p else "- | -") + " | "
                    + " | ".join(f"{by[k][batch]:.0f}" if batch in by.get(k, {}) else "-"
                                 for k in ("ganforge-bf16", "ganforge-int8", "openvino-default")) + " | "
                    + (f"{red[1]:.2f}x ({red[0].removeprefix('ganforge-')})" if red else "-") + " | "
                    + (f"{ours / eager[batch]:.2f}x" if batch in eager else "-") + " |")
    cold = report.get("cold_start", {})
    worst = min(peers.values(), key=lambda r: r["ratio"]) if peers else None
    worst_reduced = min(reduced.items(), key=lambda kv: kv[1][1]) if reduced else None
    figures = {
        "peer": (worst["ratio"], worst["batch"], worst["peer"]) if worst else None,
        "reduced": (worst_reduced[1][1], worst_reduced[0]) if worst_reduced else None,
        "cold_s": cold.get("gan-infer_s"), "cold_speedup": cold.get("speedup"),
        "plan": next((b.get("plan") for b in report["backends"] if b["name"] == "ganforge"), None),
        "diffs": report.get("max_abs_diff_vs_ganforge", {}),
    }
    return rows, figures


def targets_table(figures: dict[str, dict]) -> list[str]:
    def mark(ok):
        return "met" if ok else "**not met**"

    lines = [f"| variant | ganforge fp32 / fastest fp32 peer, worst batch (target >= {PEER_SPEEDUP}x) | "
             f"best reduced precision / OpenVINO default, worst batch (target >= {REDUCED_SPEEDUP:g}x) | "
             f"gan-infer cold start (target < {COLD_S} s, >= {COLD_SPEEDUP:g}x) | ganforge's plan |",
             "|---|---|---|---|---|"]
    for name, f in figures.items():
        peer = (f"{f['peer'][0]:.2f}x at {f['peer'][1]} ({f['peer'][2]}): {mark(f['peer'][0] >= PEER_SPEEDUP)}"
                if f["peer"] else "-")
        red = (f"{f['reduced'][0]:.2f}x at {f['reduced'][1]}: {mark(f['reduced'][0] >= REDUCED_SPEEDUP)}"
               if f["reduced"] else "-")
        cold = (f"{f['cold_s']} s, {f['cold_speedup']}x: "
                f"{mark(f['cold_s'] < COLD_S and f['cold_speedup'] >= COLD_SPEEDUP)}" if f["cold_s"] else "-")
        lines.append(f"| {name} | {peer} | {red} | {cold} | {f['plan'] or '-'} |")
    lines += ["", "Largest difference from ganforge fp32 on one batch of 64 (output in [-1, 1]):", "",
              "| variant | " + " | ".join(DIFF_COLUMNS) + " |", "|---|" + "---|" * len(DIFF_COLUMNS)]
    for name, f in figures.items():
        lines.append(f"| {name} | " + " | ".join(f"{f['diffs'][k]:.2g}" if k in f["diffs"] else "-"
                                                 for k in DIFF_COLUMNS) + " |")
    return lines


DIFF_COLUMNS = ("openvino-fp32", "openvino-default", "ganforge-bf16", "ganforge-int8", "torch-eager")


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
    table = ["| variant | batch | ganforge | fastest fp32 peer | ganforge / peer | ganforge-bf16 | ganforge-int8 | "
             "openvino-default | best reduced / openvino-default | ganforge / torch-eager |",
             "|---|---|---|---|---|---|---|---|---|---|"]
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
                export(run.run_dir, formats="onnx", precision="int8")
            model = run.run_dir / "export" / "generator.onnx"
            report = run_bench(model, budget_s=args.budget, out_dir=out / name)
            rows, figures[name] = summary_rows(name, report)
            table += rows
            print("\n".join(rows), flush=True)
            if name in STREAMING and not args.no_streaming:
                print(f"streaming {name}:", flush=True)
                streaming[name] = measure_streaming(model, STREAMING[name])
    if streaming:
        (out / "streaming.json").write_text(json.dumps(streaming, indent=2) + "\n")
        (out / "streaming.md").write_text(streaming_markdown(streaming))
    summary = ["# gan-bench summary", "",
               "Default architectures; ganforge as gan-infer runs it (the runtime per run size it measured, fp32) "
               "against the peers a user could pick (OpenVINO fp32, TorchScript, PyTorch eager), and its reduced "
               "precisions (bf16 on OpenVINO, int8) against OpenVINO at its own precision (bf16 here); p50 "
               "samples/s, the backends taking turns in one run per variant. Details: <variant>/bench.md; memory "
               "against --n: streaming.md; what was tried: speed-notes.md; the quality the reduced precisions "
               "cost: quality.md.", "", "## Targets", "", *targets_table(figures),
               "", "## Throughput", "", *table]
    (out / "bench-summary.md").write_text("\n".join(summary) + "\n")
    print(f"wrote {out}/bench-summary.md")


if __name__ == "__main__":
    main()
