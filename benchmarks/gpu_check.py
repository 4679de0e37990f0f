"""`make gpu-check`: the CUDA paths, run once on a GPU machine, with a report.

On a machine where torch sees a CUDA GPU it
  1. trains every variant for one epoch on small data written here, on CUDA with AMP
     (channels_last and the pinned-memory loader come with --device cuda),
  2. runs a one-node torchrun (DDP over NCCL, one process a GPU) and resumes it,
  3. exports the dcgan run and serves it through onnxruntime's CUDA provider, plain and with
     IO binding (inputs and a pre-allocated output on the GPU), beside torch eager on the GPU,
and writes benchmarks/results/gpu.md. Every step is timed and reported pass or fail with its
one-line reason; a failure does not stop the others, and the exit status says whether all passed.

On a machine without one it says so and exits 0. `--rehearse` runs the same steps on the CPU
(gloo instead of NCCL, the CPU provider) into a temporary report: what the tests run, so that
the script works the day a GPU is lent.

    python benchmarks/gpu_check.py [--rehearse] [--out benchmarks/results/gpu.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # the package, and tests/ and benchmarks/ as modules

from tests.fakedata import write_cifar, write_idx, write_images  # noqa: E402

# One epoch each on data written here: what matters is that the CUDA path runs, not the samples.
VARIANTS = {
    "sine": lambda d: ["--set", "n_rows=256"],
    "mnist-mlp": lambda d: ["--data", str(write_idx(d / "idx", n=256))],
    "dcgan": lambda d: ["--data", str(write_cifar(d / "cifar", per_batch=64))],
    "wgan": lambda d: ["--data", str(write_idx(d / "idx", n=256))],
    "wgan-gp": lambda d: ["--data", str(write_images(d / "images", n=64, size=(32, 32)))],
}
BATCHES = (1, 64, 1024)  # served batch sizes
TIMED_S = 1.0  # seconds of calls per backend and batch size


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> tuple[bool, str]:
    """A command's success and its last line of output (its one-line error when it failed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))}
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    lines = (proc.stdout + proc.stderr).strip().splitlines() or [""]
    errors = [line for line in lines if line.startswith("Error:")]  # ganforge's one line, before torchrun's banner
    return proc.returncode == 0, (errors or lines)[-1][:300]


def step(steps: list[Step], name: str, call) -> bool:
    t0 = time.perf_counter()
    try:
        ok, detail = call()
    except Exception as exc:  # noqa: BLE001  (a check that breaks is a failed check, reported)
        ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    steps.append(Step(name, ok, time.perf_counter() - t0, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name} ({steps[-1].seconds:.1f} s): {detail}", flush=True)
    return ok


def train_cmd(variant: str, data: Path, device: str, runs: Path) -> list[str]:
    return [sys.executable, "-m", "ganforge.train_cli", variant, *VARIANTS[variant](data), "--epochs", "1",
            "--device", device, "--amp", "auto", "--runs-dir", str(runs)]


def torchrun_cmd(nproc: int, device: str, runs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "ganforge.training", *args, "--device", device, "--runs-dir", str(runs)]


def serving(model: Path, checkpoint: Path, device: str) -> tuple[bool, str]:
    """samples/s of the onnxruntime provider (plain, and with IO binding on CUDA) and of torch
    eager, at each of BATCHES; parity of the provider's output with torch's."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from ganforge.training import checkpoint as ckpt

    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        return False, f"{provider} is not available: install onnxruntime-gpu (pip install '.[gpu]' instead of [cpu])"
    session = ort.InferenceSession(str(model), providers=[provider])
    if session.get_providers()[0] != provider:
        return False, f"onnxruntime fell back to {session.get_providers()[0]} (CUDA/cuDNN libraries?)"
    G = ckpt.build_generator(ckpt.load(checkpoint))[0].to(device)
    figures = []
    for batch in BATCHES:
        z = np.random.default_rng(batch).standard_normal((batch, G.latent_dim), dtype=np.float32)
        with torch.inference_mode():
            ref = G(torch.from_numpy(z).to(device)).float().cpu().numpy()
        got = session.run(None, {"z": z})[0]
        diff = float(np.abs(got - ref).max())
        rates = {"onnxruntime": timed(lambda: session.run(None, {"z": z}), batch)}
        if device == "cuda":
            rates["onnxruntime+iobinding"] = timed(bound_call(session, z, ref.shape, ort), batch)
            zt = torch.from_numpy(z).to(device)

            def eager():
                with torch.inference_mode():
                    G(zt)
                torch.cuda.synchronize()

            rates["torch eager"] = timed(eager, batch)
        figures.append(f"batch {batch}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items())
                       + f", max abs diff {diff:.1e}")
        if diff > 1e-2:  # TF32 and cuDNN's algorithms differ from CPU float32; a real bug is far above this
            return False, f"batch {batch}: onnxruntime and torch differ by {diff:.3g}"
    return True, "; ".join(figures)


def bound_call(session, z, out_shape, ort):
    """One run with the input copied to the GPU once and the output written into a pre-allocated
    GPU buffer: what serving without host copies costs."""
    binding = session.io_binding()
    z_gpu = ort.OrtValue.ortvalue_from_numpy(z, "cuda", 0)
    out = ort.OrtValue.ortvalue_from_shape_and_type(list(out_shape), z.dtype, "cuda", 0)
    binding.bind_ortvalue_input("z", z_gpu)
    binding.bind_ortvalue_output("x", out)

    def call():
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return call


def timed(call, batch: int) -> float:
    call()  # warm-up: cuDNN picks its algorithms
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < TIMED_S:
        call()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def check(device: str, work: Path) -> list[Step]:
    """Every step on ``device`` ("cuda", or "cpu" to rehearse), working in ``work``."""
    import torch

    steps: list[Step] = []
    data, runs = work / "data", work / "runs"
    for variant in VARIANTS:
        step(steps, f"gan-train {variant} on {device} with AMP",
             lambda v=variant: run(train_cmd(v, data, device, runs / v), work))
    nproc = torch.cuda.device_count() if device == "cuda" else 2
    step(steps, f"torchrun, {nproc} processes ({'NCCL' if device == 'cuda' else 'gloo'})",
         lambda: run(torchrun_cmd(nproc, device, runs / "ddp", "sine", "--set", "n_rows=256", "--epochs", "1"), work))
    step(steps, "torchrun resume", lambda: run(torchrun_cmd(nproc, device, runs / "ddp", "--resume", "--epochs", "2"),
                                               work))
    exported = step(steps, "gan-export dcgan (onnx)",
                    lambda: run([sys.executable, "-m", "ganforge.export.cli", "--runs-dir", str(runs / "dcgan"),
                                 "--format", "onnx"], work))
    if exported:
        run_dir = (runs / "dcgan" / "latest").resolve()
        step(steps, f"serve dcgan: onnxruntime {device} beside torch",
             lambda: serving(run_dir / "export" / "generator.onnx", run_dir / "checkpoints" / "last.pt", device))
        step(steps, f"gan-infer --device {device}",
             lambda: run([sys.executable, "-m", "ganforge.inference.cli", "--model",
                          str(run_dir / "export" / "generator.onnx"), "--device", device, "--n", "64",
                          "--out", str(work / "grid.png")], work))
    return steps


def report(steps: list[Step], device: str) -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (a CPU rehearsal)"
    lines = ["# gpu-check", "", f"`python benchmarks/gpu_check.py` on {platform.node() or 'this machine'}: GPU "
             f"{gpu}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.", "",
             f"{sum(s.ok for s in steps)} of {len(steps)} steps passed.", "",
             "| step | result | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {'pass' if s.ok else '**fail**'} | {s.seconds:.1f} | {s.detail.replace('|', '/')} |"
              for s in steps]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rehearse", action="store_true", help="run every step on the CPU (what the tests do)")
    parser.add_argument("--out", type=Path, help="report (default: benchmarks/results/gpu.md; a temporary file "
                                                 "when rehearsing)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu-check: torch is not installed (pip install '.[train,gpu]'); nothing to check")
        return 0
    if not args.rehearse and not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU visible to torch on this machine; nothing to check (run it where one is, "
              "or --rehearse to run the steps on the CPU)")
        return 0
    device = "cpu" if args.rehearse else "cuda"
    with tempfile.TemporaryDirectory(prefix="ganforge-gpu-check-") as tmp:
        steps = check(device, Path(tmp))
        out = args.out or (Path(tmp) / "gpu.md" if args.rehearse else ROOT / "benchmarks" / "results" / "gpu.md")
        text = report(steps, device)
        if args.rehearse and args.out is None:
            print(text)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
            print(f"report: {out}")
    return 0 if all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
