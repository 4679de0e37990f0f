"""Section 4 of issue 29: outside strings parsed with bounded depth and size, zero-sized samples,
settings out of any machine's range, data too small to train on: each one line, never a
traceback, nothing left behind. One test a mechanism, parametrised over its cases."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.data.make_tiny_models import build
from tests.hostile.harness import assert_refused, run_cli

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
DEEP = "[" * 50_000 + "]" * 50_000


def _model(path: Path, props: dict) -> Path:
    onnx.save_model(build(8, (3, 8, 8), "image", seed=0, props=props), str(path))
    return path


@pytest.mark.parametrize("props, pattern", [
    ({"ganforge.value_range": DEEP}, r"ganforge.value_range nests 50,000 levels deep, more than the 64"),
    ({"ganforge.sample_shape": DEEP}, r"ganforge.sample_shape nests 50,000 levels deep"),
    ({"ganforge.sample_shape": "[1e400, 8, 8]"}, r"malformed ganforge metadata \(cannot convert float infinity"),
    ({"ganforge.latent_dim": "9" * 5000}, r"malformed ganforge metadata"),
])
def test_metadata_json_is_parsed_with_bounded_depth_and_numbers(tmp_path, props, pattern):
    model = _model(tmp_path / "m.onnx", props)
    assert_refused(run_cli("gan-infer", "--model", str(model), "--n", "4", "--out", "g.png", "--device", "cpu",
                           cwd=tmp_path), pattern)
    assert not (tmp_path / "g.png").exists()


def test_metadata_that_is_not_utf8_is_one_line(tmp_path):
    model = build(8, (3, 8, 8), "image", seed=0)
    model.metadata_props.add(key="ganforge.note", value="x")
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString().replace(b"\x01x", b"\x01\xff"))
    assert_refused(run_cli("gan-infer", "--model", str(tmp_path / "m.onnx"), "--n", "4", "--out", "g.png",
                           "--device", "cpu", cwd=tmp_path), r"has metadata that is not UTF-8 text")


def test_a_zero_sized_sample_is_one_line(tmp_path):
    w = numpy_helper.from_array(np.zeros((8, 0), np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["z", "W"], ["x"])], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 8])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 0])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "z.onnx"))
    assert_refused(run_cli("gan-infer", "--model", str(tmp_path / "z.onnx"), "--n", "4", "--out", "g.png",
                           "--device", "cpu", cwd=tmp_path), r"has shape \[1, 0\]: a sample of no values")
    (tmp_path / "zmod.py").write_text("import torch\n\nclass G(torch.nn.Module):\n    def __init__(self):\n"
                                      "        super().__init__()\n        self.l = torch.nn.Linear(8, 1)\n\n"
                                      "    def forward(self, z):\n        return z[:, :0]\n")
    import torch

    torch.save({"l.weight": torch.zeros(1, 8), "l.bias": torch.zeros(1)}, tmp_path / "G.pth")
    assert_refused(run_cli("gan-export", "--module", "zmod.py:G", "--weights", "G.pth", "--latent-shape", "8",
                           "--out", "o", cwd=tmp_path), r"returned shape \[4, 0\] for a batch of 4: samples of no values",
                   cli="gan-export")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, pattern", [
    (["--set", f"class_names={'[' * 30000}"], r"class_names nests 30,000 levels deep"),
    (["--config", "deep.json"], r"config file deep.json nests 30,001 levels deep"),
])
def test_training_json_is_parsed_with_bounded_depth(tmp_path, args, pattern):
    (tmp_path / "deep.json").write_text('{"epochs": ' + "[" * 30000 + "]" * 30000 + "}")
    assert_refused(run_cli("gan-train", "sine", *args, "--runs-dir", "runs", cwd=tmp_path), pattern, cli="gan-train")
    assert not (tmp_path / "runs").exists()


def test_init_args_are_parsed_with_bounded_depth(tmp_path):
    assert_refused(run_cli("gan-export", "--module", "m.py:G", "--weights", "G.pth", "--init-args",
                           '{"a": ' + "[" * 20000, "--out", "o", cwd=tmp_path), r"--init-args.: the value nests 20,001 levels deep",
                   cli="gan-export")


@pytest.mark.parametrize("side", [0, 1])
def test_idx_images_too_small_to_train_on_leave_no_run(tmp_path, side):
    folder = tmp_path / "idx"
    folder.mkdir()
    n = 20
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, side, side) + bytes(n * side * side))
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + bytes(n))
    assert_refused(run_cli("gan-train", "mnist-mlp", "--data", str(folder), "--epochs", "1", "--runs-dir", "runs",
                           cwd=tmp_path), rf"holds 20 images of {side}x{side} pixels: too few or too small to train on",
                   cli="gan-train")
    assert not (tmp_path / "runs").exists()  # and so no runs/latest pointing at a run without a checkpoint


@pytest.mark.parametrize("value", ["100000000000000T", "1" + "0" * 400])
def test_a_memory_setting_beyond_any_machine_is_one_line(tmp_path, value):
    assert_refused(run_cli("gan-infer", "--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out", "g.png",
                           "--device", "cpu", cwd=tmp_path, env={"GANFORGE_MAX_MEMORY": value}),
                   r"GANFORGE_MAX_MEMORY=.* (is more than a pebibyte|is not a size)")
