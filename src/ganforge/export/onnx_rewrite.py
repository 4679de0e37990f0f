"""Faster, exactly equivalent forms for the ConvTranspose nodes of an exported graph.

onnxruntime's CPU ConvTranspose runs one matrix product per image: weights
``[C_out*kh*kw, C_in]`` times the image's ``[C_in, H*W]`` pixels, then col2im.
When the image has few pixels that product is a matrix-vector product that
re-reads every weight for every sample, and the layer runs at a fraction of the
machine's peak (measured in benchmarks/results/speed-notes.md). Two rewrites
fold the batch into the product instead, so the weights are read once per call:

- ``gemm``: a 1x1 input (the first layer of every DCGAN-style generator, fed by
  the noise vector): ``Flatten -> Gemm -> Reshape``, with no col2im at all.
- ``matmul_col2im``: an input of at most :data:`MAX_PIXELS` pixels:
  ``Transpose (NHWC) -> MatMul over every pixel of every image -> Transpose ->
  Col2Im -> Add bias``.

Both sum the same products as ConvTranspose (only the order of the additions
may differ), and the exported file is still checked against PyTorch eager at
several batch sizes like any other. Larger inputs keep ConvTranspose, which
measured faster there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

MAX_PIXELS = 9  # input H*W up to which matmul_col2im measured faster than ConvTranspose (3x3 about even)


@dataclass(frozen=True)
class Rewrite:
    node: str  # the ConvTranspose node's name
    form: str  # "gemm" or "matmul_col2im"
    input_hw: tuple[int, int]

    def describe(self) -> str:
        return f"{self.node}: ConvTranspose on {self.input_hw[0]}x{self.input_hw[1]} input -> {self.form}"


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _spatial_inputs(model) -> dict[str, tuple[int, int]]:
    """Fixed H, W of every 4-D value whose spatial dimensions are known."""
    inferred = onnx.shape_inference.infer_shapes(model)
    out = {}
    for v in (*inferred.graph.value_info, *inferred.graph.input):
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
            out[v.name] = (dims[2].dim_value, dims[3].dim_value)
    return out


def _plan(node, hw: tuple[int, int] | None, weights: dict[str, np.ndarray], opset: int) -> str | None:
    """Which form suits this node, or None to keep it."""
    if node.op_type != "ConvTranspose" or hw is None or node.input[1] not in weights:
        return None
    if len(node.input) > 2 and node.input[2] and node.input[2] not in weights:
        return None
    a = _attrs(node)
    w = weights[node.input[1]]
    if w.ndim != 4 or a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        return None
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "output_shape" in a:
        return None
    if any(a.get("output_padding", [0, 0])):
        return None
    pads = a.get("pads", [0, 0, 0, 0])
    if hw == (1, 1) and not any(pads):
        return "gemm"
    if hw[0] * hw[1] <= MAX_PIXELS and opset >= 18:  # Col2Im is opset 18
        return "matmul_col2im"
    return None


def rewrite_conv_transpose(model) -> tuple[onnx.ModelProto, list[Rewrite]]:
    """``model`` with every ConvTranspose that has a faster equivalent replaced (in place)."""
    graph = model.graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shapes = _spatial_inputs(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    done: list[Rewrite] = []
    nodes = []
    for node in graph.node:
        hw = shapes.get(node.input[0]) if node.input else None
        form = _plan(node, hw, weights, opset)
        if form is None:
            nodes.append(node)
            continue
        w = weights[node.input[1]]
        bias = weights[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        build = _gemm if form == "gemm" else _matmul_col2im
        new_nodes, inits = build(node, w, bias, hw, _attrs(node))
        nodes.extend(new_nodes)
        graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items())
        done.append(Rewrite(node.name or node.output[0], form, hw))
    del graph.node[:]
    graph.node.extend(nodes)
    if done:  # the replaced nodes' weights are left unused: onnx_ir's dead-code pass drops them
        model.CopyFrom(_without_unused(model))
    return model, done


def _name(node, suffix: str) -> str:
    return f"{node.name or node.output[0]}/{suffix}"


def _gemm(node, w: np.ndarray, bias, hw, attrs):
    """1x1 input, no padding: y[b, co, i, j] = sum_ci x[b, ci] * w[ci, co, i, j] + bias[co]."""
    c_in, c_out, kh, kw = w.shape
    n = lambda s: _name(node, s)  # noqa: E731
    inits = {n("weight"): w.reshape(c_in, c_out * kh * kw)}
    gemm_inputs = [n("flat"), n("weight")]
    if bias is not None:
        inits[n("bias")] = np.repeat(bias.astype(w.dtype), kh * kw)
        gemm_inputs.append(n("bias"))
    inits[n("shape")] = np.array([-1, c_out, kh, kw], np.int64)
    nodes = [
        helper.make_node("Flatten", [node.input[0]], [n("flat")], axis=1, name=n("Flatten")),
        helper.make_node("Gemm", gemm_inputs, [n("gemm")], name=n("Gemm")),
        helper.make_node("Reshape", [n("gemm"), n("shape")], [node.output[0]], name=n("Reshape")),
    ]
    return nodes, inits


def _matmul_col2im(node, w: np.ndarray, bias, hw, attrs):
    """Every pixel of every image in one product, then col2im (the overlap-add)."""
    c_in, c_out, kh, kw = w.shape
    h, wd = hw
    sh, sw = attrs.get("strides", [1, 1])
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    out_h = (h - 1) * sh - pads[0] - pads[2] + kh
    out_w = (wd - 1) * sw - pads[1] - pads[3] + kw
    n = lambda s: _name(node, s)  # noqa: E731
    inits = {
        n("pixels_shape"): np.array([0, h * wd, c_in], np.int64),
        n("weight"): w.reshape(c_in, c_out * kh * kw),
        n("image_shape"): np.array([out_h, out_w], np.int64),
        n("block_shape"): np.array([kh, kw], np.int64),
    }
    summed = node.output[0] if bias is None else n("col2im")
    nodes = [
        helper.make_node("Transpose", [node.input[0]], [n("nhwc")], perm=[0, 2, 3, 1], name=n("Transpose")),
        helper.make_node("Reshape", [n("nhwc"), n("pixels_shape")], [n("pixels")], name=n("Reshape")),
        helper.make_node("MatMul", [n("pixels"), n("weight")], [n("columns")], name=n("MatMul")),
        helper.make_node("Transpose", [n("columns")], [n("columns_t")], perm=[0, 2, 1], name=n("Transpose_cols")),
        helper.make_node("Col2Im", [n("columns_t"), n("image_shape"), n("block_shape")], [summed],
                         strides=[sh, sw], pads=pads, name=n("Col2Im")),
    ]
    if bias is not None:
        inits[n("bias")] = bias.astype(w.dtype).reshape(c_out, 1, 1)
        nodes.append(helper.make_node("Add", [summed, n("bias")], [node.output[0]], name=n("Add")))
    return nodes, inits


def _without_unused(model) -> onnx.ModelProto:
    """``model`` without nodes and initializers nothing reads (inputs and outputs kept)."""
    import onnx_ir as ir
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    ir_model = ir.from_proto(model)
    RemoveUnusedNodesPass()(ir_model)
    return ir.to_proto(ir_model)
