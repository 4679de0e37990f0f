"""int8 for conv generators: static QDQ quantization calibrated on the generator's own inputs
(onnx_format.quantize_conv); MLP generators keep onnxruntime's dynamic quantization."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ganforge.export import export, onnx_format
from ganforge.export.onnx_format import QUANTIZATION, UnsupportedExport
from ganforge.export.spec import ATOL, spec_from_checkpoint
from ganforge.inference import Generator
from ganforge.inference.metadata import LABELS_NAME, ModelInfo
from ganforge.training import checkpoint, train
from tests.conftest import tiny_sets

INT8_ATOL = ATOL["int8"]  # the export's own tolerance; a trained wgan measures more (benchmarks/results/int8-static.md)


@pytest.fixture(scope="module")
def conv_runs(tmp_path_factory, fake_data):
    """A tiny dcgan (ConvTranspose only), a tiny wgan (its 2x2 layer rewritten to MatMul + Col2Im)
    and a conditional dcgan: a few seconds of CPU each."""
    runs = tmp_path_factory.mktemp("int8-runs")
    def run(name, *extra):
        return train(name, epochs=1, sets=[*tiny_sets(name, fake_data), *extra], runs_dir=runs, progress=False,
                     device="cpu").run_dir
    return {"dcgan": run("dcgan"), "wgan": run("wgan"), "dcgan-conditional": run("dcgan", "conditional=true")}


@pytest.fixture(scope="module")
def int8_exports(conv_runs):
    return {name: export(run, formats="onnx", precision="int8") for name, run in conv_runs.items()}


def ops_of(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("name", ["dcgan", "wgan", "dcgan-conditional"])
def test_conv_int8_passes_its_checks_as_static_qdq(name, int8_exports):
    result = int8_exports[name]
    entry = json.loads(result.report.read_text())["artifacts"]["onnx-int8"]
    assert entry["precision"] == "int8" and all(c["passed"] for c in entry["checks"]), entry["checks"]
    assert 0 < entry["deviation_from_fp32"] <= INT8_ATOL  # really quantized, and close
    path = result.artifacts["onnx-int8"]
    ops = ops_of(path)
    assert {"QuantizeLinear", "DequantizeLinear", "ConvTranspose"} <= ops
    assert not ops & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}  # not the dynamic path
    model = onnx.load(str(path))
    int8_weights = [t for t in model.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 4]
    assert int8_weights  # the ConvTranspose weights are stored in int8, per channel
    props = {p.key: p.value for p in model.metadata_props}
    info = ModelInfo.from_metadata(props)  # the export's metadata check compared all of it with the run's
    assert props[QUANTIZATION] == "static-qdq-minmax" and info.variant == name.split("-")[0]
    assert info.conditional == name.endswith("conditional")


def test_col2im_stays_float_and_the_file_loads_in_openvino(conv_runs, int8_exports):
    path = int8_exports["wgan"].artifacts["onnx-int8"]
    model = onnx.load(str(path))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    col2im = [n for n in model.graph.node if n.op_type == "Col2Im"]
    assert col2im and all(producers.get(n.input[0]) != "QuantizeLinear" for n in col2im)  # float in, float out
    ov = pytest.importorskip("openvino")
    G, _, _ = checkpoint.build_generator(checkpoint.load(conv_runs["wgan"] / "checkpoints" / "last.pt"))
    z = np.random.default_rng(4).standard_normal((16, G.latent_dim), dtype=np.float32)
    got = ov.Core().compile_model(str(path), "CPU")({"z": z})[0]
    with torch.no_grad():
        assert np.abs(got - G(torch.from_numpy(z)).numpy()).max() <= INT8_ATOL


def test_conditional_calibration_walks_every_class(int8_exports):
    path = int8_exports["dcgan-conditional"].artifacts["onnx-int8"]
    model = onnx.load(str(path))
    metadata = {p.key: p.value for p in model.metadata_props}
    batches = onnx_format.calibration_batches(model, metadata)
    labels = np.concatenate([b[LABELS_NAME] for b in batches])
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(int(metadata["ganforge.num_classes"])))
    assert sum(len(b["z"]) for b in batches) == onnx_format.CALIBRATION_BATCHES * onnx_format.CALIBRATION_BATCH
    gen = Generator(path, device="cpu")
    a, b = gen(gen.sample_noise(4, seed=0), np.zeros(4, np.int64)), gen(gen.sample_noise(4, seed=0), np.ones(4, np.int64))
    assert not np.allclose(a, b)  # the label still changes the sample after quantization
    del metadata["ganforge.num_classes"]
    with pytest.raises(UnsupportedExport, match="needs the number of classes"):
        onnx_format.calibration_batches(model, metadata)


def test_same_seed_same_bytes(conv_runs, int8_exports):
    spec = spec_from_checkpoint(conv_runs["dcgan"] / "checkpoints" / "last.pt", precision="int8")
    fp32, _ = onnx_format.export_model(spec)
    metadata = spec.metadata()
    first = onnx_format.to_precision(fp32, "int8", metadata).SerializeToString()
    assert onnx_format.to_precision(fp32, "int8", metadata).SerializeToString() == first
    assert first == onnx.load(str(int8_exports["dcgan"].artifacts["onnx-int8"])).SerializeToString()
    other = onnx_format.calibration_batches(fp32, metadata, seed=1)[0]["z"]
    assert not np.array_equal(other, onnx_format.calibration_batches(fp32, metadata)[0]["z"])  # the seed matters


def test_mlp_generators_stay_dynamic(sine_run, tmp_path):
    path = export(sine_run.run_dir, formats="onnx", precision="int8", out_dir=tmp_path).artifacts["onnx-int8"]
    ops = ops_of(path)
    assert "DynamicQuantizeLinear" in ops and "QuantizeLinear" not in ops
    assert {p.key: p.value for p in onnx.load(str(path)).metadata_props}[QUANTIZATION] == "dynamic"


def test_a_conv_export_prints_nothing_a_user_cannot_act_on(conv_runs, tmp_path, capfd):
    capfd.readouterr()
    export(conv_runs["dcgan"], formats="onnx", precision="int8", out_dir=tmp_path)
    out, err = capfd.readouterr()
    assert "pre-processing" not in err + out and "WARNING" not in err


def test_a_graph_with_nothing_to_quantize_is_refused_in_one_line():
    graph = helper.make_graph([helper.make_node("Tanh", ["z"], ["x"])], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])])
    with pytest.raises(UnsupportedExport, match=r"^int8 is not supported for this generator: .*Tanh\); use") as exc:
        onnx_format.to_precision(helper.make_model(graph), "int8", {"ganforge.latent_dim": "4"})
    assert "\n" not in str(exc.value)
