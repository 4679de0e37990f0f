"""gan-bench's peers: OpenVINO (the openvino extra) and torch.compile, and the "vs best peer" column."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ganforge.bench import backends as B
from ganforge.bench.run import DEFAULT_BACKENDS, best_peers, reduced_rows, run_bench

DATA = Path(__file__).resolve().parents[1] / "data"


def test_without_the_extra_the_openvino_peers_are_skipped_with_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails, as when it is not installed
    report = run_bench(DATA / "tiny-image.onnx", backends=("onnxruntime-cpu", "openvino-fp32", "openvino-default"),
                       batch_sizes=(1, 4), budget_s=0.01, max_repeats=3, cold=False)
    assert report["skipped"] == {name: "openvino is not installed (pip install 'ganforge[openvino]')"
                                 for name in ("openvino-fp32", "openvino-default")}
    assert report["vs_best_peer"] == []  # no peer ran: nothing to compare


@pytest.mark.parametrize("model", ["tiny-image.onnx", "tiny-cond.onnx"])
def test_openvino_runs_the_same_file_to_the_same_samples(model):
    pytest.importorskip("openvino")
    code = textwrap.dedent(f"""
        import numpy as np
        from ganforge.bench import backends as B
        from ganforge.inference import Generator
        path = {str(DATA / model)!r}
        gen = Generator(path, device="cpu")
        backend = B.openvino_backend(__import__("pathlib").Path(path), "openvino-fp32")
        z = gen.sample_noise(5, seed=3)
        labels = B.bench_labels(5, gen.info.num_classes)
        expected = gen(z) if labels is None else gen(z, labels)
        assert np.abs(np.asarray(backend.run(z)) - expected).max() < 1e-5
        assert backend.info["inference_precision"] == "f32", backend.info
        print("ok")
    """)
    # a child process: OpenVINO's bundled libraries stay out of the test process, where torch runs
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_torch_compile_is_timed_only_when_named():
    assert "torch-compile" not in DEFAULT_BACKENDS and "openvino-fp32" in DEFAULT_BACKENDS


@pytest.mark.skipif(not os.environ.get("GANFORGE_SLOW_TESTS"), reason="inductor's first C++ build takes ~25 s here; "
                    "GANFORGE_SLOW_TESTS=1 runs it")
def test_torch_compile_matches_eager(sine_run):
    eager = B.torch_eager_backend(sine_run.checkpoint)
    compiled = B.torch_eager_backend(sine_run.checkpoint, compiled=True)
    z = np.random.default_rng(0).standard_normal((8, 4), dtype=np.float32)
    assert compiled.name == "torch-compile"
    assert np.abs(compiled.run(z).numpy() - eager.run(z).numpy()).max() < 1e-5


def test_best_peer_is_the_fastest_fp32_peer_at_each_batch():
    report = {"backends": [
        {"name": "ganforge", "results": [{"batch": 1, "samples_per_s": 100.0}, {"batch": 8, "samples_per_s": 400.0}]},
        {"name": "torch-eager", "results": [{"batch": 1, "samples_per_s": 50.0}, {"batch": 8, "samples_per_s": 500.0}]},
        {"name": "openvino-fp32", "results": [{"batch": 1, "samples_per_s": 80.0}]},
        {"name": "openvino-default", "results": [{"batch": 1, "samples_per_s": 1000.0}]},  # bf16: not an fp32 peer
    ]}
    assert best_peers(report) == [
        {"batch": 1, "ours": 100, "peer": "openvino-fp32", "peer_samples_per_s": 80, "ratio": 1.25},
        {"batch": 8, "ours": 400, "peer": "torch-eager", "peer_samples_per_s": 500, "ratio": 0.8}]


def test_reduced_precisions_are_compared_with_openvino_at_its_own():
    report = {"backends": [
        {"name": "ganforge", "results": [{"batch": 1, "samples_per_s": 100.0}]},
        {"name": "ganforge-bf16", "results": [{"batch": 1, "samples_per_s": 90.0}, {"batch": 8, "samples_per_s": 800.0}]},
        {"name": "ganforge-int8", "results": [{"batch": 1, "samples_per_s": 120.0}]},
        {"name": "openvino-default", "results": [{"batch": 1, "samples_per_s": 60.0}, {"batch": 8, "samples_per_s": 1000.0}]},
    ]}
    assert reduced_rows(report) == [
        {"backend": "ganforge-bf16", "batch": 1, "ours": 90, "peer": "openvino-default", "peer_samples_per_s": 60,
         "ratio": 1.5},
        {"backend": "ganforge-bf16", "batch": 8, "ours": 800, "peer": "openvino-default", "peer_samples_per_s": 1000,
         "ratio": 0.8},
        {"backend": "ganforge-int8", "batch": 1, "ours": 120, "peer": "openvino-default", "peer_samples_per_s": 60,
         "ratio": 2.0}]


def test_the_ganforge_backends_measure_their_plan_and_take_the_provider(tmp_path):
    model = tmp_path / "generator.onnx"
    model.write_bytes((DATA / "tiny-image.onnx").read_bytes())
    (tmp_path / "generator.int8.onnx").write_bytes(model.read_bytes())  # stands in for an int8 export
    report = run_bench(model, backends=("ganforge", "onnxruntime-cpu", "ganforge-int8", "ganforge-bf16"),
                       batch_sizes=(1, 4), budget_s=0.01, max_repeats=3, cold=False, provider="onnxruntime")
    by = {b["name"]: b for b in report["backends"]}
    assert set(by) == {"ganforge", "onnxruntime-cpu", "ganforge-int8"}
    assert by["ganforge"]["plan"].startswith("onnxruntime; micro-batch ")
    assert set(by["ganforge"]["plan_samples_per_s"]) == {"onnxruntime"} and by["ganforge-int8"]["precision"] == "int8"
    assert "bf16 runs on OpenVINO" in report["skipped"]["ganforge-bf16"]  # forced to onnxruntime: no bf16
    assert report["max_abs_diff_vs_ganforge"] == {"onnxruntime-cpu": 0.0, "ganforge-int8": 0.0}  # the same file
