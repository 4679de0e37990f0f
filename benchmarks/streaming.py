"""Peak memory of gan-infer against --n: .npy and folder output must stream.

Each case runs `gan-infer` in a fresh process under a small wrapper process, so
the peak resident set (`ru_maxrss` of the wrapper's only child) is that run's
alone. Peak memory must not grow with --n; the report puts small and large n
side by side.

    python benchmarks/streaming.py MODEL.onnx [--cases npy:1000 npy:100000 dir:2000 dir:20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRAPPER = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
           "sys.stderr.write(p.stderr[-500:])")


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident set in MB) of ``cmd`` in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    code, kb = proc.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return wall, int(kb) / 1024


def measure_streaming(model: Path, cases: list[tuple[str, int]]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for form, n in cases:
            out = f"{tmp}/out.npy" if form == "npy" else f"{tmp}/out-{n}/"
            wall, mb = peak_rss([sys.executable, "-m", "ganforge.inference.cli", "--model", str(model),
                                 "--n", str(n), "--out", out])
            rows.append({"output": form, "n": n, "wall_s": round(wall, 2), "peak_rss_mb": round(mb, 1),
                         "samples_per_s": round(n / wall)})
            print(f"  {form:4s} n={n:>7d}: {wall:6.2f} s, peak {mb:6.1f} MB", flush=True)
    return rows


def markdown(results: dict[str, list[dict]]) -> str:
    lines = ["# gan-infer streaming: peak memory against --n", "",
             "Each row is a fresh `gan-infer --n N --out OUT` process; peak resident set of that process alone "
             "(`ru_maxrss`), wall time including start-up and writing. Written by benchmarks/streaming.py "
             "(part of `make bench`).", "",
             "| model | output | n | wall s | samples/s | peak RSS MB |", "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            lines.append(f"| {name} | {'.npy' if r['output'] == 'npy' else 'folder of PNGs'} | {r['n']:,} | "
                         f"{r['wall_s']} | {r['samples_per_s']:,} | {r['peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


def parse_case(text: str) -> tuple[str, int]:
    form, _, n = text.partition(":")
    if form not in ("npy", "dir") or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected npy:N or dir:N, got {text!r}")
    return form, int(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--cases", nargs="+", type=parse_case,
                        default=[("npy", 1000), ("npy", 100_000), ("dir", 2000), ("dir", 20_000)])
    parser.add_argument("--out", type=Path, help="write streaming.md and streaming.json into this folder")
    args = parser.parse_args()
    results = {args.model.parent.parent.name: measure_streaming(args.model, args.cases)}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "streaming.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "streaming.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
