"""Every format and precision for the given runs: size on disk and measured max abs
deviation from PyTorch eager fp32 (over batch sizes 1, 3, 64, 257), or why it is refused.

    python benchmarks/export_matrix.py RUN [RUN ...] [--out benchmarks/results/export-matrix.md]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.export import export
from ganforge.export.formats import NAMES, PRECISIONS, precisions_of

COMBOS = [(fmt, prec) for prec in PRECISIONS for fmt in NAMES if prec in precisions_of(fmt)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="benchmarks/results/export-matrix.md")
    args = parser.parse_args()
    header = "| variant (run) | " + " | ".join(f"{f} {p}" for f, p in COMBOS) + " |"
    lines = ["# Export matrix", "",
             "Size on disk / max abs deviation from PyTorch eager fp32 over batch sizes 1, 3, 64, 257 "
             "(tolerances: fp32 1e-4, fp16 1e-2, int8 5e-2). `refused` = the export failed its check or does not "
             "apply, with the reason below the table.", "", header, "|" + "---|" * (len(COMBOS) + 1)]
    reasons = []
    for run in args.runs:
        config = json.loads((Path(run) / "config.json").read_text())
        cells = []
        with tempfile.TemporaryDirectory() as out:
            for fmt, prec in COMBOS:
                try:
                    result = export(run, formats=fmt, precision=prec, out_dir=out)
                    key = next(iter(result.artifacts))
                    entry = json.loads(result.report.read_text())["artifacts"][key]
                    cells.append(f"{entry['size_bytes'] / 1024:.0f} KiB / {entry['deviation_from_fp32']:.1g}")
                except GanforgeError as exc:
                    cells.append("refused")
                    reasons.append(f"- {config['variant']} {fmt} {prec}: {exc}")
        lines.append(f"| {config['variant']} ({Path(run).resolve().name}) | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += ["", *reasons]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
