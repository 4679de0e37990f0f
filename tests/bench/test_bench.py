"""The gan-bench harness runs and its report is complete (never that anything is fast)."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganforge.bench import run_bench
from ganforge.bench.cli import main
from ganforge.inference.timing import measure, with_roofline
from ganforge.errors import ModelFileError

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"


def test_measure_counts_and_percentiles():
    calls = []
    stats = with_roofline(measure({"a": lambda: calls.append(1)}, batch=4, budget_s=0.0, min_repeats=7,
                                  warmup=2)["a"], flops_per_sample=10, peak_gflops=1.0)
    assert len(calls) == 9 and stats.repeats == 7
    assert stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.samples_per_s == pytest.approx(4 / (stats.p50_ms / 1e3))
    assert stats.gflops == pytest.approx(stats.samples_per_s * 10 / 1e9)
    assert stats.peak_fraction == pytest.approx(stats.gflops)


def test_measure_interleaves_backends():
    order = []
    stats = measure({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, batch=1, budget_s=0.0,
                    min_repeats=3, max_repeats=10, warmup=1)
    assert order == ["a", "b"] + ["a", "b"] * 3  # warm-ups, then one call each per turn
    assert stats["a"].repeats == stats["b"].repeats == 3
    order.clear()
    measure({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, batch=1, budget_s=0.0,
            min_repeats=2, warmup=0, rounds=2, settle_s=0.001)
    assert order == ["a", "a", "b", "b"] * 2  # each turn: one untimed call after the pause, then the timed one
    slow = measure({"slow": lambda: time.sleep(0.01), "fast": lambda: None}, batch=1, budget_s=0.05,
                   max_repeats=1000, warmup=0, rounds=5)
    assert slow["slow"].repeats >= 5 and slow["fast"].repeats == 1000  # budget and cap hold for each alike


def test_report_is_complete(sine_export, tmp_path):
    out = tmp_path / "bench"
    # OpenVINO stays out of this process (tests/bench/test_peers.py runs it in a child): loaded beside
    # torch, its bundled libraries are not what the later in-process torch and onnx tests should share
    report = run_bench(sine_export.artifacts["onnx"], batch_sizes=(1, 3), budget_s=0.01, max_repeats=5,
                       out_dir=out, cold=True, backends=("onnxruntime-cpu", "onnxruntime-cuda", "torch-eager",
                                                         "torchscript"))
    names = [b["name"] for b in report["backends"]]
    assert {"onnxruntime-cpu", "torch-eager", "torchscript"} <= set(names)
    for b in report["backends"]:
        assert [r["batch"] for r in b["results"]] == [1, 3]
        assert b["load_s"] >= 0 and b["first_call_s"] >= 0
        for r in b["results"]:
            assert r["samples_per_s"] > 0 and r["gflops"] > 0 and 0 < r["peak_fraction"]
            assert r["peak_fraction"] == pytest.approx(r["gflops"] / r["peak_gflops"], rel=0.01)  # its own turns
    assert report["model"]["flops_per_sample"] == 2 * (4 * 8 + 8 * 16 + 16 * 32)
    assert report["matmul_peak_gflops"] > 0 and report["versions"]["onnxruntime"]
    assert report["cold_start"]["gan-infer_s"] > 0 and report["cold_start"]["torch_s"] > 0
    saved = json.loads((out / "bench.json").read_text())
    assert saved["backends"] == report["backends"]
    md = (out / "bench.md").read_text()
    assert "| onnxruntime-cpu | 3 |" in md and "vs torch-eager" in md and "Cold start" in md
    assert (out / "bench.png").stat().st_size > 1000


def test_onnxruntime_backends_run_without_torch(sine_export, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        from ganforge.bench import run_bench
        r = run_bench({str(sine_export.artifacts['onnx'])!r}, batch_sizes=(2,), budget_s=0.01, max_repeats=3,
                      cold=False)
        assert [b["name"] for b in r["backends"] if not b["name"].startswith("openvino")] == ["ganforge",
                                                                                            "onnxruntime-cpu"], r
        assert "torch is not installed" in r["skipped"]["torch-eager"]
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cli_errors(tmp_path):
    result = CliRunner().invoke(main, ["--model", str(tmp_path / "none.onnx")])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["--batch-sizes", "1,x"])
    assert result.exit_code == 2 and "comma-separated integers" in result.output
    result = CliRunner().invoke(main, ["--model", str(tmp_path / "none.onnx"), "--backends", "tpu"])
    assert result.exit_code == 1 and "unknown backend 'tpu'" in result.output
    with pytest.raises(ModelFileError):
        run_bench(tmp_path / "none.onnx")


def test_streaming_benchmark_measures_each_run(tmp_path):
    from benchmarks.streaming import markdown, measure_streaming

    rows = measure_streaming(TINY, [("npy", 10), ("dir", 3)])
    assert [(r["output"], r["n"]) for r in rows] == [("npy", 10), ("dir", 3)]
    assert all(r["peak_rss_mb"] > 10 and r["wall_s"] > 0 for r in rows)  # a whole Python process
    assert "| tiny | folder of PNGs | 3 |" in markdown({"tiny": rows})
