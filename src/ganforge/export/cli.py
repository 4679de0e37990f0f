"""``gan-export``: a thin adapter over :func:`ganforge.export.export`."""

from __future__ import annotations

import json

import click

from ganforge.cli import CONTEXT_SETTINGS, version_option
from ganforge.errors import ConfigError, GanforgeError, MissingExtraError, cli_errors
from ganforge.export.formats import NAMES, OFFERS, PRECISIONS
from ganforge.inference.options import parse_latent_shape, parse_value_range
from ganforge.threads import apply_torch, threads_option

# onnxruntime and onnxruntime-gpu install the same module, so the message names both extras.
RUNTIME_MISSING = ("gan-export checks every export with onnxruntime ({} is missing): "
                   "pip install 'ganforge[cpu]' (or 'ganforge[gpu]' on a CUDA machine)")
MAX_INIT_ARGS = 64 << 10  # characters of --init-args: keyword arguments of a constructor, not data
# the options that describe a user's own generator, checked against the source they come with
USER_OPTIONS = ("init_args", "latent_shape", "value_range", "kind", "num_classes", "trust_pickle")


def _init_args(ctx, param, value):
    if value is None:
        return None
    if len(value) > MAX_INIT_ARGS:
        raise click.BadParameter(f"{len(value):,} characters; constructor arguments fit in {MAX_INIT_ARGS:,}")
    from ganforge.errors import GanforgeError
    from ganforge.values import loads_json

    try:
        args = loads_json(value, "the value", "give an object such as '{\"ngpu\": 1}'")
    except GanforgeError as exc:
        raise click.BadParameter(str(exc)) from None
    if not isinstance(args, dict):
        raise click.BadParameter(f"expected a JSON object of keyword arguments such as '{{\"ngpu\": 1}}'; "
                                 f"got {value!r}")
    return args


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-export")
@click.argument("source", required=False, metavar="[RUN|CHECKPOINT]")
@click.option("--format", "fmt", type=click.Choice([*NAMES, "all"]), default="onnx",
              help=", ".join(f"{n} ({about})" for n, (_, about) in OFFERS.items()) + ", all.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
              help="fp16: float16 weights and compute, float32 z/x (GPU serving); int8: dynamic quantization "
                   "for MLP generators, static QDQ calibrated on the generator's own activations for conv ones "
                   "(fastest on OpenVINO: gan-infer --precision int8). " + ", ".join(n for n, (offer, _) in OFFERS.items() if len(offer) > 1)
                   + " only.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              show_default="<run>/export",
              help="Output folder (required with --module, --torchscript, --exported).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs",
              help="Where runs are found by name and where 'latest' points (gan-train's --runs-dir).")
@click.option("--module", "module", metavar="PATH.py:Class|package.module:Class",
              help="Your own generator's class (instead of a run); needs --weights and --latent-shape.")
@click.option("--weights", type=click.Path(dir_okay=False), metavar="G.pth",
              help="Its weights: a state_dict, or a checkpoint dict holding one (netG, generator, G, state_dict...).")
@click.option("--init-args", callback=_init_args, metavar="JSON",
              help="Keyword arguments of the class, as a JSON object, e.g. '{\"ngpu\": 1}'.")
@click.option("--latent-shape", callback=parse_latent_shape, metavar="N[,N...]",
              help="The noise shape its forward takes without the batch: 100, or 100,1,1 for a DCGAN. "
                   "The export takes z [batch, N*...] and reshapes it.")
@click.option("--value-range", callback=parse_value_range, metavar="LOW,HIGH",
              show_default="-1,1",
              help="The range of its output, recorded as is for gan-infer (0,1 for a Sigmoid output).")
@click.option("--kind", type=click.Choice(["image", "series"]),
              show_default="from its output: [B,C,H,W] image, [B,L] series",
              help="image or series; image turns [B,784] into 1x28x28.")
@click.option("--num-classes", type=click.IntRange(min=1), metavar="K",
              help="A conditional generator: its forward takes (z, labels) with labels 0..K-1.")
@click.option("--torchscript", "torchscript", type=click.Path(dir_okay=False), metavar="G.ts",
              help="Your generator as a TorchScript file (no --module or --weights); needs --latent-shape.")
@click.option("--exported", "exported", type=click.Path(dir_okay=False), metavar="G.pt2",
              help="Your generator as a torch.export .pt2 file (no --module or --weights); needs --latent-shape.")
@click.option("--onnx", "onnx_file", type=click.Path(dir_okay=False), metavar="G.onnx",
              help="An ONNX generator exported elsewhere: write a copy with ganforge's inputs, outputs and metadata "
                   "to --out DIR/generator.onnx, so gan-infer, gan-bench and gan-eval need no flags.")
@click.option("--layout", type=click.Choice(["nchw", "nhwc", "series"]),
              show_default="inferred from its shape", help="With --onnx: how to read its output.")
@click.option("--trust-pickle", is_flag=True,
              help="Load --weights that hold a whole pickled module (this runs code from the file; trusted "
                   "files only).")
@threads_option
def main(source, fmt, precision, out_dir, runs_dir, module, weights, torchscript, exported, onnx_file, layout, **user):
    """Export a run's generator (default: runs/latest), or your own PyTorch generator
    (--module and --weights, or --torchscript/--exported), and prove the export faithful.

    Every artifact is checked (onnx.checker, symbolic batch, metadata, parity with
    PyTorch eager at batch sizes 1, 3, 64, 257 within 1e-4 for fp32, 1e-2 for fp16,
    5e-2 for int8); one that fails is not written, and checks cannot be turned off.
    """
    if onnx_file is not None:
        return _adopt(onnx_file, out_dir, layout, source=source, module=module, weights=weights,
                      torchscript=torchscript, exported=exported, fmt=fmt, precision=precision, **user)
    with cli_errors():
        if layout is not None:
            raise ConfigError("--layout describes an ONNX file of your own: pass it with --onnx G.onnx")
        user_source = _user_source_args(source, out_dir, module, weights, torchscript, exported, user)
        try:
            import onnx  # noqa: F401
            import torch

            from ganforge.export import UserSource, export
        except ImportError as exc:
            raise MissingExtraError("gan-export", "train", exc) from None
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:  # [train] alone: neither the cpu nor the gpu extra
            raise GanforgeError(RUNTIME_MISSING.format(exc.name or "onnxruntime")) from None
        apply_torch(torch)  # the parity checks run the generator on torch
        if user_source is not None:
            source = UserSource(**user_source)
        result = export(source, formats=fmt, precision=precision, out_dir=out_dir, runs_dir=runs_dir)
    for key, path in result.artifacts.items():
        diffs = [c.max_abs_diff for c in result.checks[key] if c.max_abs_diff is not None]
        click.echo(f"{key:12s} {path}  ({len(result.checks[key])} checks passed, max abs diff {max(diffs):.2g})")
    click.echo(f"report       {result.report}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def _adopt(onnx_file, out_dir, layout, *, latent_shape, value_range, num_classes, fmt, precision, **others) -> None:
    """``--onnx``: a copy of a foreign ONNX generator that follows ganforge's contract."""
    from pathlib import Path

    with cli_errors():
        given = [f"--{k.replace('_', '-')}" if k not in ("source",) else str(v) for k, v in others.items()
                 if v not in (None, False)]
        if given:
            raise ConfigError(f"--onnx takes a finished ONNX file: drop {given[0]} (it describes another source)")
        if fmt != "onnx" or precision != "fp32":
            raise ConfigError("--onnx copies the file as it is: --format onnx and --precision fp32 only")
        if out_dir is None:
            raise ConfigError("--onnx needs --out DIR: the copy is written to DIR/generator.onnx")
        try:
            from ganforge.export.adopt import adopt_onnx
        except ImportError as exc:
            raise MissingExtraError("gan-export --onnx", "train", exc) from None
        dest = Path(out_dir) / "generator.onnx"
        made = not dest.parent.exists()
        overrides = {"latent_shape": latent_shape, "value_range": value_range, "num_classes": num_classes,
                     "layout": layout}
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            info = adopt_onnx(onnx_file, dest, **{k: v for k, v in overrides.items() if v is not None})
        except BaseException:
            if made:  # a refusal leaves no empty folder behind
                import shutil

                shutil.rmtree(dest.parent, ignore_errors=True)
            raise
    shape = "x".join(map(str, info.sample_shape))
    classes = f", {info.num_classes} classes" if info.conditional else ""
    click.echo(f"onnx         {dest}  (z [batch, {info.latent_dim}] -> x {info.kind} {shape}, range "
               f"{list(info.value_range)}{classes}; the same samples as {onnx_file})")


def _user_source_args(source, out_dir, module, weights, torchscript, exported, user) -> dict | None:
    """The UserSource arguments of the options given (None: a run is exported), after checking
    that they make one source; every misfit is one line."""
    programs = {"--torchscript": torchscript, "--exported": exported}
    given = [name for name, value in (("--module", module), ("--weights", weights), *programs.items()) if value]
    extras = [f"--{k.replace('_', '-')}" for k in USER_OPTIONS if user[k] not in (None, False)]
    if not given:
        if extras:
            raise ConfigError(f"{extras[0]} describes a generator of your own: pass it with --module and --weights "
                              "(or --torchscript / --exported)")
        return None
    if source is not None:
        raise ConfigError(f"{source} and {given[0]} are two sources: export a run, or your own generator")
    program = [name for name, value in programs.items() if value]
    if program and (module or weights or len(program) > 1):
        raise ConfigError(f"{program[0]} holds the whole generator: pass it without "
                          f"{next(n for n in given if n != program[0])}")
    if not program and not (module and weights):
        raise ConfigError("--weights needs --module PATH.py:Class, the class they were saved from (a TorchScript "
                          "or .pt2 file goes in --torchscript / --exported)" if weights else
                          "--module needs --weights G.pth, the state_dict of the generator")
    if user["latent_shape"] is None:
        raise ConfigError("a generator of your own needs --latent-shape, the noise shape its forward takes "
                          "(100, or 100,1,1 for a DCGAN)")
    if user["trust_pickle"] and not weights:
        raise ConfigError("--trust-pickle applies to --weights (a whole pickled module)")
    if out_dir is None:
        raise ConfigError("a generator of your own has no run folder to export into: pass --out DIR")
    args = {k: v for k, v in user.items() if v is not None}
    if program:
        kind = "torchscript" if torchscript else "exported"
        return {**args, "program": torchscript or exported, "program_kind": kind}
    return {**args, "module": module, "weights": weights}


if __name__ == "__main__":
    main()
