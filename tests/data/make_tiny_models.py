"""Tiny ONNX generators for tests, built with onnx.helper (no torch).

    python tests/data/make_tiny_models.py   # rewrites the committed files beside this script

``x = tanh(z @ W)`` (reshaped to an image for the image models), with W from a
fixed seed, so tests can compute the expected output with numpy alone. A conditional
model adds its class's row of an embedding E to the noise first:
``x = tanh((z + E[labels]) @ W)``, with E in its metadata as the export writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def weights(latent_dim: int, size: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((latent_dim, size)) * 0.5).astype(np.float32)


def class_embedding(num_classes: int, latent_dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 1]).standard_normal((num_classes, latent_dim)).astype(np.float32)


def build(latent_dim: int, sample_shape: tuple[int, ...], kind: str, *, seed: int = 0, input_name: str = "z",
          metadata: bool = True, extra_input: bool = False, symbolic_latent: bool = False,
          classes: tuple[str, ...] | None = None, labels_input: bool = True, props: dict[str, str] | None = None):
    """``x = tanh(z @ W)`` as an ONNX model; ``props`` overrides or adds metadata keys (None drops one).

    ``classes``: a conditional model, ``x = tanh((z + E[labels]) @ W)`` with an int64 input
    ``labels`` (left out with ``labels_input=False``, a broken export).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = int(np.prod(sample_shape))
    W = weights(latent_dim, size, seed)
    nodes = [helper.make_node("MatMul", [input_name, "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"])]
    inits = [numpy_helper.from_array(W, "W")]
    conditioned = classes is not None and labels_input
    if conditioned:  # the class's row of E is added to the noise: MatMul takes z + E[labels]
        E = class_embedding(len(classes), latent_dim, seed)
        inits.append(numpy_helper.from_array(E, "E"))
        nodes[:1] = [helper.make_node("Gather", ["E", "labels"], ["e"], axis=0),
                     helper.make_node("Add", [input_name, "e"], ["zc"]),
                     helper.make_node("MatMul", ["zc", "W"], ["h"])]
    out_shape = ["batch", *sample_shape]
    if len(sample_shape) > 1:
        inits.append(numpy_helper.from_array(np.array([-1, *sample_shape], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["t", "shape"], ["x"]))
    else:
        nodes.append(helper.make_node("Identity", ["t"], ["x"]))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                            ["batch", "latent" if symbolic_latent else latent_dim])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", latent_dim]))
    if conditioned:
        inputs.append(helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch"]))
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ganforge-tests")
    model.ir_version = 8
    if metadata:
        meta = {"ganforge.variant": f"tiny-{kind}", "ganforge.latent_dim": str(latent_dim),
                "ganforge.sample_shape": json.dumps(list(sample_shape)), "ganforge.kind": kind,
                "ganforge.value_range": "[-1, 1]", "ganforge.version": "test"}
        if classes is not None:
            meta.update({"ganforge.num_classes": str(len(classes)), "ganforge.class_names": json.dumps(list(classes)),
                         "ganforge.class_embedding": json.dumps(
                             class_embedding(len(classes), latent_dim, seed).tolist())})
        meta.update(props or {})
        for k, v in meta.items():
            if v is not None:
                model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model, full_check=True)
    return model


MODELS = {
    "tiny-series.onnx": dict(latent_dim=4, sample_shape=(32,), kind="series", seed=1),
    "tiny-image.onnx": dict(latent_dim=8, sample_shape=(3, 8, 8), kind="image", seed=2),
    "tiny-gray.onnx": dict(latent_dim=8, sample_shape=(1, 8, 8), kind="image", seed=3),
    "not-a-generator.onnx": dict(latent_dim=4, sample_shape=(32,), kind="series", seed=4, input_name="a", extra_input=True),
    "no-metadata.onnx": dict(latent_dim=4, sample_shape=(32,), kind="series", seed=5, metadata=False),
    # foreign generators: no ganforge metadata
    "foreign-nhwc.onnx": dict(latent_dim=6, sample_shape=(8, 8, 3), kind="image", seed=6, metadata=False,
                              input_name="noise"),
    "foreign-two-inputs.onnx": dict(latent_dim=4, sample_shape=(32,), kind="series", seed=7, metadata=False,
                                    input_name="a", extra_input=True),
    "foreign-open-latent.onnx": dict(latent_dim=5, sample_shape=(1, 4, 4), kind="image", seed=8, metadata=False,
                                     symbolic_latent=True),
    # conditional: labels int64 [batch] beside z, three named classes
    "tiny-cond.onnx": dict(latent_dim=8, sample_shape=(1, 8, 8), kind="image", seed=9,
                           classes=("T-shirt/top", "Trouser", "Sneaker")),
    "cond-no-labels.onnx": dict(latent_dim=8, sample_shape=(1, 8, 8), kind="image", seed=10,
                                classes=("T-shirt/top", "Trouser", "Sneaker"), labels_input=False),
}


def write_all(folder: Path = HERE) -> None:
    import onnx

    for name, kw in MODELS.items():
        onnx.save_model(build(**kw), str(folder / name))


if __name__ == "__main__":
    write_all()
    print("wrote", ", ".join(MODELS))
