"""Issue 26: ganforge's choice of threads against torch's default and one thread, on a quiet machine
and with two busy background processes, for training epochs (sine, mnist-mlp, dcgan, fake data of a
fixed number of steps) and for gan-infer.

Each figure is one fresh process (python benchmarks/threads.py --child ...), the three settings
taking turns, the median of ``--repeats``; busy = two processes spinning on the CPU (started and
killed here, and bounded in time by themselves). Writes benchmarks/results/threads.md and .json.

    python benchmarks/threads.py [--repeats 3] [--scale 1.0] [--only sine mnist-mlp]

Settings: ``ganforge`` (no setting: what ganforge chooses), ``default`` (ganforge's choice switched
off: torch's and onnxruntime's own defaults, as before issue 26), ``one`` (GANFORGE_THREADS=1).
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # the package, and tests/ and benchmarks/ as modules

SETTINGS = ("ganforge", "default", "one")
# steps of one timed epoch at --scale 1 (batch sizes: the variants' defaults)
TRAIN_STEPS = {"sine": 600, "mnist-mlp": 120, "dcgan": 30}
BATCH = {"sine": 32, "mnist-mlp": 100, "dcgan": 64}
INFER_N = 4096  # gan-infer --n (below the micro-batch tuning threshold: onnxruntime alone)
BUSY_LIMIT_S = 1500  # a spinner stops by itself after this, whatever happens here
TARGET_BUSY_SPEEDUP = 3.0  # ganforge over torch's default on the busy machine (sine, mnist-mlp)
TARGET_SLACK = 1.10  # ganforge at most this much slower than the better of the two fixed settings


def _child(kind: str, work: str, mode: str, where: str) -> None:
    """One measurement in this process; prints a JSON line."""
    from ganforge import threads

    if mode == "default":  # as before issue 26: nothing set, torch's and onnxruntime's defaults
        threads.apply_torch = lambda torch, *a, **k: None
        threads.apply_ort = lambda options, choice: None
        threads.openvino_config = lambda choice: {}
        threads.loader_workers = lambda: max(0, min(8, (os.cpu_count() or 1) - 1))
    warnings.simplefilter("ignore")
    if kind == "train":
        import torch

        from ganforge.training import train

        sets = json.loads(Path(where, "sets.json").read_text())[work]
        result = train(work, epochs=1, sets=sets, runs_dir=Path(where, "runs", mode), progress=False, device="cpu")
        row = result.history[-1]
        seconds = row["seconds"]
        chosen = str(threads.current()) if mode != "default" else (f"threads: {torch.get_num_threads()} intra-op, "
                                                                   f"{torch.get_num_interop_threads()} inter-op "
                                                                   "(torch's default)")
        print(json.dumps({"seconds": seconds, "steps": row["step"], "threads": chosen}))
    else:
        from ganforge.inference import generate

        model = Path(where, "models", work, "export", "generator.onnx")
        out = Path(where, f"out-{mode}.npy")
        t0 = time.perf_counter()
        result = generate(model, INFER_N, out, seed=0)
        seconds = time.perf_counter() - t0
        chosen = str(threads.current()) if mode != "default" else "onnxruntime's default"
        print(json.dumps({"seconds": seconds, "gen_seconds": result.seconds, "threads": chosen}))


def _prepare(tmp: Path, scale: float, works: list[str], infer: list[str]) -> None:
    from tests.fakedata import write_cifar, write_idx

    sets = {}
    steps = {w: max(4, int(TRAIN_STEPS[w] * scale)) for w in TRAIN_STEPS}
    if "sine" in works or "sine" in infer:
        sets["sine"] = [f"n_rows={steps['sine'] * BATCH['sine']}"]
    if "mnist-mlp" in works or "mnist-mlp" in infer:
        sets["mnist-mlp"] = [f"data={write_idx(tmp / 'idx', n=steps['mnist-mlp'] * BATCH['mnist-mlp'])}"]
    if "dcgan" in works or "dcgan" in infer:
        per = max(1, steps["dcgan"] * BATCH["dcgan"] // 5)
        sets["dcgan"] = [f"data={write_cifar(tmp / 'cifar', per_batch=per)}"]
    (tmp / "sets.json").write_text(json.dumps(sets))
    if infer:
        from ganforge.export import export
        from ganforge.training import train

        for work in infer:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = [s for s in sets[work] if s.startswith("data=")]
                run = train(work, epochs=1, sets=data + ["batch_size=64"], runs_dir=tmp / "models-runs",
                            progress=False, device="cpu")
                target = tmp / "models" / work
                target.mkdir(parents=True, exist_ok=True)
                export(run.run_dir, formats="onnx", out_dir=target / "export")


def _spinners(n: int) -> list[subprocess.Popen]:
    code = f"import time\nend = time.time() + {BUSY_LIMIT_S}\nwhile time.time() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def _measure(kind: str, work: str, mode: str, tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GANFORGE_THREADS", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if mode == "one":
        env["GANFORGE_THREADS"] = "1"
    out = subprocess.run([sys.executable, __file__, "--child", kind, work, mode, str(tmp)], env=env,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise SystemExit(f"{kind} {work} {mode} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="steps per epoch, times TRAIN_STEPS")
    parser.add_argument("--only", nargs="+", default=list(TRAIN_STEPS), help="training workloads")
    parser.add_argument("--infer", nargs="*", default=["mnist-mlp", "dcgan"], help="gan-infer workloads")
    parser.add_argument("--conditions", nargs="+", default=["quiet", "busy"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", nargs=4, metavar=("KIND", "WORK", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(*args.child)
    cases = [("train", w) for w in args.only] + [("infer", w) for w in args.infer]
    results: dict = {"machine": {"cores": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                                 "scale": args.scale, "repeats": args.repeats}, "conditions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"preparing data and models in {tmp}", file=sys.stderr)
        _prepare(tmp, args.scale, args.only, args.infer)
        for condition in args.conditions:
            spin = _spinners(2) if condition == "busy" else []
            try:
                time.sleep(1.0 if spin else 0)
                runs: dict = {f"{k} {w}": {m: [] for m in SETTINGS} for k, w in cases}
                chosen: dict = {}
                load_before = _load()
                for rep in range(args.repeats):
                    for kind, work in cases:
                        for mode in (SETTINGS if rep % 2 == 0 else SETTINGS[::-1]):  # taking turns
                            r = _measure(kind, work, mode, tmp)
                            runs[f"{kind} {work}"][mode].append(r["seconds"])
                            chosen.setdefault(f"{kind} {work}", {}).setdefault(mode, r["threads"])
                            print(f"{condition} rep {rep + 1} {kind} {work} {mode}: {r['seconds']:.2f}s "
                                  f"({r['threads']})", file=sys.stderr)
                results["conditions"][condition] = {
                    "load_before": load_before, "load_after": _load(), "seconds": runs, "threads": chosen,
                    "median": {case: {m: statistics.median(v) for m, v in by.items()} for case, by in runs.items()}}
            finally:
                for p in spin:
                    p.kill()
                    p.wait()
            _write(results, Path(args.out))  # after each condition: a later failure keeps what was measured


def _write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads.json").write_text(json.dumps(results, indent=1))
    (out / "threads.md").write_text(markdown(results))
    print(f"wrote {out / 'threads.md'}", file=sys.stderr)


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["# Threads: ganforge's choice against torch's default and one thread (issue 26)", "",
             f"Written by `python benchmarks/threads.py --scale {m['scale']} --repeats {m['repeats']}`: a machine of "
             f"{m['cores']} cores ({m['affinity']} in this process's affinity). Each figure is the median of "
             f"{m['repeats']} fresh processes, the settings taking turns; training figures are one epoch's seconds "
             f"(set-up excluded), gan-infer's the whole generate() call of --n {INFER_N}. busy: two processes "
             "spinning on the CPU beside it. Load average (1/5 min) before and after each condition is given: "
             "figures taken on a machine with other work on it are noisy; the ratios within one condition "
             "are what to read.", ""]
    for condition, c in results["conditions"].items():
        lines += [f"## {condition} (load {c['load_before']} before, {c['load_after']} after)", "",
                  "| work | ganforge (s) | torch default (s) | one thread (s) | default / ganforge | "
                  "ganforge / best fixed | ganforge's choice |", "|---|---|---|---|---|---|---|"]
        for case, med in c["median"].items():
            g, d, o = med["ganforge"], med["default"], med["one"]
            slack = g / min(d, o)
            target = ""
            if condition == "busy" and case in ("train sine", "train mnist-mlp"):
                target = f" ({'met' if d / g >= TARGET_BUSY_SPEEDUP else '**not met**'}: >= {TARGET_BUSY_SPEEDUP:g}x)"
            lines.append(f"| {case} | {g:.2f} | {d:.2f} | {o:.2f} | {d / g:.2f}x{target} | {slack:.2f} "
                         f"({'met' if slack <= TARGET_SLACK else '**not met**'}: <= {TARGET_SLACK:.2f}) | "
                         f"{c['threads'][case]['ganforge'].removeprefix('threads: ')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
