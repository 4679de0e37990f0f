"""``gan-infer``: its options parsed into a generation request (:mod:`ganforge.inference.request`), run
by :mod:`ganforge.inference.generation`."""

from __future__ import annotations

import functools
import sys
import time

import click
from click.core import ParameterSource

from ganforge import threads
from ganforge.cli import CONTEXT_SETTINGS, LATEST_MODEL, version_option
from ganforge.errors import cli_errors, printable, short_warnings
from ganforge.inference.options import foreign_options, ray_options, runtime_options
from ganforge.progress import sample_lines, shard_lines
from ganforge.threads import threads_option
from ganforge.values import click_callback, parse_range

NOT_WITH_WALK = ("n", "range_", "per_class", "seed", "nrow", "batch_size", "shard_format", "shard_size", "workers",
                 "ray_address", "truncation", "edits", "sweep", "directions")
# what a sweep (one grid: a row a sample, a column an amount) does not take
NOT_WITH_SWEEP = ("range_", "per_class", "nrow", "batch_size", "shard_format", "shard_size", "workers", "ray_address",
                  "interpolate")
WALK_STEPS, SWEEP_STEPS = 16, 9
# what --verify DIR takes besides: the folder says the rest
WITH_VERIFY = ("model", "device", "verbose", "verify")


def _terminal_progress():
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""
    last = [0.0]

    def show(done: int, n: int) -> None:
        now = time.monotonic()
        if done < n and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = width * done // n
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{n}")
        if done >= n:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _seed_pair(ctx, param, value):
    if value is None:
        return None
    try:
        a, b = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two seeds A,B such as 3,7; got {value!r}") from None
    if a < 0 or b < 0:
        raise click.BadParameter(f"seeds are whole numbers >= 0, such as 3,7; got {value!r}")
    return a, b


def _echo(line: str, err: bool = False) -> None:
    click.echo(printable(line), err=err)  # what a file or its metadata says, printable


def _names(names: tuple[str, ...], most: int = 8) -> str:
    return ", ".join(map(printable, names[:most])) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


def _flag(name: str) -> str:
    flags = {"range_": "--range", "shard_format": "--format", "labels": "--label", "ray_address": "--ray",
             "edits": "--edit"}
    return flags.get(name) or "--" + name.replace("_", "-")


def _check_verify(ctx: click.Context) -> None:
    """--verify DIR reads the job from the folder: the options that describe a job are refused."""
    for name in ctx.params:
        if name not in WITH_VERIFY and _given(ctx, name):
            raise click.UsageError(f"{_flag(name)} does not go with --verify DIR: the folder's manifest says how its "
                                   f"samples were made; drop {_flag(name)}")


def _check_combination(ctx: click.Context, interpolate, per_class, sweep=None) -> None:
    """Options that cannot go together: usage errors before anything is opened."""
    given, flag = functools.partial(_given, ctx), _flag
    if ctx.params.get("verify") is not None:
        return _check_verify(ctx)
    if ctx.params.get("out") is None:
        raise click.UsageError("Missing option '--out': where to write (grid.png, samples.npy or DIR/), or pass "
                               "--verify DIR to check a folder")
    if given("n") and given("range_"):
        raise click.UsageError("--n N is --range 0:N: pass one of them")

    if sweep is not None:
        for name in NOT_WITH_SWEEP:
            if given(name):
                raise click.UsageError(f"{flag(name)} does not go with --sweep NAME: a sweep is one grid, a row each of "
                                       f"--n samples, a column each of --steps amounts; drop {flag(name)}")
        return
    if given("directions") and not given("edits"):
        raise click.UsageError("--directions FILE is where --edit and --sweep read their directions: add --edit NAME, "
                               "or drop --directions")
    if interpolate is not None:
        for name in NOT_WITH_WALK:
            if given(name):
                raise click.UsageError(f"{flag(name)} does not go with --interpolate A,B: a walk makes --steps "
                                       f"frames from seed A to seed B; drop {flag(name)}")
    elif given("steps"):
        raise click.UsageError("--steps is for --interpolate A,B (a walk from seed A to seed B) or --sweep NAME; drop "
                               "it, or add --interpolate 3,7")
    if per_class is not None:
        for name in ("n", "nrow", "range_"):
            if given(name):
                raise click.UsageError(f"{flag(name)} does not go with --per-class: the grid has one row a class and "
                                       f"K columns, K x classes samples; drop {flag(name)}")


def _shard_progress():
    """A sharded job's progress on stderr: a line redrawn each second on a terminal, else a line
    every 30 s ($GANFORGE_PROGRESS_SECONDS); shards done, samples/s, the time left."""
    if sys.stderr.isatty():
        def redraw(line: str) -> None:
            sys.stderr.write(f"\r{line}\x1b[K")
            sys.stderr.flush()

        return shard_lines("gan-infer", write=redraw, every=1.0, end=lambda line: redraw(line + "\n"))
    return shard_lines("gan-infer")


def _verify(folder, model, device) -> None:
    from ganforge.inference.verify import verify_folder

    with cli_errors():
        click.echo(verify_folder(folder, model, device=device).line())


def _what(result, seed, start, per_class, interpolate, sweep=None, control: str = "") -> str:
    if sweep is not None:
        amounts = result.amounts
        return (f"{result.n // len(amounts)} samples x {len(amounts)} steps along {printable(sweep.partition('=')[0])}, "
                f"{amounts[0]:+g} to {amounts[-1]:+g}, seed {seed}" + (f", {control}" if control else ""))
    if interpolate is not None:
        what = f"{result.n} frames, seeds {interpolate[0]} -> {interpolate[1]}"
        if result.labels:
            a, b = result.labels
            what += f", label {printable(a)}" if a == b else f", labels {printable(a)} -> {printable(b)}"
        return what
    what = f"{result.n} samples" + (f" {start}:{start + result.n}" if start else "") + f", seed {seed}"
    if per_class:
        what += f", {per_class} per class: {_names(result.labels)}"
    elif result.labels:
        what += f", labels {_names(result.labels)}"
    elif result.conditional:
        what += ", random labels"
    if result.job is not None:
        what += f", {result.job.line()}"
    return what


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-infer")
@click.option("--model", type=click.Path(), show_default=LATEST_MODEL, help="Exported ONNX generator.")
@click.option("--n", "n", type=click.IntRange(min=1), default=64,
              help="How many samples: samples 0 to N-1 of the seed (--range 0:N).")
@click.option("--range", "range_", callback=click_callback(parse_range), metavar="A:B",
              help="Samples A to B-1 of the seed, instead of --n: each the same as in any other range, batch or "
                   "worker count.")
@click.option("--out", type=click.Path(),
              help="grid.png (a tiled grid), samples.npy (raw array) or DIR/ (a sharded, resumable job: shards of "
                   "PNGs or .npy files and a manifest.json; a rerun makes only the missing shards); with "
                   "--interpolate also walk.gif (animated), and DIR/ one PNG a frame.")
@click.option("--format", "shard_format", type=click.Choice(["png", "npy"]),
              show_default="png", help="DIR/ only: the shards, a folder of one PNG a sample or one .npy file each.")
@click.option("--shard-size", type=click.IntRange(min=1), metavar="N",
              show_default="10240, fewer for big samples: 64 MiB of float32 at most", help="DIR/ only: samples a shard.")
@click.option("--workers", type=click.IntRange(1, 256), default=1,
              help="DIR/ only: local processes making shards, each with its share of the cores.")
@click.option("--verify", type=click.Path(), metavar="DIR",
              help="Check a DIR/ job against its model (the manifest's, or --model): sha256, every shard there, and "
                   "a few samples of each made again and compared; one line, non-zero exit on a difference.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Same seed, same output bytes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where onnxruntime runs: auto takes CUDA when onnxruntime-gpu finds a GPU, else the CPU.")
@click.option("--nrow", type=click.IntRange(min=1), show_default="square", help="Columns of the grid.")
@click.option("--batch-size", type=click.IntRange(min=1), show_default="chosen: chunks sized for memory, in the "
              "micro-batch measured here", help="Samples per onnxruntime call.")
@click.option("--scale", type=click.IntRange(1, 16), default=1, metavar="N",
              help="Draw the pictures (.png, .gif, DIR/) N times larger a side, pixel for pixel (not .npy).")
@runtime_options
@click.option("-v", "--verbose", is_flag=True,
              help="Say what runs the model: the runtime of each run size, the micro-batch, and whether that "
                   "choice was measured now, read from the cache or not measured yet.")
@foreign_options
@click.option("--label", "labels", multiple=True, metavar="NAME|INDEX",
              help="Conditional models: a class, by name or index; repeat for several (the samples split into even "
                   "blocks, in order).", show_default="random classes")
@click.option("--per-class", type=click.IntRange(min=1), metavar="K",
              help="Conditional models: a grid of one row a class (the --label ones, else all) and K columns, "
                   "a column one noise; instead of --n.")
@click.option("--interpolate", callback=_seed_pair, metavar="A,B",
              help="Walk from seed A's first sample to seed B's (two --label: from the first class to the second); "
                   "--out walk.gif, strip.png or frames.npy.")
@click.option("--steps", type=click.IntRange(min=2), show_default=f"{WALK_STEPS} frames a walk, {SWEEP_STEPS} columns "
              "a sweep", help="Frames of an --interpolate walk, or columns of a --sweep, both ends included.")
@click.option("--truncation", type=float, metavar="T",
              help="Redraw every noise component beyond T (0.5 to 1 is usual): less unusual samples, less diversity; "
                   "sample i of the seed stays addressable.")
@click.option("--edit", "edits", multiple=True, metavar="NAME[=AMOUNT]",
              help="Move every sample along a named direction of the model (gan-directions makes them), AMOUNT in its "
                   "recommended steps (1 when left out, -1 the other way); repeatable.")
@click.option("--sweep", metavar="NAME[=A:B]",
              help="A grid along a named direction: a row each of --n samples (8 unless given), a column each of "
                   "--steps amounts from A to B steps (-2:2 when left out); --out sweep.png or .npy.")
@click.option("--directions", type=click.Path(), metavar="FILE",
              show_default="directions.json beside the model", help="Where --edit and --sweep read the directions.")
@ray_options
@threads_option
@click.pass_context
def main(ctx, model, n, range_, out, shard_format, shard_size, workers, verify, seed, device, nrow, batch_size, scale,
         runtime, verbose, foreign, labels, per_class, interpolate, steps, truncation, edits, sweep, directions, ray):
    """Generate samples from an exported generator with onnxruntime (no torch needed)."""
    from ganforge.inference.generation import run_generation, run_sweep, run_walk
    from ganforge.inference.request import GenerationRequest, SweepRequest, WalkRequest

    _check_combination(ctx, interpolate, per_class, sweep)
    short_warnings()
    if verify is not None:
        return _verify(verify, model, device)
    progress = _terminal_progress() if sys.stderr.isatty() else sample_lines("gan-infer")  # a line every 30 s
    note = functools.partial(_echo, err=True)  # a foreign model's line: what was read and assumed
    start, stop = range_ or (0, n)
    with cli_errors():
        if sweep is not None:
            request = SweepRequest(model=model, sweep=sweep, out=out, n=n if _given(ctx, "n") else 8, seed=seed,
                                   start=start, steps=steps or SWEEP_STEPS, truncation=truncation, edits=edits,
                                   directions=directions, labels=labels or None, device=device, scale=scale, **runtime,
                                   **foreign)
            result = run_sweep(request, note=note)
        elif interpolate is not None:
            request = WalkRequest(model=model, seed_a=interpolate[0], seed_b=interpolate[1], out=out,
                                  steps=steps or WALK_STEPS, labels=labels or None, device=device, scale=scale,
                                  **runtime, **foreign)
            result = run_walk(request, note=note)
        else:
            request = GenerationRequest(model=model, n=None if per_class else stop - start, start=start, out=out,
                                        seed=seed, nrow=nrow, batch_size=batch_size, labels=labels or None,
                                        per_class=per_class, device=device, scale=scale, shard_format=shard_format,
                                        shard_size=shard_size, workers=workers, ray=ray, truncation=truncation,
                                        edits=edits, directions=directions, **runtime, **foreign)
            result = run_generation(request, progress=progress, note=note, shard_progress=_shard_progress())
    if verbose:
        click.echo(str(threads.current()), err=True)
        click.echo(f"noise: {result.scheme} (sample i of seed s the same in any range, batch or runtime)", err=True)
        for line in result.runtime_details:
            click.echo(line, err=True)
    if result.job is not None:
        where = f"{len(result)} shard{'s' if len(result) != 1 else ''} in {result[0].parent}"
    else:
        where = result[0] if len(result) == 1 else f"{len(result)} files in {result[0].parent}"
    control = ""
    if interpolate is None:
        from ganforge.inference.control import Control

        control = Control(request.truncation, None, request.edits).text()
    what = _what(result, seed, start, per_class, interpolate, sweep, control)
    if control and sweep is None:
        what += f", {control}"
    click.echo(f"wrote {printable(str(where))} ({what}, {result.seconds:.2f}s on "
               f"{result.device}: {result.runtime})")


if __name__ == "__main__":
    main()
