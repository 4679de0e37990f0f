"""Class labels of a conditional generator: the labels a user gives (names or indices), the
indices they stand for, and the labels drawn when none are given.

Pure numpy over a :class:`~ganforge.inference.metadata.ModelInfo`: :class:`Generator`'s label
methods and the generation request (:mod:`ganforge.inference.request`) call these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError, printable
from ganforge.inference import keyed
from ganforge.inference.metadata import ModelInfo

KNOWN_SHOWN = 20  # class names an unknown-label error lists before "... and N more"


def label_list(labels) -> list[str | int] | None:
    """``labels`` (names or indices) as a list, one alone a list of one; None stays None,
    an empty list is a GanforgeError."""
    if labels is None:
        return None
    labels = [labels] if isinstance(labels, (str, int, np.integer)) else list(labels)
    if not labels:
        raise GanforgeError("labels is empty: give class names or indices, or None for random classes")
    return labels


def walk_labels(labels: Sequence[str | int] | None) -> list[str | int] | None:
    """A walk's ``labels`` as a list: None, one (a fixed class) or two (from one to the other)."""
    labels = label_list(labels)
    if labels is not None and len(labels) > 2:
        raise GanforgeError(f"a walk takes one label (a fixed class) or two (from the first class to the second), "
                            f"got {len(labels)}")
    return labels


def no_classes(path: Path, what: str = "labels") -> str:
    """The message for labels (or ``what``) asked of a model without classes."""
    return (f"{what} need a conditional model; {path} has no classes "
            "(export a run trained with --set conditional=true)")


def known_labels(info: ModelInfo) -> str:
    """``0=T-shirt/top, 1=Trouser, ...``: what an error about labels lists."""
    names = info.class_names or ()
    shown = ", ".join(f"{i}={printable(name)}" for i, name in enumerate(names[:KNOWN_SHOWN]))
    return shown + (f", ... and {len(names) - KNOWN_SHOWN} more" if len(names) > KNOWN_SHOWN else "")


def parse_labels(info: ModelInfo, path: Path, values: Iterable[str | int]) -> list[int]:
    """Class indices of ``values``, each a class name (case-insensitive) or an index (3 or "3");
    a name is matched first. Anything else is a GanforgeError listing the classes."""
    if not info.conditional:
        raise GanforgeError(no_classes(path))
    names = info.class_names or ()
    by_name = {}
    for i, name in enumerate(names):
        by_name.setdefault(name.casefold(), i)
    indices = []
    for value in values:
        text = value.strip() if isinstance(value, str) else None
        if text is not None and text.casefold() in by_name:
            index = by_name[text.casefold()]
        elif text is not None and text.isascii() and text.isdigit():
            index = int(text)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            index = int(value)
        else:
            raise GanforgeError(f"unknown label {value!r}; this model knows: {known_labels(info)}")
        if not 0 <= index < len(names):
            raise GanforgeError(f"label {value!r} is out of range; this model knows: {known_labels(info)}")
        indices.append(index)
    return indices


def draw_labels(info: ModelInfo, seed: int, start: int, stop: int) -> np.ndarray:
    """Labels ``[stop - start]`` int64 of samples ``start:stop`` of ``seed``, uniform over the
    classes (:func:`ganforge.inference.keyed.labels`: a stream of their own, so a seed gives the
    same noise whether the model is conditional or not)."""
    return keyed.labels(seed, start, stop, info.num_classes)


def check_labels(info: ModelInfo, path: Path, labels, n: int) -> np.ndarray | None:
    """``labels`` as int64 ``[n]`` in range for a conditional model; None for an unconditional one."""
    if not info.conditional:
        if labels is not None:
            raise GanforgeError(no_classes(path))
        return None
    classes = info.num_classes
    if labels is None:
        raise GanforgeError(f"{path} is conditional: pass labels, class indices [batch] in [0, {classes})")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise GanforgeError(f"labels must have shape [{n}] (one a sample), got {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise GanforgeError(f"labels must be class indices (integers), got {labels.dtype}")
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        raise GanforgeError(f"label {bad[0]} is out of range: this model has {classes} classes, "
                            f"labels 0 to {classes - 1}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def blocks(chosen: Sequence[int], n: int) -> np.ndarray:
    """``n`` labels int64 going to ``chosen`` in contiguous blocks, as even as possible, in order."""
    return np.asarray(chosen, np.int64)[np.arange(n) * len(chosen) // n]
