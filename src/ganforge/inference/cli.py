"""``gan-infer``: its options parsed into a generation request (:mod:`ganforge.inference.request`), run
by :mod:`ganforge.inference.generation`."""

from __future__ import annotations

import functools
import sys
import time

import click
from click.core import ParameterSource

from ganforge import threads
from ganforge.cli import version_option
from ganforge.errors import cli_errors, printable, short_warnings
from ganforge.inference.options import foreign_options, runtime_options
from ganforge.progress import sample_lines
from ganforge.threads import threads_option

NOT_WITH_WALK = ("n", "per_class", "seed", "nrow", "batch_size")  # options a walk has no use for


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


def _check_combination(ctx: click.Context, interpolate, per_class) -> None:
    """Options that cannot go together: usage errors before anything is opened."""
    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if interpolate is not None:
        for name in NOT_WITH_WALK:
            if given(name):
                raise click.UsageError(f"{flag(name)} does not go with --interpolate A,B: a walk makes --steps "
                                       f"frames from seed A to seed B; drop {flag(name)}")
    elif given("steps"):
        raise click.UsageError("--steps is for --interpolate A,B (a walk from seed A to seed B); drop it, or add "
                               "--interpolate 3,7")
    if per_class is not None:
        for name in ("n", "nrow"):
            if given(name):
                raise click.UsageError(f"{flag(name)} does not go with --per-class: the grid has one row a class and "
                                       f"K columns, K x classes samples; drop {flag(name)}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@version_option("gan-infer")
@click.option("--model", type=click.Path(),
              help="Exported ONNX generator (default: the latest run's export/generator.onnx, else the newest "
                   "run's that has one).")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="How many samples.")
@click.option("--out", required=True, type=click.Path(),
              help="grid.png (a tiled grid), samples.npy (raw array) or DIR/ (one PNG per sample); "
                   "with --interpolate also walk.gif (animated).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed, same output bytes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where onnxruntime runs: auto takes CUDA when onnxruntime-gpu finds a GPU, else the CPU.")
@click.option("--nrow", type=click.IntRange(min=1), help="Columns of the grid (default: square).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Samples per onnxruntime call.")
@runtime_options
@click.option("-v", "--verbose", is_flag=True,
              help="Say what runs the model: the runtime of each run size, the micro-batch, and whether that "
                   "choice was measured now, read from the cache or not measured yet.")
@foreign_options
@click.option("--label", "labels", multiple=True, metavar="NAME|INDEX",
              help="Conditional models: a class, by name or index; repeat for several (the samples split into even "
                   "blocks, in order). Default: random classes.")
@click.option("--per-class", type=click.IntRange(min=1), metavar="K",
              help="Conditional models: a grid of one row a class (the --label ones, else all) and K columns, "
                   "a column one noise; instead of --n.")
@click.option("--interpolate", callback=_seed_pair, metavar="A,B",
              help="Walk from seed A's first sample to seed B's (two --label: from the first class to the second); "
                   "--out walk.gif, strip.png or frames.npy.")
@click.option("--steps", type=click.IntRange(min=2), default=16, show_default=True,
              help="Frames of an --interpolate walk, both ends included.")
@threads_option
@click.pass_context
def main(ctx, model, n, out, seed, device, nrow, batch_size, runtime, verbose, foreign, labels, per_class, interpolate,
         steps):
    """Generate samples from an exported generator with onnxruntime (no torch needed)."""
    from ganforge.inference.generation import run_generation, run_walk
    from ganforge.inference.request import GenerationRequest, WalkRequest

    _check_combination(ctx, interpolate, per_class)
    short_warnings()
    progress = _terminal_progress() if sys.stderr.isatty() else sample_lines("gan-infer")  # a line every 30 s
    note = functools.partial(_echo, err=True)  # a foreign model's line: what was read and assumed
    with cli_errors():
        if interpolate is not None:
            request = WalkRequest(model=model, seed_a=interpolate[0], seed_b=interpolate[1], out=out, steps=steps,
                                  labels=labels or None, device=device, **runtime, **foreign)
            result = run_walk(request, note=note)
        else:
            request = GenerationRequest(model=model, n=None if per_class else n, out=out, seed=seed, nrow=nrow,
                                        batch_size=batch_size, labels=labels or None, per_class=per_class,
                                        device=device, **runtime, **foreign)
            result = run_generation(request, progress=progress, note=note)
    if verbose:
        click.echo(str(threads.current()), err=True)
        for line in result.runtime_details:
            click.echo(line, err=True)
    where = result[0] if len(result) == 1 else f"{len(result)} files in {result[0].parent}"
    if interpolate is not None:
        what = f"{result.n} frames, seeds {interpolate[0]} -> {interpolate[1]}"
        if result.labels:
            a, b = result.labels
            what += f", label {printable(a)}" if a == b else f", labels {printable(a)} -> {printable(b)}"
    else:
        what = f"{result.n} samples, seed {seed}"
        if per_class:
            what += f", {per_class} per class: {_names(result.labels)}"
        elif result.labels:
            what += f", labels {_names(result.labels)}"
        elif result.conditional:
            what += ", random labels"
    click.echo(f"wrote {printable(where)} ({what}, {result.seconds:.2f}s on {result.device}: {result.runtime})")


if __name__ == "__main__":
    main()
