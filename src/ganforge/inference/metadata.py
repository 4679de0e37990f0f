"""The ONNX metadata contract (docs/architecture.md, "ONNX metadata").

``gan-export`` writes these ``metadata_props`` and ``gan-infer`` reads them, so a
generator file needs nothing beside itself. Both sides use this module, and
:func:`check_graph` holds a ganforge graph to what its metadata says.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from ganforge.errors import ModelFileError
from ganforge.limits import (MAX_CLASS_NAME, MAX_CLASSES, MAX_EMBEDDING_VALUES, MAX_FIXED_BATCH, MAX_LATENT_DIM,
                             MAX_SAMPLE_VALUES)

PREFIX = "ganforge."
VARIANT = PREFIX + "variant"
LATENT_DIM = PREFIX + "latent_dim"
SAMPLE_SHAPE = PREFIX + "sample_shape"
KIND = PREFIX + "kind"
VALUE_RANGE = PREFIX + "value_range"
NUM_CLASSES = PREFIX + "num_classes"
CLASS_NAMES = PREFIX + "class_names"
CLASS_EMBEDDING = PREFIX + "class_embedding"
VERSION = PREFIX + "version"
SOURCE_SHA256 = PREFIX + "source_checkpoint_sha256"
FLOPS = PREFIX + "flops_per_sample"

# Reading metadata_props straight from the file's top level (read_props): ModelProto's field 14, each a
# StringStringEntryProto (key 1, value 2); every other field is skipped by its length, the graph unread
METADATA_FIELD = 14
MAX_TOP_FIELDS = 10_000  # top-level fields scanned (a ganforge export has about 20)
ENTRY_HEAD = 4096  # bytes of an entry read: a key and a short value (a digest); longer values are not read

KINDS = ("image", "series")
INPUT_NAME = "z"
LABELS_NAME = "labels"
OUTPUT_NAME = "x"


def _json(text: str, key: str, source: str):
    """A metadata value's JSON, nested at most a few levels (a list of numbers or names, a matrix)."""
    from ganforge.values import loads_json

    return loads_json(text, f"{source}'s {key}", "re-export it with gan-export", error=ModelFileError)


@dataclass(frozen=True)
class ModelInfo:
    """What a consumer must know about a generator to sample and render it."""

    latent_dim: int  # size of the noise vector z
    sample_shape: tuple[int, ...]  # one sample: (length,) for series, (C, H, W) for images
    kind: str  # "image" or "series"
    value_range: tuple[float, float] = (-1.0, 1.0)  # range of the generator's output
    variant: str | None = None  # ganforge variant name that produced it
    num_classes: int | None = None  # conditional models only: the graph takes labels int64 [batch] too
    class_names: tuple[str, ...] | None = None  # conditional: name of each label, index = label
    # conditional: [num_classes][latent_dim] offsets the graph adds to z (x = G(z + class_embedding[labels])),
    # so that a walk between two classes can feed z + a blend of two rows with the first label
    class_embedding: tuple[tuple[float, ...], ...] | None = None
    version: str | None = None  # ganforge version that exported it
    source_checkpoint_sha256: str | None = None  # sha256 of the checkpoint it came from
    flops_per_sample: int | None = None  # counted at export: Linear/Conv/ConvTranspose work of one sample

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelFileError(f"unknown model kind {self.kind!r}: expected one of {', '.join(KINDS)}")

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def to_metadata(self) -> dict[str, str]:
        props = {
            LATENT_DIM: str(self.latent_dim),
            SAMPLE_SHAPE: json.dumps(list(self.sample_shape)),
            KIND: self.kind,
            VALUE_RANGE: json.dumps(list(self.value_range)),
        }
        optional = {
            VARIANT: self.variant,
            NUM_CLASSES: None if self.num_classes is None else str(self.num_classes),
            CLASS_NAMES: None if self.class_names is None else json.dumps(list(self.class_names)),
            CLASS_EMBEDDING: None if self.class_embedding is None else json.dumps([list(r) for r in self.class_embedding]),
            VERSION: self.version,
            SOURCE_SHA256: self.source_checkpoint_sha256,
            FLOPS: None if self.flops_per_sample is None else str(self.flops_per_sample),
        }
        props.update({k: v for k, v in optional.items() if v is not None})
        return props

    @classmethod
    def from_metadata(cls, props: dict[str, str], *, source: str = "model") -> ModelInfo:
        """Parse ganforge metadata; a missing or malformed key is a ModelFileError."""
        missing = [k for k in (LATENT_DIM, SAMPLE_SHAPE, KIND) if k not in props]
        if missing:
            raise ModelFileError(
                f"{source} has no ganforge metadata ({', '.join(missing)} missing): "
                "export it with gan-export"
            )
        try:
            latent_dim = int(props[LATENT_DIM])
            sample_shape = tuple(int(d) for d in _json(props[SAMPLE_SHAPE], SAMPLE_SHAPE, source))
            lo, hi = (float(v) for v in _json(props.get(VALUE_RANGE, "[-1, 1]"), VALUE_RANGE, source))
            num_classes = int(props[NUM_CLASSES]) if NUM_CLASSES in props else None
            flops = int(props[FLOPS]) if FLOPS in props else None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise ModelFileError(f"{source} has malformed ganforge metadata ({exc}): re-export it with gan-export") from None
        _check_sizes(source, latent_dim, sample_shape, num_classes, (lo, hi), props)
        try:  # sized by the claims just checked
            class_names = (tuple(str(c) for c in _json(props[CLASS_NAMES], CLASS_NAMES, source))
                           if CLASS_NAMES in props else None)
            embedding = (tuple(tuple(float(v) for v in row) for row in _json(props[CLASS_EMBEDDING], CLASS_EMBEDDING,
                                                                             source))
                         if CLASS_EMBEDDING in props else None)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise ModelFileError(f"{source} has malformed ganforge metadata ({exc}): re-export it with gan-export") from None
        if num_classes is not None:
            class_names = class_names or tuple(str(i) for i in range(num_classes))
            if len(class_names) != num_classes or (embedding is not None and (
                    len(embedding) != num_classes or any(len(row) != latent_dim for row in embedding))):
                raise ModelFileError(f"{source} has inconsistent ganforge metadata: {num_classes} classes but "
                                     f"{len(class_names)} class names or a class embedding of another shape; "
                                     "re-export it with gan-export")
        elif class_names is not None or embedding is not None:
            raise ModelFileError(f"{source} has class names or a class embedding but no {NUM_CLASSES}; "
                                 "re-export it with gan-export")
        return cls(
            latent_dim=latent_dim,
            sample_shape=sample_shape,
            kind=props[KIND],
            value_range=(lo, hi),
            variant=props.get(VARIANT),
            num_classes=num_classes,
            class_names=class_names,
            class_embedding=embedding,
            version=props.get(VERSION),
            source_checkpoint_sha256=props.get(SOURCE_SHA256),
            flops_per_sample=flops,
        )


def _check_sizes(source: str, latent_dim: int, sample_shape: tuple[int, ...], num_classes: int | None,
                 value_range: tuple[float, float], props: dict[str, str]) -> None:
    """Every size the metadata claims, against the limits (ganforge.limits), before any of
    them sizes an array, a list of class names or a run."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{source} has invalid ganforge metadata ({what}); re-export it with gan-export")

    if not 1 <= latent_dim <= MAX_LATENT_DIM:
        raise bad(f"latent_dim {latent_dim}, expected 1 to {MAX_LATENT_DIM}")
    if not 1 <= len(sample_shape) <= 3 or any(d < 1 for d in sample_shape):
        raise bad(f"sample_shape {list(sample_shape)[:8]}")
    values = 1
    for d in sample_shape:
        values *= d
    if values > MAX_SAMPLE_VALUES:
        raise bad(f"sample_shape {list(sample_shape)} holds {values:,} values a sample, more than the "
                  f"{MAX_SAMPLE_VALUES:,} ganforge serves")
    lo, hi = value_range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise bad(f"value_range {[lo, hi]} is empty or not finite")
    if num_classes is not None and not 1 <= num_classes <= MAX_CLASSES:
        raise bad(f"num_classes {num_classes}, expected 1 to {MAX_CLASSES:,}")
    if num_classes is None:
        return
    if len(props.get(CLASS_NAMES, "")) > (6 * MAX_CLASS_NAME + 4) * num_classes + 2:  # JSON: \uXXXX a character
        raise bad(f"class_names longer than {num_classes} names of at most {MAX_CLASS_NAME} characters")
    if CLASS_EMBEDDING in props and (num_classes * latent_dim > MAX_EMBEDDING_VALUES
                                     or len(props[CLASS_EMBEDDING]) > 32 * num_classes * latent_dim + 2):
        raise bad(f"a class embedding larger than {num_classes} x {latent_dim} numbers, or than the "
                  f"{MAX_EMBEDDING_VALUES:,} ganforge reads")


def inputs_found(inputs) -> str:
    """A graph's inputs (onnxruntime's ``NodeArg``s) as errors list them: ``z tensor(float) ['batch', 8]``."""
    return ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs) or "none"


def check_graph(path, info: ModelInfo, inputs, outputs) -> int | None:
    """Hold a graph with ganforge metadata (``info``) to it: its inputs ``z`` (and ``labels``) and
    output ``x`` (onnxruntime's ``NodeArg``s) must take and give what the metadata says; else a
    ModelFileError naming what was found. Returns the batch the graph fixes (an adopted graph,
    ganforge.export.adopt), None when open."""
    fixed_batch = _check_inputs(path, info, inputs)
    _check_output(path, info, outputs)
    return fixed_batch


def _check_inputs(path, info: ModelInfo, inputs) -> int | None:
    names = sorted(i.name for i in inputs)
    classes = info.num_classes
    if classes is None and names == [LABELS_NAME, INPUT_NAME]:
        raise ModelFileError(f"{path} takes '{LABELS_NAME}' but its metadata has no {NUM_CLASSES}; "
                             "re-export it with gan-export")
    if classes is not None and names == [INPUT_NAME]:
        raise ModelFileError(f"{path}: its metadata says {classes} classes but the graph has no input "
                             f"'{LABELS_NAME}'; re-export it with gan-export")
    by_name = {i.name: i for i in inputs}
    z, labels = by_name.get(INPUT_NAME), by_name.get(LABELS_NAME)
    want = f"'{INPUT_NAME}' float [batch, {info.latent_dim}]"
    if classes is None:
        ok, want = len(inputs) == 1, f"one input {want}"
    else:
        ok = (len(inputs) == 2 and labels is not None and labels.type == "tensor(int64)"
              and len(labels.shape) == 1)
        want = f"inputs {want} and '{LABELS_NAME}' int64 [batch] ({classes} classes in its metadata)"
    if not ok or z is None or z.type != "tensor(float)":
        raise ModelFileError(f"{path} is not a generator: expected {want}, found inputs: {inputs_found(inputs)}")
    shape = z.shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != info.latent_dim):
        raise ModelFileError(f"{path}: input '{INPUT_NAME}' has shape {shape}, but its metadata says "
                             f"latent_dim {info.latent_dim}")
    if not isinstance(shape[0], int):
        return None
    if not 1 <= shape[0] <= MAX_FIXED_BATCH:  # an adopted graph whose batch was fixed (ganforge.export.adopt)
        raise ModelFileError(f"{path}: its graph fixes a batch of {shape[0]}; ganforge runs fixed batches "
                             f"of 1 to {MAX_FIXED_BATCH}")
    return shape[0]


def _check_output(path, info: ModelInfo, outputs) -> None:
    out = next((o for o in outputs if o.name == OUTPUT_NAME), None)
    if out is None:
        names = ", ".join(o.name for o in outputs)
        raise ModelFileError(f"{path} is not a generator: no output '{OUTPUT_NAME}' (outputs: {names})")
    rank = {"image": 3, "series": 1}[info.kind]
    if len(info.sample_shape) != rank or (info.kind == "image" and info.sample_shape[0] not in (1, 3)):
        want = "[C, H, W] with C 1 or 3" if info.kind == "image" else "[length]"
        raise ModelFileError(f"{path} has inconsistent ganforge metadata: kind {info.kind} needs sample_shape "
                             f"{want}, got {list(info.sample_shape)}; re-export it with gan-export")
    declared = out.shape or []  # empty when the graph leaves the rank open: checked per run instead
    if declared and (len(declared) != 1 + rank or any(isinstance(d, int) and d != want_d
                                                      for d, want_d in zip(declared[1:], info.sample_shape))):
        raise ModelFileError(f"{path}: output '{OUTPUT_NAME}' has shape {out.shape}, but its metadata says "
                             f"samples of shape {list(info.sample_shape)}")


def read_props(path: str | os.PathLike[str], keys: set[str] | frozenset[str]) -> dict[str, str] | None:
    """The ``metadata_props`` of ``keys`` that the ONNX file at ``path`` holds (values of at most a few
    KiB), read from the protobuf's top level without parsing or loading the graph, which is skipped
    by its length: what a reader needs to compare two files' sources costs a few reads, whatever
    their size. None when the file cannot be read or is not a protobuf message (a bounded scan:
    at most :data:`MAX_TOP_FIELDS` fields)."""
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            for _ in range(MAX_TOP_FIELDS):
                if f.tell() >= size:
                    return found
                tag = _varint(f)
                field, wire = tag >> 3, tag & 7
                if wire == 0:
                    _varint(f)
                elif wire in (1, 5):
                    f.seek(8 if wire == 1 else 4, os.SEEK_CUR)
                elif wire == 2:
                    length = _varint(f)
                    at = f.tell()
                    if at + length > size:
                        return None
                    if field == METADATA_FIELD:
                        key, value = _entry(f.read(min(length, ENTRY_HEAD)))
                        if key in keys and value is not None:
                            found[key] = value
                    f.seek(at + length)
                else:  # groups (3, 4) are not in ONNX; 6 and 7 are not wire types
                    return None
    except (OSError, ValueError):
        return None
    return None


def _varint(f) -> int:
    value = 0
    for shift in range(0, 70, 7):
        byte = f.read(1)
        if not byte:
            raise ValueError("the file ends inside a number")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    raise ValueError("a number longer than 10 bytes")


def _entry(data: bytes) -> tuple[str | None, str | None]:
    """(key, value) of a StringStringEntryProto's first bytes; None for what is not whole in them."""
    import io

    buf, out = io.BytesIO(data), {}
    try:
        while buf.tell() < len(data):
            tag = _varint(buf)
            if tag & 7 != 2:
                return None, None
            length = _varint(buf)
            raw = buf.read(length)
            if len(raw) < length:
                break  # cut by ENTRY_HEAD: what came before is whole
            out[tag >> 3] = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return out.get(1), out.get(2)
