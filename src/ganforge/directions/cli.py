"""``gan-directions``: a thin adapter over :func:`ganforge.directions.find_directions`."""

from __future__ import annotations

import click

from ganforge.cli import CONTEXT_SETTINGS, version_option
from ganforge.errors import MissingExtraError, cli_errors, printable
from ganforge.inference.options import foreign_options
from ganforge.threads import threads_option


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-directions")
@click.argument("model", required=False, metavar="[MODEL.onnx|RUN]")
@click.option("--k", "k", type=click.IntRange(0, 64), default=5,
              help="Principal directions to find (pc0, pc1, ...), from the model's own samples.")
@click.option("--data", type=click.Path(),
              help="Labelled real images (IDX folder, CIFAR-10, a folder of one sub-folder a class): adds a "
                   "direction toward each class, named by it (gan-eval's evaluator labels the samples; needs torch).")
@click.option("--samples", type=click.IntRange(min=16, max=1 << 20), default=4096,
              help="Samples the principal directions are fitted on.")
@click.option("--out", type=click.Path(dir_okay=False), show_default="directions.json beside the model",
              help="Where to write them.")
@foreign_options
@threads_option
def main(model, k, data, samples, out, foreign):
    """Find named directions in a generator's latent space and write them beside it (directions.json), for
    gan-infer --edit NAME=AMOUNT and --sweep NAME, gan-serve and its page."""
    with cli_errors():
        from ganforge.directions import find_directions
        from ganforge.evaluation import resolve_model

        if data is not None:
            try:
                import torch
            except ImportError as exc:
                raise MissingExtraError("gan-directions --data", "train", exc) from None
            from ganforge.threads import apply_torch

            apply_torch(torch)
        found, path = find_directions(resolve_model(model), k=k, data=data, out=out, samples=samples,
                                      progress=lambda line: click.echo(printable(line), err=True),
                                      generator_options=foreign)
    for d in found.directions:
        effect = (f"{d.measured['value_change_per_step']:.3f} mean change of a value a step" if d.kind == "principal"
                  else f"{d.measured['assigned_at_step']:.0%} assigned {printable(d.measured['class'])} at its step")
        click.echo(f"{printable(d.name):<14} {d.kind:<9} step {d.step:g}: {effect}")
    click.echo(f"wrote {printable(str(path))} ({len(found.directions)} directions): gan-infer --model ... --edit NAME=+1, "
               "or --sweep NAME --out sweep.png")


if __name__ == "__main__":
    main()
