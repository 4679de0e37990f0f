"""Reading a generator ganforge did not export (no ganforge metadata) from its graph and a probe run.

One float input ``[batch, *latent_shape]`` (fed the flat noise, reshaped), perhaps an integer
labels input ``[batch]`` or ``[batch, 1]`` (``num_classes`` required), a fixed batch run in
chunks of that many, and the first output as NCHW or NHWC images (or ``[batch, L]`` series)
in [-1, 1], or [0, 255] when uint8. :func:`read` sets how :class:`~ganforge.inference.Generator`
feeds and reads the graph and returns the :class:`~ganforge.inference.metadata.ModelInfo` that
stands in for metadata; :func:`describe` is the one line the CLIs print about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ganforge.errors import GanforgeError, ModelFileError, first_line
from ganforge.inference import runtimes
from ganforge.inference.batches import BATCH_BYTES
from ganforge.inference.metadata import ModelInfo, inputs_found
from ganforge.limits import MAX_CLASSES, MAX_FIXED_BATCH, MAX_LATENT_DIM, MAX_SAMPLE_VALUES, check_memory

LAYOUTS = ("nchw", "nhwc", "series")
# What a foreign model may take and give, by onnxruntime's type names
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
LABEL_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
OUTPUT_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.float64, np.uint8))
ASSUMED_RANGE = (-1.0, 1.0)  # a float output's range unless --value-range says: the tanh most generators end in
BYTE_RANGE = (0.0, 255.0)  # a uint8 output's: pixels
PROBE_SAMPLES = 8  # samples of seed 0 whose values the foreign-model note reports (they never decide the range)
BYTE_HINT = 1.5  # probe values never below 0 and above this look like [0, 255] pixels, not [-1, 1]
RANGE_SLACK = 0.01  # of the range: probe values this far past it are noted (a fast tanh overshoots 1 by an ulp)


def shape_text(batch: int | None, dims: Sequence | None) -> str:
    """``[N,100,1,1]``: a batch (N when open) and the dimensions after it, as notes and errors show
    them (``?`` an open one, ``...`` when the graph does not say the rank)."""
    rest = ["..."] if dims is None else ["?" if not isinstance(d, int) else str(d) for d in dims]
    return "[" + ",".join(["N" if batch is None else str(batch), *rest]) + "]"


def resolve_latent_shape(dims: list | None, latent_dim: int | None, latent_shape: Sequence[int] | None,
                         where: str) -> tuple[int, ...]:
    """The latent input's shape after the batch: the graph's ``dims`` where they are numbers, and
    where they are not ``latent_shape`` (the whole shape) or ``latent_dim`` (the one open dimension).
    ``dims`` None: the graph does not say the rank. A flag the graph contradicts is an error;
    ``where`` names the input."""
    fixed = None if dims is None else [d if isinstance(d, int) else None for d in dims]
    if latent_shape is not None:
        latent_shape = tuple(latent_shape)
        if fixed is not None and (len(latent_shape) != len(fixed)
                                  or any(f is not None and f != d for f, d in zip(fixed, latent_shape))):
            raise ModelFileError(f"{where}: --latent-shape {','.join(map(str, latent_shape))} contradicts it; drop "
                                 "the flag, or give the shape after the batch that the graph takes")
        shape = latent_shape
    elif fixed is None:
        if latent_dim is None:
            raise ModelFileError(f"{where}: the graph does not say the latent's rank; pass --latent-shape "
                                 "(e.g. 100 or 100,1,1)")
        shape = (latent_dim,)
    else:
        shape = _fill_open(fixed, latent_dim, where)
    if not shape or min(shape) < 1:
        raise ModelFileError(f"{where}: a latent of shape {list(shape)} cannot take noise")
    values = math.prod(shape)
    if latent_dim is not None and values != latent_dim:
        raise ModelFileError(f"{where}: --latent-dim {latent_dim} contradicts it ({values} values); drop the flag or "
                             f"pass {values}")
    if values > MAX_LATENT_DIM:
        raise ModelFileError(f"{where}: a latent of {values} values is more than the {MAX_LATENT_DIM} ganforge serves")
    return shape


def _fill_open(fixed: list, latent_dim: int | None, where: str) -> tuple[int, ...]:
    """The graph's latent dimensions ``fixed`` (None where open), the one open one filled from ``latent_dim``."""
    open_dims = [i for i, d in enumerate(fixed) if d is None]
    rest = math.prod(d for d in fixed if d is not None)
    if len(open_dims) > 1:
        raise ModelFileError(f"{where}: {len(open_dims)} of the latent's dimensions are open in the graph; pass "
                             "--latent-shape (e.g. 100,1,1)")
    if open_dims and latent_dim is None:
        raise ModelFileError(f"{where}: the latent size is not fixed in the graph; pass --latent-dim N"
                             + (" (or --latent-shape)" if len(fixed) > 1 else ""))
    if open_dims and (rest < 1 or latent_dim % rest):
        raise ModelFileError(f"{where}: --latent-dim {latent_dim} does not fill it (its fixed dimensions hold "
                             f"{rest}); pass --latent-shape")
    return tuple(latent_dim // rest if d is None else d for d in fixed)


def read(gen, latent_dim: int | None, latent_shape: tuple[int, ...] | None, value_range,
         layout: str | None, num_classes: int | None) -> tuple[ModelInfo, str]:
    """What the generator ``gen`` (its session open, no ganforge metadata) must be, read from its
    graph and one probe run: sets how ``gen`` feeds and reads the graph, and returns its
    ModelInfo and the note (:func:`describe`)."""
    latent, labels = _inputs(gen)
    gen.input_name, gen.output_name = latent.name, gen.session.get_outputs()[0].name
    gen.input_dtype = FLOAT_TYPES[latent.type]
    gen.fixed_batch = _batch(gen, latent, labels)
    dims = list(latent.shape[1:]) if latent.shape else None
    where = f"{gen.path}: input '{latent.name}' {shape_text(gen.fixed_batch, dims)}"
    gen.latent_shape = resolve_latent_shape(dims, latent_dim, latent_shape, where)
    classes = _labels(gen, labels, num_classes)
    shape = _probe_shape(gen, classes is not None)
    if math.prod(shape) > MAX_SAMPLE_VALUES:
        raise ModelFileError(f"{gen.path}: one sample of shape {list(shape)} holds {math.prod(shape):,} values, "
                             f"more than the {MAX_SAMPLE_VALUES:,} ganforge serves")
    sample_shape, kind, gen.layout = _layout(gen, shape, layout)
    if value_range is not None:
        rng, why = value_range, "--value-range"
    elif gen.output_dtype == np.uint8:
        rng, why = BYTE_RANGE, "uint8 output"
    else:
        rng, why = ASSUMED_RANGE, None
    gen.info = ModelInfo(latent_dim=math.prod(gen.latent_shape), sample_shape=sample_shape, kind=kind,
                         value_range=rng, num_classes=classes,
                         class_names=None if classes is None else tuple(str(i) for i in range(classes)))
    return gen.info, describe(gen, why, "" if why else _range_hint(gen))


def _inputs(gen):
    """The latent input (one float input, ``[batch, ...]``) and the labels input (an integer
    ``[batch]`` or ``[batch, 1]``, else None); any other inputs are refused, naming them."""
    inputs = gen.session.get_inputs()
    floats = [i for i in inputs if i.type in FLOAT_TYPES and len(i.shape) != 1]
    ints = [i for i in inputs if i.type in LABEL_TYPES and (len(i.shape) <= 1 or (
        len(i.shape) == 2 and (i.shape[1] == 1 or not isinstance(i.shape[1], int))))]
    if len(floats) != 1 or len(ints) > 1 or len(inputs) != len(floats) + len(ints):
        raise ModelFileError(f"cannot use {gen.path} as a generator: expected one float input [batch, *latent] "
                             "and at most one integer input of labels [batch], found inputs: "
                             f"{inputs_found(inputs)}")
    return floats[0], (ints[0] if ints else None)


def _batch(gen, latent, labels) -> int | None:
    """The batch the graph fixes (its inputs' first dimension a number), else None."""
    fixed = {i.shape[0] for i in (latent, labels) if i is not None and i.shape and isinstance(i.shape[0], int)}
    if len(fixed) > 1:
        raise ModelFileError(f"{gen.path}: its inputs fix different batches ({inputs_found(gen.session.get_inputs())})")
    batch = fixed.pop() if fixed else None
    if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
        raise ModelFileError(f"{gen.path}: its graph fixes a batch of {batch}; ganforge runs fixed batches of 1 "
                             f"to {MAX_FIXED_BATCH} (re-export it with a dynamic batch)")
    return batch


def _labels(gen, labels, num_classes: int | None) -> int | None:
    """The classes of a foreign model with a labels input (``num_classes``, which it needs)."""
    if labels is None:
        if num_classes is not None:
            raise GanforgeError(f"--num-classes {num_classes}, but {gen.path} takes no labels (inputs: "
                                f"{inputs_found(gen.session.get_inputs())}); drop --num-classes")
        return None
    if num_classes is None:
        raise ModelFileError(f"{gen.path} takes class labels (input '{labels.name}' {labels.type} "
                             f"{labels.shape}): pass --num-classes K, the number of classes it was trained on")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise GanforgeError(f"--num-classes must be 1 to {MAX_CLASSES:,}, got {num_classes}")
    gen.labels_name, gen.labels_dtype = labels.name, LABEL_TYPES[labels.type]
    gen.labels_tail = (1,) if len(labels.shape) == 2 else ()
    return num_classes


def _probe_shape(gen, conditional: bool) -> tuple[int, ...]:
    """One run on zero noise (a batch of 1, or the graph's fixed batch): the shape of one sample."""
    batch, latent = gen.fixed_batch or 1, math.prod(gen.latent_shape)
    check_memory(f"the fixed batch of {batch} latents of {latent} values of {gen.path}", batch * latent * 12,
                 "re-export it with a smaller or dynamic batch")
    z = np.zeros((batch, latent), np.float32)
    try:
        labels = np.zeros(batch, np.int64) if conditional else None
        out = gen._run_session(gen._feed(z, labels))
    except GanforgeError:
        raise
    except Exception as exc:  # onnxruntime's own types
        if runtimes.out_of_arena(exc):
            raise ModelFileError(runtimes.run_failed(gen.path, batch, exc)) from None
        raise ModelFileError(f"{gen.path}: running it on a {shape_text(batch, gen.latent_shape)} input failed "
                             f"({first_line(exc, 160)}); check --latent-shape and --latent-dim") from None
    if out.ndim < 2 or len(out) != batch:
        raise ModelFileError(f"{gen.path}: output '{gen.output_name}' has shape {list(out.shape)} for a batch of "
                             f"{batch}; a generator gives [batch, *sample]")
    if 0 in out.shape[1:]:  # nothing to draw or save, and every size computed from it divides by 0
        raise ModelFileError(f"{gen.path}: output '{gen.output_name}' has shape {list(out.shape)}: a sample of no "
                             "values; a generator gives [batch, *sample] with every dimension at least 1")
    if out.dtype not in OUTPUT_DTYPES:
        raise ModelFileError(f"{gen.path}: output '{gen.output_name}' is {out.dtype}; ganforge serves float or "
                             "uint8 outputs")
    gen.output_dtype = out.dtype
    return tuple(out.shape[1:])


def _layout(gen, shape: tuple[int, ...], layout: str | None) -> tuple[tuple[int, ...], str, str]:
    """``(sample_shape, kind, layout)`` of a foreign output whose samples have ``shape``: [L] is a
    series; [H, W, 1 or 3] NHWC when its first dimension is not 1 or 3; else NCHW."""
    if layout is None:
        nhwc = len(shape) == 3 and shape[2] in (1, 3) and shape[0] not in (1, 3)
        layout = "series" if len(shape) == 1 else "nhwc" if nhwc else "nchw"
    if layout == "series":
        if len(shape) != 1:
            raise ModelFileError(f"{gen.path}: output '{gen.output_name}' has sample shape {list(shape)}, "
                                 "not a series [L]; use --layout nchw or nhwc")
        return shape, "series", layout
    if len(shape) != 3:
        raise ModelFileError(f"{gen.path}: output '{gen.output_name}' has sample shape {list(shape)}; "
                             "expected images [C, H, W] (--layout nchw) or [H, W, C] (--layout nhwc)")
    c, h, w = shape if layout == "nchw" else (shape[2], shape[0], shape[1])
    if c not in (1, 3):
        hint = " (channels last? try --layout nhwc)" if layout == "nchw" and shape[2] in (1, 3) else ""
        raise ModelFileError(f"{gen.path}: {c} channels in output '{gen.output_name}' "
                             f"{list(shape)}; images need 1 or 3{hint}")
    return (c, h, w), "image", layout


def _range_hint(gen) -> str:
    """What :data:`PROBE_SAMPLES` samples of seed 0 suggest about an assumed value range, for the
    foreign-model note; "" when they fit it. It never decides the range: one probe is no proof."""
    n = max(1, min(PROBE_SAMPLES, BATCH_BYTES // (4 * math.prod(gen.info.sample_shape))))
    x = gen._run(gen.sample_noise(n, 0), np.zeros(n, np.int64) if gen.info.conditional else None)
    x = x[np.isfinite(x)]
    if not x.size:
        return ""
    lo, hi = float(x.min()), float(x.max())
    seen = f" ({n} probe samples span {lo:.3g} to {hi:.3g}"
    if lo >= 0 and hi > BYTE_HINT:
        return seen + "; if it is [0, 255], pass --value-range 0,255)"
    if lo >= 0 and hi <= 1:
        return seen + "; if it is [0, 1], pass --value-range 0,1)"
    low, high = gen.info.value_range
    slack = RANGE_SLACK * (high - low)
    return seen + ", outside it; pass --value-range LOW,HIGH)" if lo < low - slack or hi > high + slack else ""


def describe(gen, why: str | None, hint: str) -> str:
    """The one line the CLIs print about a foreign model: what was read, what was assumed."""
    info = gen.info
    dtype = "" if gen.input_dtype == np.float32 else f" {np.dtype(gen.input_dtype).name}"
    parts = [f"latent {shape_text(gen.fixed_batch, gen.latent_shape)}{dtype}"]
    if gen.fixed_batch:
        parts[0] += f" (fixed batch: runs of {gen.fixed_batch})"
    if info.conditional:
        parts.append(f"labels {np.dtype(gen.labels_dtype).name} {shape_text(gen.fixed_batch, gen.labels_tail)} "
                     f"({info.num_classes} classes)")
    c, *rest = info.sample_shape
    out = {"series": f"series of {c}", "nchw": "NCHW " + "x".join(map(str, info.sample_shape)),
           "nhwc": "NHWC " + "x".join(map(str, (*rest, c)))}[gen.layout]
    parts.append(out + ("" if gen.output_dtype == np.float32 else f" {gen.output_dtype.name}"))
    lo, hi = info.value_range
    parts.append(f"range [{lo:g}, {hi:g}] ({why})" if why else f"assumed range [{lo:g}, {hi:g}]{hint}")
    return "foreign model: " + ", ".join(parts) + "; override with --latent-shape/--layout/--value-range"
