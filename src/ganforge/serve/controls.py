"""Truncation and edits a request asks for, as gan-serve takes them
(:mod:`ganforge.inference.control`: the same :class:`~ganforge.inference.control.Control` gan-infer
applies, so a served sample equals ``Generator.generate(..., control=...)``).

The shapes, on both APIs:

- ``truncation``: a number above 0 (at most 100); absent or null: none.
- edits: amounts in each direction's recommended steps, by name. On v2 infer, the request's
  ``parameters.edits`` is an object ``{"sneaker": 2, "pc1": -1}``, or the same as one string
  ``"sneaker=+2,pc1=-1"`` (what a Triton client's scalar parameters can carry). On /v1, ``edit=NAME=AMOUNT``
  once a direction, as ``gan-infer --edit``.
- v2 only: ``seed`` and ``start`` (default 0): the seed the request's ``z`` was drawn from and its
  first sample's index (``Generator.sample_noise(n, seed, start)``). Truncation redraws the cut
  components from that seed's keyed stream; edits need neither.

The directions are the ``directions.json`` beside the served model, read once at start
(:class:`Controls`); without it, truncation works and edits are refused, saying how to make them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

from ganforge.errors import GanforgeError, first_line, printable
from ganforge.inference.control import MAX_AMOUNT, MAX_TRUNCATION, Control, Edit, check_truncation, names_text
from ganforge.serve.protocol import ProtocolError
from ganforge.values import check_seed, check_start

log = logging.getLogger("gan-serve")
MAX_EDITS = 64  # edits a request: a page's sliders, far below the file's 256 directions


class Controls:
    """The served model's directions (None when it has none, with ``missing`` saying why to a client)
    and the checks a request's control meets before it is queued."""

    def __init__(self, gen):
        from ganforge.inference import directions

        self.directions, self.missing = None, None
        try:
            self.directions = directions.for_generator(gen)
        except GanforgeError as exc:
            absent = not directions.path_for(gen.path).exists()
            if not absent:  # a file there that is refused: the server says why once, a client gets the fix
                log.warning("edits off: %s", first_line(exc, 300))
            self.missing = ("this model has no named directions" + ("" if absent else
                            " (the directions.json beside it was refused; the server's log says why)") +
                            ": make them with gan-directions MODEL on the server (directions.json beside the "
                            "served model) and restart gan-serve; truncation works without them")

    def describe(self) -> list[dict]:
        """What a client (and the page) builds its controls from: name, kind, step, and a class's class."""
        if self.directions is None:
            return []
        out = []
        for d in self.directions.directions:
            entry = {"name": d.name, "kind": d.kind, "step": d.step}
            if d.kind == "class" and isinstance(d.measured.get("class"), str):
                entry["class"] = d.measured["class"]
            out.append(entry)
        return out

    def control(self, truncation, edits: Iterable[Edit]) -> Control | None:
        """The checked :class:`Control` of a request (None: nothing asked), else a ProtocolError (400)."""
        truncation = _truncation(truncation)
        edits = tuple(edits)
        if not edits:
            return None if truncation is None else Control(truncation)
        if self.directions is None:
            raise ProtocolError(f"edits asked of a model without directions: {self.missing}")
        names = [e.name.lower() for e in edits]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ProtocolError(f"one edit a direction: {printable(', '.join(twice), 80)} given twice (amounts add "
                                "up in one: NAME=AMOUNT)")
        known = set(self.directions.names)
        unknown = [e.name for e in edits if e.name.lower() not in known]
        if unknown:
            raise ProtocolError(f"no direction {printable(unknown[0], 64)!r} for this model; it has: "
                                f"{names_text(self.directions.names)} (GET /v1/model lists them)")
        return self.directions.control(truncation, edits)


def _truncation(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    try:
        return check_truncation(value)
    except GanforgeError:
        raise ProtocolError(f"truncation must be a number above 0 and at most {MAX_TRUNCATION:g} (0.5 to 1 is "
                            f"usual; omit it for none), got {printable(str(value), 40)!r}") from None


def _amount(name: str, value) -> float:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            value = text
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and abs(value) <= MAX_AMOUNT):
        raise ProtocolError(f"edit {printable(name, 64)!r}: the amount must be a number of the direction's steps "
                            f"from -{MAX_AMOUNT:g} to {MAX_AMOUNT:g} (such as 2 or -1), got "
                            f"{printable(str(value), 40)!r}")
    return float(value)


def _edit_text(text: str) -> Edit:
    """``NAME=AMOUNT`` (or ``NAME``: one step)."""
    name, sep, amount = str(text).strip().partition("=")
    name = name.strip()
    if not name:
        raise ProtocolError(f"an edit is NAME=AMOUNT (such as sneaker=+2 or pc1=-1), got {printable(text, 40)!r}")
    return Edit(name, _amount(name, amount) if sep else 1.0)


def parse_edits(value) -> tuple[Edit, ...]:
    """v2's ``parameters.edits``: an object ``{"name": amount}`` or a string ``"name=amount,..."``."""
    if value is None or value == "":
        return ()
    if isinstance(value, Mapping):
        items = [Edit(str(k).strip(), _amount(str(k), v)) for k, v in value.items()]
    elif isinstance(value, str):
        items = [_edit_text(part) for part in value.split(",") if part.strip()]
    else:
        raise ProtocolError('parameters.edits is an object {"sneaker": 2, "pc1": -1} or a string '
                            f'"sneaker=+2,pc1=-1", got {type(value).__name__}')
    return _bounded(items)


def query_edits(values: list[str]) -> tuple[Edit, ...]:
    """/v1's ``edit=NAME=AMOUNT`` (repeated, one a direction)."""
    return _bounded([_edit_text(v) for v in values if v.strip()])


def _bounded(items: list[Edit]) -> tuple[Edit, ...]:
    if len(items) > MAX_EDITS:
        raise ProtocolError(f"a request holds at most {MAX_EDITS} edits, got {len(items)}")
    return tuple(items)


def from_parameters(controls: Controls, params) -> tuple[Control | None, int, int]:
    """A v2 request's control and the seed and start its ``z`` came from (for truncation's redraws)."""
    if params is None:
        return None, 0, 0
    if not isinstance(params, dict):
        raise ProtocolError('the request\'s "parameters" must be an object, such as {"truncation": 0.7, '
                            '"edits": "pc0=+1", "seed": 3}')
    control = controls.control(params.get("truncation"), parse_edits(params.get("edits")))
    try:
        seed = check_seed(params.get("seed", 0))
        start = check_start(params.get("start", 0))
    except GanforgeError as exc:
        raise ProtocolError(f"parameters: {printable(str(exc), 120)} (the seed and start your z was drawn "
                            "from, for truncation's redraws)") from None
    return control, seed, start
