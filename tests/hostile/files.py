"""Crafted hostile files: ONNX models whose metadata or graph lie about their size, broken
files, a model that outputs NaN. Built with onnx.helper, a few hundred bytes each."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from tests.data.make_tiny_models import MODELS, build

TINY_IMAGE = dict(MODELS["tiny-image.onnx"])  # x = tanh(z @ W): z [batch, 8], x [batch, 3, 8, 8]


def save(model, path: Path) -> Path:
    import onnx

    onnx.save_model(model, str(path))
    return path


def lying_metadata(path: Path, **props: str) -> Path:
    """tiny-image whose ganforge metadata claims ``props`` (e.g. ``latent_dim="5000000"``)."""
    return save(build(**TINY_IMAGE, props={f"ganforge.{k}": v for k, v in props.items()}), path)


def expanding_graph(path: Path, *, metadata: bool = True, shape: tuple[int, int, int] = (3, 20000, 20000),
                    claims: tuple[int, ...] = (3, 8, 8)) -> Path:
    """A 400-byte graph whose output expands to [1, *shape] (4.8 GB by default) while its
    metadata, when it has some, ``claims`` another sample shape. The target shape is computed
    from z at run time (``z.mean() * 0 + shape``), so no static check can see it coming."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array([1, *shape], np.float32), "target"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("ReduceMean", ["z"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Unsqueeze", ["m", "axes"], ["m4"]),
             helper.make_node("ReduceMean", ["z"], ["all"], keepdims=0),
             helper.make_node("Mul", ["all", "zero"], ["nothing"]),
             helper.make_node("Add", ["nothing", "target"], ["shape_f"]),
             helper.make_node("Cast", ["shape_f"], ["shape"], to=TensorProto.INT64),
             helper.make_node("Expand", ["m4", "shape"], ["x"])]
    graph = helper.make_graph(nodes, "bomb", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        for k, v in {"latent_dim": "8", "sample_shape": json.dumps(list(claims)), "kind": "image"}.items():
            model.metadata_props.add(key=f"ganforge.{k}", value=v)
    onnx.checker.check_model(model)
    return save(model, path)


def nan_model(path: Path) -> Path:
    """tiny-image with one weight NaN: every sample has a NaN pixel."""
    from onnx import numpy_helper

    model = build(**TINY_IMAGE)
    (w,) = [t for t in model.graph.initializer if t.name == "W"]
    W = numpy_helper.to_array(w).copy()
    W[0, 5] = np.nan
    w.CopyFrom(numpy_helper.from_array(W, "W"))
    return save(model, path)


def truncated(path: Path) -> Path:
    data = build(**TINY_IMAGE).SerializeToString()
    path.write_bytes(data[: len(data) // 3])
    return path


def text_file(path: Path) -> Path:
    path.write_text("root:x:0:0:root:/root:/bin/bash\n" * 20)
    return path


def huge_class_names(classes: int) -> str:
    return json.dumps([f"c{i}" for i in range(classes)])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(path: Path, width: int, height: int, *, pixels: bool = True) -> Path:
    """A flat-colour RGB PNG, streamed (a 9000x9000 one is a few hundred KB); ``pixels=False``
    writes the header alone, which is all a check before decoding may read."""
    body = b""
    if pixels:
        deflate, row = zlib.compressobj(9), b"\0" + bytes([10, 200, 30]) * width
        body = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def gz(path: Path, *parts: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        for part in parts:
            f.write(part)
    return path


# ---------------------------------------------------------------- torch zip archives, damaged by hand


def record_data_offset(path: Path, suffix: str) -> tuple[int, int]:
    """(where the data of the record whose name ends with ``suffix`` starts in the file, its length),
    from the zip's layout: its local header (30 bytes, then its name and extra field) precedes it."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        (info,) = [i for i in archive.infolist() if i.filename.endswith(suffix)]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def flip_byte(path: Path, suffix: str, at: int = 5) -> Path:
    """``path`` with one bit pattern flipped (xor 0xFF) in byte ``at`` of the record ending ``suffix``."""
    start, size = record_data_offset(path, suffix)
    data = bytearray(path.read_bytes())
    data[start + min(at, size - 1)] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _zip_record(name: bytes, method: int, crc: int, packed: bytes, size: int, offset: int) -> tuple[bytes, bytes]:
    """(local header with data, central directory entry) of one record (no zip64: sizes below 4 GiB)."""
    fields = struct.pack("<HHHHHIIIH", 20, 0, method, 0, 0x21, crc, len(packed), size, len(name))
    local = b"PK\x03\x04" + fields + struct.pack("<H", 0) + name + packed
    central = (b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHII", 0, 0, 0, 0, 0, offset)
               + name)
    return local, central


def rezip(src: Path, dest: Path, replace: dict[str, tuple[int, bytes, int, int]]) -> Path:
    """A copy of the zip ``src`` with the records whose names end with a key of ``replace`` written as
    ``(method, packed data, declared size, CRC)``: whatever they declare, nothing checked."""
    import zipfile

    locals_, centrals, offset = [], [], 0
    with zipfile.ZipFile(src) as archive:
        for info in archive.infolist():
            hit = [v for k, v in replace.items() if info.filename.endswith(k)]
            data = archive.read(info)
            method, packed, size, crc = hit[0] if hit else (0, data, len(data), zlib.crc32(data))
            local, central = _zip_record(info.filename.encode(), method, crc, packed, size, offset)
            locals_.append(local)
            centrals.append(central)
            offset += len(local)
    directory = b"".join(centrals)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(centrals), len(centrals), len(directory), offset, 0)
    dest.write_bytes(b"".join(locals_) + directory + end)
    return dest


def deflated_zeros(blocks: int = 255, block: int = 16 << 20) -> tuple[bytes, int]:
    """(a raw deflate stream of ``blocks`` x ``block`` zero bytes (3.98 GiB by default), that size), made without
    deflating them all: one block's stream, ended by a full flush (byte-aligned, no history), repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    return one * blocks + b"\x03\x00", blocks * block  # b"\x03\x00": an empty final block
