"""Tiny ONNX generators for tests, built with onnx.helper (no torch).

    python tests/data/make_tiny_models.py   # rewrites the committed files beside this script

``x = tanh(z @ W)`` (reshaped to an image for the image models), with W from a
fixed seed, so tests can compute the expected output with numpy alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def weights(latent_dim: int, size: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((latent_dim, size)) * 0.5).astype(np.float32)


def build(latent_dim: int, sample_shape: tuple[int, ...], kind: str, *, seed: int = 0, input_name: str = "z",
          metadata: bool = True, extra_input: bool = False, symbolic_latent: bool = False,
          props: dict[str, str] | None = None):
    """``x = tanh(z @ W)`` as an ONNX model; ``props`` overrides or adds metadata keys (None drops one)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = int(np.prod(sample_shape))
    W = weights(latent_dim, size, seed)
    nodes = [helper.make_node("MatMul", [input_name, "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"])]
    inits = [numpy_helper.from_array(W, "W")]
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
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ganforge-tests")
    model.ir_version = 8
    if metadata:
        meta = {"ganforge.variant": f"tiny-{kind}", "ganforge.latent_dim": str(latent_dim),
                "ganforge.sample_shape": json.dumps(list(sample_shape)), "ganforge.kind": kind,
                "ganforge.value_range": "[-1, 1]", "ganforge.version": "test"}
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
}


def write_all(folder: Path = HERE) -> None:
    import onnx

    for name, kw in MODELS.items():
        onnx.save_model(build(**kw), str(folder / name))


if __name__ == "__main__":
    write_all()
    print("wrote", ", ".join(MODELS))
