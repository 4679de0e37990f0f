"""The values a user types that several commands share, parsed and checked in one place.

Ground floor and torch-free (``ganforge.inference`` imports it): each function returns the value
in its checked form or raises a :class:`~ganforge.errors.GanforgeError` whose message says what
was expected; click callbacks turn that into ``click.BadParameter`` (:func:`click_callback`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

from ganforge.errors import ConfigError, GanforgeError

MAX_LATENT_AXES = 4  # a latent's dimensions after the batch: [C, H, W] of a conv generator is the most seen


def check_count(n, what: str = "n", minimum: int = 1) -> int:
    """``n`` as an int >= ``minimum``, else a GanforgeError."""
    try:
        n = operator.index(n)
    except TypeError:
        raise GanforgeError(f"{what} must be a whole number, got {n!r}") from None
    if n < minimum:
        raise GanforgeError(f"{what} must be >= {minimum}, got {n}")
    return n


def check_seed(seed) -> int:
    """``seed`` as an int >= 0 (what ``np.random.default_rng`` accepts), else a GanforgeError."""
    return check_count(seed, "seed", minimum=0)


MAX_INDEX = 2**53  # a sample's index within its seed: beyond any job, and exact as a float anywhere


def check_start(start, what: str = "start") -> int:
    """The index of a seed's first sample wanted: an int in ``[0, 2**53]``, else a GanforgeError."""
    start = check_count(start, what, minimum=0)
    if start > MAX_INDEX:
        raise GanforgeError(f"{what} must be at most 2**53 ({MAX_INDEX}), got {start}")
    return start


MAX_SCALE = 16  # a picture's scale for viewing: 8x8 samples become 128x128 pixels at 16


def check_scale(scale) -> int:
    """A picture's whole scale factor for viewing (nearest neighbour), ``1`` to ``16``, else a GanforgeError."""
    scale = check_count(scale, "scale")
    if scale > MAX_SCALE:
        raise GanforgeError(f"scale must be at most {MAX_SCALE} (a factor a side, nearest neighbour), got {scale}")
    return scale


def parse_range(text: str) -> tuple[int, int]:
    """``A:B``, samples ``A`` (included) to ``B`` (excluded) of a seed, ``0 <= A < B``; ``:B`` is ``0:B``."""
    a, sep, b = str(text).strip().partition(":")
    a = a.strip() or "0"
    if not sep or not (a.isascii() and a.isdigit() and b.strip().isascii() and b.strip().isdigit()):
        raise GanforgeError(f"a range is START:STOP, sample indices such as 0:1000 or 5000:6000; got {text!r}")
    start, stop = int(a), int(b)
    check_start(start, "the range's start")
    check_start(stop, "the range's stop")
    if stop <= start:
        raise GanforgeError(f"the range's stop must be greater than its start, got {text!r} (START:STOP, STOP excluded)")
    return start, stop


def parse_value_range(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` as two finite floats with LOW < HIGH."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"expected LOW,HIGH such as -1,1 or 0,1; got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"LOW and HIGH must be finite numbers; got {text!r}")
    if not lo < hi:
        raise ConfigError(f"LOW must be below HIGH; got {text!r}")
    return lo, hi


def check_value_range(value_range) -> tuple[float, float]:
    """``value_range`` (a pair of numbers, from metadata or an API call) as two finite floats LOW < HIGH."""
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise GanforgeError(f"value range must be LOW,HIGH with LOW < HIGH, got {value_range!r}")
    return lo, hi


def parse_latent_shape(text: str) -> tuple[int, ...]:
    """``100,1,1`` (or ``100x1x1``) as a tuple of 1 to MAX_LATENT_AXES positive ints."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise ConfigError(f"expected sizes after the batch such as 100,1,1 or 128; got {text!r}")
    shape = tuple(int(p) for p in parts)
    if not 1 <= len(shape) <= MAX_LATENT_AXES or min(shape) < 1:
        raise ConfigError(f"expected 1 to {MAX_LATENT_AXES} sizes, each >= 1, such as 100 or 100,1,1; got {text!r}")
    return shape


def square_size(size: Sequence[int] | None) -> list[int] | None:
    """An image size as ``[H, W]``: one number is a square; None and two numbers stay as they are."""
    if size is not None and len(size) == 1:
        return [size[0], size[0]]
    return None if size is None else list(size)


def click_callback(parse: Callable[[str], object]) -> Callable:
    """A click option callback that runs ``parse`` on the given text (None stays None) and reports
    its GanforgeError as ``click.BadParameter``."""
    def callback(ctx, param, value):
        import click

        if value is None:
            return None
        try:
            return parse(value)
        except GanforgeError as exc:
            raise click.BadParameter(str(exc)) from None
    return callback


MAX_JSON_DEPTH = 64  # lists and objects nested in any JSON from outside (a model's metadata, --set, a config)


def json_depth(text: str) -> int:
    """How deep ``text``'s lists and objects nest, brackets inside strings not counted; measured
    without recursion or a Python loop a character (a megabyte takes milliseconds)."""
    import re

    import numpy as np

    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    codes = np.frombuffer(bare.encode("utf-8", "surrogatepass"), np.uint8)
    step = np.zeros(len(codes), np.int8)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def loads_json(text: str | bytes, what: str, fix: str, *, error: type[GanforgeError] = GanforgeError):
    """``text`` parsed as JSON, nested at most :data:`MAX_JSON_DEPTH` deep, else one line:
    ``{what} is not valid JSON (why): {fix}``. The depth is measured first, so a thousand nested
    brackets never reach the parser's recursion."""
    import json

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text: {fix}") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{what} nests {depth:,} levels deep, more than the {MAX_JSON_DEPTH} JSON here may: {fix}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON ({str(exc).splitlines()[0][:80] if str(exc) else 'malformed'}): "
                    f"{fix}") from None
