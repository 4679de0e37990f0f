"""Issue 28, local part: big jobs as shards against the one-stream way, workers, PNG shards, memory.

Every row is one fresh process under a small wrapper (its wall time, and the peak resident set
``ru_maxrss`` of its largest process: with --workers, the largest of the parent and its workers):

- mnist-mlp (1x28x28, the variant's own generator, exported untrained from one short epoch on
  fake data: its weights do not change its speed), ``--n`` samples (1,000,000: 3.1 GB):
  the one-stream baseline (the old way: one ``np.random.default_rng(seed)`` stream through
  ``Generator``, one .npy written as it goes), ``gan-infer --out x.npy`` (keyed noise, one file),
  ``gan-infer --out DIR/ --format npy`` (keyed, shards) with ``--workers 1`` and ``--workers 2``,
  and the shards again at a tenth of ``--n`` for the memory against ``--n``;
- dcgan (3x32x32, exported the same way), 20,000 samples: ``--out x.npy`` against PNG shards
  (``--out DIR/``) with ``--workers 1`` and ``--workers 2``.

All on ``--provider onnxruntime`` (what a shard job runs on; the baseline too) after one warm-up
job per model, so the micro-batch is measured and cached before anything is timed. The rows take
turns in the order listed, ``--repeats`` times, and the median is reported. Writes
benchmarks/results/scale.md and scale.json.

    python benchmarks/scale.py [--quick] [--repeats 1] [--n 1000000] [--png-n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRAPPER = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
           "sys.stderr.write(p.stderr[-800:] if p.returncode else '')")

# the old way: one stream of noise for the whole job, one .npy written batch by batch
BASELINE = """
import sys, numpy as np
from ganforge.inference import Generator
from ganforge.inference.render import write_batches
model, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
gen = Generator(model, provider="onnxruntime")
rng = np.random.default_rng(seed)
def batches():
    done, step = 0, gen.default_batch
    while done < n:
        b = min(step, n - done)
        yield gen(rng.standard_normal((b, gen.info.latent_dim), dtype=np.float32))
        done += b
write_batches("npy", batches(), n, gen.info.sample_shape, out, kind=gen.info.kind)
"""
TARGET_KEYED = 1.0  # keyed shards at least as fast as the one stream (samples/s ratio)
TARGET_PNG = 0.70  # PNG shards with --workers 2 at least this share of the .npy rate


def export_models(tmp: Path) -> dict[str, Path]:
    """mnist-mlp and dcgan generators at their default sizes: one short epoch on fake data, exported."""
    from ganforge.export import export
    from ganforge.training import train
    from tests.fakedata import write_cifar, write_idx

    data = {"mnist-mlp": write_idx(tmp / "idx", n=200), "dcgan": write_cifar(tmp / "cifar", per_batch=40)}
    models = {}
    for name, where in data.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = train(name, epochs=1, sets=[f"data={where}", "batch_size=50"], runs_dir=tmp / "runs", progress=False,
                        device="cpu")
            models[name] = export(run.run_dir, formats="onnx", out_dir=tmp / name).artifacts["onnx"]
    return models


def measure(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of ``cmd`` in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    code, kb = proc.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return wall, int(kb) / 1024


def infer(model: Path, n: int, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganforge.inference.cli", "--model", str(model), "--n", str(n), "--out", out,
            "--provider", "onnxruntime", "--seed", "1", *extra]


def cases(models: dict[str, Path], n: int, png_n: int, tmp: Path,
          shm: Path | None) -> list[tuple[str, str, int, list[str], Path]]:
    """(model, what, n, command, output to delete after) of every row, in the order they take turns;
    ``shm``: a folder in memory (tmpfs) for the dcgan rows again, without the disk."""
    mlp, dcgan = models["mnist-mlp"], models["dcgan"]
    in_memory = [] if shm is None else [
        ("dcgan", ".npy, on tmpfs", png_n, infer(dcgan, png_n, str(shm / "d.npy")), shm / "d.npy"),
        ("dcgan", "PNG shards, --workers 1, on tmpfs", png_n, infer(dcgan, png_n, f"{shm}/p1/"), shm / "p1"),
        ("dcgan", "PNG shards, --workers 2, on tmpfs", png_n, infer(dcgan, png_n, f"{shm}/p2/", "--workers", "2"),
         shm / "p2")]
    small = max(n // 10, 4 * 10_240)
    return [
        ("mnist-mlp", "one stream, one .npy (the old way)", n,
         [sys.executable, "-c", BASELINE, str(mlp), str(n), "1", str(tmp / "base.npy")], tmp / "base.npy"),
        ("mnist-mlp", "keyed, one .npy", n, infer(mlp, n, str(tmp / "keyed.npy")), tmp / "keyed.npy"),
        ("mnist-mlp", "keyed, npy shards, --workers 1", n, infer(mlp, n, f"{tmp}/s1/", "--format", "npy"), tmp / "s1"),
        ("mnist-mlp", "keyed, npy shards, --workers 2", n,
         infer(mlp, n, f"{tmp}/s2/", "--format", "npy", "--workers", "2"), tmp / "s2"),
        ("mnist-mlp", "keyed, npy shards, --workers 1", small, infer(mlp, small, f"{tmp}/s0/", "--format", "npy"),
         tmp / "s0"),
        ("dcgan", ".npy", png_n, infer(dcgan, png_n, str(tmp / "d.npy")), tmp / "d.npy"),
        ("dcgan", "PNG shards, --workers 1", png_n, infer(dcgan, png_n, f"{tmp}/p1/"), tmp / "p1"),
        ("dcgan", "PNG shards, --workers 2", png_n, infer(dcgan, png_n, f"{tmp}/p2/", "--workers", "2"), tmp / "p2"),
        *in_memory,
    ]


def remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_rows(rows, repeats: int, env: dict):
    """Each row ``repeats`` times, the rows taking turns; its output removed after each run."""
    times: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(rows))}
    before = uptime()
    for _ in range(repeats):
        for i, (name, what, n, cmd, out) in enumerate(rows):
            times[i].append(measure(cmd, env))
            print(f"  {name:9s} {what:38s} n={n:>9,}: {times[i][-1][0]:7.2f} s, peak {times[i][-1][1]:6.1f} MB",
                  flush=True)
            remove(out)
    return times, before, uptime()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--png-n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: --n 100000 --png-n 4000, one repeat")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if args.quick:
        args.n, args.png_n, args.repeats = 100_000, 4_000, 1
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GANFORGE_CACHE_DIR": str(tmp / "cache")}
        models = export_models(tmp)
        for model in models.values():  # measures and caches the micro-batch: nothing timed below tunes
            measure(infer(model, 10_240, str(tmp / "warm.npy")), env)
        shm = Path(tempfile.mkdtemp(dir="/dev/shm")) if Path("/dev/shm").is_dir() else None
        try:
            rows = cases(models, args.n, args.png_n, tmp, shm)
            times, before, after = run_rows(rows, args.repeats, env)
        finally:
            if shm is not None:
                remove(shm)
    results = [{"model": name, "what": what, "n": n, "wall_s": round(statistics.median(w for w, _ in times[i]), 2),
                "peak_rss_mb": round(max(m for _, m in times[i]), 1),
                "samples_per_s": round(n / statistics.median(w for w, _ in times[i]))}
               for i, (name, what, n, _, _) in enumerate(rows)]
    report = {"rows": results, "uptime_before": before, "uptime_after": after, "repeats": args.repeats,
              "quick": args.quick, "cpus": os.cpu_count()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "scale-quick" if args.quick else "scale"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown(report))
    print((out / f"{name}.md").read_text())


def markdown(report: dict) -> str:
    rows = report["rows"]
    rate = {(r["model"], r["what"], r["n"]): r["samples_per_s"] for r in rows}
    big = max(r["n"] for r in rows if r["model"] == "mnist-mlp")
    png_n = next(r["n"] for r in rows if r["model"] == "dcgan")
    base = rate[("mnist-mlp", "one stream, one .npy (the old way)", big)]
    keyed = rate[("mnist-mlp", "keyed, npy shards, --workers 1", big)]
    two = rate[("mnist-mlp", "keyed, npy shards, --workers 2", big)]
    npy, png2 = rate[("dcgan", ".npy", png_n)], rate[("dcgan", "PNG shards, --workers 2", png_n)]
    shm = (rate.get(("dcgan", ".npy, on tmpfs", png_n)), rate.get(("dcgan", "PNG shards, --workers 2, on tmpfs", png_n)))
    rss = {r["n"]: r["peak_rss_mb"] for r in rows if r["what"] == "keyed, npy shards, --workers 1"}
    small = min(rss)  # a tenth of n: many shards too (a one-shard job holds one shard fewer)

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines = ["# Big jobs in shards (issue 28, local part)", "",
             "Written by `benchmarks/scale.py`" + (" --quick (a smoke run: small n)" if report["quick"] else "") + ". "
             "Each row is one fresh process; wall time includes start-up, opening the model and writing; peak RSS is "
             "`ru_maxrss` of its largest process (with --workers: the largest of the parent and its workers). "
             f"Median of {report['repeats']} run{'s' if report['repeats'] != 1 else ''} a row, the rows taking turns. "
             "Models: mnist-mlp and dcgan generators at their default sizes, exported after one short epoch on fake "
             "data (untrained weights compute as fast as trained ones). All rows on onnxruntime with its micro-batch "
             "measured and cached first.", "",
             f"The machine ({report['cpus']} cores) is shared with other engineers' work: the figures move with their "
             "load (`uptime` before and after below), and a ratio of two rows measured a minute apart carries that "
             "noise.", "",
             "| model | what | n | wall s | samples/s | peak RSS MB |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['what']} | {r['n']:,} | {r['wall_s']} | {r['samples_per_s']:,} | "
                     f"{r['peak_rss_mb']} |")
    lines += ["", "| target | figure | verdict |", "|---|---|---|",
              f"| keyed npy shards no slower than the one stream | {keyed / base:.2f}x its samples/s | "
              f"{met(keyed / base >= TARGET_KEYED - 0.05)} (within 5%: the noise of this machine) |",
              f"| --workers 2 against --workers 1 (npy shards) | {two / keyed:.2f}x | measured (2 cores: at most 2x) |",
              f"| PNG shards --workers 2 at least 70% of the .npy rate | {png2 / npy:.0%} | {met(png2 / npy >= TARGET_PNG)} |",
              *([f"| the same, both on tmpfs (no disk) | {shm[1] / shm[0]:.0%} | {met(shm[1] / shm[0] >= TARGET_PNG)} |"]
                if None not in shm else []),
              f"| peak RSS flat in n | {rss[small]} MB at n={small:,}, {rss[big]} MB at n={big:,} | "
              f"{met(rss[big] <= rss[small] * 1.15 + 5)} |",
              "", "```", f"uptime before: {report['uptime_before']}", f"uptime after:  {report['uptime_after']}", "```",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
