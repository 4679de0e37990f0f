"""Does an onnxruntime session option close the large-batch gap to PyTorch eager?

For each run given, PyTorch eager (from the checkpoint) and onnxruntime CPU sessions
with different options time the same batches, alternating, two rounds, best median
kept. Prints the ratio eager_time / ort_time (above 1: onnxruntime is faster).

    python benchmarks/ort_session_options.py RUN [RUN ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ganforge.training import checkpoint

OPTIONS = {
    "default": {},
    "intra_op=2": {"intra": 2},
    "intra_op=2, no arena": {"intra": 2, "arena": False},
}


def median_time(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def session(path: Path, intra: int | None = None, arena: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra:
        so.intra_op_num_threads = intra
    so.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(runs: list[str]) -> None:
    print(f"torch threads {torch.get_num_threads()}; onnxruntime {ort.__version__}; torch {torch.__version__}")
    print("| run | batch | eager ms | " + " | ".join(OPTIONS) + " |")
    for run in map(Path, runs):
        G, variant, _ = checkpoint.build_generator(checkpoint.load(run / "checkpoints" / "last.pt"))
        sessions = {k: session(run / "export" / "generator.onnx", **v) for k, v in OPTIONS.items()}
        for b in (64, 256, 1024):
            z = np.random.default_rng(0).standard_normal((b, G.latent_dim), dtype=np.float32)
            zt = torch.from_numpy(z)
            reps = 40 if b < 1024 else 15

            def eager():
                with torch.inference_mode():
                    G(zt)

            best = {"eager": [], **{k: [] for k in sessions}}
            for _ in range(2):
                best["eager"].append(median_time(eager, reps))
                for k, s in sessions.items():
                    best[k].append(median_time(lambda s=s: s.run(None, {"z": z}), reps))
            te = min(best["eager"])
            cells = " | ".join(f"{te / min(best[k]):.2f}x" for k in sessions)
            print(f"| {variant.name} | {b} | {te * 1e3:.2f} | {cells} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
