"""ONNX: one self-contained file, symbolic batch dimension, ganforge metadata.

Precisions: ``fp32`` as exported; ``fp16`` converts weights and compute to
float16 with ``z`` and ``x`` kept float32 (for GPU serving); ``int8``: for MLP
generators onnxruntime's dynamic quantization of MatMul/Gemm, for conv generators
static QDQ quantization calibrated on the generator's own inputs (seeded noise, every
class), which OpenVINO runs in int8 (onnxruntime's CPU kernels run ConvTranspose in
float between the QDQ pairs).
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.errors import GanforgeError, first_line, quiet_log
from ganforge.export.formats import CallCache, precisions_of
from ganforge.export.onnx_rewrite import rewrite_conv_transpose
from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check, class_embedding_check, parity_checks
from ganforge.inference.metadata import (
    INPUT_NAME,
    LABELS_NAME,
    LATENT_DIM,
    NUM_CLASSES,
    OUTPUT_NAME,
    PREFIX,
    ModelInfo,
)

BATCH_DIM = "batch"
INT8_OPS = {"MatMul", "Gemm"}  # what dynamic quantization rewrites (MLP generators)
CONV_OPS = {"Conv", "ConvTranspose", "Col2Im"}  # a conv generator: static QDQ (Col2Im: a rewritten ConvTranspose)
FLOAT_OPS = {"Col2Im"}  # no int8 kernel anywhere: left out of quantization, it stays float
# Calibration of the static path: 4 x 128 seeded samples (a few seconds for wgan-gp on 2 cores);
# 512 rather than 256 lowered the max error on held-out noise (0.45 -> 0.33 on a trained wgan)
CALIBRATION_SEED, CALIBRATION_BATCHES, CALIBRATION_BATCH = 0, 4, 128
QUANTIZATION = PREFIX + "quantization"  # metadata: "dynamic" or "static-qdq-minmax"


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
    if precision == "fp32":
        return model
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return set_metadata(_sorted(convert_float_to_float16(model, keep_io_types=True)), metadata)
    ops = {n.op_type for n in model.graph.node}
    if ops & CONV_OPS:
        return set_metadata(quantize_conv(model, metadata), {**metadata, QUANTIZATION: "static-qdq-minmax"})
    if ops & INT8_OPS:
        return set_metadata(quantize_mlp(model), {**metadata, QUANTIZATION: "dynamic"})
    raise UnsupportedExport(
        f"int8 is not supported for this generator: it has none of {', '.join(sorted(INT8_OPS | CONV_OPS))} to "
        f"quantize (its graph is built from {', '.join(sorted(ops))}); use --precision fp16 or fp32")


def quantize_mlp(model):
    """onnxruntime's dynamic quantization: weights int8 ahead, activations per batch at run time,
    which needs no calibration and covers MatMul/Gemm, all an MLP generator computes."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        # per-channel weights with uint8 gave the smallest error on the MLP generators
        with quiet_log():  # "Please consider to run pre-processing before quantization": for CNNs, not ours
            quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QUInt8)
        return onnx.load(str(dst))


def quantize_conv(model, metadata: dict[str, str]):
    """Static QDQ quantization, calibrated on :func:`calibration_batches`: onnxruntime has no dynamic
    ConvTranspose, and QuantizeLinear/DequantizeLinear pairs are what OpenVINO turns into int8 kernels.

    Chosen by measurement (benchmarks/results/int8-static.md): MinMax ranges (Entropy picked the same
    ranges; Percentile clips rare large activations, and its max error swung to 1.1), uint8 activations
    and per-channel int8 weights without reduce_range (symmetric activations: 1.3-1.5x the mean error),
    and the outputs of Conv/ConvTranspose left float, so that the value before Tanh is never rounded to
    8 bits (mean error 0.017 -> 0.010 on a trained wgan, and fewer requantizations for OpenVINO).
    onnxruntime's pre-processing (quant_pre_process) changed neither error nor speed: not used."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    exclude = [n.name for n in model.graph.node if n.op_type in FLOAT_OPS]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        with quiet_log():  # "Please consider to run pre-processing before quantization": measured, no gain
            quantize_static(str(src), str(dst), _reader(calibration_batches(model, metadata)),
                            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
                            extra_options={"OpTypesToExcludeOutputQuantization": ["Conv", "ConvTranspose"]})
        return onnx.load(str(dst))


def calibration_batches(model, metadata: dict[str, str], seed: int = CALIBRATION_SEED) -> list[dict[str, np.ndarray]]:
    """The generator's own inputs, seeded so that the same weights quantize to the same bytes:
    standard-normal ``z``, and for a conditional model ``labels`` cycling over every class, so that
    each class's embedding offset is inside the calibrated ranges."""
    rng = np.random.default_rng(seed)
    inputs = {i.name for i in model.graph.input}
    latent_dim, num_classes = int(metadata[LATENT_DIM]), int(metadata.get(NUM_CLASSES) or 0)
    if LABELS_NAME in inputs and not num_classes:
        raise UnsupportedExport(f"int8 calibration needs the number of classes of this conditional generator "
                                f"({NUM_CLASSES} is not in its metadata); use --precision fp16 or fp32")
    batches = []
    for i in range(CALIBRATION_BATCHES):
        feed = {INPUT_NAME: rng.standard_normal((CALIBRATION_BATCH, latent_dim), dtype=np.float32)}
        if LABELS_NAME in inputs:
            feed[LABELS_NAME] = np.arange(i * CALIBRATION_BATCH, (i + 1) * CALIBRATION_BATCH, dtype=np.int64) % num_classes
        batches.append(feed)
    return batches


def _reader(batches: list[dict[str, np.ndarray]]):
    """``batches`` as onnxruntime's CalibrationDataReader (a class of onnxruntime, imported here)."""
    from onnxruntime.quantization import CalibrationDataReader

    from ganforge.progress import Meter

    meter = Meter(len(batches), what="int8 calibration", units="batches")  # a line at least every 30 s

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._left: Iterator[dict[str, np.ndarray]] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            meter.step(steps=0 if meter.done >= len(batches) else 1)
            return next(self._left, None)

    return Batches()


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
        checks.append(Check("onnx.checker", False, first_line(exc)))
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
        session.batch_option = None  # the batch sizes checked are gan-export's own
    except GanforgeError as exc:
        checks.append(Check("onnxruntime_load", False, str(exc)))
        return checks
    def run(z, labels=None):
        return session(z.numpy()) if labels is None else session(z.numpy(), labels.numpy())

    return checks + parity_checks(spec, run) + class_embedding_check(spec, run)
