"""The options that describe an ONNX generator ganforge did not export, shared by gan-infer,
gan-bench and gan-eval (and gan-export --onnx): what its graph leaves open, and what to
assume about its output. They become :class:`ganforge.inference.Generator` keyword arguments.
"""

from __future__ import annotations

import functools

import click

from ganforge import values
from ganforge.errors import cli_errors

FOREIGN_KEYS = ("latent_dim", "latent_shape", "value_range", "layout", "num_classes")
RUNTIME_KEYS = ("provider", "precision")


# click callbacks over ganforge.values' parsers (gan-export --onnx takes them too)
parse_value_range = values.click_callback(values.parse_value_range)  # LOW,HIGH as two floats with LOW < HIGH
parse_latent_shape = values.click_callback(values.parse_latent_shape)  # 100,1,1 (or 100x1x1): 1 to 4 positive ints

_OPTIONS = (
    click.option("--latent-dim", type=click.IntRange(min=1),
                 help="Foreign models: the noise size, when the graph leaves the latent's size open."),
    click.option("--latent-shape", callback=parse_latent_shape, metavar="D,D,...",
                 help="Foreign models: the latent input's shape after the batch, e.g. 100,1,1 (DCGAN), when the "
                      "graph leaves it open; the noise stays a flat vector of their product."),
    click.option("--value-range", callback=parse_value_range, metavar="LOW,HIGH",
                 show_default="the metadata's; a foreign model: 0,255 when its output is uint8, else -1,1",
                 help="The generator's output range."),
    click.option("--layout", type=click.Choice(["nchw", "nhwc", "series"]),
                 show_default="series for [N, L]; nhwc for [N, H, W, 1|3] whose dimension 1 is not 1 or 3; else nchw",
                 help="Foreign models: how to read the output."),
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
                 show_default="auto; $GANFORGE_PROVIDER sets it",
                 help="What runs the model on the CPU: auto measures onnxruntime and OpenVINO (the openvino "
                      "extra, when installed) per run size on first big use and caches the choice; onnxruntime or "
                      "openvino forces one."),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "int8"]), default="fp32",
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


_RAY_OPTIONS = (
    click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
                 help="DIR/ only: make the shards on a Ray cluster (the ray extra): HOST:PORT of its head, auto "
                      "($RAY_ADDRESS), or nothing ($RAY_ADDRESS when set, else a local Ray). Same files as a local run."),
    click.option("--ray-actors", type=click.IntRange(1, 4096), metavar="N",
                 show_default="as many as the cluster's CPUs/GPUs hold",
                 help="--ray: actors, each with the model open."),
    click.option("--ray-cpus", type=click.FloatRange(0, 1024), default=1.0, metavar="C", show_default=True,
                 help="--ray: CPUs an actor asks for (its threads)."),
    click.option("--ray-gpus", type=click.FloatRange(0, 64), default=0.0, metavar="G", show_default=True,
                 help="--ray: GPUs an actor asks for (onnxruntime-gpu on the workers)."),
)


def ray_options(command):
    """Add --ray [ADDRESS], --ray-actors, --ray-cpus, --ray-gpus to a click command; it receives
    them as ``ray``: None without --ray, else a :class:`~ganforge.inference.ray_runner.RayTarget`."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        address, actors, cpus, gpus = (kwargs.pop(k) for k in ("ray_address", "ray_actors", "ray_cpus", "ray_gpus"))
        if address is None:
            for flag, value, default in (("--ray-actors", actors, None), ("--ray-cpus", cpus, 1.0),
                                         ("--ray-gpus", gpus, 0.0)):
                if value != default:
                    raise click.UsageError(f"{flag} goes with --ray [ADDRESS]: add --ray, or drop {flag}")
            return command(*args, ray=None, **kwargs)
        from ganforge.inference.ray_runner import RayTarget

        with cli_errors():
            target = RayTarget(address or None, actors, cpus, gpus)
        return command(*args, ray=target, **kwargs)

    for option in reversed(_RAY_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
