"""ONNX: one self-contained file, symbolic batch dimension, ganforge metadata.

Precisions: ``fp32`` as exported; ``fp16`` converts weights and compute to
float16 with ``z`` and ``x`` kept float32 (for GPU serving); ``int8`` applies
onnxruntime's dynamic quantization, which covers MatMul/Gemm (the MLP
generators) but not ConvTranspose, so conv generators are refused for int8.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import GanforgeError, quiet_log
from ganforge.export.formats import CallCache, precisions_of
from ganforge.export.onnx_rewrite import rewrite_conv_transpose
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME, ModelInfo

BATCH_DIM = "batch"
INT8_OPS = {"MatMul", "Gemm"}  # what dynamic quantization rewrites
UNQUANTIZABLE_OPS = {"Conv", "ConvTranspose", "Col2Im"}  # Col2Im: a rewritten ConvTranspose


class UnsupportedExport(GanforgeError):
    """A format/precision combination that cannot apply to this model."""


class Onnx:
    """generator.onnx (``generator.<precision>.onnx`` for fp16 and int8)."""

    name = "onnx"
    precisions = precisions_of("onnx")
    is_dir = False

    def filename(self, precision: str) -> str:
        return "generator.onnx" if precision == "fp32" else f"generator.{precision}.onnx"

    def convert(self, spec: ExportSpec, path: Path, cache: CallCache) -> dict[str, Any]:
        import onnx

        model, rewrites = model_at_precision(spec, cache)
        onnx.save_model(model, str(path))
        return {"precision": spec.precision,
                "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
                "exporter": f"torch.onnx (dynamo) {torch.__version__}",
                "rewrites": [r.describe() for r in rewrites]}

    def validate(self, spec: ExportSpec, path: Path, cache: CallCache) -> list[Check]:
        return check_file(spec, path, cache, self.filename(spec.precision))


FORMAT = Onnx()


def export_model(spec: ExportSpec):
    """The fp32 ModelProto from torch.onnx's default (dynamo) exporter, with metadata, and the
    ConvTranspose rewrites applied to it (see :mod:`ganforge.export.onnx_rewrite`)."""
    G = spec.generator.eval()
    batch = torch.export.Dim(BATCH_DIM, min=1)
    with torch.no_grad(), warnings.catch_warnings():
        # z and labels share the batch dimension: torch says it keeps one name for both, which is the point
        warnings.filterwarnings("ignore", message=r".*axis name: batch will not be used")
        program = torch.onnx.export(
            G,
            spec.example_inputs(2),
            None,
            input_names=[INPUT_NAME, LABELS_NAME][: len(spec.example_inputs(1))],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=spec.dynamic_shapes(batch),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    program.optimize()  # constant folding, BatchNorm folded into the convolutions
    model = program.model_proto
    # Name the symbolic batch dimension "batch" on inputs and output alike.
    for value in (*model.graph.input, *model.graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        if dim0.HasField("dim_param"):
            dim0.dim_param = BATCH_DIM
    model.producer_name = "ganforge"
    model, rewrites = rewrite_conv_transpose(model)
    return set_metadata(model, spec.metadata()), rewrites


def set_metadata(model, metadata: dict[str, str]):
    del model.metadata_props[:]
    for key, val in metadata.items():
        model.metadata_props.add(key=key, value=val)
    return model


def to_precision(model, precision: str, metadata: dict[str, str]):
    """Convert an fp32 ModelProto to ``precision`` (``metadata`` kept)."""
    import onnx

    if precision == "fp32":
        return model
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return set_metadata(_sorted(convert_float_to_float16(model, keep_io_types=True)), metadata)
    ops = {n.op_type for n in model.graph.node}
    if ops & UNQUANTIZABLE_OPS or not ops & INT8_OPS:
        raise UnsupportedExport(
            f"int8 is not supported for this generator: onnxruntime's dynamic quantization covers "
            f"{'/'.join(sorted(INT8_OPS))} (MLP generators), and this graph is built from "
            f"{', '.join(sorted(ops & UNQUANTIZABLE_OPS) or sorted(ops))}; use --precision fp16 or fp32")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        # per-channel weights with uint8 gave the smallest error on the MLP generators
        with quiet_log():  # "Please consider to run pre-processing before quantization": for CNNs, not ours
            quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QUInt8)
        return set_metadata(onnx.load(str(dst)), metadata)


def _sorted(model):
    """``model`` with its nodes in topological order (onnx_ir's stable sort): the fp16 converter
    appends its Cast nodes at the end, which onnx.checker rejects."""
    import onnx_ir as ir

    ir_model = ir.from_proto(model)
    ir_model.graph.sort()
    return ir.to_proto(ir_model)


def model_at_precision(spec: ExportSpec, cache: CallCache):
    """The ModelProto at ``spec.precision`` and its ConvTranspose rewrites, exported once per
    ``export()`` call: onnx and triton save the same model."""
    def make():
        model, rewrites = export_model(spec)
        return to_precision(model, spec.precision, spec.metadata()), rewrites

    return cache.once(("onnx_model", spec.precision), make)


def check_file(spec: ExportSpec, path: Path, cache: CallCache, label: str) -> list[Check]:
    """The checks of the ONNX file at ``path`` (``label``: its name in the export folder). A file
    with the same bytes as one already checked in this call gets that file's results, and says so."""
    key = ("onnx_checks", hashlib.sha256(path.read_bytes()).hexdigest())
    if key in cache:
        first, checks = cache[key]
        return [replace(c, detail=f"{c.detail}; reused: same bytes as {first}, checked there") for c in checks]
    checks = _checks(spec, path)
    cache[key] = (label, checks)
    return checks


def _checks(spec: ExportSpec, path: Path) -> list[Check]:
    import onnx

    from ganforge.inference import Generator

    checks: list[Check] = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
        checks.append(Check("onnx.checker", True, "full_check passed"))
    except Exception as exc:  # the checker raises several types
        checks.append(Check("onnx.checker", False, str(exc).splitlines()[0][:200]))
        return checks
    model = onnx.load(str(path), load_external_data=False)
    dims = [d for v in (*model.graph.input, *model.graph.output) for d in v.type.tensor_type.shape.dim[:1]]
    symbolic = all(d.HasField("dim_param") and not d.HasField("dim_value") for d in dims)
    checks.append(Check("symbolic_batch", symbolic, "batch dimension of z and x is symbolic" if symbolic
                        else "batch dimension is fixed in the graph"))
    want = {INPUT_NAME: onnx.TensorProto.FLOAT, OUTPUT_NAME: onnx.TensorProto.FLOAT}
    if spec.info.conditional:
        want[LABELS_NAME] = onnx.TensorProto.INT64
    got = {v.name: v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}
    io_ok = got == want
    names = "z, labels and x are float32, int64 and float32" if spec.info.conditional else "z and x are float32"
    checks.append(Check("io_types", io_ok, names if io_ok else f"inputs/outputs are {got}, expected {want} "
                        "(ONNX TensorProto types)"))
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    checks.append(Check("self_contained", not external, "no external data" if not external
                        else f"{len(external)} tensors stored outside the file"))
    props = {p.key: p.value for p in model.metadata_props}
    try:
        extra_ok = all(props.get(k) == v for k, v in spec.extra_metadata.items())
        meta_ok = ModelInfo.from_metadata(props) == spec.info and extra_ok
        checks.append(Check("metadata", meta_ok, "ganforge metadata round-trips" if meta_ok else f"metadata differs: {props}"))
    except GanforgeError as exc:
        checks.append(Check("metadata", False, str(exc)))
    try:
        session = Generator(path, device="cpu")
    except GanforgeError as exc:
        checks.append(Check("onnxruntime_load", False, str(exc)))
        return checks
    def run(z, labels=None):
        return session(z.numpy()) if labels is None else session(z.numpy(), labels.numpy())

    return checks + spec.parity_checks(run) + spec.class_embedding_check(run)
