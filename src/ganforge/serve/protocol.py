"""The Open Inference Protocol's (KServe v2) tensors as Triton speaks them over HTTP: JSON
``data``, and the binary tensor extension (``binary_data_size`` per tensor, the JSON header's
length in ``Inference-Header-Content-Length``, the tensors' raw bytes after it).

Every declared shape and size is checked before anything is allocated: a request is refused
(:class:`ProtocolError`, a 400) by what it claims, not by what it costs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np

from ganforge.errors import GanforgeError

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"FP32": np.float32, "INT64": np.int64, "FP16": np.float16, "FP64": np.float64, "INT32": np.int32,
          "INT8": np.int8, "INT16": np.int16, "UINT8": np.uint8, "BOOL": np.bool_, "BYTES": None}


class ProtocolError(GanforgeError):
    """A request the protocol or the model cannot take: a 400 (``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class TensorSpec:
    """An input the model takes: ``name``, ``datatype``, the shapes it accepts after the batch."""

    def __init__(self, name: str, datatype: str, tails: tuple[tuple[int, ...], ...]):
        self.name, self.datatype, self.tails = name, datatype, tails
        self.dtype = np.dtype(DTYPES[datatype])

    def shape_text(self) -> str:
        return " or ".join(str([-1, *tail]) for tail in self.tails)


def split_body(body: bytes, header_length: str | None) -> tuple[dict, memoryview]:
    """The JSON request and the binary part after it."""
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} must be a byte count, got {header_length[:40]!r}") from None
        if not 0 < size <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH} is {size}, but the body has {len(body)} bytes")
    try:
        request = json.loads(bytes(memoryview(body)[:size]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"the request is not JSON ({str(exc)[:80]}); send an inference request "
                            '{"inputs": [...]}, its length in Inference-Header-Content-Length when binary '
                            "tensors follow") from None
    if not isinstance(request, dict):
        raise ProtocolError('the request must be a JSON object {"inputs": [...]}')
    return request, memoryview(body)[size:]


def _shape(item: dict, spec: TensorSpec) -> list[int]:
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ProtocolError(f"input {spec.name!r}: shape must be a list of sizes >= 0, got {str(shape)[:60]}")
    if len(shape) < 1 or tuple(shape[1:]) not in spec.tails:
        raise ProtocolError(f"input {spec.name!r} has shape {shape[:8]}; the model takes {spec.shape_text()}")
    if shape[0] < 1:
        raise ProtocolError(f"input {spec.name!r}: a request holds at least one sample, got shape {shape}")
    return shape


def _tensor(item, spec: TensorSpec, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """One input's array, and the binary offset after it."""
    shape = _shape(item, spec)
    if item.get("datatype") != spec.datatype:
        raise ProtocolError(f"input {spec.name!r} is {str(item.get('datatype'))[:20]}; the model takes "
                            f"{spec.datatype}")
    count = math.prod(shape)
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(f"input {spec.name!r}: parameters must be an object")
    size = params.get("binary_data_size")
    if size is not None:
        want = count * spec.dtype.itemsize
        if size != want:
            raise ProtocolError(f"input {spec.name!r}: binary_data_size is {str(size)[:20]}, but shape {shape} of "
                                f"{spec.datatype} is {want} bytes")
        if offset + want > len(binary):
            raise ProtocolError(f"input {spec.name!r}: the body ends {offset + want - len(binary)} bytes short of "
                                "its binary data")
        array = np.frombuffer(binary[offset : offset + want], dtype=spec.dtype).reshape(shape)
        return array, offset + want
    if "data" not in item:
        raise ProtocolError(f"input {spec.name!r} has neither data nor parameters.binary_data_size")
    try:
        array = np.asarray(item["data"], dtype=spec.dtype)
    except (ValueError, TypeError, OverflowError):
        raise ProtocolError(f"input {spec.name!r}: data must be {spec.datatype} numbers") from None
    if array.size != count:
        raise ProtocolError(f"input {spec.name!r}: data holds {array.size} values, shape {shape} needs {count}")
    return array.reshape(shape), offset


def decode_inputs(request: dict, binary: memoryview, specs: list[TensorSpec],
                  check_samples: Callable[[int, dict], None]) -> dict[str, np.ndarray]:
    """The inputs by name, every one of ``specs`` given once with one batch size. ``check_samples(n,
    request)`` refuses too many samples before any tensor is read."""
    items = request.get("inputs")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ProtocolError('the request needs "inputs": a list of tensors {"name", "shape", "datatype", "data"}')
    by_name = {spec.name: spec for spec in specs}
    names = [item.get("name") for item in items]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ProtocolError(f"unknown input {str(unknown[0])[:40]!r}; the model takes {', '.join(by_name)}")
    if len(set(names)) != len(names) or set(names) != set(by_name):
        raise ProtocolError(f"the model takes the inputs {', '.join(by_name)} once each, got {names[:8]}")
    batches = {_shape(item, by_name[item["name"]])[0] for item in items}
    if len(batches) != 1:
        raise ProtocolError(f"the inputs have different batch sizes: {sorted(batches)[:4]}")
    check_samples(batches.pop(), request)
    arrays, offset = {}, 0
    for item in items:
        arrays[item["name"]], offset = _tensor(item, by_name[item["name"]], binary, offset)
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes follow the inputs' binary data; binary_data_size must "
                            "account for the whole body")
    return arrays


def binary_output(request: dict, output_name: str) -> bool:
    """Whether the output goes back as binary: as the request's ``outputs`` entry asks, else its
    ``binary_data_output`` parameter (tritonclient sets it when it names no output), else JSON."""
    outputs = request.get("outputs")
    params = request.get("parameters") or {}
    default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    if outputs is None:
        return default
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ProtocolError('"outputs" must be a list of {"name": ...}')
    for out in outputs:
        if out.get("name") != output_name:
            raise ProtocolError(f"unknown output {str(out.get('name'))[:40]!r}; the model gives {output_name!r}")
    wanted = [o.get("parameters") or {} for o in outputs]
    return any(isinstance(p, dict) and p.get("binary_data", default) for p in wanted) if wanted else default


def encode_response(head: dict, name: str, x: np.ndarray, binary: bool) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: ``head`` (model name, version, id) with the output ``x``."""
    out = {"name": name, "datatype": "FP32", "shape": list(x.shape)}
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not binary:
        out["data"] = x.ravel().tolist()
        return json.dumps({**head, "outputs": [out]}).encode(), {"content-type": "application/json"}
    out["parameters"] = {"binary_data_size": x.nbytes}
    header = json.dumps({**head, "outputs": [out]}).encode()
    return header + x.tobytes(), {"content-type": "application/octet-stream", HEADER_LENGTH.lower(): str(len(header))}
