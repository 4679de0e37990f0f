"""``gan-export``: a thin adapter over :func:`ganforge.export.export`."""

from __future__ import annotations

import click

from ganforge.errors import MissingExtraError, cli_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", required=False, metavar="[RUN|CHECKPOINT]")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "all"]), default="onnx", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: <run>/export).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
def main(source, fmt, out_dir, runs_dir):
    """Export a run's generator (default: runs/latest) and prove the export faithful.

    Every artifact is checked (onnx.checker, symbolic batch, metadata, parity with
    PyTorch at batch sizes 1, 3, 64); one that fails is not written.
    """
    with cli_errors():
        try:
            import onnx  # noqa: F401
            import torch  # noqa: F401

            from ganforge.export import export
        except ImportError as exc:
            raise MissingExtraError("gan-export", "train", exc) from None
        result = export(source, formats=fmt, out_dir=out_dir, runs_dir=runs_dir)
    for name, path in result.artifacts.items():
        diffs = [c.max_abs_diff for c in result.checks[name] if c.max_abs_diff is not None]
        click.echo(f"{name:12s} {path}  ({len(result.checks[name])} checks passed, max abs diff {max(diffs):.2g})")
    click.echo(f"report       {result.report}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


if __name__ == "__main__":
    main()
