"""Triton Inference Server: a model repository entry an existing server can load.

    <out>/triton/generator/config.pbtxt
    <out>/triton/generator/1/model.onnx

(``generator_fp16`` / ``generator_int8`` for the other precisions). Inputs and
outputs are described without the batch dimension; Triton batches requests up
to ``max_batch_size`` with dynamic batching. A conditional generator's ``labels``
(int64 ``[batch]``, nothing beside the batch dimension) is declared ``dims: [ 1 ]``
with ``reshape: { shape: [ ] }``, Triton's way for such tensors. Point a server at ``<out>/triton``:
``tritonserver --model-repository <out>/triton``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ganforge.export import onnx_format
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME

NAME = "triton"
PRECISIONS = onnx_format.PRECISIONS
IS_DIR = True
MAX_BATCH_SIZE = 1024
PREFERRED_BATCH_SIZES = (64, 256)
MAX_QUEUE_DELAY_US = 200
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 7: "TYPE_INT64", 6: "TYPE_INT32"}


def model_name(precision: str) -> str:
    return "generator" if precision == "fp32" else f"generator_{precision}"


def filename(precision: str) -> str:
    return f"triton/{model_name(precision)}"


def config_pbtxt(name: str, inputs: list[tuple[str, str, list[int]]], outputs: list[tuple[str, str, list[int]]]) -> str:
    def tensors(items):
        def dims(d):  # a tensor of the batch dimension alone: [1], reshaped to [] for the model
            return f"dims: [ {', '.join(map(str, d))} ]" if d else "dims: [ 1 ]\n    reshape: { shape: [ ] }"

        return ",\n".join(f'  {{\n    name: "{n}"\n    data_type: {t}\n    {dims(d)}\n  }}' for n, t, d in items)

    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {MAX_BATCH_SIZE}\n'
            f"input [\n{tensors(inputs)}\n]\noutput [\n{tensors(outputs)}\n]\n"
            f"dynamic_batching {{\n  preferred_batch_size: [ {', '.join(map(str, PREFERRED_BATCH_SIZES))} ]\n"
            f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}\n")


def _io(model) -> tuple[list, list]:
    def describe(values):
        return [(v.name, ONNX_TO_TRITON.get(v.type.tensor_type.elem_type, f"UNSUPPORTED_{v.type.tensor_type.elem_type}"),
                 [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim[1:]])
                for v in values]

    return describe(model.graph.input), describe(model.graph.output)


def convert(spec: ExportSpec, path: Path) -> dict[str, Any]:
    import onnx

    name = model_name(spec.precision)
    (path / "1").mkdir(parents=True)
    model, _ = onnx_format.export_model(spec)
    model = onnx_format.to_precision(model, spec.precision, spec.info)
    onnx.save_model(model, str(path / "1" / "model.onnx"))
    inputs, outputs = _io(model)
    (path / "config.pbtxt").write_text(config_pbtxt(name, inputs, outputs))
    return {"precision": spec.precision, "model_name": name, "max_batch_size": MAX_BATCH_SIZE,
            "serve": f"tritonserver --model-repository {path.parent.name}"}


def parse_config(text: str) -> dict[str, Any]:
    """The fields of config.pbtxt this module writes (name, platform, max_batch_size, tensors)."""
    def tensors(section):
        block = re.search(section + r"\s*\[(.*?)\n\]", text, re.S)
        items = re.findall(r'name:\s*"([^"]+)"\s*data_type:\s*(\w+)\s*dims:\s*\[([^\]]*)\]'
                           r'(\s*reshape:\s*\{\s*shape:\s*\[\s*\]\s*\})?', block.group(1)) if block else []
        return [(n, t, [] if reshaped else [int(x) for x in d.replace(",", " ").split()]) for n, t, d, reshaped in items]

    return {
        "name": re.search(r'^name:\s*"([^"]+)"', text, re.M).group(1),
        "platform": re.search(r'^platform:\s*"([^"]+)"', text, re.M).group(1),
        "max_batch_size": int(re.search(r"^max_batch_size:\s*(\d+)", text, re.M).group(1)),
        "input": tensors("input"),
        "output": tensors("output"),
        "dynamic_batching": "dynamic_batching" in text,
    }


def validate(spec: ExportSpec, path: Path) -> list[Check]:
    import onnx

    model_file = path / "1" / "model.onnx"
    checks = onnx_format.validate(spec, model_file)
    try:
        config = parse_config((path / "config.pbtxt").read_text())
    except (OSError, AttributeError) as exc:
        return [*checks, Check("triton_config", False, f"config.pbtxt unreadable: {exc}")]
    inputs, outputs = _io(onnx.load(str(model_file), load_external_data=False))
    expected = {"name": model_name(spec.precision), "platform": "onnxruntime_onnx", "input": inputs, "output": outputs}
    wrong = [k for k, v in expected.items() if config[k] != v]
    want_inputs = [(INPUT_NAME, "TYPE_FP32", [spec.info.latent_dim])]
    if spec.info.conditional:
        want_inputs.append((LABELS_NAME, "TYPE_INT64", []))
    shape_ok = inputs == want_inputs and outputs == [(OUTPUT_NAME, "TYPE_FP32", list(spec.info.sample_shape))]
    checks.append(Check("triton_config", not wrong and shape_ok and config["max_batch_size"] >= 1
                        and config["dynamic_batching"],
                        "config.pbtxt matches model.onnx (names, dtypes, dims, max_batch_size, dynamic batching)"
                        if not wrong and shape_ok else f"config.pbtxt differs from model.onnx in {', '.join(wrong) or 'dims'}"))
    return checks
