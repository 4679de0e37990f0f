"""``gan-eval``: a thin adapter over :func:`ganforge.evaluation.evaluate`."""

from __future__ import annotations

import os

import click

from ganforge.cli import CONTEXT_SETTINGS, version_option
from ganforge.errors import MissingExtraError, cli_errors, printable
from ganforge.inference.options import foreign_options, runtime_options
from ganforge.threads import apply_torch, threads_option

# the printed line: each image score beside its real-vs-real floor
IMAGE_SCORES = (("Fréchet distance", "frechet_distance"), ("precision", "precision"), ("recall", "recall"),
                ("coverage", "coverage"))
UNBIASED = ": the unbiased estimate, which falls below 0 by chance when two samples match"


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-eval")
@click.argument("source", required=False, metavar="[MODEL.onnx|RUN]")
@click.option("--data", type=click.Path(), help="Real images for an image model (IDX folder, CIFAR-10, image folder).")
@click.option("--n", "n", type=click.IntRange(min=10), default=2000,
              help="Generated samples to score (the k-NN scores use at most 2000 a side).")
@click.option("--seed", type=click.IntRange(min=0), default=0,
              help="Seed of the generated samples, the real subset and the evaluator: same seed, same scores.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="eval",
              help="Folder for eval.json and eval.md (checked before the work starts).")
@click.option("--truncation", metavar="T[,T...]",
              help="Score samples made with the noise truncated at T (gan-infer --truncation); several thresholds "
                   "(0.5,1,1.5) score each and untruncated, and draw the precision/recall/FD curve "
                   "(truncation.md and .png).")
@runtime_options
@foreign_options
@threads_option
def main(source, data, n, seed, out_dir, truncation, runtime, foreign):
    """Score an exported generator (default: the latest run's export/generator.onnx, else the newest run's
    that has one; a run folder means its export/generator.onnx) against real data, each score beside its
    real-vs-real floor."""
    with cli_errors():
        try:
            from ganforge.evaluation import evaluate, reduced_line
            import torch  # (real data comes from the training code)
        except ImportError as exc:
            raise MissingExtraError("gan-eval", "train", exc) from None
        apply_torch(torch)  # the evaluator trains on torch (gan-eval has no -v: an error stays one line)
        say = lambda line: click.echo(printable(line), err=True)  # noqa: E731
        thresholds = None
        if truncation is not None:
            from ganforge.evaluation.truncation import parse_thresholds, truncation_curve

            thresholds = parse_thresholds(truncation)
        if thresholds is not None and len(thresholds) > 1:
            curve = truncation_curve(source, thresholds, data=data, n=n, seed=seed, out_dir=out_dir,
                                     overrides=foreign, progress=say, **runtime)
            return _curve_lines(curve, out_dir)
        report = evaluate(source, data=data, n=n, seed=seed, out_dir=out_dir, overrides=foreign, progress=say,
                          truncation=thresholds[0] if thresholds else None, **runtime)
    g, f = report["generated"], report["floor"]
    if report["evaluator"]["kind"] == "image":
        click.echo(", ".join(f"{name} {g[key]:.3f} (floor {f[key]:.3f})" for name, key in IMAGE_SCORES)
                   + f" (evaluator accuracy {report['evaluator']['accuracy']:.3f})")
        cond = report.get("conditional")
        if cond and "accuracy" in cond:
            click.echo(f"label accuracy {cond['accuracy']:.3f}: the evaluator's class matches the requested one "
                       f"(its accuracy on real images {cond['ceiling']:.3f})")
        elif cond:
            click.echo(f"label accuracy skipped: {cond['skipped']}")
    else:
        click.echo(f"sine-like {g['sine_like_fraction']:.1%} (floor {f['sine_like_fraction']:.1%}), "
                   f"MMD^2 {g['mmd']:.4f} (floor {f['mmd']:.4f}{UNBIASED if f['mmd'] < 0 else ''}), classifier gap "
                   f"{g['classifier_gap']:.3f} (floor {f['classifier_gap']:.3f})")
    if line := reduced_line(report):
        click.echo(line)
    click.echo(f"report: {os.path.join(out_dir, 'eval.md')}")  # --out eval/ gives eval/eval.md, not eval//eval.md


def _curve_lines(curve, out_dir) -> None:
    keys = [k for k in ("frechet_distance", "precision", "recall", "mmd", "sine_like_fraction") if k in curve["floor"]]
    for p in curve["points"]:
        t = "none" if p["truncation"] is None else f"{p['truncation']:g}"
        click.echo(f"truncation {t:>5}: " + ", ".join(f"{k.replace('_', ' ')} {p[k]:.3f}" for k in keys))
    click.echo("floor (real vs real): " + ", ".join(f"{k.replace('_', ' ')} {curve['floor'][k]:.3f}" for k in keys))
    click.echo(f"report: {os.path.join(out_dir, 'truncation.md')} (curve: truncation.png)")


if __name__ == "__main__":
    main()
