"""bench.json (every figure), bench.md (tables) and bench.png (samples/s per backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganforge.fsutil import atomic_path, atomic_write_text


def markdown(report: dict[str, Any]) -> str:
    m, model = report["machine"], report["model"]
    lines = [
        f"# gan-bench: {model['variant'] or Path(model['path']).name}",
        "",
        f"Machine: {m['cpu']} ({m['cores']} cores), {m['platform']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        f"Model: latent {model['latent_dim']}, sample {model['sample_shape']}, "
        f"{model['flops_per_sample'] or '?'} FLOPs/sample. fp32 matrix-product peak measured in this run: up to "
        f"{report['matmul_peak_gflops']} GFLOP/s; a {report['settings'].get('peak_n', '')}-square product takes its "
        f"turn with the backends at each batch size, and each row's % of peak is against the product timed in "
        f"the same turns.",
        f"Timing: {report['settings']['warmup_calls']} warm-up calls per backend and batch size, then single calls "
        f"until {report['settings']['budget_s_per_batch']} s or {report['settings']['max_repeats']} calls, the "
        f"backends taking turns in {report['settings'].get('rounds', 1)} rounds so a busy spell hits all alike; "
        f"each turn starts after {report['settings'].get('settle_s', 0)} s idle and one untimed call, so "
        f"the previous runtime's spinning threads and cache contents do not slow the next.",
        "",
    ]
    if model.get("foreign"):  # a model without ganforge metadata: how it was read
        lines[-1:-1] = [f"Read as a {model['foreign']}.", ""]
    eager = {r["batch"]: r["samples_per_s"] for b in report["backends"] if b["name"] == "torch-eager"
             for r in b["results"]}
    lines += ["| backend | batch | p50 ms | p90 ms | p99 ms | samples/s | vs torch-eager | GFLOP/s | peak GFLOP/s | "
              "% of peak |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b in report["backends"]:
        for r in b["results"]:
            ratio = f"{r['samples_per_s'] / eager[r['batch']]:.2f}x" if r["batch"] in eager else "-"
            gf = f"{r['gflops']:.2f}" if r.get("gflops") is not None else "-"
            pk = f"{100 * r['peak_fraction']:.1f}%" if r.get("peak_fraction") is not None else "-"
            lines.append(f"| {b['name']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['samples_per_s']:.0f} | {ratio} | {gf} | {r.get('peak_gflops') or 0:.0f} | {pk} |")
    if report.get("vs_best_peer"):
        lines += ["", "ganforge (as gan-infer opens it: the runtime per run size and the micro-batch it measured) "
                  "against the fastest fp32 peer timed in the same turns:", "",
                  "| batch | ganforge samples/s | best peer | its samples/s | ganforge / peer |", "|---|---|---|---|---|"]
        lines += [f"| {r['batch']} | {r['ours']} | {r['peer']} | {r['peer_samples_per_s']} | {r['ratio']:.2f}x |"
                  for r in report["vs_best_peer"]]
    if report.get("reduced_vs_peer"):
        lines += ["", "ganforge's reduced precisions against OpenVINO at its own precision (bf16 where the CPU has it):",
                  "", "| backend | batch | samples/s | openvino-default | ratio |", "|---|---|---|---|---|"]
        lines += [f"| {r['backend']} | {r['batch']} | {r['ours']} | {r['peer_samples_per_s']} | {r['ratio']:.2f}x |"
                  for r in report["reduced_vs_peer"]]
    if report.get("max_abs_diff_vs_ganforge"):
        lines += ["", "Largest difference from ganforge fp32 on one batch of 64 (output range [-1, 1]): "
                  + ", ".join(f"{k} {v:.2g}" for k, v in report["max_abs_diff_vs_ganforge"].items()) + "."]
    lines += ["", "Every backend computes on the threads ganforge chooses for the model's size within the same "
              "cores (torch's are the process's: its backends share them).", "",
              "| backend | load s | first call s | threads (intra-op: why) | plan: runtime per run size; micro-batch | "
              "samples/s by run size (the micro-batch's runtime) |", "|---|---|---|---|---|---|"]
    lines += [f"| {b['name']} | {b['load_s']:.3f} | {b['first_call_s']:.3f} | {_threads(b.get('threads'))} | "
              f"{b.get('plan') or '-'} | "
              + (', '.join(f'{k}: {v}' for k, v in b['micro_batch_samples_per_s'].items())
                 if b.get("micro_batch") else "-") + " |" for b in report["backends"]]
    cold = report.get("cold_start")
    if cold:
        lines += ["", f"Cold start, a fresh process writing a {cold['n']}-sample grid (median of {cold['repeats']}): "
                  f"gan-infer {cold.get('gan-infer_s', 'n/a')} s, torch {cold.get('torch_s', 'n/a')} s"
                  + (f", {cold['speedup']}x." if "speedup" in cold else ".")]
    for name, why in report["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    for note in report["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def _threads(threads: dict | None) -> str:
    """A backend's threads in the table: ``2: a tiny model: about 1,537 parameters``."""
    return "-" if not threads else f"{threads['intra_op']}: {threads['reason']}"


def plot(report: dict[str, Any], path: Path) -> bool:
    """samples/s against batch size per backend; False (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        report["notes"].append("no plot: matplotlib is not installed (pip install 'ganforge[train]')")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for b in report["backends"]:
        ax.plot([r["batch"] for r in b["results"]], [r["samples_per_s"] for r in b["results"]], marker="o", label=b["name"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples / s (p50)")
    ax.set_title(f"{report['model']['variant'] or 'model'}: throughput by backend")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(report, out_dir / "bench.png")
    atomic_write_text(out_dir / "bench.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out_dir / "bench.md", markdown(report) + "\n![samples/s by batch size](bench.png)\n")
