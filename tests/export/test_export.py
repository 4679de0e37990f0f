import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from ganforge.errors import CheckpointError, ConfigError
from ganforge.export import ExportCheckError, export, onnx_format
from ganforge.inference import metadata as meta
from ganforge.training import checkpoint


def test_artifacts_and_report(sine_export):
    out = sine_export.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "generator.onnx", "generator.pt2", "generator.ts",
                                                     "triton"]  # no .data, no temporary files
    report = json.loads((out / "export.json").read_text())
    assert report["variant"] == "sine" and report["latent_dim"] == 4 and report["sample_shape"] == [32]
    for fmt in ("onnx", "torchscript", "exported", "triton"):
        checks = report["artifacts"][fmt]["checks"]
        parity = [c for c in checks if c["name"] == "parity"]
        assert [c["batch_size"] for c in parity] == [1, 3, 64, 257]
        assert all(c["passed"] and c["max_abs_diff"] <= 1e-4 for c in parity)
        assert all(c["passed"] for c in checks)
        assert report["artifacts"][fmt]["precision"] == "fp32" and report["artifacts"][fmt]["size_bytes"] > 1000
    names = {c["name"] for c in report["artifacts"]["onnx"]["checks"]}
    assert {"eval_mode", "onnx.checker", "symbolic_batch", "self_contained", "metadata", "parity"} <= names


def test_onnx_contract(sine_export, sine_run):
    model = onnx.load(str(sine_export.artifacts["onnx"]))
    (z,), (x,) = model.graph.input, model.graph.output
    assert (z.name, x.name) == ("z", "x")
    assert z.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in z.type.tensor_type.shape.dim] == ["batch", 4]
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["batch", 32]
    props = {p.key: p.value for p in model.metadata_props}
    assert props[meta.VARIANT] == "sine" and props[meta.KIND] == "series"
    assert json.loads(props[meta.SAMPLE_SHAPE]) == [32] and props[meta.LATENT_DIM] == "4"
    assert json.loads(props[meta.VALUE_RANGE]) == [-1, 1]
    assert props[meta.SOURCE_SHA256] == checkpoint.sha256(sine_run.checkpoint)


def test_onnx_matches_eager_independently(sine_export, sine_run):
    G, _, _ = checkpoint.build_generator(checkpoint.load(sine_run.checkpoint))
    sess = ort.InferenceSession(str(sine_export.artifacts["onnx"]), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(5).standard_normal((257, 4), dtype=np.float32)
    got = sess.run(["x"], {"z": z})[0]
    with torch.no_grad():
        want = G(torch.from_numpy(z)).numpy()
    assert got.shape == (257, 32)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # loading is the point
def test_torchscript_contract(sine_export, sine_run):
    extra = dict.fromkeys([meta.VARIANT, meta.LATENT_DIM], "")
    module = torch.jit.load(str(sine_export.artifacts["torchscript"]), _extra_files=extra)
    assert extra[meta.VARIANT] in ("sine", b"sine") and extra[meta.LATENT_DIM] in ("4", b"4")
    G, _, _ = checkpoint.build_generator(checkpoint.load(sine_run.checkpoint))
    z = torch.randn(7, 4)
    with torch.no_grad():
        torch.testing.assert_close(module(z), G(z), atol=1e-6, rtol=0)


def test_failed_check_writes_nothing_and_keeps_old_files(sine_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export(sine_run.run_dir, formats="onnx", out_dir=out)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    real_convert = onnx_format.Onnx.convert

    def unfaithful(self, spec, path, cache):  # export a generator whose weights drifted by 0.01
        with torch.no_grad():
            w = spec.generator.net[4].bias
            w += 0.01
            try:
                return real_convert(self, spec, path, cache)
            finally:
                w -= 0.01

    monkeypatch.setattr(onnx_format.Onnx, "convert", unfaithful)
    with pytest.raises(ExportCheckError, match=r"parity \(batch 1\): max abs diff .* \(atol 0.0001\)"):
        export(sine_run.run_dir, formats="all", out_dir=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # nothing new, nothing half-written


def test_bad_sources(tmp_path):
    with pytest.raises(CheckpointError, match="no runs in"):
        export(None, runs_dir=tmp_path)
    with pytest.raises(CheckpointError, match="neither a run folder nor a checkpoint"):
        export(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        export(bad, out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    with pytest.raises(ConfigError, match="unknown export format"):
        export(bad, formats="tflite")


def test_triton_repository_matches_the_onnx_file(sine_export):
    from ganforge.export import pbtxt, triton

    model_dir = sine_export.artifacts["triton"]
    assert model_dir == sine_export.out_dir / "triton" / "generator"
    model = onnx.load(str(model_dir / "1" / "model.onnx"))
    config = pbtxt.parse((model_dir / "config.pbtxt").read_text(), triton.REPEATED)
    assert config["name"] == "generator" and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] >= 64 and config["dynamic_batching"]["preferred_batch_size"]
    (z,), (x,) = model.graph.input, model.graph.output
    as_triton = {onnx.TensorProto.FLOAT: "TYPE_FP32"}
    want = [{"name": v.name, "data_type": as_triton[v.type.tensor_type.elem_type],
             "dims": [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]} for v in (z, x)]
    assert config["input"] + config["output"] == want
    assert want == [{"name": "z", "data_type": "TYPE_FP32", "dims": [4]},
                    {"name": "x", "data_type": "TYPE_FP32", "dims": [32]}]


def test_exported_program_runs_at_any_batch(sine_export, sine_run):
    program = torch.export.load(str(sine_export.artifacts["exported"]))
    G, _, _ = checkpoint.build_generator(checkpoint.load(sine_run.checkpoint))
    for b in (1, 5, 300):
        z = torch.randn(b, 4)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(z), G(z), atol=1e-6, rtol=0)


def test_flops_are_counted_by_hand_formula(sine_export):
    from ganforge.export.spec import count_flops
    from ganforge.training.variants import dcgan, sine

    assert count_flops(sine.Generator(4, 32), 4) == 2 * (4 * 8 + 8 * 16 + 16 * 32)
    # ConvTranspose: 2 * input pixels * Cin * Cout * K*K, layer by layer
    want = 2 * 16 * (1 * 100 * 256 + 16 * 256 * 128 + 64 * 128 * 64 + 256 * 64 * 3)
    assert count_flops(dcgan.Generator(100, 64), 100) == want
    props = {p.key: p.value for p in onnx.load(str(sine_export.artifacts["onnx"])).metadata_props}
    assert props[meta.FLOPS] == str(2 * (4 * 8 + 8 * 16 + 16 * 32))


def test_fp16_graph_is_sorted_by_onnx_ir():
    # Cast appended after its reader, as the fp16 converter leaves it
    nodes = [helper.make_node("Relu", ["h"], ["y"], name="relu"), helper.make_node("Cast", ["x"], ["h"], to=1, name="cast")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    ordered = onnx_format._sorted(model)
    assert [n.name for n in ordered.graph.node] == ["cast", "relu"]
    onnx.checker.check_model(ordered, full_check=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # loading is the point
def test_torch_artifact_checks_fail_on_each_fault(sine_run, sine_export):
    from ganforge.export.spec import spec_from_checkpoint
    from ganforge.export.validate import torch_artifact_checks

    spec = spec_from_checkpoint(sine_run.checkpoint)
    path = str(sine_export.artifacts["torchscript"])

    def broken(extra):
        raise RuntimeError("not an archive\nstack")

    checks = torch_artifact_checks(spec, "torch.jit.load", broken)
    assert [(c.name, c.passed, c.detail) for c in checks] == [("torch.jit.load", False, "not an archive")]
    checks = torch_artifact_checks(spec, "torch.jit.load", lambda extra: torch.jit.load(path))  # extra files unread
    assert (checks[0].name, checks[0].passed) == ("metadata", False) and all(c.passed for c in checks[1:])

    def drifted(extra):
        module = torch.jit.load(path, _extra_files=extra)
        return lambda z: module(z) + 1e-3

    checks = torch_artifact_checks(spec, "torch.jit.load", drifted)
    assert checks[0].passed and [(c.name, c.passed) for c in checks[1:]] == [("parity", False)] * 4


def test_the_normal_path_prints_nothing_a_user_cannot_act_on(sine_export, sine_run, tmp_path, capfd):
    assert sine_export.notes == []  # torch.jit's deprecation is not a note on every export ...
    report = json.loads(sine_export.report.read_text())
    assert "deprecated" in report["artifacts"]["torchscript"]["note"]  # ... it is said once, in the report
    capfd.readouterr()
    export(sine_run.run_dir, formats="onnx", precision="int8", out_dir=tmp_path)
    err = capfd.readouterr().err
    assert "pre-processing before quantization" not in err and "WARNING" not in err
