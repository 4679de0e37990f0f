"""``gan-infer``: a thin adapter over :func:`ganforge.inference.generate`."""

from __future__ import annotations

import sys
import time

import click

from ganforge.errors import cli_errors, short_warnings


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


def _value_range(ctx, param, value):
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH such as -1,1 or 0,1; got {value!r}") from None
    if not lo < hi:
        raise click.BadParameter(f"LOW must be below HIGH; got {value!r}")
    return lo, hi


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", type=click.Path(), help="Exported ONNX generator (default: runs/latest/export/generator.onnx).")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="How many samples.")
@click.option("--out", required=True, type=click.Path(),
              help="grid.png (a tiled grid), samples.npy (raw array) or DIR/ (one PNG per sample).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed, same output bytes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--nrow", type=click.IntRange(min=1), help="Columns of the grid (default: square).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Samples per onnxruntime call.")
@click.option("--latent-dim", type=click.IntRange(min=1), help="Foreign models: the noise size, when the graph leaves it open.")
@click.option("--value-range", callback=_value_range, metavar="LOW,HIGH",
              help="The generator's output range (default: metadata, else -1,1).")
@click.option("--layout", type=click.Choice(["nchw", "nhwc", "series"]),
              help="Foreign models: how to read the output (default: nchw for 4-D, series for 2-D).")
def main(model, n, out, seed, device, nrow, batch_size, latent_dim, value_range, layout):
    """Generate samples from an exported generator with onnxruntime (no torch needed)."""
    from ganforge.inference import generate

    short_warnings()
    progress = _terminal_progress() if sys.stderr.isatty() else None
    with cli_errors():
        result = generate(model, n, out, seed=seed, device=device, nrow=nrow, batch_size=batch_size,
                          latent_dim=latent_dim, value_range=value_range, layout=layout, progress=progress)
    where = result[0] if len(result) == 1 else f"{len(result)} files in {result[0].parent}"
    click.echo(f"wrote {where} ({n} samples, seed {seed}, {result.seconds:.2f}s, onnxruntime on {result.device}: "
               f"{', '.join(result.providers)})")


if __name__ == "__main__":
    main()
