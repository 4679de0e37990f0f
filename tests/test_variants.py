"""Every registered variant: train a step, export every format and precision that
applies, run the ONNX file in onnxruntime, compare with eager.

A variant added to VARIANTS without a tiny config in tests/conftest.py fails here.
"""

import json

import numpy as np
import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.export import export
from ganforge.inference import Generator
from ganforge.training import VARIANTS, checkpoint, train
from tests.conftest import TINY, tiny_sets

MLP_VARIANTS = {"sine", "mnist-mlp"}  # int8: dynamic quantization (MatMul/Gemm); the others static QDQ


def test_every_variant_has_a_tiny_test_config():
    assert set(VARIANTS) == set(TINY)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, fake_data):
    runs = tmp_path_factory.mktemp("variant-runs")
    return {name: train(name, epochs=1, sets=tiny_sets(name, fake_data), runs_dir=runs, progress=False, device="cpu")
            for name in sorted(VARIANTS)}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_format_fp32(name, tiny_runs):
    run = tiny_runs[name]
    result = export(run.run_dir, formats="all")
    assert set(result.artifacts) == {"onnx", "torchscript", "exported", "triton"}
    G, variant, _ = checkpoint.build_generator(checkpoint.load(run.checkpoint))
    gen = Generator(result.artifacts["onnx"], device="cpu")
    assert gen.info.variant == name and gen.info.kind == variant.kind
    z = gen.sample_noise(5, seed=0)
    with torch.no_grad():
        want = G(torch.from_numpy(z)).numpy()
    got = gen(z)
    assert got.shape == (5, *G.sample_shape)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    report = json.loads(result.report.read_text())
    for key, entry in report["artifacts"].items():
        assert all(c["passed"] for c in entry["checks"]), key
        assert [c["batch_size"] for c in entry["checks"] if c["name"] == "parity"] == [1, 3, 64, 257], key


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fp16(name, tiny_runs):
    result = export(tiny_runs[name].run_dir, formats=["onnx", "triton"], precision="fp16")
    report = json.loads(result.report.read_text())
    for key in ("onnx-fp16", "triton-fp16"):
        entry = report["artifacts"][key]
        assert entry["precision"] == "fp16" and entry["atol"] == 1e-2
        assert 0 < entry["deviation_from_fp32"] <= 1e-2  # really converted, and within tolerance
    gen = Generator(result.artifacts["onnx-fp16"], device="cpu")
    assert gen.generate(3).dtype == np.float32  # inputs and outputs stay fp32
    import onnx

    weights = [t for t in onnx.load(str(result.artifacts["onnx-fp16"])).graph.initializer if t.dims]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights if len(t.dims) > 1)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_int8_dynamic_for_mlp_and_static_qdq_for_conv_generators(name, tiny_runs, tmp_path):
    assert MLP_VARIANTS <= set(VARIANTS)  # a renamed MLP variant must not turn into a conv case
    result = export(tiny_runs[name].run_dir, formats="onnx", precision="int8", out_dir=tmp_path / "export")
    entry = json.loads(result.report.read_text())["artifacts"]["onnx-int8"]
    assert entry["precision"] == "int8" and entry["atol"] == 1.0 and entry["mean_atol"] == 0.04
    assert all(c["passed"] for c in entry["checks"])
    assert 0 < entry["deviation_from_fp32"] <= 5e-2  # really quantized, and within tolerance
    import onnx

    model = onnx.load(str(result.artifacts["onnx-int8"]))
    ops = {n.op_type for n in model.graph.node}
    quantization = {p.key: p.value for p in model.metadata_props}["ganforge.quantization"]
    if name in MLP_VARIANTS:  # onnxruntime's dynamic quantization of MatMul/Gemm
        assert ("MatMulInteger" in ops or "DynamicQuantizeLinear" in ops) and quantization == "dynamic"
    else:  # static QDQ, calibrated on the generator's own noise
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops and quantization == "static-qdq-minmax"
    assert Generator(result.artifacts["onnx-int8"], device="cpu").generate(3).dtype == np.float32


def test_unsupported_combinations_are_refused(tiny_runs):
    with pytest.raises(ConfigError, match="--precision fp16 applies to onnx, triton, not torchscript"):
        export(tiny_runs["sine"].run_dir, formats="torchscript", precision="fp16")
    with pytest.raises(ConfigError, match="unknown precision 'bf16'"):
        export(tiny_runs["sine"].run_dir, formats="onnx", precision="bf16")
