"""ONNX: one self-contained file, symbolic batch dimension, ganforge metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.export.spec import ExportSpec
from ganforge.export.validate import Check, parity
from ganforge.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo

NAME = "onnx"
FILENAME = "generator.onnx"
BATCH_DIM = "batch"


def convert(spec: ExportSpec, path: Path) -> dict[str, Any]:
    """Export with torch.onnx's default (dynamo) exporter into one file with metadata."""
    import onnx

    G = spec.generator.eval()
    batch = torch.export.Dim(BATCH_DIM, min=1)
    with torch.no_grad():
        program = torch.onnx.export(
            G,
            (spec.example_input(2),),
            None,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    program.optimize()
    model = program.model_proto
    # The dynamo exporter names the symbolic dimension after the Dim ("batch") or
    # "s0"-style symbols; make it the documented name on input and output alike.
    for value in (*model.graph.input, *model.graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        if dim0.HasField("dim_param"):
            dim0.dim_param = BATCH_DIM
    del model.metadata_props[:]
    for key, val in spec.info.to_metadata().items():
        model.metadata_props.add(key=key, value=val)
    model.producer_name = "ganforge"
    onnx.save_model(model, str(path))
    return {"opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
            "exporter": f"torch.onnx (dynamo) {torch.__version__}"}


def validate(spec: ExportSpec, path: Path) -> list[Check]:
    import onnx

    from ganforge.errors import GanforgeError
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
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    checks.append(Check("self_contained", not external, "no external data" if not external
                        else f"{len(external)} tensors stored outside the file"))
    props = {p.key: p.value for p in model.metadata_props}
    try:
        meta_ok = ModelInfo.from_metadata(props) == spec.info
        checks.append(Check("metadata", meta_ok, "ganforge metadata round-trips" if meta_ok else f"metadata differs: {props}"))
    except GanforgeError as exc:
        checks.append(Check("metadata", False, str(exc)))
    try:
        session = Generator(path, device="cpu")
    except GanforgeError as exc:
        checks.append(Check("onnxruntime_load", False, str(exc)))
        return checks
    for b in spec.batch_sizes:
        z = spec.example_input(b)
        want = spec.reference(z).numpy()
        got = session(z.numpy())
        checks.append(parity(b, np.asarray(got), want, spec.atol))
    return checks


