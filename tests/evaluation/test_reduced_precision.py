"""gan-eval --precision: a reduced precision is scored beside fp32 on the same noise, and the
report says what it costs. OpenVINO's place is taken by a stand-in whose samples are off by a
known amount (OpenVINO itself: tests/inference/test_providers.py, in a child)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ganforge.evaluation import evaluate
from ganforge.evaluation.cli import main as eval_cli
from ganforge.inference import runtimes

OFF = 0.01  # the stand-in's samples: fp32's plus this


class Shifted:
    def __init__(self, path, output, precision, choice=None):  # choice: the threads, as OpenVinoRunner takes them
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.output = output

    def __call__(self, feed):
        return self.session.run([self.output], feed)[0] + OFF


@pytest.fixture
def bf16(monkeypatch, tmp_path):
    monkeypatch.setenv(runtimes.PROVIDER_ENV, "auto")
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runtimes, "_openvino", lambda: object())
    monkeypatch.setattr(runtimes, "openvino_version", lambda: "test")
    monkeypatch.setattr(runtimes, "has_bf16", lambda: True)
    monkeypatch.setattr(runtimes, "OpenVinoRunner", Shifted)


def test_a_reduced_precision_reports_its_price(sine_export, bf16, tmp_path):
    model = sine_export.artifacts["onnx"]
    report = evaluate(model, n=200, out_dir=tmp_path / "ev", precision="bf16")
    fp32 = evaluate(model, n=200)
    reduced = report["reduced"]
    assert report["precision"] == "bf16" and reduced["runtime"] == "openvino bf16"
    assert reduced["max_abs_diff"] == pytest.approx(OFF, rel=1e-3) and reduced["mean_abs_diff"] == pytest.approx(OFF, rel=1e-3)
    assert reduced["scores"]["mmd"]["fp32"] == fp32["generated"]["mmd"]  # the fp32 side is the plain evaluation
    assert reduced["scores"]["mmd"]["reduced"] == report["generated"]["mmd"] != fp32["generated"]["mmd"]
    change = (report["generated"]["mmd"] - fp32["generated"]["mmd"]) / fp32["generated"]["mmd"]
    assert reduced["change"] == {"score": "mmd", "relative": pytest.approx(change)}
    assert "fp32" not in fp32.get("reduced", {}) and "reduced" not in fp32
    saved = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert saved["reduced"]["max_abs_diff"] == reduced["max_abs_diff"]
    assert "Precision bf16 (openvino bf16): max abs diff 0.01 from fp32" in (tmp_path / "ev" / "eval.md").read_text()


def test_the_cli_prints_the_price(sine_export, bf16, tmp_path):
    result = CliRunner().invoke(eval_cli, [str(sine_export.artifacts["onnx"]), "--n", "100", "--precision", "bf16",
                                           "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("bf16 "))
    assert "max abs diff 0.01 from fp32 on the same noise" in line and "mmd" in line and "% )" not in line


def test_int8_without_its_file_is_one_line(sine_export, tmp_path):
    result = CliRunner().invoke(eval_cli, [str(sine_export.artifacts["onnx"]), "--precision", "int8",
                                           "--out", str(tmp_path / "ev")])
    assert result.exit_code == 1 and "gan-export --precision int8" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "ev").exists()
