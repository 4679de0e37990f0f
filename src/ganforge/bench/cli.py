"""``gan-bench``: a thin adapter over :func:`ganforge.bench.run_bench`."""

from __future__ import annotations

import click

from ganforge.cli import CONTEXT_SETTINGS, LATEST_MODEL, version_option
from ganforge.errors import cli_errors, printable
from ganforge.inference.options import foreign_options
from ganforge.threads import threads_option


def _ints(ctx, param, value):
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 1,8,64; got {value!r}") from None
    if not out or min(out) < 1:
        raise click.BadParameter(f"batch sizes must be >= 1; got {value!r}")
    return out


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-bench")
@click.option("--model", type=click.Path(), show_default=LATEST_MODEL,
              help="Exported ONNX generator; the torch backends use the checkpoint its export.json names.")
@click.option("--backends", help="Comma-separated: ganforge (as gan-infer runs it), onnxruntime-cpu (ganforge on "
                                 "onnxruntime alone), onnxruntime-cuda, torch-eager, torchscript, torch-compile, "
                                 "openvino-fp32, openvino-default, ganforge-bf16, ganforge-int8.",
              show_default="all that can run here but torch-compile, which compiles for each batch size, and "
                           "ganforge-int8 unless generator.int8.onnx is exported")
@click.option("--batch-sizes", callback=_ints, default="1,8,64,256,1024",
              help="Comma-separated samples per call to time (the biggest must fit the memory budget).")
@click.option("--budget", type=click.FloatRange(min=0.01), default=1.0,
              help="Seconds of timed calls per backend and batch size.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench",
              help="Folder for bench.json, bench.md and bench.png (checked before timing starts).")
@click.option("--no-cold-start", is_flag=True, help="Skip the fresh-process cold-start comparison.")
@click.option("--provider", type=click.Choice(["auto", "onnxruntime", "openvino"]),
              show_default="auto: measured per run size",
              help="What the ganforge backends may run on (gan-infer --provider).")
@foreign_options
@threads_option
def main(model, backends, batch_sizes, budget, out_dir, no_cold_start, provider, foreign):
    """Time an exported generator on every backend over a batch sweep; write bench.json/md/png."""
    from ganforge.bench import ALL_BACKENDS, run_bench

    names = tuple(b.strip() for b in backends.split(",")) if backends else None
    with cli_errors():
        if names and (bad := [b for b in names if b not in ALL_BACKENDS]):
            from ganforge.errors import GanforgeError

            raise GanforgeError(f"unknown backend {bad[0]!r}; choose from: {', '.join(ALL_BACKENDS)}")
        report = run_bench(model, backends=names, batch_sizes=batch_sizes, budget_s=budget, out_dir=out_dir,
                           cold=not no_cold_start, overrides=foreign, note=lambda line: click.echo(printable(line), err=True),
                           provider=provider)
    for b in report["backends"]:
        best = max(b["results"], key=lambda r: r["samples_per_s"])
        click.echo(f"{b['name']:24s} load {b['load_s']:.3f}s  best {best['samples_per_s']:.0f} samples/s (batch "
                   f"{best['batch']})" + (f"  plan: {b['plan']}" if b.get("plan") else ""))
    for name, why in report["skipped"].items():
        click.echo(f"{name:24s} skipped: {printable(why)}")  # a foreign file's words
    click.echo(f"report: {out_dir}/bench.md")


if __name__ == "__main__":
    main()
