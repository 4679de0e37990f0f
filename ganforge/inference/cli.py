"""``gan-infer``: a thin adapter over :func:`ganforge.inference.generate`."""

from __future__ import annotations

import time

import click

from ganforge.errors import cli_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", type=click.Path(), help="Exported ONNX generator (default: runs/latest/export/generator.onnx).")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="How many samples.")
@click.option("--out", required=True, type=click.Path(),
              help="grid.png (a tiled grid), samples.npy (raw array) or DIR/ (one PNG per sample).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same output bytes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--nrow", type=click.IntRange(min=1), help="Columns of the grid (default: square).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Samples per onnxruntime call.")
def main(model, n, out, seed, device, nrow, batch_size):
    """Generate samples from an exported generator with onnxruntime (no torch needed)."""
    from ganforge.inference import generate

    t0 = time.perf_counter()
    with cli_errors():
        result = generate(model, n, out, seed=seed, device=device, nrow=nrow, batch_size=batch_size)
    paths = result.paths
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
    click.echo(f"wrote {where} ({n} samples, seed {seed}, onnxruntime on {result.device}, "
               f"{time.perf_counter() - t0:.2f}s)")


if __name__ == "__main__":
    main()
