"""The ConvTranspose rewrites: which nodes they take, and that the result computes the same."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ganforge.export import export
from ganforge.export.onnx_rewrite import rewrite_conv_transpose
from tests.conftest import tiny_sets


def conv_transpose_model(c_in, c_out, k, hw, *, stride=1, pads=(0, 0, 0, 0), bias=True, group=1,
                         output_padding=(0, 0), seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_in, c_out // group, *k)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W")]
    inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "B"))
        inputs.append("B")
    node = helper.make_node("ConvTranspose", inputs, ["y"], name="up", kernel_shape=list(k), strides=[stride] * 2,
                            pads=list(pads), group=group, output_padding=list(output_padding))
    graph = helper.make_graph([node, helper.make_node("Relu", ["y"], ["out"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c_in, *hw])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", c_out, "h", "w"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


CASES = [  # (c_in, c_out, kernel, input hw, stride, pads, bias) -> the form expected
    ((16, 8, (4, 4), (1, 1), 1, (0, 0, 0, 0), True), "gemm"),  # DCGAN's first layer
    ((16, 8, (2, 3), (1, 1), 1, (0, 0, 0, 0), False), "gemm"),  # non-square kernel, no bias
    ((16, 8, (3, 3), (2, 2), 2, (0, 0, 0, 0), True), "matmul_col2im"),  # the adaptive wgan's 2x2 -> 5x5
    ((8, 4, (4, 4), (3, 3), 2, (1, 1, 1, 1), True), "matmul_col2im"),  # padded, 3x3 input
    ((8, 4, (4, 3), (3, 2), 2, (1, 0, 2, 1), False), "matmul_col2im"),  # uneven pads, non-square everything
    ((8, 4, (4, 4), (1, 1), 1, (1, 1, 1, 1), True), "matmul_col2im"),  # 1x1 but padded: cropped by Col2Im
    ((8, 4, (4, 4), (4, 4), 2, (1, 1, 1, 1), True), None),  # 16 pixels: ConvTranspose measured faster
]


@pytest.mark.parametrize(("case", "form"), CASES)
def test_rewrite_forms_compute_the_same(case, form):
    c_in, c_out, k, hw, stride, pads, bias = case
    model = conv_transpose_model(c_in, c_out, k, hw, stride=stride, pads=pads, bias=bias)
    x = np.random.default_rng(1).standard_normal((5, c_in, *hw)).astype(np.float32)
    want = run(model, x)
    rewritten, done = rewrite_conv_transpose(conv_transpose_model(c_in, c_out, k, hw, stride=stride, pads=pads,
                                                                  bias=bias))
    assert [r.form for r in done] == ([form] if form else [])
    ops = [n.op_type for n in rewritten.graph.node]
    assert ("ConvTranspose" in ops) == (form is None)
    # the replaced node's weights go with it (reshaped copies take their place)
    assert ({"W", "B"} & {t.name for t in rewritten.graph.initializer} == set()) == (form is not None)
    onnx.checker.check_model(rewritten, full_check=True)
    for batch in (1, 5):
        got = run(rewritten, x[:batch])
        assert got.shape == want[:batch].shape
        np.testing.assert_allclose(got, want[:batch], atol=1e-5, rtol=1e-5)
    # and against torch, an implementation that shares no code with either graph
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "W")).copy()
    b = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "B")).copy() if bias else None
    ref = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                               None if b is None else torch.from_numpy(b), stride=stride)
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    ref = ref[:, :, top:ref.shape[2] - bottom, left:ref.shape[3] - right].relu().numpy()
    np.testing.assert_allclose(got, ref[:batch], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{"group": 2}, {"output_padding": (1, 1), "stride": 2}])
def test_unusual_conv_transpose_is_kept(kwargs):
    model = conv_transpose_model(8, 4, (3, 3), (2, 2), **kwargs)
    _, done = rewrite_conv_transpose(model)
    assert done == [] and [n.op_type for n in model.graph.node] == ["ConvTranspose", "Relu"]


def test_unknown_spatial_size_is_kept():
    model = conv_transpose_model(8, 4, (4, 4), (1, 1))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"  # H only known at run time
    _, done = rewrite_conv_transpose(model)
    assert done == []


def test_export_records_the_rewrites(fake_data, tmp_path):
    from ganforge.training import train

    run = train("dcgan", epochs=1, sets=tiny_sets("dcgan", fake_data), runs_dir=tmp_path, progress=False,
                device="cpu")
    result = export(run.run_dir, formats="onnx")
    entry = json.loads(result.report.read_text())["artifacts"]["onnx"]
    assert any("1x1 input -> gemm" in r for r in entry["rewrites"]), entry["rewrites"]
    ops = [n.op_type for n in onnx.load(str(result.artifacts["onnx"])).graph.node]
    assert "Gemm" in ops and ops.count("ConvTranspose") == 3  # the 4x4, 8x8 and 16x16 inputs are kept
    assert all(c["passed"] for c in entry["checks"])
