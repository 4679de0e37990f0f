"""The options that describe an ONNX generator ganforge did not export, shared by gan-infer,
gan-bench and gan-eval (and gan-export --onnx): what its graph leaves open, and what to
assume about its output. They become :class:`ganforge.inference.Generator` keyword arguments.
"""

from __future__ import annotations

import functools

import click

FOREIGN_KEYS = ("latent_dim", "latent_shape", "value_range", "layout", "num_classes")
RUNTIME_KEYS = ("provider", "precision")


def parse_value_range(ctx, param, value):
    """``LOW,HIGH`` as two floats with LOW < HIGH."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH such as -1,1 or 0,1; got {value!r}") from None
    if not lo < hi:
        raise click.BadParameter(f"LOW must be below HIGH; got {value!r}")
    return lo, hi


MAX_LATENT_AXES = 4  # a latent's dimensions after the batch: [C, H, W] of a conv generator is the most seen


def parse_latent_shape(ctx, param, value):
    """``100,1,1`` (or ``100x1x1``) as a tuple of 1 to MAX_LATENT_AXES positive ints."""
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"expected sizes after the batch such as 100,1,1 or 128; got {value!r}") from None
    if not 1 <= len(shape) <= MAX_LATENT_AXES or min(shape) < 1:
        raise click.BadParameter(f"expected 1 to {MAX_LATENT_AXES} sizes, each >= 1, such as 100 or 100,1,1; "
                                 f"got {value!r}")
    return shape


_OPTIONS = (
    click.option("--latent-dim", type=click.IntRange(min=1),
                 help="Foreign models: the noise size, when the graph leaves the latent's size open."),
    click.option("--latent-shape", callback=parse_latent_shape, metavar="D,D,...",
                 help="Foreign models: the latent input's shape after the batch, e.g. 100,1,1 (DCGAN), when the "
                      "graph leaves it open; the noise stays a flat vector of their product."),
    click.option("--value-range", callback=parse_value_range, metavar="LOW,HIGH",
                 help="The generator's output range (default: metadata; a foreign model 0,255 when its output is "
                      "uint8, else -1,1)."),
    click.option("--layout", type=click.Choice(["nchw", "nhwc", "series"]),
                 help="Foreign models: how to read the output (default: series for [N, L]; nhwc for [N, H, W, 1|3] "
                      "whose dimension 1 is not 1 or 3; else nchw)."),
    click.option("--num-classes", type=click.IntRange(min=1), metavar="K",
                 help="Foreign models with a second, integer input (class labels): how many classes it takes; "
                      "needed for them."),
)


def foreign_options(command):
    """Add the five options to a click command; it receives them as one dict ``foreign`` of the
    ones given (Generator keyword arguments)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {key: kwargs.pop(key) for key in FOREIGN_KEYS}
        return command(*args, foreign={k: v for k, v in given.items() if v is not None}, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def foreign_args(foreign: dict | None) -> list[str]:
    """``foreign`` (see :func:`foreign_options`; or ``runtime``, :func:`runtime_options`) back as
    command-line arguments, for a child gan-infer."""
    args: list[str] = []
    for key, value in (foreign or {}).items():
        if value is None:
            continue
        text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        args += ["--" + key.replace("_", "-"), text]
    return args


_RUNTIME_OPTIONS = (
    click.option("--provider", type=click.Choice(["auto", "onnxruntime", "openvino"]),
                 help="What runs the model on the CPU: auto (default; $GANFORGE_PROVIDER overrides) measures "
                      "onnxruntime and OpenVINO (the openvino extra, when installed) per run size on first big use "
                      "and caches the choice; onnxruntime or openvino forces one."),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "int8"]), default="fp32", show_default=True,
                 help="fp32: exact to 1e-4 of torch. bf16: OpenVINO computes in bf16 where faster (CPUs with "
                      "AVX512-BF16/AMX). int8: the generator.int8.onnx gan-export --precision int8 wrote."),
)


def runtime_options(command):
    """Add --provider and --precision to a click command; it receives them as one dict ``runtime``
    (Generator keyword arguments)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {key: kwargs.pop(key) for key in RUNTIME_KEYS}
        return command(*args, runtime=given, **kwargs)

    for option in reversed(_RUNTIME_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
