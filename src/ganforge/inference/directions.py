"""Named directions in a generator's latent space: the ``directions.json`` beside its model.

``gan-directions MODEL`` writes it (principal directions of the model's own samples, and with
``--data`` a direction toward each class of a labelled data set); ``gan-infer --edit NAME=AMOUNT``,
``--sweep NAME``, gan-serve and its page read it. The model file itself is never rewritten.

The file (``FORMAT``, version ``VERSION``)::

    {"format": "ganforge-directions", "version": 1,
     "model": "generator.onnx", "model_sha256": "<64 hex>", "source_checkpoint_sha256": "<64 hex>" | null,
     "latent_dim": 64,
     "directions": [{"name": "pc0", "kind": "principal", "vector": [64 floats, unit length],
                     "step": 1.7, ...what was measured of it}, ...]}

A direction's ``vector`` has unit length; ``step`` is its recommended step, in noise units. An
edit's amount counts steps: ``--edit sneaker`` is ``sneaker=1``, one recommended step;
``pc1=-1`` one step the other way. A file made for another model (its sha256, or for another
precision's file of the same checkpoint its ``source_checkpoint_sha256``) is refused in one line.

Torch-free: numpy and json.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError, printable
from ganforge.inference.control import Control, Edit, names_text

FILE = "directions.json"
FORMAT, VERSION = "ganforge-directions", 1
KINDS = ("principal", "class")
MAX_FILE_BYTES = 64 << 20  # a file of 256 directions of 16,384 floats is about 80 MB of text: refused above this
MAX_DIRECTIONS = 256
MAX_LATENT = 1 << 16
NAME = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,63}")  # what --edit NAME matches: lowercase, no spaces
UNIT_TOLERANCE = 1e-3


def slug(text: str) -> str:
    """A class name as a direction's name: ``"Ankle boot"`` -> ``"ankle-boot"``, ``"T-shirt/top"`` ->
    ``"t-shirt-top"``."""
    s = re.sub(r"[^a-z0-9.+]+", "-", str(text).lower()).strip("-")
    return s[:64] or "class"


@dataclass(frozen=True)
class Direction:
    """One direction: ``vector`` (unit length, ``[latent_dim]`` float32), ``step`` (noise units),
    ``kind`` (principal or class), ``measured`` (what gan-directions found of it)."""

    name: str
    kind: str
    vector: np.ndarray = field(compare=False)
    step: float
    measured: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vector": [float(v) for v in self.vector],
                "step": float(self.step), **self.measured}


@dataclass(frozen=True)
class Directions:
    """A model's directions, as :func:`load` reads them or :func:`save` writes them."""

    model_sha256: str
    latent_dim: int
    directions: tuple[Direction, ...]
    source_checkpoint_sha256: str | None = None
    model: str = "generator.onnx"

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.directions]

    def get(self, name: str) -> Direction:
        """The direction ``name`` (case-insensitive), else a one-line error naming the known ones."""
        key = str(name).strip().lower()
        for d in self.directions:
            if d.name == key:
                return d
        raise GanforgeError(f"no direction {printable(str(name))!r} for this model; it has: {names_text(self.names)}")

    def shift(self, edits: Iterable[Edit]) -> np.ndarray | None:
        """The sum of ``edits`` as a noise offset ``[latent_dim]`` float32 (None: no edits)."""
        total = None
        for edit in edits:
            d = self.get(edit.name)
            part = np.float32(edit.amount * d.step) * d.vector
            total = part if total is None else total + part
        return None if total is None else total.astype(np.float32)

    def control(self, truncation: float | None, edits: Sequence[Edit]) -> Control:
        named = tuple(Edit(self.get(e.name).name, e.amount) for e in edits)
        return Control(truncation, self.shift(named), named)

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "model": self.model, "model_sha256": self.model_sha256,
                "source_checkpoint_sha256": self.source_checkpoint_sha256, "latent_dim": self.latent_dim,
                "directions": [d.to_json() for d in self.directions]}


def path_for(model: str | os.PathLike[str]) -> Path:
    """Where the directions of ``model`` live: ``directions.json`` in its folder."""
    return Path(model).parent / FILE


def _fail(path: Path, why: str) -> GanforgeError:
    return GanforgeError(f"{printable(str(path))} {why}: make it again with gan-directions")


def _read(path: Path) -> dict:
    """The file's JSON: a regular file (not a link, a FIFO or a device) under the size bound, UTF-8,
    an object; else a one-line error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _fail(path, "is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _fail(path, f"is {info.st_size:,} bytes, more than a directions file holds ({MAX_FILE_BYTES:,})")
        raw = f.read(MAX_FILE_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail(path, "is not a JSON directions file") from None
    if not isinstance(data, dict):
        raise _fail(path, "is not a JSON directions file")
    return data


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse(data: dict, path: Path) -> Directions:
    """:class:`Directions` from a file's JSON, every field checked (types, sizes, finite, unit vectors)."""
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise _fail(path, f"is not a {FORMAT} file of version {VERSION}")
    sha, source, dim = data.get("model_sha256"), data.get("source_checkpoint_sha256"), data.get("latent_dim")
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise _fail(path, "names no model_sha256")
    if source is not None and not (isinstance(source, str) and re.fullmatch(r"[0-9a-f]{64}", source)):
        raise _fail(path, "has a malformed source_checkpoint_sha256")
    if not (isinstance(dim, int) and not isinstance(dim, bool) and 1 <= dim <= MAX_LATENT):
        raise _fail(path, f"has no latent_dim from 1 to {MAX_LATENT}")
    entries = data.get("directions")
    if not isinstance(entries, list) or len(entries) > MAX_DIRECTIONS:
        raise _fail(path, f"holds no list of at most {MAX_DIRECTIONS} directions")
    found, seen = [], set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise _fail(path, f"has a direction {i} that is not an object")
        name, kind, vector, step = e.get("name"), e.get("kind"), e.get("vector"), e.get("step")
        if not (isinstance(name, str) and NAME.fullmatch(name)) or name in seen:
            raise _fail(path, f"has a direction {i} without a name of its own (lowercase letters, digits, - _ . +)")
        if kind not in KINDS:
            raise _fail(path, f"has a direction {name!r} of unknown kind (not {' or '.join(KINDS)})")
        if not (isinstance(vector, list) and len(vector) == dim and all(map(_number, vector))):
            raise _fail(path, f"has a direction {name!r} whose vector is not {dim} finite numbers")
        if not (_number(step) and step > 0):
            raise _fail(path, f"has a direction {name!r} without a step above 0")
        v = np.asarray(vector, np.float64)
        if abs(float(np.linalg.norm(v)) - 1.0) > UNIT_TOLERANCE:
            raise _fail(path, f"has a direction {name!r} whose vector is not of unit length")
        v = (v / np.linalg.norm(v)).astype(np.float32)
        v.setflags(write=False)
        measured = {k: val for k, val in e.items() if k not in ("name", "kind", "vector", "step")}
        found.append(Direction(name, kind, v, float(step), measured))
        seen.add(name)
    return Directions(sha, dim, tuple(found), source, str(data.get("model") or "generator.onnx"))


def load(model: str | os.PathLike[str], *, model_sha256: str, source_checkpoint_sha256: str | None,
         latent_dim: int, path: str | os.PathLike[str] | None = None) -> Directions:
    """The directions of the model whose file's sha256 is ``model_sha256`` (``path``, else
    :func:`path_for` ``model``), checked to be that model's: its sha256, or (another precision's
    file of one checkpoint) its ``source_checkpoint_sha256``, and its latent size."""
    path = Path(path) if path is not None else path_for(model)
    try:
        data = _read(path)
    except FileNotFoundError:
        raise GanforgeError(f"{printable(str(model))} has no named directions ({printable(str(path))} does not "
                            f"exist): make them with gan-directions {printable(str(model))} (--data PATH adds a "
                            "direction a class)") from None
    found = parse(data, path)
    same = found.model_sha256 == model_sha256 or (
        source_checkpoint_sha256 is not None and found.source_checkpoint_sha256 == source_checkpoint_sha256)
    if not same:
        raise GanforgeError(f"{printable(str(path))} was made for another model (sha256 {found.model_sha256[:12]}..., "
                            f"this one's {model_sha256[:12]}...): make them again with gan-directions "
                            f"{printable(str(model))}")
    if found.latent_dim != latent_dim:
        raise _fail(path, f"holds directions of {found.latent_dim} noise values; the model takes {latent_dim}")
    return found


def save(directions: Directions, path: str | os.PathLike[str]) -> Path:
    """Write ``directions`` to ``path`` whole (a temporary, then renamed)."""
    from ganforge.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(directions.to_json(), indent=1) + "\n")
    return Path(path)


def for_generator(gen, model: str | os.PathLike[str] | None = None) -> Directions:
    """The directions beside ``model`` (default: the file ``gen`` opened) for the open ``gen``."""
    from ganforge.fsutil import file_sha256

    model = Path(model) if model is not None else Path(gen.path)
    try:
        sha = file_sha256(gen.path)
    except OSError as exc:
        raise GanforgeError(f"cannot read {printable(str(gen.path))}: {exc.strerror or exc}") from None
    return load(model, model_sha256=sha, source_checkpoint_sha256=gen.info.source_checkpoint_sha256,
                latent_dim=gen.info.latent_dim)
