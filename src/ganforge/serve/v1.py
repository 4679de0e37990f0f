"""The convenience endpoints' work: gan-infer's own request and writers, so a response holds the
bytes ``gan-infer --n 64 --seed 1 --out g.png`` writes, by construction.

A request is built and checked on the event loop (a :class:`~ganforge.inference.GenerationRequest`
or :class:`~ganforge.inference.WalkRequest`: gan-infer's checks, in one place), labels parsed by
the model; the worker then makes the samples as gan-infer's runner does and writes them with
gan-infer's writers into a private temporary folder, whose file is the response.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.inference import keyed, labels as labelling
from ganforge.inference.render import MAX_GRID, grid_memory, write_batches
from ganforge.inference.request import GenerationRequest, WalkRequest
from ganforge.inference.walk import walk_classes, walk_frames, walk_memory, write_walk
from ganforge.serve import controls

MEDIA = {"png": "image/png", "npy": "application/octet-stream", "gif": "image/gif"}


class Work:
    """A /v1 response to make: ``n`` samples, ``run(gen)`` gives its bytes; ``etag`` names them."""

    def __init__(self, n: int, form: str, run: Callable, etag: str, seed: int):
        self.n, self.form, self.run, self.etag, self.seed = n, form, run, etag, seed

    @property
    def media_type(self) -> str:
        return MEDIA[self.form]


def _int(query, name: str, default: int | None) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise GanforgeError(f"{name} must be a whole number, got {text[:40]!r}") from None


def _etag(sha256: str, form: str, fields: tuple) -> str:
    key = repr((sha256, form, fields)).encode()
    return '"' + hashlib.sha256(key).hexdigest()[:32] + '"'


def _file_bytes(form: str, write: Callable[[Path], object]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gan-serve-") as folder:
        out = Path(folder) / f"out.{form}"
        write(out)
        return out.read_bytes()


def generation(served, form: str, query) -> Work:
    """``/v1/generate.{png,npy}?n=64&seed=1[&start=0][&label=NAME ...][&nrow=8][&truncation=T]
    [&edit=NAME=AMOUNT ...]``: samples ``start:start + n`` of the seed (:mod:`~ganforge.inference.keyed`),
    truncated and edited as ``gan-infer --truncation T --edit NAME=AMOUNT`` makes them
    (:mod:`~ganforge.serve.controls`)."""
    labels = query.getlist("label") or None
    request = GenerationRequest(model=served.path, n=_int(query, "n", 64), out=f"generate.{form}",
                                seed=_int(query, "seed", 0), start=_int(query, "start", 0),
                                nrow=_int(query, "nrow", None), labels=labels)
    if request.n > MAX_GRID:  # a response is held in memory whole, and stays a small job (gan-infer's runtime)
        raise GanforgeError(f"a /v1 response holds at most {MAX_GRID} samples, got n={request.n}: ask for fewer, "
                            "or stream many with gan-infer --out DIR/")
    served.check_samples(request.n)
    control = served.controls.control(query.get("truncation"), controls.query_edits(query.getlist("edit")))
    gen0 = served.generator
    if form == "png":
        grid_memory(request.n, gen0.info.sample_shape)
    chosen = None if request.labels is None else gen0.parse_labels(request.labels)
    info = gen0.info

    def run(gen) -> bytes:  # generation.run_generation's steps, on this worker's session
        labels = None if chosen is None else labelling.blocks(chosen, request.n)
        batches = gen.stream(request.n, request.seed, request.batch_size, labels, small_job=request.small_job(),
                             start=request.start, control=control)
        return _file_bytes(form, lambda out: write_batches(form, batches, request.n, info.sample_shape, out,
                                                           kind=info.kind, nrow=request.nrow,
                                                           value_range=info.value_range))

    # the scheme too: the same query under another noise scheme is other bytes
    # and the control exactly (the shift's floats: the directions the server read at start)
    fields = (request.n, request.seed, request.start, request.nrow, None if chosen is None else tuple(chosen),
              keyed.SCHEME, None if control is None else json.dumps(control.manifest()))
    return Work(request.n, form, run, _etag(served.sha256, form, fields), request.seed)


def walk(served, form: str, query) -> Work:
    """``/v1/walk.{gif,png,npy}?a=1&b=2&steps=16[&label=A[&label=B]]``."""
    a, b = _int(query, "a", None), _int(query, "b", None)
    if a is None or b is None:
        raise GanforgeError("a walk needs two seeds: ?a=1&b=2 (and steps=16)")
    if query.get("truncation") or query.getlist("edit"):
        raise GanforgeError("a walk takes no truncation or edits (gan-infer --interpolate takes none either): drop "
                            "them, or ask /v1/generate.png for the edited samples")
    request = WalkRequest(model=served.path, seed_a=a, seed_b=b, out=f"walk.{form}", steps=_int(query, "steps", 16),
                          labels=query.getlist("label") or None)
    served.check_samples(request.steps)
    gen0 = served.generator
    info = gen0.info
    walk_memory(request.steps, info.sample_shape, info.kind)
    ends = walk_classes(gen0, request.seed_a, request.seed_b, request.labels)

    def run(gen) -> bytes:  # generation.run_walk's steps
        frames = walk_frames(gen, request.seed_a, request.seed_b, request.steps, ends, small_job=request.small_job())
        return _file_bytes(form, lambda out: write_walk(form, frames, out, kind=info.kind,
                                                        value_range=info.value_range))

    fields = (request.seed_a, request.seed_b, request.steps, ends, keyed.SCHEME)
    return Work(request.steps, form, run, _etag(served.sha256, "walk-" + form, fields), request.seed_a)
