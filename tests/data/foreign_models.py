"""Tiny foreign ONNX generators (no ganforge metadata) in the layouts other tools export,
built with onnx.helper (no torch) so that tests compute their samples with numpy.

Each is ``act(z @ W)`` with W from a fixed seed (tests.data.make_tiny_models.weights),
dressed as another exporter would: a latent input ``[N, *latent_shape]`` (flattened inside,
or a DCGAN first layer: ConvTranspose of a 1x1 input), a fixed or open batch, NCHW or NHWC
output, tanh ([-1, 1]), sigmoid ([0, 1]), sigmoid x 255 as float or uint8 ([0, 255]), an
integer labels input adding ``E[labels]`` to the noise, float16 input and output.
:func:`expected` is what ganforge serves for them: NCHW float32 samples.

    python tests/data/foreign_models.py DIR   # writes every FOREIGN model into DIR
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from tests.data.make_tiny_models import class_embedding, weights

FOREIGN = {
    # pytorch/examples DCGAN layout: z [N, 100, 1, 1] into a ConvTranspose
    "dcgan.onnx": dict(latent_shape=(100, 1, 1), body="convtranspose", seed=11),
    "dcgan-open.onnx": dict(latent_shape=(100, 1, 1), body="convtranspose", seed=11, open_latent=True),
    "batch1.onnx": dict(latent_shape=(100, 1, 1), body="convtranspose", seed=12, batch=1),
    "batch4.onnx": dict(latent_shape=(6,), seed=13, batch=4),
    "nhwc.onnx": dict(latent_shape=(6,), seed=14, layout="nhwc"),
    "unit.onnx": dict(latent_shape=(6,), seed=15, out="sigmoid"),
    "bytes-float.onnx": dict(latent_shape=(6,), seed=16, out="bytes"),
    "uint8.onnx": dict(latent_shape=(6,), seed=17, out="uint8", layout="nhwc"),
    "labels.onnx": dict(latent_shape=(6,), seed=18, labels="int64", classes=4),
    "labels-int32.onnx": dict(latent_shape=(6, 1, 1), seed=19, labels="int32", classes=4),
    "half.onnx": dict(latent_shape=(6,), seed=20, dtype="float16"),
    "series.onnx": dict(latent_shape=(4,), seed=21, sample_shape=(16,)),
}


def _spec(kw: dict) -> dict:
    spec = dict(sample_shape=(3, 8, 8), batch=None, layout="nchw", out="tanh", dtype="float32", labels=None,
                classes=4, body="matmul", open_latent=False)
    spec.update(kw)
    return spec


def build_foreign(latent_shape: tuple[int, ...], **kw):
    """The ONNX model ``FOREIGN``'s keywords describe (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s = _spec(dict(kw, latent_shape=latent_shape))
    nz, size, shape = math.prod(latent_shape), math.prod(s["sample_shape"]), s["sample_shape"]
    W = weights(nz, size, s["seed"])
    first = s["batch"] if s["batch"] else "N"
    rows = s["batch"] or -1  # what the graph's own Reshapes take as the batch
    nodes, inits = [], [numpy_helper.from_array(W, "W")]

    def const(name, values):
        inits.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    noise = "noise"
    if s["dtype"] == "float16":
        nodes.append(helper.make_node("Cast", ["noise"], ["noise32"], to=TensorProto.FLOAT))
        noise = "noise32"
    inputs_extra = []
    if s["labels"]:
        elem = {"int64": TensorProto.INT64, "int32": TensorProto.INT32}[s["labels"]]
        tail = [1] if s["labels"] == "int32" else []  # int32 labels come as [N, 1]
        inputs_extra.append(helper.make_tensor_value_info("class", elem, [first, *tail]))
        inits.append(numpy_helper.from_array(class_embedding(s["classes"], nz, s["seed"]), "E"))
        nodes += [helper.make_node("Reshape", ["class", const("flat1", [-1])], ["class_flat"]),
                  helper.make_node("Gather", ["E", "class_flat"], ["e"], axis=0),
                  helper.make_node("Reshape", ["e", const("eshape", [rows, *latent_shape])], ["e_shaped"]),
                  helper.make_node("Add", [noise, "e_shaped"], ["noise_c"])]
        noise = "noise_c"
    if s["body"] == "convtranspose":  # [N, nz, 1, 1] -> [N, C, H, W], one kernel the size of the image
        assert latent_shape[1:] == (1, 1) and len(shape) == 3
        inits.append(numpy_helper.from_array(W.reshape(nz, *shape), "Wc"))
        nodes.append(helper.make_node("ConvTranspose", [noise, "Wc"], ["pre"], kernel_shape=list(shape[1:])))
    else:
        nodes += [helper.make_node("Reshape", [noise, const("zshape", [rows, nz])], ["flat"]),
                  helper.make_node("MatMul", ["flat", "W"], ["mm"]),
                  helper.make_node("Reshape", ["mm", const("xshape", [rows, *shape])], ["pre"])]
    act = {"tanh": "Tanh", "sigmoid": "Sigmoid", "bytes": "Sigmoid", "uint8": "Sigmoid"}[s["out"]]
    nodes.append(helper.make_node(act, ["pre"], ["act"]))
    last, elem = "act", TensorProto.FLOAT
    if s["out"] in ("bytes", "uint8"):
        inits.append(numpy_helper.from_array(np.array(255, np.float32), "k255"))
        nodes.append(helper.make_node("Mul", ["act", "k255"], ["scaled"]))
        last = "scaled"
    if s["out"] == "uint8":
        nodes += [helper.make_node("Round", ["scaled"], ["rounded"]),
                  helper.make_node("Cast", ["rounded"], ["bytes"], to=TensorProto.UINT8)]
        last, elem = "bytes", TensorProto.UINT8
    if s["dtype"] == "float16":
        nodes.append(helper.make_node("Cast", [last], ["half"], to=TensorProto.FLOAT16))
        last, elem = "half", TensorProto.FLOAT16
    out_shape = list(shape)
    if s["layout"] == "nhwc":
        nodes.append(helper.make_node("Transpose", [last], ["nhwc"], perm=[0, 2, 3, 1]))
        last, out_shape = "nhwc", [shape[1], shape[2], shape[0]]
    nodes.append(helper.make_node("Identity", [last], ["image"]))
    z_elem = TensorProto.FLOAT16 if s["dtype"] == "float16" else TensorProto.FLOAT
    z_dims = [first, "nz" if s["open_latent"] else latent_shape[0], *latent_shape[1:]]
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("noise", z_elem, z_dims), *inputs_extra],
                              [helper.make_tensor_value_info("image", elem, [first, *out_shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="elsewhere")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def expected(name: str, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """What ganforge serves for model ``name`` on flat noise ``z`` ``[n, latent_dim]``: NCHW float32."""
    s = _spec(FOREIGN[name])
    nz, shape = math.prod(s["latent_shape"]), s["sample_shape"]
    z = np.asarray(z, np.float32).reshape(len(z), nz)
    if s["dtype"] == "float16":
        z = z.astype(np.float16).astype(np.float32)
    if labels is not None:
        z = z + class_embedding(s["classes"], nz, s["seed"])[labels]
    pre = (z @ weights(nz, math.prod(shape), s["seed"])).reshape(len(z), *shape)
    x = np.tanh(pre) if s["out"] == "tanh" else 1 / (1 + np.exp(-pre))
    if s["out"] in ("bytes", "uint8"):
        x = x * 255
    if s["out"] == "uint8":
        x = np.rint(x)
    if s["dtype"] == "float16":
        x = x.astype(np.float16)
    return x.astype(np.float32)


def write_all(folder: Path) -> dict[str, Path]:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, kw in FOREIGN.items():
        paths[name] = folder / name
        onnx.save_model(build_foreign(**kw), str(paths[name]))
    return paths


if __name__ == "__main__":
    print("wrote", ", ".join(write_all(Path(sys.argv[1]))))
