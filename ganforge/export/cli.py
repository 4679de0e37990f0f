"""``gan-export``: a thin adapter over :func:`ganforge.export.export`."""

from __future__ import annotations

import click

from ganforge.errors import GanforgeError, MissingExtraError, cli_errors
from ganforge.export.formats import NAMES, OFFERS, PRECISIONS

# onnxruntime and onnxruntime-gpu install the same module, so the message names both extras.
RUNTIME_MISSING = ("gan-export checks every export with onnxruntime ({} is missing): "
                   "pip install 'ganforge[cpu]' (or 'ganforge[gpu]' on a CUDA machine)")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", required=False, metavar="[RUN|CHECKPOINT]")
@click.option("--format", "fmt", type=click.Choice([*NAMES, "all"]), default="onnx", show_default=True,
              help=", ".join(f"{n} ({about})" for n, (_, about) in OFFERS.items()) + ", all.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="fp16: float16 weights and compute, float32 z/x (GPU serving); int8: dynamic quantization "
                   "(MLP generators). " + ", ".join(n for n, (offer, _) in OFFERS.items() if len(offer) > 1)
                   + " only.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: <run>/export).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where runs are found by name and where 'latest' points (gan-train's --runs-dir).")
def main(source, fmt, precision, out_dir, runs_dir):
    """Export a run's generator (default: runs/latest) and prove the export faithful.

    Every artifact is checked (onnx.checker, symbolic batch, metadata, parity with
    PyTorch eager at batch sizes 1, 3, 64, 257 within 1e-4 for fp32, 1e-2 for fp16,
    5e-2 for int8); one that fails is not written, and checks cannot be turned off.
    """
    with cli_errors():
        try:
            import onnx  # noqa: F401
            import torch  # noqa: F401

            from ganforge.export import export
        except ImportError as exc:
            raise MissingExtraError("gan-export", "train", exc) from None
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:  # [train] alone: neither the cpu nor the gpu extra
            raise GanforgeError(RUNTIME_MISSING.format(exc.name or "onnxruntime")) from None
        result = export(source, formats=fmt, precision=precision, out_dir=out_dir, runs_dir=runs_dir)
    for key, path in result.artifacts.items():
        diffs = [c.max_abs_diff for c in result.checks[key] if c.max_abs_diff is not None]
        click.echo(f"{key:12s} {path}  ({len(result.checks[key])} checks passed, max abs diff {max(diffs):.2g})")
    click.echo(f"report       {result.report}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


if __name__ == "__main__":
    main()
