"""Issue 28, Ray part: a sharded job on a local 2-worker Ray cluster against ``--workers 2``.

mnist-mlp (1x28x28, the variant's own generator exported untrained from one short epoch on fake
data: its weights do not change its speed), ``--n`` samples to ``.npy`` shards of 10,240, on
``--provider onnxruntime``. The cluster: a head and one worker node, 1 CPU each (so two actors
of one thread, as ``--workers 2`` runs two processes of one thread on this 2-core machine),
started here as ``ray start`` processes (tests/inference/ray_cluster.py), stopped at the end.

Measured:

- the cluster's start-up: both ``ray start`` processes to two nodes alive, a driver connected;
- in this process (the driver connected once): ``run_local(job, workers=2)`` and
  ``run_ray(job)`` taking turns, ``--repeats`` times; each one's whole time (its processes or
  actors started, the model opened, every shard made and committed) and its rate once started
  (the samples after the first shard committed over the time from it to the last);
- once each, the command a user types, in a fresh process: ``gan-infer ... --workers 2`` and
  ``gan-infer ... --ray ADDRESS`` (which connects, starts its actors, runs, disconnects).

Both write the same bytes (checked here). Writes benchmarks/results/scale_ray.md and .json.

    python benchmarks/scale_ray.py [--n 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 0.85  # Ray's rate once started at least this share of --workers 2's (within 15%)


def export_mnist_mlp(tmp: Path) -> Path:
    from ganforge.export import export
    from ganforge.training import train
    from tests.fakedata import write_idx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train("mnist-mlp", epochs=1, sets=[f"data={write_idx(tmp / 'idx', n=200)}", "batch_size=50"],
                    runs_dir=tmp / "runs", progress=False, device="cpu")
        return export(run.run_dir, formats="onnx", out_dir=tmp / "mnist-mlp").artifacts["onnx"]


def make_job(model: Path, n: int, out: Path):
    from ganforge.inference import Generator
    from ganforge.inference.request import GenerationRequest
    from ganforge.inference.sharded import job_from_request, job_options

    request = GenerationRequest(model=model, n=n, seed=1, out=f"{out}/", shard_format="npy", provider="onnxruntime")
    return job_from_request(request, Generator(model, **job_options(request.generator_options())), model)


def timed(run, job) -> dict:
    """``run(job, progress)``'s whole seconds and its rate after the first shard."""
    marks = []
    began = time.perf_counter()
    result = run(job, lambda done, todo, samples: marks.append((time.perf_counter(), samples)))
    whole = time.perf_counter() - began
    (t_first, s_first), (t_last, s_last) = marks[0], marks[-1]
    return {"seconds": whole, "rate": (s_last - s_first) / (t_last - t_first), "first_shard_s": t_first - began,
            "made": result.made}


def tree(folder: Path) -> dict[str, int]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def cli(model: Path, n: int, out: Path, *extra: str, env: dict) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", str(model), "--n", str(n), "--out",
                    f"{out}/", "--format", "npy", "--seed", "1", "--provider", "onnxruntime", *extra],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def measure(n: int, repeats: int, tmp: Path) -> dict:
    import ray

    from ganforge.inference import ray_runner
    from ganforge.inference.shards import run_local
    from tests.inference.ray_cluster import Cluster, auth_env, env

    model = export_mnist_mlp(tmp)
    warm = make_job(model, 20_480, tmp / "warm")
    run_local(warm)  # the micro-batch measured and cached before anything is timed
    before = uptime()
    cluster = Cluster(tmp / "cluster")
    (tmp / "cluster").mkdir()
    began = time.perf_counter()
    rows = {"local": [], "ray": []}
    try:
        import os

        os.environ.update(auth_env())
        cluster.start()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        cluster.wait_nodes(ray, 2)
        startup = time.perf_counter() - began
        runners = {"local": lambda job, progress: run_local(job, 2, progress),
                   "ray": lambda job, progress: ray_runner.run_ray(job, progress=progress)}
        for _ in range(repeats):
            for name, run in runners.items():
                out = tmp / name
                rows[name].append(timed(run, make_job(model, n, out)))
                if name == "ray":
                    same = tree(tmp / "ray") == tree(tmp / "local")
                    assert same, "the Ray folder differs from the local one"
                    shutil.rmtree(tmp / "ray")
                    shutil.rmtree(tmp / "local")
        ray.shutdown()
        commands = {"gan-infer --workers 2": cli(model, n, tmp / "c1", "--workers", "2", env=env(cluster.tmp)),
                    "gan-infer --ray ADDRESS": cli(model, n, tmp / "c2", "--ray", cluster.address,
                                                   env=env(cluster.tmp))}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
    return {"n": n, "repeats": repeats, "startup_s": startup, "rows": rows, "commands": commands,
            "uptime_before": before, "uptime_after": uptime(), "ray": ray.__version__}


def markdown(result: dict) -> str:
    med = {name: {k: statistics.median(r[k] for r in rows) for k in ("seconds", "rate", "first_shard_s")}
           for name, rows in result["rows"].items()}
    share = med["ray"]["rate"] / med["local"]["rate"]
    n = result["n"]
    lines = [
        "# Sharded jobs on Ray against --workers 2 (issue 28, part 3)", "",
        f"`python benchmarks/scale_ray.py --n {n} --repeats {result['repeats']}` on this project's 2-core machine "
        f"(ray {result['ray']}). mnist-mlp, {n:,} samples (seed 1) to `.npy` shards of 10,240, onnxruntime; "
        "the Ray cluster is a head and one worker node of 1 CPU each on this machine (two actors of one thread), "
        "against `--workers 2` (two processes of one thread). Both folders are the same bytes (checked).", "",
        f"Load: before `{result['uptime_before']}`, after `{result['uptime_after']}`.", "",
        "| path | whole job (s) | first shard after (s) | rate once started (samples/s) |",
        "|---|---|---|---|",
    ]
    for name, label in (("local", "`run_local(workers=2)`"), ("ray", "`run_ray` (driver already connected)")):
        m = med[name]
        lines.append(f"| {label} | {m['seconds']:.2f} | {m['first_shard_s']:.2f} | {m['rate']:,.0f} |")
    lines += ["", f"Ray's rate once started is **{share:.0%}** of `--workers 2`'s (target: at least "
              f"{TARGET:.0%}, within 15%): {'met' if share >= TARGET else 'not met'}. Medians of "
              f"{result['repeats']}, the two taking turns.", "",
              "Start-up costs, paid once:", "",
              f"- the cluster (`ray start --head` and `ray start --address ...`, to two nodes alive and a driver "
              f"connected): **{result['startup_s']:.1f} s**;"]
    c = result["commands"]
    lines += [f"- the whole commands, each in a fresh process: `gan-infer --workers 2` "
              f"{c['gan-infer --workers 2']:.1f} s, `gan-infer --ray ADDRESS` {c['gan-infer --ray ADDRESS']:.1f} s "
              "(joining the cluster and starting its actors included).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-ray-") as tmp:
        result = measure(args.n, args.repeats, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_ray.json").write_text(json.dumps(result, indent=1))
    (args.out / "scale_ray.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
