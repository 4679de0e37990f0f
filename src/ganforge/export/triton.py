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

import math
from pathlib import Path
from typing import Any

from ganforge.export import onnx_format, pbtxt
from ganforge.export.formats import CallCache, precisions_of
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME

MAX_BATCH_SIZE = 1024
PREFERRED_BATCH_SIZES = (64, 256)
MAX_QUEUE_DELAY_US = 200
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 7: "TYPE_INT64", 6: "TYPE_INT32"}
# the fields of Triton's ModelConfig that are repeated (lists however they are written)
REPEATED = frozenset({"input", "output", "dims", "shape", "preferred_batch_size"})


class Triton:
    """triton/<model>/ (config.pbtxt, 1/model.onnx): a folder, staged and moved into place whole."""

    name = "triton"
    precisions = precisions_of("triton")
    is_dir = True

    def filename(self, precision: str) -> str:
        return f"triton/{model_name(precision)}"

    def convert(self, spec: ExportSpec, path: Path, cache: CallCache) -> dict[str, Any]:
        import onnx

        name = model_name(spec.precision)
        (path / "1").mkdir(parents=True)
        model, _ = onnx_format.model_at_precision(spec, cache)  # the onnx format's model, when both are asked for
        onnx.save_model(model, str(path / "1" / "model.onnx"))
        inputs, outputs = _io(model)
        (path / "config.pbtxt").write_text(config_pbtxt(name, inputs, outputs))
        return {"precision": spec.precision, "model_name": name, "max_batch_size": MAX_BATCH_SIZE,
                "serve": f"tritonserver --model-repository {path.parent.name}"}

    def validate(self, spec: ExportSpec, path: Path, cache: CallCache) -> list[Check]:
        import onnx

        model_file = path / "1" / "model.onnx"
        checks = onnx_format.check_file(spec, model_file, cache, f"{self.filename(spec.precision)}/1/model.onnx")
        try:
            text = (path / "config.pbtxt").read_text()
        except (OSError, UnicodeDecodeError) as exc:
            return [*checks, Check("triton_config", False, f"config.pbtxt unreadable: {exc}")]
        inputs, outputs = _io(onnx.load(str(model_file), load_external_data=False))
        problems = config_problems(text, model_name(spec.precision), inputs, outputs)
        want_inputs = [(INPUT_NAME, "TYPE_FP32", [spec.info.latent_dim])]
        if spec.info.conditional:
            want_inputs.append((LABELS_NAME, "TYPE_INT64", []))
        want_outputs = [(OUTPUT_NAME, "TYPE_FP32", list(spec.info.sample_shape))]
        if inputs != want_inputs or outputs != want_outputs:
            problems.append(f"model.onnx takes {inputs} and gives {outputs}, not the generator's {want_inputs} "
                            f"and {want_outputs}")
        return [*checks, Check("triton_config", not problems,
                               "config.pbtxt matches model.onnx (names, dtypes, dims, max_batch_size, dynamic "
                               "batching)" if not problems else "; ".join(problems))]


FORMAT = Triton()


def model_name(precision: str) -> str:
    return "generator" if precision == "fp32" else f"generator_{precision}"


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


def config_problems(text: str, name: str, inputs: list, outputs: list) -> list[str]:
    """How config.pbtxt ``text`` (any layout protobuf's text format allows) fails to serve the
    model ``name`` whose tensors are ``inputs`` and ``outputs`` (as :func:`_io` gives them):
    empty when it serves it."""
    try:
        config = pbtxt.parse(text, REPEATED)
    except pbtxt.PbtxtError as exc:
        return [f"config.pbtxt is not protobuf text format: {exc}"]
    problems = []
    if config.get("name") != name:
        problems.append(f"name is {config.get('name')!r}, not {name!r}")
    if config.get("platform") != "onnxruntime_onnx" and config.get("backend") != "onnxruntime":
        problems.append("neither platform \"onnxruntime_onnx\" nor backend \"onnxruntime\"")
    most = config.get("max_batch_size")
    most_ok = isinstance(most, int) and not isinstance(most, bool) and most >= 1
    if not most_ok:
        problems.append(f"max_batch_size is {most!r}, not a batch size (the model's batch dimension is dynamic)")
    for section, want in (("input", inputs), ("output", outputs)):
        items = config.get(section, [])
        got = _tensors(items)
        if got is None or len(got) != len(items) or got != {n: (t, d) for n, t, d in want}:  # len: a name twice
            problems.append(f"{section} is {items}, the model's {section}s are {want}")
    batching = config.get("dynamic_batching")
    if not isinstance(batching, dict):
        problems.append("no dynamic_batching")
    elif most_ok and not all(isinstance(b, int) and 1 <= b <= most for b in batching.get("preferred_batch_size", [])):
        problems.append(f"preferred_batch_size {batching['preferred_batch_size']} not within 1..max_batch_size")
    return problems


def _tensors(items) -> dict[str, tuple[Any, list]] | None:
    """name -> (data_type, the shape the model sees without the batch dimension): ``reshape``'s
    when there is one, else ``dims``; None where a tensor is malformed."""
    out = {}
    for t in items:
        if not isinstance(t, dict) or not t.get("dims") or not _ints(t["dims"]):
            return None  # Triton wants dims beside the batch dimension: [ 1 ] and a reshape for none
        dims = t["dims"]
        if "reshape" in t:
            shape = t["reshape"].get("shape", []) if isinstance(t["reshape"], dict) else None
            if shape is None or not _ints(shape) or math.prod(dims) != math.prod(shape):
                return None
            dims = shape
        out[t.get("name")] = (t.get("data_type"), list(dims))
    return out


def _ints(values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
