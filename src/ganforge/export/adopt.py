"""Adopt an ONNX generator exported elsewhere: a copy that follows ganforge's ONNX contract.

    from ganforge.export.adopt import adopt_onnx
    info = adopt_onnx("dcgan.onnx", "export/generator.onnx")   # then: gan-infer --model export/generator.onnx

The source is read as gan-infer reads a model without ganforge metadata
(:class:`ganforge.inference.Generator`, with the same overrides: ``latent_dim``,
``latent_shape``, ``value_range``, ``layout``, ``num_classes``). The copy is the source's
graph between a few new nodes, so that it takes and gives what docs/architecture.md's contract says:

- input ``z`` float32 ``[batch, latent_dim]``, reshaped to the source's latent shape and cast
  to its dtype; a conditional source also takes ``labels`` int64 ``[batch]``, cast and shaped
  as the source takes its labels;
- output ``x`` float32 ``[batch, *sample_shape]``: an NHWC output transposed to NCHW, a uint8
  or float16 one cast; the values stay in the source's range, which the metadata records
  (``ganforge.value_range``), so the copy gives exactly the samples the source gives;
- a batch the source fixes stays fixed: ``z``'s first dimension says so, and gan-infer runs
  such a graph in chunks of that many.

Tensors of the source named ``z``, ``labels`` or ``x`` are renamed first. The copy passes
onnx.checker and must give the source's samples (seed 0) before it is moved into place.
torch-free: onnx and the inference package only.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

import ganforge
from ganforge.errors import GanforgeError, MissingExtraError, ModelFileError, WriteError, first_line
from ganforge.fsutil import atomic_path, file_sha256
from ganforge.inference import Generator, ModelInfo
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME, PREFIX
from ganforge.inference.render import check_finite

SOURCE_ONNX_SHA256 = PREFIX + "source_onnx_sha256"  # the adopted file's digest, as exports record a checkpoint's
SOURCE_LATENT_SHAPE = PREFIX + "source_latent_shape"  # the source's latent shape: the key export/spec.py writes
MIN_OPSET = 6  # Reshape takes its shape as an input from opset 5, Cast a numeric 'to' from 6
PARITY_SAMPLES = 8  # samples of seed 0 the copy must reproduce before it is written
PARITY_TOL = 1e-5  # of the value range: the copy computes the same ops; only onnxruntime's fusions may differ


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise MissingExtraError("adopting an ONNX model", "train", exc) from None
    return onnx


def adopt_onnx(src: str | os.PathLike[str], dest: str | os.PathLike[str], **overrides) -> ModelInfo:
    """Write to ``dest`` a copy of the foreign ONNX generator ``src`` with ganforge metadata and
    ganforge's inputs and outputs (module docstring); return the metadata written. ``overrides``:
    :class:`~ganforge.inference.Generator`'s ``latent_dim``, ``latent_shape``, ``value_range``,
    ``layout``, ``num_classes``. ``dest`` is replaced whole or not at all."""
    onnx = _onnx()
    src, dest = Path(src), Path(dest)
    gen = Generator(src, device="cpu", **overrides)
    if gen.foreign_note is None:
        raise GanforgeError(f"{src} already has ganforge metadata: serve it as it is (gan-infer --model {src})")
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError
        raise ModelFileError(f"{src} could not be read with onnx ({first_line(exc, 160)})") from None
    _check_opset(model, src)
    info = replace(gen.info, version=ganforge.__version__)
    _wrap(model.graph, gen)
    props = {**info.to_metadata(), SOURCE_ONNX_SHA256: file_sha256(src),
             SOURCE_LATENT_SHAPE: json.dumps(list(gen.latent_shape))}
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GiB limit
        raise ModelFileError(f"the adopted copy of {src} cannot be one file ({first_line(exc, 160)})") from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        raise ModelFileError(f"the adopted copy of {src} fails onnx.checker ({first_line(exc, 160)}); nothing was "
                             "written") from None
    _write(data, dest, gen)
    return info


def _check_opset(model, src: Path) -> None:
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None or version < MIN_OPSET:
        raise ModelFileError(f"{src} uses ONNX opset {version}; adopting it needs opset {MIN_OPSET} or later "
                             "(onnx.version_converter.convert_version upgrades it)")


def _write(data: bytes, dest: Path, gen: Generator) -> None:
    """``data`` to ``dest`` atomically, once the copy gives the source's samples."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
            _check_parity(gen, tmp)
    except OSError as exc:
        raise WriteError(f"cannot write {dest}: {exc.strerror or exc}; choose a writable --out", dest, exc) from None


def _check_parity(gen: Generator, copy_path: Path) -> None:
    """The copy at ``copy_path`` gives the source's samples of seed 0, within :data:`PARITY_TOL`."""
    want = gen.generate(PARITY_SAMPLES, seed=0)
    check_finite(want, 0)
    got = Generator(copy_path, device="cpu").generate(PARITY_SAMPLES, seed=0)
    lo, hi = gen.info.value_range
    diff = float(np.max(np.abs(want - got)))
    if not diff <= PARITY_TOL * (hi - lo):  # NaN fails too
        raise ModelFileError(f"the adopted copy of {gen.path} differs from it by up to {diff:.3g} on seed 0's "
                             "samples; nothing was written (please report this model)")


# --- the graph rewrite -------------------------------------------------------------------------------

def _subgraphs(node):
    from onnx import AttributeProto

    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def _names(graph) -> set[str]:
    """Every tensor and node name in ``graph`` and its subgraphs."""
    names = {v.name for v in (*graph.input, *graph.output, *graph.initializer, *graph.value_info)}
    names |= {s.values.name for s in graph.sparse_initializer}
    for node in graph.node:
        names |= {*node.input, *node.output, node.name}
        for sub in _subgraphs(node):
            names |= _names(sub)
    return names


def _rename(graph, old: str, new: str) -> None:
    """Tensor ``old`` is ``new`` everywhere in ``graph`` and its subgraphs."""
    for v in (*graph.input, *graph.output, *graph.initializer, *graph.value_info):
        if v.name == old:
            v.name = new
    for s in graph.sparse_initializer:
        if s.values.name == old:
            s.values.name = new
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
        for sub in _subgraphs(node):
            _rename(sub, old, new)


def _wrap(graph, gen: Generator) -> None:
    """Rewrite ``graph`` in place to ganforge's inputs and outputs (module docstring)."""
    from onnx import TensorProto, helper, numpy_helper

    used = _names(graph)

    def fresh(base: str) -> str:
        name, i = base, 0
        while name in used:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        return name

    renamed = {}
    for name in (INPUT_NAME, LABELS_NAME, OUTPUT_NAME):
        if name in used:
            renamed[name] = fresh(f"{name}_source")
            _rename(graph, name, renamed[name])
    latent_src = renamed.get(gen.input_name, gen.input_name)
    labels_src = renamed.get(gen.labels_name, gen.labels_name) if gen.info.conditional else None
    out_src = renamed.get(gen.output_name, gen.output_name)

    def const(base: str, values) -> str:
        name = fresh(base)
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def chain(first: str, steps: list, last: str) -> list:
        """Nodes from ``first`` through ``steps`` ((op, extra inputs, attributes) each) to ``last``."""
        steps = steps or [("Identity", [], {})]
        nodes, current = [], first
        for i, (op, extra, attrs) in enumerate(steps):
            out = last if i == len(steps) - 1 else fresh(f"ganforge_{op.lower()}")
            nodes.append(helper.make_node(op, [current, *extra], [out], name=fresh(f"ganforge_{op}"), **attrs))
            current = out
        return nodes

    def cast(dtype) -> tuple:
        return ("Cast", [], {"to": helper.np_dtype_to_tensor_dtype(np.dtype(dtype))})

    batch = gen.fixed_batch or "batch"
    z_steps = [("Reshape", [const("ganforge_latent_shape", [-1, *gen.latent_shape])], {})] \
        if len(gen.latent_shape) > 1 else []
    z_steps += [cast(gen.input_dtype)] if np.dtype(gen.input_dtype) != np.float32 else []
    front = chain(INPUT_NAME, z_steps, latent_src)
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, gen.info.latent_dim])]
    if labels_src is not None:
        label_steps = [cast(gen.labels_dtype)] if np.dtype(gen.labels_dtype) != np.int64 else []
        if gen.labels_tail:
            label_steps.append(("Reshape", [const("ganforge_labels_shape", [-1, *gen.labels_tail])], {}))
        front += chain(LABELS_NAME, label_steps, labels_src)
        inputs.append(helper.make_tensor_value_info(LABELS_NAME, TensorProto.INT64, [batch]))
    x_steps = [("Transpose", [], {"perm": [0, 3, 1, 2]})] if gen.layout == "nhwc" else []
    x_steps += [cast(np.float32)] if gen.output_dtype != np.float32 else []
    back = chain(out_src, x_steps, OUTPUT_NAME)
    kept = [i for i in graph.input if i.name not in (latent_src, labels_src)]  # initializers listed as inputs
    nodes = [*front, *graph.node, *back]
    del graph.input[:], graph.output[:], graph.node[:]
    graph.input.extend([*inputs, *kept])
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT,
                                                      [batch, *gen.info.sample_shape]))
    graph.node.extend(nodes)
