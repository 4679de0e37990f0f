"""gan-bench: every backend side by side over a batch sweep, for one exported model.

    from ganforge.bench import run_bench
    report = run_bench("runs/latest/export/generator.onnx", out_dir="bench-out")
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import ganforge
from ganforge import progress, threads
from ganforge.bench import backends as B
from ganforge.inference.options import foreign_args
from ganforge.inference.timing import MatmulPeak, measure, with_roofline
from ganforge.inference.tuning import cpu_name
from ganforge.errors import GanforgeError, ModelFileError, printable
from ganforge.fsutil import check_writable, file_sha256, not_a_file
from ganforge.inference import siblings
from ganforge.limits import check_memory


DEFAULT_BATCH_SIZES = (1, 8, 64, 256, 1024)
# gan-bench's backends: ganforge's own (as gan-infer opens it: the fastest runtime per run size, measured;
# the same forced to onnxruntime; its reduced precisions) and the peers a user might pick instead.
# torch-compile is timed only when named: inductor compiles for each batch size, about half a minute
# each on a small CPU.
OURS = "ganforge"  # what the "vs best peer" column compares
REDUCED = {"ganforge-bf16": "bf16", "ganforge-int8": "int8"}  # ganforge's reduced precisions, where they run
ALL_BACKENDS = (OURS, "onnxruntime-cpu", "onnxruntime-cuda", "torch-eager", "torchscript", "torch-compile",
                "openvino-fp32", "openvino-default", *REDUCED)
DEFAULT_BACKENDS = tuple(b for b in ALL_BACKENDS if b != "torch-compile")
PEERS = ("torch-eager", "torchscript", "torch-compile", "openvino-fp32")  # fp32 peers of OURS
REDUCED_PEER = "openvino-default"  # what a reduced precision is compared with (OpenVINO's own precision)
PRECISION_FILES = {"fp16": "generator.fp16.onnx"}  # timed beside onnxruntime-cpu when exported
PARITY_BATCH = 64  # reduced precisions' max abs diff from ganforge fp32 is on a batch this size
WARMUP = 2  # untimed calls per backend and batch size
ROUNDS = 5  # turns the backends take at each batch size (see timing.measure) ...
SETTLE_S = 0.05  # ... each after 50 ms idle and one untimed call
PEAK, PEAK_N = "fp32 matrix product", 1536  # the peak's turn among the backends, and its size
# bytes a value of a timed batch costs: float32 noise and output, onnxruntime's copy of the output and
# its intermediates (a conv generator's are about as large as its output)
BATCH_BYTES_PER_VALUE = 16


def _checkpoint_of(model: Path, source: str | None) -> tuple[Path | None, str]:
    """The checkpoint an exported model came from (export.json beside it, or <run>/checkpoints/last.pt)
    when it still is that checkpoint, its sha256 the model's ``source`` (``source_checkpoint_sha256``):
    a run trained further since its export holds other weights (a model that names none takes the
    checkpoint found). Else None, and why (a skip's reason)."""
    report = model.parent / "export.json"
    found = None
    try:
        ckpt = Path(json.loads(report.read_text())["source_checkpoint"])
        if ckpt.exists():
            found = ckpt
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    guess = model.parent.parent / "checkpoints" / "last.pt"
    found = found or (guess if guess.exists() else None)
    if found is None:
        return None, "no checkpoint found beside the model (export.json names none)"
    if source is None:  # a model that names no checkpoint: nothing to hold the one beside it against
        return found, ""
    try:
        same = file_sha256(found) == source
    except OSError as exc:
        return None, f"cannot read {printable(str(found))} ({exc.strerror or exc})"
    if not same:
        return None, (f"{printable(str(found))} is no longer the checkpoint {printable(model.name)} was exported from "
                      "(trained further since?): export it again (gan-export) to time torch on the model's weights")
    return found, ""


def _machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(), "threads": str(threads.current() or threads.choose())}


def _versions() -> dict[str, str]:
    import onnxruntime

    versions = {"ganforge": ganforge.__version__, "numpy": np.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        versions["torch"] = "not installed"
    return versions


def _build(name: str, model: Path, ckpt: Path | None, foreign: dict | None = None, provider: str | None = None, *,
           no_ckpt: str = "", source: str | None = None):
    """Backend ``name``; ``foreign``: a model without ganforge metadata, read with these Generator
    arguments (its torch backends have no checkpoint or TorchScript file of its own); ``provider``:
    gan-bench --provider, for ganforge's own backends; ``no_ckpt``: why ``ckpt`` is None; ``source``:
    the model's ``source_checkpoint_sha256``, which a TorchScript file beside it must record too."""
    if name == OURS:
        return B.ganforge_backend(model, "cpu", name, foreign, provider=provider)
    if name in REDUCED:
        return B.ganforge_backend(model, "cpu", name, foreign, provider=provider, precision=REDUCED[name])
    if name == "onnxruntime-cpu":
        return B.ganforge_backend(model, "cpu", name, foreign, provider="onnxruntime")
    if name == "onnxruntime-cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise B.Skipped("no CUDA provider (install the gpu extra on a CUDA machine)")
        return B.ganforge_backend(model, "cuda", name, foreign, provider="onnxruntime")
    if name in ("torch-eager", "torch-compile"):
        if ckpt is None:
            raise B.Skipped(no_ckpt or "no checkpoint found beside the model (export.json names none)")
        return B.torch_eager_backend(ckpt, compiled=name == "torch-compile")
    if name in B.OPENVINO_HINTS:
        if foreign is not None:
            raise B.Skipped("the model has no ganforge metadata: OpenVINO is timed on ganforge's contract "
                            "(gan-export --onnx writes a copy that follows it)")
        return B.openvino_backend(model, name)
    if name == "torchscript":
        ts = model.parent / "generator.ts"
        if not ts.exists():
            raise B.Skipped(f"{ts} not exported (gan-export --format torchscript)")
        if foreign is not None:
            raise B.Skipped(f"the model has no ganforge metadata, so {ts} is not known to be its TorchScript")
        recorded = siblings.source_of(ts)  # an unreadable file is told as such by its loader, below
        problem = None if recorded is siblings.UNREADABLE else siblings.differs(source, recorded, ts, model)
        if problem is not None:  # another checkpoint's TorchScript: not the same weights
            raise B.Skipped(f"{problem}: export it again (gan-export --format torchscript) to time it")
        return B.torchscript_backend(ts)
    raise GanforgeError(f"unknown backend {name!r}; choose from: {', '.join(ALL_BACKENDS)}")


def best_peers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """At each batch size, ganforge's samples/s against the fastest fp32 peer timed in the same turns."""
    by = {b["name"]: {r["batch"]: r["samples_per_s"] for r in b["results"]} for b in report["backends"]}
    rows = []
    for batch, ours in by.get(OURS, {}).items():
        peers = {name: by[name][batch] for name in PEERS if batch in by.get(name, {})}
        if peers:
            best = max(peers, key=peers.get)
            rows.append({"batch": batch, "ours": round(ours), "peer": best, "peer_samples_per_s": round(peers[best]),
                         "ratio": round(ours / peers[best], 3)})
    return rows


def reduced_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """At each batch size, each reduced precision of ganforge against OpenVINO's own precision."""
    by = {b["name"]: {r["batch"]: r["samples_per_s"] for r in b["results"]} for b in report["backends"]}
    peer = by.get(REDUCED_PEER, {})
    return [{"backend": name, "batch": batch, "ours": round(v), "peer": REDUCED_PEER,
             "peer_samples_per_s": round(peer[batch]), "ratio": round(v / peer[batch], 3)}
            for name in REDUCED for batch, v in by.get(name, {}).items() if batch in peer]


def max_abs_diffs(built: dict[str, B.Backend], latent_dim: int) -> dict[str, float]:
    """Each backend's largest difference from ganforge fp32 on one noise batch (the reduced precisions'
    price; OpenVINO's, torch's: how close the peers are)."""
    if OURS not in built:
        return {}
    z = np.random.default_rng(1).standard_normal((PARITY_BATCH, latent_dim), dtype=np.float32)
    ref = np.asarray(built[OURS].run(z), np.float32)
    out = {}
    for name, backend in built.items():
        if name != OURS:
            got = backend.run(z)
            got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
            out[name] = float(np.abs(got.reshape(ref.shape).astype(np.float32) - ref).max())
    return out


def cold_start(model: Path, ckpt: Path | None, repeats: int = 3, foreign: dict | None = None,
               provider: str | None = None) -> dict[str, Any]:
    """Wall time of a fresh process that writes a 64-sample grid: gan-infer (given ``foreign``'s
    flags and ``provider``; its plan is in the cache by now) vs torch."""
    out: dict[str, Any] = {"n": 64, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {"gan-infer": [sys.executable, "-m", "ganforge.inference.cli", "--model", str(model), "--n", "64",
                              "--out", f"{tmp}/grid.png", *foreign_args(foreign),
                              *(["--provider", provider] if provider else [])]}
        if ckpt is not None:
            cmds["torch"] = [sys.executable, "-m", "ganforge.bench.torch_cold", str(ckpt), f"{tmp}/torch.png"]
        for name, cmd in cmds.items():
            walls = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    out[f"{name}_error"] = (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
                    break
            else:
                out[f"{name}_s"] = round(float(np.median(walls)), 4)
    if "gan-infer_s" in out and "torch_s" in out:
        out["speedup"] = round(out["torch_s"] / out["gan-infer_s"], 2)
    return out


def run_bench(model: str | os.PathLike[str] | None, *, backends: tuple[str, ...] | None = None,
              batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES, budget_s: float = 1.0, max_repeats: int = 200,
              out_dir: str | os.PathLike[str] | None = None, cold: bool = True, overrides: dict | None = None,
              note: Callable[[str], None] | None = None, provider: str | None = None) -> dict[str, Any]:
    """Time every backend at every batch size; write bench.json, bench.md and bench.png to ``out_dir``.
    ``model`` None: the latest run's export (:func:`ganforge.inference.default_model`). A model
    without ganforge metadata is read with ``overrides`` (Generator's ``latent_dim``,
    ``latent_shape``, ``value_range``, ``layout``, ``num_classes``), ``note(line)`` gets its
    :attr:`~ganforge.inference.Generator.foreign_note`, and its torch backends are skipped; ``note``
    also hears the progress, a line a batch size. ``provider``: ganforge's (gan-infer --provider;
    default auto)."""
    if model is None:
        from ganforge.inference import default_model

        model = default_model()
    model = Path(model)
    problem = not_a_file(model)
    if problem is not None:
        raise ModelFileError(f"model file {model} {problem}: export one with gan-export, or pass --model")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise GanforgeError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    if out_dir is not None:
        check_writable(out_dir)  # before minutes of timing
    from ganforge.inference import Generator

    overrides = dict(overrides or {})
    gen = Generator(model, device="cpu", provider="onnxruntime", **overrides)
    info, foreign = gen.info, (overrides if gen.foreign_note else None)
    if gen.foreign_note and note is not None:
        note(gen.foreign_note)
    biggest = max(batch_sizes)
    check_memory(f"a batch of {biggest} samples of shape {list(info.sample_shape)}",
                 biggest * (info.latent_dim + math.prod(info.sample_shape)) * BATCH_BYTES_PER_VALUE,
                 "time smaller --batch-sizes")
    ckpt, no_ckpt = (None, "") if foreign is not None else _checkpoint_of(model, info.source_checkpoint_sha256)
    names = list(backends or DEFAULT_BACKENDS)
    report: dict[str, Any] = {
        "machine": _machine(), "versions": _versions(),
        "settings": {"batch_sizes": list(batch_sizes), "budget_s_per_batch": budget_s, "max_repeats": max_repeats,
                     "warmup_calls": WARMUP, "rounds": ROUNDS, "settle_s": SETTLE_S,
                     "peak_n": PEAK_N},
        "model": {"path": str(model), "variant": info.variant, "latent_dim": info.latent_dim,
                  "sample_shape": list(info.sample_shape), "flops_per_sample": info.flops_per_sample,
                  "checkpoint": str(ckpt) if ckpt else None, "foreign": gen.foreign_note},
        "backends": [], "skipped": {}, "notes": [],
    }
    extra = [(f"onnxruntime-cpu-{p}", model.parent / f) for p, f in PRECISION_FILES.items()
             if (model.parent / f).exists() and "onnxruntime-cpu" in names and foreign is None]
    for name, path in list(extra):  # another checkpoint's file beside the model is not timed as its
        problem = siblings.mismatch(model, path)
        if problem is not None:
            extra.remove((name, path))
            report["skipped"][name] = f"{problem}: export it again (gan-export --precision {name.rsplit('-', 1)[1]})"
    if backends is None and not (model.parent / "generator.int8.onnx").exists():
        names.remove("ganforge-int8")  # not exported: nothing to say of it unless asked
    rng = np.random.default_rng(0)
    built: dict[str, B.Backend] = {}
    for name, path in [(n, None) for n in names] + extra:
        try:
            backend = (B.ganforge_backend(path, "cpu", name, provider="onnxruntime") if path
                       else _build(name, model, ckpt, foreign, provider, no_ckpt=no_ckpt,
                                   source=info.source_checkpoint_sha256))
        except B.Skipped as why:
            report["skipped"][name] = str(why)
            continue
        z1 = rng.standard_normal((batch_sizes[0], info.latent_dim), dtype=np.float32)
        t0 = time.perf_counter()
        backend.run(z1)
        report["backends"].append({"name": name, "load_s": round(backend.load_s, 4),
                                   "first_call_s": round(time.perf_counter() - t0, 4), **backend.info,
                                   "results": []})
        built[name] = backend
    if not built:
        why = "; ".join(f"{name}: {reason}" for name, reason in report["skipped"].items())
        raise GanforgeError(f"no backend could run, so nothing was timed ({why})")
    entries = {e["name"]: e for e in report["backends"]}
    peaks = []
    meter = progress.Meter(len(batch_sizes), what="gan-bench", unit="batch size", write=note or (lambda line: None))
    with MatmulPeak(PEAK_N) as peak:
        for i, b in enumerate(batch_sizes):
            if note:  # about ROUNDS x budget_s a batch size: say where it is
                note(f"timing {', '.join(built)} at batch {b} ({i + 1}/{len(batch_sizes)})")
            z = rng.standard_normal((b, info.latent_dim), dtype=np.float32)
            calls = {PEAK: peak, **{name: progress.ticking(functools.partial(backend.run, z), meter)  # a line a 30 s
                                    for name, backend in built.items()}}
            stats = measure(calls, b, budget_s=budget_s, max_repeats=max_repeats, warmup=WARMUP, rounds=ROUNDS,
                            settle_s=SETTLE_S)
            peaks.append(peak.gflops())
            for name in built:
                entries[name]["results"].append(with_roofline(stats[name], info.flops_per_sample, peaks[-1]).to_json())
            meter.step()
    report["matmul_peak_gflops"] = round(max(peaks), 2)
    report["vs_best_peer"] = best_peers(report)
    report["reduced_vs_peer"] = reduced_rows(report)
    report["max_abs_diff_vs_ganforge"] = {k: float(f"{v:.3g}") for k, v in max_abs_diffs(built, info.latent_dim).items()}
    if cold:
        if note:
            note("timing cold starts: fresh gan-infer and torch processes writing a 64-sample grid")
        report["cold_start"] = cold_start(model, ckpt, foreign=foreign, provider=provider)
    if out_dir is not None:
        from ganforge.bench.report import write_report

        write_report(report, Path(out_dir))
    return report
