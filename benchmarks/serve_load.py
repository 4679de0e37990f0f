"""gan-serve against LitServe under load, in one run: both servers on the same ONNX file and the
same cores, taking turns (A, B, A, B), each at 16 and 64 concurrent clients and requests of 1 and
16 samples; samples/s and p50/p99 latency; and what gan-infer's Generator alone reaches.

    python benchmarks/serve_load.py DCGAN.onnx MNIST_MLP.onnx [--seconds 6] [--rounds 2]

gan-serve is called as a tritonclient user calls it (v2 infer, binary noise in, binary float32 out);
LitServe (benchmarks/serve_litserve_app.py) gets ``{"n", "seed"}`` and returns the float32 bytes.
Writes benchmarks/results/serve.md, serve.json and serve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
POINTS = [(16, 1), (64, 1), (16, 16), (64, 16)]  # (clients, samples a request)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, model: str, port: int) -> tuple[subprocess.Popen, str, str]:
    if kind == "gan-serve":
        cmd = [sys.executable, "-m", "ganforge.serve", "--model", model, "--port", str(port)]
        health, url = "/v2/health/ready", "/v2/models/generator/infer"
    else:
        cmd = [sys.executable, str(HERE / "serve_litserve_app.py"), model, str(port)]
        health, url = "/health", "/predict"
    # its own session: LitServe starts worker processes, which must end with it (stop)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited: {proc.stderr.read()[-1500:]}")
        try:
            with urllib.request.urlopen(base + health, timeout=2) as r:
                if r.status == 200:
                    return proc, base + url, base
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} not ready in 90 s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it and any workers it started), SIGKILL after 30 s;
    then the group's stragglers, so no server outlives its turn."""
    import signal

    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.5)  # workers on their way out
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    if proc.stderr:
        proc.stderr.close()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every process under it, so far (Linux /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


def load(kind: str, url: str, n: int, clients: int, seconds: float, latent: int, values: int,
         server_pid: int | None = None) -> dict:
    """One client run; with ``server_pid``, the cores the server and the client used meanwhile."""
    import resource

    before_server = cpu_seconds(server_pid) if server_pid else 0.0
    before_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, str(HERE / "serve_client.py"), kind, url, str(n), str(clients), str(seconds), str(latent),
           str(values)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-1500:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    wall = time.perf_counter() - start
    after_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["client_cores"] = (after_client.ru_utime + after_client.ru_stime - before_client.ru_utime
                              - before_client.ru_stime) / wall
    if server_pid:
        result["server_cores"] = (cpu_seconds(server_pid) - before_server) / wall
    return result


def alone(model: str, batch: int, seconds: float = 3.0) -> dict:
    """samples/s of the Generator alone (gan-infer's library), runs of ``batch`` samples, in a fresh
    process, and the cores it got meanwhile (its CPU time over the wall time of the runs)."""
    code = (f"import time; from ganforge.inference import Generator; g = Generator({model!r}, device='cpu'); "
            f"z = g.sample_noise({batch}, 0); g(z, small_job=True); n = 0; t = time.perf_counter(); "
            "c = time.process_time()\n"
            f"while time.perf_counter() - t < {seconds}: g(z, small_job=True); n += {batch}\n"
            "wall = time.perf_counter() - t; print(n / wall, (time.process_time() - c) / wall)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    rate, cores = map(float, out.split())
    return {"samples_per_s": rate, "cores": cores}


def model_facts(model: str) -> tuple[str, int, int]:
    import math

    from ganforge.inference import Generator

    gen = Generator(model, device="cpu")
    return str(gen.info.variant), gen.info.latent_dim, math.prod(gen.info.sample_shape)


def bench_model(model: str, seconds: float, rounds: int) -> dict:
    variant, latent, values = model_facts(model)
    runs: dict[str, dict[str, list]] = {"gan-serve": {}, "litserve": {}}
    alone_runs: dict[int, list[dict]] = {16: [], 256: []}
    for _ in range(rounds):
        for batch in alone_runs:  # in each round, beside the servers' turns: the same load on the machine
            alone_runs[batch].append(alone(model, batch))
        for kind in ("gan-serve", "litserve"):
            proc, url, _ = start(kind, model, free_port())
            try:
                for clients, n in POINTS:
                    load(kind, url, n, clients, 1.0, latent, values)  # warm the connections and the batcher
                    result = load(kind, url, n, clients, seconds, latent, values, proc.pid)
                    runs[kind].setdefault(f"{clients}x{n}", []).append(result)
                    print(f"{variant} {kind} {clients}x{n}: {result}", flush=True)
            finally:
                stop(proc)
    best = {kind: {point: max(results, key=lambda r: r["samples_per_s"]) for point, results in by.items()}
            for kind, by in runs.items()}
    return {"variant": variant, "model": model, "latent": latent, "values": values, "runs": runs, "best": best,
            "alone": {b: max(rates, key=lambda r: r["samples_per_s"]) for b, rates in alone_runs.items()},
            "alone_runs": alone_runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = [bench_model(m, args.seconds, args.rounds) for m in args.models]
    meta = {"cores": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
            "seconds": args.seconds, "rounds": args.rounds, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps({"meta": meta, "models": results}, indent=1))
    from serve_report import write_report

    write_report(RESULTS, meta, results)


if __name__ == "__main__":
    main()
