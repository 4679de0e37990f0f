"""What the reduced precisions cost in quality: gan-eval at bf16 and int8 beside fp32 on the same
noise, for trained runs, against the issue-19 target (Fréchet distance within 2% of fp32's).

    python benchmarks/precision_quality.py --data /usr/share/datasets/fashion-mnist RUN [RUN ...]

Each run needs its export (generator.onnx) and, for int8, generator.int8.onnx (gan-export
--precision int8); bf16 needs the openvino extra and a CPU with bf16. Writes
benchmarks/results/precision-quality.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.evaluation import evaluate  # noqa: E402

TARGET = 0.02  # |relative change| of the Fréchet distance (of the first score, for series)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (their export/generator.onnx is scored)")
    parser.add_argument("--data", required=True, help="the real images the runs were trained on")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision-quality"))
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        for precision in ("bf16", "int8"):
            t0 = time.perf_counter()
            try:
                report = evaluate(run, data=args.data, n=args.n, precision=precision)
            except GanforgeError as exc:
                rows.append({"run": Path(run).name, "precision": precision, "skipped": str(exc)})
                continue
            r = report["reduced"]
            score = r["change"]["score"]
            rows.append({"run": Path(run).name, "variant": report["variant"], "precision": precision,
                         "runtime": r["runtime"], "max_abs_diff": r["max_abs_diff"],
                         "mean_abs_diff": r["mean_abs_diff"], "score": score,
                         "reduced": r["scores"][score]["reduced"], "fp32": r["scores"][score]["fp32"],
                         "relative_change": r["change"]["relative"], "seconds": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    lines = ["# What the reduced precisions cost in quality", "",
             f"`python benchmarks/precision_quality.py --data {args.data} RUN ...`: gan-eval (n={args.n}) of each run's "
             "export at bf16 (OpenVINO, bf16 precision hint) and int8 (generator.int8.onnx), each beside fp32 "
             "(onnxruntime) on the same noise, the same real subset and evaluator. Target: the Fréchet distance "
             f"within {TARGET:.0%} of fp32's.", "",
             "| run | precision | ran on | max abs diff | mean abs diff | Fréchet distance | at fp32 | change | "
             "target |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['run']} | {r['precision']} | skipped: {r['skipped']} | | | | | | |")
            continue
        ok = abs(r["relative_change"]) <= TARGET
        lines.append(f"| {r['run']} ({r['variant']}) | {r['precision']} | {r['runtime']} | {r['max_abs_diff']:.2g} | "
                     f"{r['mean_abs_diff']:.2g} | {r['reduced']:.4f} | {r['fp32']:.4f} | "
                     f"{100 * r['relative_change']:+.2f}% | {'met' if ok else '**not met**'} |")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
